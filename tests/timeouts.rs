//! Header (slowloris), body and keep-alive timeouts, and the graceful stop.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;

const CFG: &str = r#"
[limits]
header_timeout = "1s"
body_timeout = "1s"
keepalive_timeout = "1s"

[[route]]
prefix = "/"
return = { status = 200, body = "ok" }
"#;

#[test]
fn slow_header_gets_408_and_close() {
    let s = Server::start(Some(CFG), &[]);
    let mut c = s.connect();
    let t0 = Instant::now();
    c.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    let out = read_to_close(&mut c);
    let took = t0.elapsed();
    assert_eq!(status_of(&out), 408, "{out}");
    assert!(out.contains("Connection: close"));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "took {took:?}"
    );
}

#[test]
fn trickling_header_is_cut_at_the_header_deadline() {
    let s = Server::start(Some(CFG), &[]);
    let mut c = s.connect();
    let t0 = Instant::now();
    // One byte every 200 ms would keep a per-read timer alive forever; the deadline is per head.
    for b in b"GET / HTTP/1.1\r\nHost: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
        if c.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        if t0.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let out = read_to_close(&mut c);
    assert_eq!(status_of(&out), 408, "{out}");
    assert!(t0.elapsed() < Duration::from_secs(4));
}

#[test]
fn stalled_body_gets_408() {
    let s = Server::start(Some(CFG), &[]);
    let mut c = s.connect();
    c.write_all(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    let out = read_to_close(&mut c);
    assert_eq!(status_of(&out), 408, "{out}");
}

/// A body trickled faster than body_timeout still has to be whole by body_deadline: to a
/// route that drains it, and to a proxied one (where the upstream never gets the rest).
#[test]
fn a_trickled_body_is_cut_at_body_deadline() {
    let b = RawBackendless::new();
    let cfg = format!(
        "[limits]\nbody_timeout = \"1s\"\nbody_deadline = \"2s\"\n\
         [[route]]\nprefix = \"/p\"\nupstream = \"http://{}\"\n\
         [[route]]\nprefix = \"/\"\nreturn = {{ status = 200, body = \"ok\" }}\n",
        b.addr
    );
    let s = Server::start(Some(&cfg), &[]);
    for path in ["/", "/p"] {
        let mut c = s.connect();
        let t0 = Instant::now();
        c.write_all(
            format!("POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n").as_bytes(),
        )
        .unwrap();
        // A byte every 400 ms: never a gap of body_timeout. Stop at the answer.
        c.set_read_timeout(Some(Duration::from_millis(400)))
            .unwrap();
        let mut answer = Vec::new();
        while t0.elapsed() < Duration::from_secs(5) && c.write_all(b"x").is_ok() {
            let mut buf = [0u8; 1024];
            // Nothing yet is a read timeout; the answer (the 408) ends the trickle.
            if let Ok(n) = std::io::Read::read(&mut c, &mut buf) {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
        }
        let took = t0.elapsed();
        assert_eq!(status_of(&String::from_utf8_lossy(&answer)), 408, "{path}");
        assert!(
            took >= Duration::from_millis(1800) && took < Duration::from_millis(4500),
            "{path}: cut after {took:?}"
        );
    }
}

/// Accepts connections and reads them forever: a backend that never answers.
struct RawBackendless {
    addr: std::net::SocketAddr,
}

impl RawBackendless {
    fn new() -> RawBackendless {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut c = c;
                    let mut buf = [0u8; 4096];
                    while matches!(std::io::Read::read(&mut c, &mut buf), Ok(n) if n > 0) {}
                });
            }
        });
        RawBackendless { addr }
    }
}

#[test]
fn idle_keep_alive_is_closed_silently() {
    let s = Server::start(Some(CFG), &[]);
    let mut c = s.connect();
    c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut c, false).status, 200);
    let t0 = Instant::now();
    let rest = read_to_close(&mut c);
    assert_eq!(rest, "", "no bytes on an idle close");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "took {took:?}"
    );
}

#[test]
fn silent_new_connection_is_closed_after_header_timeout() {
    let s = Server::start(Some(CFG), &[]);
    let mut c = s.connect();
    let t0 = Instant::now();
    assert_eq!(read_to_close(&mut c), "");
    assert!(t0.elapsed() < Duration::from_secs(4));
}

#[test]
fn other_connections_unharmed_by_slow_ones() {
    let s = Server::start(Some(CFG), &[]);
    let mut slow: Vec<_> = (0..50).map(|_| s.connect()).collect();
    for c in &mut slow {
        c.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    }
    let mut fast = s.connect();
    for _ in 0..20 {
        fast.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut fast, false).status, 200);
    }
}

#[test]
fn sigterm_finishes_in_flight_requests_then_exits_0() {
    let mut s = Server::start(Some(CFG.replace("1s", "5s").as_str()), &["--workers", "2"]);
    let mut busy = s.connect();
    busy.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap(); // request under way
    let mut idle = s.connect();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut idle, false).status, 200);
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(s.pid() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(300));
    // The idle keep-alive connection is closed at once.
    assert!(closed_within(&mut idle, Duration::from_secs(2)));
    // The request under way is answered, with Connection: close.
    busy.write_all(b"\r\n").unwrap();
    let r = read_response(&mut busy, false);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert_eq!(s.terminate(Duration::from_secs(5)), Some(0));
    assert!(
        std::net::TcpStream::connect(s.addr).is_err(),
        "no longer listening"
    );
}

#[test]
fn sigterm_with_a_stuck_request_exits_after_the_drain_timeout() {
    let cfg = format!(
        "[server]\ndrain_timeout = \"1s\"\n{}",
        CFG.replace("1s", "30s")
    );
    let mut s = Server::start(Some(&cfg), &[]);
    let mut stuck = s.connect();
    stuck.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    assert_eq!(s.terminate(Duration::from_secs(5)), Some(0));
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "drain bounded: {:?}",
        t0.elapsed()
    );
}

#[test]
fn timeouts_are_counted_by_kind_and_an_idle_close_is_not_one() {
    let s = Server::start(Some(CFG), &["--admin", "127.0.0.1:0"]);
    // A head that never ends, a body that stalls, a keep-alive connection left idle.
    let mut head = s.connect();
    head.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    let mut body = s.connect();
    body.write_all(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    let mut idle = s.connect();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut idle, false).status, 200);
    for c in [&mut head, &mut body, &mut idle] {
        read_to_close(c);
    }
    let r = request(s.admin.unwrap(), "GET", "/_uringd/workers", "");
    let w: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let t = &w[0]["timeouts"];
    assert_eq!(t["header"], 1, "{w}");
    assert_eq!(t["body"], 1, "{w}");
    assert_eq!(t["send"], 0, "{w}");
    assert_eq!(t["total"], 2, "{w}");
    assert_eq!(w[0]["idle_closes"], 1, "{w}");
    let m = request(s.admin.unwrap(), "GET", "/_uringd/metrics", "");
    let text = String::from_utf8_lossy(&m.body);
    assert!(
        text.contains("uringd_timeouts_total{worker=\"0\",kind=\"header\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("uringd_idle_closes_total{worker=\"0\"} 1"),
        "{text}"
    );
}
