//! The config loader: TOML text -> `parse_toml` -> `validate`, as `uringd --config`.
//!
//! Input: UTF-8 text (other bytes are skipped). Comment lines of the form
//! `#!KEY=VALUE` also set command-line overrides (cpus, workers, listen, admin,
//! upstream, static, buffer_size, send_zc_threshold, sqpoll_idle, steering), so the
//! flag parsers are fuzzed too; to TOML they are plain comments.
//!
//! Checked: never a panic, hang or runaway allocation, only Ok or a ConfigError with
//! a message; an accepted config keeps the documented invariants (workers 1..=1024,
//! one CPU per worker, limits in range, routes non-empty, unique, longest prefix
//! first).
//!
//! `server.admin_token_file` is pointed at one of three files this target writes
//! (good, short and non-printable token) so the token loader runs without reading
//! arbitrary paths such as /dev/zero.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use uringd::config::{Action, Overrides, parse_toml, validate};

fn token_files() -> &'static [String; 3] {
    static FILES: OnceLock<[String; 3]> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir: PathBuf = std::env::temp_dir().join(format!("uringd-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        };
        [
            write("good", "0123456789abcdef0123456789abcdef\nsecond line\n"),
            write("short", "short\n"),
            write("bad", "0123456789abcdef 0123456789abcdef\n"),
        ]
    })
}

fn overrides(text: &str) -> Overrides {
    let mut ov = Overrides::default();
    for line in text.lines() {
        let Some((k, v)) = line.strip_prefix("#!").and_then(|l| l.split_once('=')) else {
            continue;
        };
        let v = v.to_string();
        match k {
            "cpus" => ov.cpus = Some(v),
            "workers" => ov.workers = v.parse().ok(),
            "listen" => ov.listen.push(v),
            "admin" => ov.admin = Some(v),
            "upstream" => ov.upstream = Some(v),
            "static" => ov.statics.push(v),
            "buffer_size" => ov.knobs.buffer_size = Some(v),
            "send_zc_threshold" => ov.knobs.send_zc_threshold = Some(v),
            "sqpoll_idle" => ov.knobs.sqpoll_idle = Some(v),
            "steering" => ov.knobs.reuseport_steering = Some(v),
            _ => {}
        }
    }
    ov
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut raw = match parse_toml(text, "fuzz.toml") {
        Ok(raw) => raw,
        Err(e) => {
            assert!(
                e.0.starts_with("fuzz.toml"),
                "message without origin: {}",
                e.0
            );
            return;
        }
    };
    if let Some(p) = &raw.server.admin_token_file {
        raw.server.admin_token_file = Some(token_files()[p.len() % 3].clone());
    }
    let ov = overrides(text);
    let cfg = match validate(raw, &ov) {
        Ok(cfg) => cfg,
        Err(e) => {
            assert!(!e.0.is_empty(), "empty error message");
            return;
        }
    };

    assert!((1..=1024).contains(&cfg.workers));
    assert_eq!(cfg.cpus.len(), cfg.workers, "one CPU per worker");
    assert!(!cfg.listen.is_empty());
    if let Some(a) = cfg.admin {
        assert!(
            a.port() == 0 || !cfg.listen.contains(&a),
            "admin shares a listener"
        );
    }
    assert!((8..=32768).contains(&cfg.ring.entries));
    assert!(cfg.ring.buffers.is_power_of_two() && cfg.ring.buffers >= 8);
    assert!((512..=1 << 20).contains(&cfg.ring.buffer_size));
    let l = &cfg.limits;
    assert!((1024..=1 << 20).contains(&l.max_header_bytes));
    assert!((1..=10_000).contains(&l.max_headers));
    assert!(l.max_target_bytes >= 16 && l.max_target_bytes < l.max_header_bytes);
    assert!(l.max_connections >= 1);
    for d in [
        l.header_timeout,
        l.body_timeout,
        l.keepalive_timeout,
        l.send_timeout,
    ] {
        assert!(d.as_millis() >= 100);
    }
    assert!(cfg.server_header.bytes().all(|b| b >= 0x20 && b != 0x7f));
    if let Some(t) = &cfg.admin_token {
        assert!(t.len() >= 16 && t.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    }

    assert!(!cfg.routes.is_empty());
    for (i, r) in cfg.routes.iter().enumerate() {
        assert!(r.prefix.starts_with('/'));
        assert!(!r.prefix.bytes().any(|b| b <= 0x20 || b == 0x7f));
        assert!(!r.name.is_empty());
        for o in &cfg.routes[..i] {
            assert_ne!(o.prefix, r.prefix, "duplicate prefix");
            assert_ne!(o.name, r.name, "duplicate name");
            assert!(o.prefix.len() >= r.prefix.len(), "routes not longest-first");
        }
        if let Action::Upstream { pool, .. } = r.action {
            let p = cfg.pools.get(pool).expect("route names a missing pool");
            assert!(!p.servers.is_empty());
        }
    }
});
