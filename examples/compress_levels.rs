//! bench/compress, part 1: CPU per MiB and ratio of each codec and level on the corpus
//! files given, with the windows uringd uses (256 KiB for zstd and brotli), and the
//! memory an encoder holds while a response streams through it. Run pinned to one CPU
//! (bench/compress/run does): `compress_levels FILE...`.
//!
//! CPU is this thread's own (/proc/thread-self/schedstat), each setting repeated for at
//! least 0.3 s.

use std::io::Write;
use std::time::Instant;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[derive(Clone, Copy)]
enum Setting {
    Gzip(u32),
    Zstd(i32),
    Br(u32),
}

const SETTINGS: [Setting; 16] = [
    Setting::Gzip(1),
    Setting::Gzip(2),
    Setting::Gzip(3),
    Setting::Gzip(4),
    Setting::Gzip(6),
    Setting::Gzip(9),
    Setting::Zstd(1),
    Setting::Zstd(3),
    Setting::Zstd(6),
    Setting::Zstd(9),
    Setting::Br(1),
    Setting::Br(2),
    Setting::Br(3),
    Setting::Br(4),
    Setting::Br(5),
    Setting::Br(6),
];

fn compress(s: Setting, input: &[u8]) -> Vec<u8> {
    match s {
        Setting::Gzip(l) => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(l));
            e.write_all(input).unwrap();
            e.finish().unwrap()
        }
        Setting::Zstd(l) => {
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), l).unwrap();
            e.window_log(18).unwrap();
            e.write_all(input).unwrap();
            e.finish().unwrap()
        }
        Setting::Br(q) => {
            let mut e = brotli::CompressorWriter::new(Vec::new(), 4096, q, 18);
            e.write_all(input).unwrap();
            e.into_inner()
        }
    }
}

/// Memory of 100 encoders of this setting, each mid-stream (64 KiB fed), per encoder:
/// measured in a fresh process of its own, so no allocator reuse hides it.
fn held_kib(s: Setting, file: &str) -> u64 {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env("HELD", name(s))
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn held_here(s: Setting, input: &[u8]) -> u64 {
    let feed = &input[..input.len().min(64 * 1024)];
    let before = rss_kib();
    let mut gz = Vec::new();
    let mut zs = Vec::new();
    let mut br = Vec::new();
    for _ in 0..100 {
        match s {
            Setting::Gzip(l) => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(l));
                e.write_all(feed).unwrap();
                gz.push(e);
            }
            Setting::Zstd(l) => {
                let mut e = zstd::stream::write::Encoder::new(Vec::new(), l).unwrap();
                e.window_log(18).unwrap();
                e.write_all(feed).unwrap();
                zs.push(e);
            }
            Setting::Br(q) => {
                let mut e = brotli::CompressorWriter::new(Vec::new(), 4096, q, 18);
                e.write_all(feed).unwrap();
                br.push(e);
            }
        }
    }
    let held = rss_kib().saturating_sub(before) / 100;
    drop((gz, zs, br));
    held
}

fn name(s: Setting) -> String {
    match s {
        Setting::Gzip(l) => format!("gzip {l}"),
        Setting::Zstd(l) => format!("zstd {l}"),
        Setting::Br(q) => format!("br {q}"),
    }
}

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    assert!(!files.is_empty(), "usage: compress_levels FILE...");
    if let Ok(held) = std::env::var("HELD") {
        let s = SETTINGS.into_iter().find(|&s| name(s) == held).unwrap();
        println!("{}", held_here(s, &std::fs::read(&files[0]).unwrap()));
        return;
    }
    let settings = SETTINGS;
    println!(
        "| file | codec level | CPU ms per MiB | ratio (out/in) | MiB/s | KiB held per stream |"
    );
    println!("|---|---|---|---|---|---|");
    for f in &files {
        let input = std::fs::read(f).unwrap();
        let short = f.rsplit('/').next().unwrap();
        for &s in &settings {
            let (mut n, mut out_len) = (0u64, 0);
            let (c0, t0) = (thread_cpu_ns(), Instant::now());
            while t0.elapsed().as_millis() < 300 || n < 3 {
                out_len = compress(s, &input).len();
                n += 1;
            }
            let cpu = (thread_cpu_ns() - c0) as f64 / n as f64;
            let mib = input.len() as f64 / (1 << 20) as f64;
            println!(
                "| {short} | {} | {:.2} | {:.3} | {:.0} | {} |",
                name(s),
                cpu / 1e6 / mib,
                out_len as f64 / input.len() as f64,
                mib / (cpu / 1e9),
                held_kib(s, f)
            );
        }
    }
}
