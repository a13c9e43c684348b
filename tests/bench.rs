//! `uringd bench` against servers whose behaviour is known: percentiles where they must fall,
//! a stall that only the corrected histogram sees, rate accuracy, pipelining, errors by kind,
//! the JSON schema, and interval logs read back by HdrHistogram's own Java tool.

mod common;
#[path = "common/loadtarget.rs"]
mod loadtarget;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use loadtarget::{Action, LoadTarget};
use serde_json::Value;

const MS: Duration = Duration::from_millis(1);

/// These tests measure time and rate on a 2-core machine: one at a time, so a neighbour's
/// load does not become a test's latency.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn respond(delay: Duration) -> Action {
    Action::Respond { delay, status: 200 }
}

/// Runs `uringd bench ARGS`; returns (exit code, stdout, stderr).
fn bench(args: &[&str]) -> (i32, String, String) {
    let start = Instant::now();
    let out = Command::new(BIN)
        .arg("bench")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "bench took too long"
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs with --json and returns the object.
fn bench_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = bench(&all);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// How late the generator says it was (schedule lag max, us; 0 in closed loop): the part of
/// a measured latency that is its own delay, not the server's. Tests that expect a latency
/// allow this much on top, plus what a loaded 2-core machine adds to a sleep, so a busy CI
/// machine shifts the figures without failing what they mean.
fn slack_us(v: &Value) -> f64 {
    const LOADED_MACHINE_US: f64 = 15_000.0;
    LOADED_MACHINE_US
        + v["generator"]["schedule_lag_us"]["max"]
            .as_f64()
            .unwrap_or(0.0)
}

/// The generator's verdict must rest on what it measured: a saturated run names the limit it
/// hit, and one that kept up is under both limits.
fn verdict_is_consistent(v: &Value) {
    let g = &v["generator"];
    let reasons = g["reasons"].as_array().unwrap();
    let lag = g["schedule_lag_us"]["p99"].as_f64().unwrap_or(0.0);
    let lag_limit = num(v, "generator.limits.schedule_lag_p99_us");
    let cpu_limit = num(v, "generator.limits.cpu_utilization");
    let cpu = g["cpu_utilization"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_f64().unwrap())
        .fold(0.0, f64::max);
    match g["verdict"].as_str().unwrap() {
        "kept up" => {
            assert!(
                lag <= lag_limit && cpu < cpu_limit && reasons.is_empty(),
                "{v}"
            );
            assert_eq!(v["generator_saturated"], false, "{v}");
        }
        "behind schedule" => {
            assert!(lag > lag_limit && cpu < cpu_limit, "{v}");
            assert!(
                reasons
                    .iter()
                    .any(|r| r.as_str().unwrap().contains("went out late")),
                "{v}"
            );
        }
        "cpu limit" => {
            assert!(cpu >= cpu_limit, "{v}");
            assert!(
                reasons.iter().any(|r| r.as_str().unwrap().contains("busy")),
                "{v}"
            );
        }
        other => panic!("verdict {other}: {v}"),
    }
}

fn num(v: &Value, path: &str) -> f64 {
    let mut cur = v;
    for k in path.split('.') {
        cur = &cur[k];
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number in {v}"))
}

#[test]
fn percentiles_fall_where_the_server_puts_them() {
    let _serial = serial();
    // Every tenth request takes 50 ms, the rest 5 ms: p50 ~5 ms, p99 ~50 ms.
    let t = LoadTarget::start(Duration::ZERO, |r| {
        respond(if r.n % 10 == 9 { 50 * MS } else { 5 * MS })
    });
    // Open loop with far more connections than in flight, so nothing queues.
    let v = bench_json(&[&t.url("/"), "-R", "200", "-c", "30", "-t", "2", "-d", "3s"]);
    verdict_is_consistent(&v);
    let p50 = num(&v, "latency_us.p50");
    let p90 = num(&v, "latency_us.p90");
    let p99 = num(&v, "latency_us.p99");
    let max = num(&v, "latency_us.max");
    // Sleeps overshoot, never undershoot: a fast request at p50, a slow one at p99, each
    // late by at most what the machine and the generator's own lag add.
    let slack = slack_us(&v);
    let fast = 5000.0..5000.0 + slack;
    let slow = 50_000.0..50_000.0 + slack;
    assert!(fast.contains(&p50), "p50 {p50} in {v}");
    assert!(
        fast.contains(&p90) || slow.contains(&p90),
        "p90 {p90} in {v}"
    );
    assert!(slow.contains(&p99), "p99 {p99} in {v}");
    assert!(max < 50_000.0 + 2.0 * slack, "max {max} in {v}");
    assert_eq!(num(&v, "errors.total"), 0.0, "{v}");
    assert_eq!(num(&v, "status.2xx"), num(&v, "requests"));
    assert!((550.0..=650.0).contains(&num(&v, "requests")), "{v}");
}

#[test]
fn a_one_second_stall_shows_in_the_corrected_p99_only() {
    let _serial = serial();
    // The server stops answering from 2 s to 3 s after its first request.
    let t = LoadTarget::start(Duration::ZERO, |r| {
        let s = r.since_first;
        let stall = if s >= Duration::from_secs(2) && s < Duration::from_secs(3) {
            Duration::from_secs(3) - s
        } else {
            Duration::ZERO
        };
        respond(stall)
    });
    let v = bench_json(&[&t.url("/"), "-R", "5000", "-c", "10", "-t", "2", "-d", "6s"]);
    let corrected = num(&v, "latency_us.p99");
    let uncorrected = num(&v, "uncorrected_latency_us.p99");
    // ~5000 of 30000 requests were due during the stall and waited up to 1 s for it.
    assert!(corrected >= 500_000.0, "corrected p99 {corrected}: {v}");
    // Only the ten requests caught on the wire saw it, as wrk would report.
    assert!(
        uncorrected < 100_000.0,
        "uncorrected p99 {uncorrected}: {v}"
    );
    assert!(num(&v, "generator.waited_for_connection") > 1000.0, "{v}");
    // Whatever the generator says of itself, its own delay cannot explain the stall.
    verdict_is_consistent(&v);
    assert!(num(&v, "generator.schedule_lag_us.p99") < 100_000.0, "{v}");
    assert!((29_000.0..=30_100.0).contains(&num(&v, "requests")), "{v}");
}

#[test]
fn a_fixed_rate_is_kept_within_three_percent() {
    let _serial = serial();
    let s = Server::start(None, &[]);
    let url = format!("http://{}/", s.addr);
    let v = bench_json(&[&url, "-R", "5000", "-c", "20", "-t", "2", "-d", "4s"]);
    verdict_is_consistent(&v);
    let rps = num(&v, "requests_per_sec");
    // Open loop: a generator kept waiting catches up (requests are sent late, not skipped),
    // so the rate holds even on a loaded machine.
    assert!((rps - 5000.0).abs() / 5000.0 < 0.03, "req/s {rps}: {v}");
    assert!((19_400.0..=20_000.0).contains(&num(&v, "requests")), "{v}");
    assert_eq!(num(&v, "errors.total"), 0.0, "{v}");
    assert_eq!(v["mode"], "open");

    // Fewer requests per second than threads still runs at the asked rate (wrk2 sends none).
    let v = bench_json(&[&url, "-R", "2", "-c", "4", "-t", "4", "-d", "3s"]);
    assert_eq!(num(&v, "requests"), 6.0, "{v}");
}

#[test]
fn pipelining_keeps_n_requests_in_flight() {
    let _serial = serial();
    // Each read waits 5 ms, so the client's whole pipeline is waiting by then.
    let t = LoadTarget::start(5 * MS, |_| respond(Duration::ZERO));
    let v = bench_json(&[
        &t.url("/"),
        "-c",
        "2",
        "-t",
        "1",
        "-d",
        "1s",
        "--pipeline",
        "8",
    ]);
    let batch = t
        .counters
        .max_batch
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(batch, 8, "the server saw at most {batch} requests at once");
    assert_eq!(v["pipeline"], 8);
    // Each connection's 8 are answered per ~5 ms read: ~1600 per second per connection.
    let n = num(&v, "requests");
    assert!((1000.0..=4000.0).contains(&n), "{v}");
    assert_eq!(num(&v, "errors.total"), 0.0, "{v}");
    // Nothing beyond the requests it counted was answered and left unread.
    assert!(t.requests() as f64 >= n);
}

#[test]
fn errors_are_counted_by_kind() {
    let _serial = serial();
    // Closes without answering: read errors, no responses.
    let t = LoadTarget::start(Duration::ZERO, |_| Action::Close);
    let v = bench_json(&[&t.url("/"), "-c", "2", "-t", "1", "-d", "1s"]);
    assert_eq!(num(&v, "requests"), 0.0);
    assert!(num(&v, "errors.read") > 10.0, "{v}");
    assert_eq!(num(&v, "errors.total"), num(&v, "errors.read"), "{v}");

    // Never answers: each request is a timeout, recorded at the timeout.
    let t = LoadTarget::start(Duration::ZERO, |_| Action::Hang);
    let v = bench_json(&[
        &t.url("/"),
        "-c",
        "3",
        "-t",
        "1",
        "-d",
        "1s",
        "--timeout",
        "300ms",
    ]);
    let timeouts = num(&v, "errors.timeout");
    assert!((6.0..=20.0).contains(&timeouts), "{v}");
    let max = num(&v, "latency_us.max");
    assert!(
        (299_000.0..=320_000.0).contains(&max),
        "timeouts recorded at {max} us: {v}"
    );
    assert_eq!(num(&v, "requests"), 0.0);

    // Not HTTP: parse errors.
    let t = LoadTarget::start(Duration::ZERO, |_| Action::Garbage);
    let v = bench_json(&[&t.url("/"), "-c", "2", "-t", "1", "-d", "1s"]);
    assert!(num(&v, "errors.parse") > 10.0, "{v}");

    // Status classes are counted, not errors.
    let t = LoadTarget::start(Duration::ZERO, |r| Action::Respond {
        delay: Duration::ZERO,
        status: if r.n % 2 == 0 { 200 } else { 503 },
    });
    let v = bench_json(&[&t.url("/"), "-c", "1", "-t", "1", "-d", "1s"]);
    let (ok, bad) = (num(&v, "status.2xx"), num(&v, "status.5xx"));
    assert!(ok > 100.0 && (ok - bad).abs() <= 1.0, "{v}");
    assert_eq!(num(&v, "errors.total"), 0.0);

    // Nobody listening: one clear error before any load.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (code, _, err) = bench(&[&format!("http://127.0.0.1:{port}/"), "-d", "1s"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot connect to 127.0.0.1:") && err.contains("refused"),
        "{err}"
    );
}

#[test]
fn json_has_the_documented_shape() {
    let _serial = serial();
    let t = LoadTarget::start(Duration::ZERO, |_| respond(Duration::ZERO));
    let v = bench_json(&[
        &t.url("/a"),
        &t.url("/b"),
        "-R",
        "500",
        "-c",
        "4",
        "-t",
        "2",
        "-d",
        "1s",
    ]);
    for k in ["requests", "duration_s", "requests_per_sec", "bytes"] {
        assert!(v[k].is_number(), "{k} in {v}");
    }
    for h in ["latency_us", "uncorrected_latency_us"] {
        for k in ["p50", "p90", "p99", "p999", "max", "mean"] {
            assert!(v[h][k].is_number(), "{h}.{k} in {v}");
        }
        assert!(num(&v, &format!("{h}.p50")) <= num(&v, &format!("{h}.p99")));
        assert!(num(&v, &format!("{h}.p99")) <= num(&v, &format!("{h}.max")));
    }
    for k in ["connect", "read", "write", "timeout", "parse"] {
        assert!(v["errors"][k].is_u64(), "errors.{k} in {v}");
    }
    for k in ["1xx", "2xx", "3xx", "4xx", "5xx"] {
        assert!(v["status"][k].is_u64(), "status.{k} in {v}");
    }
    assert!(v["generator_saturated"].is_boolean());
    assert!(v["generator"]["schedule_lag_us"]["p99"].is_number(), "{v}");
    assert_eq!(v["urls"].as_array().unwrap().len(), 2);
    // Every request due was sent, or is counted as never sent (the last ones, when a
    // loaded machine kept the generator waiting past the end).
    let done = num(&v, "requests");
    assert_eq!(done + num(&v, "generator.unsent"), 500.0, "{v}");
    assert!(done >= 480.0, "{v}");
    // Both URLs were used, round-robin.
    let paths = t.counters.paths.lock().unwrap().clone();
    let a = paths.iter().filter(|p| *p == "/a").count();
    let b = paths.iter().filter(|p| *p == "/b").count();
    assert!(
        a + b >= done as usize && a.abs_diff(b) <= 4,
        "/a {a} /b {b}"
    );
}

#[test]
fn reports_files_and_the_text_summary() {
    let _serial = serial();
    let t = LoadTarget::start(Duration::ZERO, |_| respond(Duration::ZERO));
    let d = TempDir::new("bench-out");
    let hlog = d.0.join("run.hlog");
    let hgrm = d.0.join("run.hgrm");
    let svg = d.0.join("run.svg");
    let (code, out, err) = bench(&[
        &t.url("/"),
        "-R",
        "1000",
        "-c",
        "4",
        "-t",
        "1",
        "-d",
        "3s",
        "--warmup",
        "1s",
        "--hlog",
        hlog.to_str().unwrap(),
        "--hgrm",
        hgrm.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "Percentile spectrum (corrected)",
        "1/(1-Percentile)",
        "Requests   ",
        "corrected (from each request's intended send time)",
        "Errors     connect 0, read 0, write 0, timeout 0, parse 0",
        "Generator  ",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
    // The summary comes first, the spectrum after it.
    assert!(
        out.find("Requests   ") < out.find("Percentile spectrum"),
        "summary first:\n{out}"
    );
    // The verdict says what was measured, and a run that did not keep up says why.
    let line = out.lines().find(|l| l.contains("Generator  ")).unwrap();
    assert!(
        line.contains("schedule lag p99") && line.contains("% CPU"),
        "{line}"
    );
    if !line.contains("kept up") {
        assert!(
            out.contains("went out late") || out.contains("busy"),
            "{out}"
        );
    }
    // 3000 requests were due in the measured window. A generator kept waiting by a loaded
    // machine may leave the last few unsent, and then says how many: every one is
    // accounted for either way.
    let figure = |prefix: &str, suffix: &str| -> u64 {
        out.lines()
            .find_map(|l| {
                l.trim_start()
                    .strip_prefix(prefix)?
                    .split(suffix)
                    .next()?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    };
    let done = figure("Requests   ", " in ");
    let unsent = figure("Note       ", " scheduled request(s) were never sent");
    assert_eq!(done + unsent, 3000, "{out}");
    assert!(done >= 2900, "{out}");
    assert!(out.contains(&format!("Status     2xx {done}")), "{out}");
    // The warm-up's requests were sent but not counted.
    assert!(t.requests() >= 900 + done, "{}", t.requests());

    let spectrum = std::fs::read_to_string(&hgrm).unwrap();
    let total_line = format!("Total count    = {done:>12}");
    assert!(
        spectrum.contains("#[Max     =") && spectrum.contains(&total_line),
        "{spectrum}"
    );
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.starts_with("<svg") && plot.contains("uncorrected") && plot.contains("<polyline"));

    let log = std::fs::read_to_string(&hlog).unwrap();
    assert!(
        log.contains("#[Histogram log format version 1.3]\n"),
        "{log}"
    );
    assert!(log.contains("#[StartTime: "));
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(lines.len(), 3, "one histogram per second:\n{log}");
    assert!(
        lines[0].starts_with("1.000,1.000,"),
        "the first interval starts after the warm-up: {}",
        lines[0]
    );
    assert!(
        lines
            .iter()
            .all(|l| l.split(',').nth(3).unwrap().starts_with("HISTF")),
        "compressed"
    );

    // HdrHistogram's own processor reads the log back: every value in all.
    let out = d.0.join("processed");
    let res = Command::new("java")
        .args([
            "-cp",
            "/usr/share/java/hdrhistogram.jar",
            "org.HdrHistogram.HistogramLogProcessor",
            "-i",
        ])
        .arg(&hlog)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("java runs (scripts/setup installs it with libhdrhistogram-java)");
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let total = std::fs::read_to_string(out.with_extension("hgrm")).unwrap();
    assert!(total.contains(&total_line), "{total}");
}

#[test]
fn closed_loop_no_keepalive_and_sweep() {
    let _serial = serial();
    let s = Server::start(None, &[]);
    let url = format!("http://{}/", s.addr);

    let (code, out, err) = bench(&[&url, "-c", "4", "-t", "1", "-d", "1s"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("closed loop") && out.contains("Status     2xx"),
        "{out}"
    );

    // Thousands of short connections. Regression: the server's lingering-close SHUTDOWN runs
    // on an io-wq worker that looks the fd number up late; it used to hit the next
    // connection given the same number, which then failed its send (EPIPE).
    let v = bench_json(&[&url, "-c", "4", "-t", "1", "-d", "2s", "--no-keepalive"]);
    assert!(num(&v, "requests") > 1000.0, "{v}");
    assert_eq!(num(&v, "errors.total"), 0.0, "{v}");

    let d = TempDir::new("sweep");
    let svg = d.0.join("knee.svg");
    let (code, out, err) = bench(&[
        &url,
        "--sweep",
        "500:1500:500",
        "--slo",
        "50ms",
        "-d",
        "1s",
        "-c",
        "8",
        "--json",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["steps"].as_array().unwrap().len(), 3, "{v}");
    // Each step is judged against the objective; the generator's health is beside it.
    for step in v["steps"].as_array().unwrap() {
        assert!(step["generator"].is_string(), "{step}");
        let within = num(step, "latency_us.p99") <= 50_000.0
            && num(step, "requests_per_sec") >= 0.97 * num(step, "rate")
            && num(step, "errors") == 0.0;
        assert_eq!(step["ok"], within, "{step}");
    }
    assert_eq!(v["max_rate_within_slo"], 1500.0, "{v}");
    assert!(
        std::fs::read_to_string(&svg)
            .unwrap()
            .contains("objective 50.00ms")
    );
}

#[test]
fn bad_arguments_get_clear_errors() {
    let _serial = serial();
    for (args, want) in [
        (
            vec!["http://127.0.0.1:1/", "--slo", "5ms"],
            "--slo is the objective for --sweep",
        ),
        (vec!["ftp://127.0.0.1:1/"], "not an http:// or https:// URL"),
        (
            vec!["http://127.0.0.1:1/", "--insecure"],
            "are for https:// URLs",
        ),
        (
            vec!["https://127.0.0.1:1/", "--insecure", "--cacert", "/x.pem"],
            "choose one",
        ),
        (
            vec!["https://127.0.0.1:1/", "--cacert", "/nonexistent.pem"],
            "--cacert: cannot read the certificate file /nonexistent.pem",
        ),
        (
            vec!["http://127.0.0.1:1/", "-c", "0"],
            "-c must be at least 1",
        ),
        (
            vec!["http://127.0.0.1:1/", "--pipeline", "4", "--no-keepalive"],
            "--pipeline needs keep-alive",
        ),
        (
            vec!["http://127.0.0.1:1/", "-d", "ten"],
            "-d: `ten` is not a duration",
        ),
        (
            vec!["http://127.0.0.1:1/", "-R", "0"],
            "the rate must be a positive number",
        ),
        (
            vec!["http://127.0.0.1:1/", "-H", "NoColon"],
            "write a header as",
        ),
        (
            vec!["http://127.0.0.1:1/", "--sweep", "1:2"],
            "START:END:STEP",
        ),
    ] {
        let (code, _, err) = bench(&args);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn the_generator_says_when_it_is_the_limit() {
    let _serial = serial();
    let s = Server::start(None, &[]);
    let url = format!("http://{}/", s.addr);
    // A million requests per second from one thread is beyond this machine. On a quiet
    // machine the generator is the limit; when something else takes a core, the (debug)
    // server can become the limit first. Either way the report must name the limit and
    // never pass the target rate off as met.
    let v = bench_json(&[&url, "-R", "1000000", "-c", "64", "-t", "1", "-d", "1s"]);
    assert!(num(&v, "requests_per_sec") < 1_000_000.0, "{v}");
    let saturated = v["generator_saturated"] == true;
    let server_limit = v["generator"]["unsent"].as_u64().unwrap() > 0
        && v["generator"]["waited_for_connection"].as_u64().unwrap() > 0;
    assert!(saturated || server_limit, "no limit named: {v}");
    if saturated {
        assert!(
            !v["generator"]["reasons"].as_array().unwrap().is_empty(),
            "{v}"
        );
    }
    let (_, out, _) = bench(&[&url, "-R", "1000000", "-c", "64", "-t", "1", "-d", "1s"]);
    assert!(
        out.contains("Generator  at its CPU limit")
            || out.contains("Generator  fell behind its schedule")
            || out.contains("the server did not keep up"),
        "{out}"
    );
}

#[test]
fn ctrl_c_ends_the_run_with_a_report() {
    let _serial = serial();
    let t = LoadTarget::start(Duration::ZERO, |_| respond(Duration::ZERO));
    let child = Command::new(BIN)
        .args([
            "bench",
            &t.url("/"),
            "-R",
            "1000",
            "-c",
            "4",
            "-t",
            "2",
            "-d",
            "30s",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "slow to stop");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["interrupted"], true, "{v}");
    // About 1.5 s at 1000/s, less the start-up a loaded machine slows.
    let n = num(&v, "requests");
    assert!((100.0..=2500.0).contains(&n), "{v}");
    assert!(num(&v, "duration_s") < 3.0, "{v}");
}

#[test]
fn memory_stays_flat_however_long_the_run() {
    let _serial = serial();
    let s = Server::start(None, &[]);
    let url = format!("http://{}/", s.addr);
    let child = Command::new(BIN)
        .args(["bench", &url, "-c", "32", "-t", "2", "-d", "6s", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let early = rss_kib(child.id());
    std::thread::sleep(Duration::from_millis(3500));
    let late = rss_kib(child.id());
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Tens of thousands of requests later (fewer on a loaded machine), no per-request
    // growth (1 MiB of slack).
    assert!(num(&v, "requests") > 10_000.0, "{v}");
    assert!(
        late <= early + 1024,
        "RSS grew from {early} KiB to {late} KiB"
    );
}
