//! Protecting the backends from clients (issue 17): rate limits per route, shared by every
//! worker; connections per client address.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

fn get(s: &mut std::net::TcpStream, path: &str, extra: &str) -> Resp {
    write!(s, "GET {path} HTTP/1.1\r\nHost: a\r\n{extra}\r\n").unwrap();
    read_response(s, false)
}

const LIMITED: &str = r#"
[[route]]
prefix = "/api/"
limit = { rate = "1/m", burst = 2 }
return = { status = 200, body = "api" }

[[route]]
prefix = "/key/"
limit = { rate = "1/m", burst = 0, key = "header:X-Api-Key" }
return = { status = 200, body = "key" }

[[route]]
prefix = "/"
return = { status = 200, body = "free" }
"#;

#[test]
fn a_route_over_its_limit_gets_429_and_others_are_untouched() {
    let s = Server::start(Some(LIMITED), &["--admin", "127.0.0.1:0"]);
    let mut c = s.connect();
    for _ in 0..3 {
        assert_eq!(
            get(&mut c, "/api/x", "").status,
            200,
            "the rate plus the burst"
        );
    }
    let r = get(&mut c, "/api/x", "");
    assert_eq!(r.status, 429);
    let wait: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(
        r.header("connection").is_none(),
        "the connection is kept: {}",
        r.head
    );
    // Another route, on the same connection: untouched.
    assert_eq!(get(&mut c, "/other", "").status, 200);
    // Counted per route.
    let w = request(s.admin.unwrap(), "GET", "/_uringd/workers", "");
    let v: serde_json::Value = serde_json::from_slice(&w.body).unwrap();
    assert_eq!(v[0]["limited"], 1);
    assert_eq!(v[0]["limited_by_route"]["/api/"], 1);
    let m = request(s.admin.unwrap(), "GET", "/_uringd/metrics", "");
    assert!(
        String::from_utf8_lossy(&m.body)
            .contains("uringd_limited_requests_total{worker=\"0\",route=\"/api/\"} 1")
    );
}

#[test]
fn a_header_key_limits_each_key_apart_and_a_missing_one_by_address() {
    let s = Server::start(Some(LIMITED), &[]);
    let mut c = s.connect();
    assert_eq!(get(&mut c, "/key/", "X-Api-Key: one\r\n").status, 200);
    assert_eq!(get(&mut c, "/key/", "X-Api-Key: one\r\n").status, 429);
    assert_eq!(
        get(&mut c, "/key/", "X-Api-Key: two\r\n").status,
        200,
        "its own bucket"
    );
    // Leaving the header out is no way around the limit: the address counts instead.
    assert_eq!(get(&mut c, "/key/", "").status, 200);
    assert_eq!(get(&mut c, "/key/", "").status, 429);
}

#[test]
fn a_limit_is_shared_by_every_worker() {
    // rate 1/m with burst 2: three requests in all, whichever worker takes each connection.
    let s = Server::start(Some(LIMITED), &["--workers", "2"]);
    let mut ok = 0;
    for _ in 0..12 {
        let mut c = s.connect();
        match get(&mut c, "/api/", "").status {
            200 => ok += 1,
            429 => {}
            other => panic!("status {other}"),
        }
    }
    assert_eq!(ok, 3);
}

#[test]
fn connections_per_address_are_capped() {
    let s = Server::start(
        Some(
            "[limits]\nmax_connections_per_ip = 2\n[[route]]\nprefix = \"/\"\nreturn = { status = 200, body = \"ok\" }\n",
        ),
        &["--workers", "2"],
    );
    let mut a = s.connect();
    let mut b = s.connect();
    assert_eq!(get(&mut a, "/", "").status, 200);
    assert_eq!(get(&mut b, "/", "").status, 200);
    // The third, on either worker: 503 with Retry-After, then the close.
    let mut c = s.connect();
    let out = read_to_close(&mut c);
    assert_eq!(status_of(&out), 503, "{out}");
    assert!(out.contains("\r\nRetry-After: 1\r\n"), "{out}");
    // One closes: a new one is admitted (the count follows the close to its worker).
    drop(a);
    let admitted = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        let mut d = s.connect();
        d.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        status_of(&read_some(&mut d)) == 200
    });
    assert!(admitted);
    assert_eq!(get(&mut b, "/", "").status, 200, "the others are untouched");
}

fn read_some(s: &mut std::net::TcpStream) -> String {
    let mut buf = [0u8; 4096];
    let n = std::io::Read::read(s, &mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn bad_limits_are_named() {
    for (cfg, want) in [
        (
            "limit = { rate = \"10\" }",
            "route[0].limit.rate = \"10\": write requests per second or minute",
        ),
        ("limit = { rate = \"0/s\" }", "route[0].limit.rate"),
        ("limit = { rate = \"5/h\" }", "\"10/s\" or \"600/m\""),
        ("limit = { burst = 3 }", "route[0].limit: missing `rate`"),
        (
            "limit = { rate = \"1/s\", key = \"cookie:x\" }",
            "route[0].limit.key",
        ),
        ("limit = { rate = \"1/s\", per = 3 }", "per"),
    ] {
        let d = TempDir::new("limit-cfg");
        let p = d.0.join("c.toml");
        std::fs::write(
            &p,
            format!("[[route]]\nprefix = \"/\"\n{cfg}\nreturn = {{ status = 200 }}\n"),
        )
        .unwrap();
        let out = std::process::Command::new(BIN)
            .args(["check", "--config", p.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cfg}: {err}");
        assert!(err.contains(want), "{cfg}: {err}");
    }
}

#[test]
fn a_reload_keeps_what_clients_used_of_a_limit() {
    let d = TempDir::new("limit-reload");
    let path = d.0.join("u.toml");
    std::fs::write(&path, LIMITED).unwrap();
    let mut cmd = std::process::Command::new(BIN);
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--admin",
        "off",
    ])
    .arg("--config")
    .arg(&path);
    let s = Server::spawn(cmd, None);
    let status = || {
        let mut c = s.connect();
        get(&mut c, "/api/", "").status
    };
    let reload = || {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(s.pid() as i32, libc::SIGHUP) };
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < end {
            if let Ok(l) = s.log.recv_timeout(Duration::from_millis(100))
                && l.contains("reloaded")
            {
                return;
            }
        }
        panic!("no reload");
    };
    for _ in 0..3 {
        assert_eq!(status(), 200);
    }
    assert_eq!(status(), 429);
    // The same limit after a reload (a certificate renewal, say): still used up.
    reload();
    // Past the moment the retiring workers may still accept: the new ones answer.
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..3 {
        assert_eq!(status(), 429, "a reload is no way around a limit");
    }
    // A changed limit starts afresh.
    std::fs::write(&path, LIMITED.replace("burst = 2", "burst = 5")).unwrap();
    reload();
    // (A connection the retiring workers still accept, in the moment after the reload,
    // is theirs to answer with the old limit.)
    let end = std::time::Instant::now() + Duration::from_secs(3);
    while status() != 200 {
        assert!(std::time::Instant::now() < end, "the new limit is in force");
        std::thread::sleep(Duration::from_millis(50));
    }
}
