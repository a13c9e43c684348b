//! The admin endpoint: histograms that count every request, sane percentiles, Prometheus
//! text that parses, the bearer token, reset, and the access log with SIGUSR1 reopen.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use uringd::stats::render::parse_exposition;

const ROUTES: &str = r#"
[[route]]
name = "root"
prefix = "/"
return = { body = "Hello, World!" }

[[route]]
name = "api"
prefix = "/api/"
return = { body = "{}", content_type = "application/json" }
"#;

fn admin_server(extra: &str, args: &[&str]) -> Server {
    let mut a = vec!["--admin", "127.0.0.1:0"];
    if !args.contains(&"--workers") {
        a.extend_from_slice(&["--workers", "2"]);
    }
    a.extend_from_slice(args);
    Server::start(Some(&format!("{extra}\n{ROUTES}")), &a)
}

fn json(addr: std::net::SocketAddr, path: &str) -> serde_json::Value {
    let r = request(addr, "GET", path, "");
    assert_eq!(
        r.status,
        200,
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    serde_json::from_slice(&r.body).unwrap()
}

/// Sends `n` requests for `path` over a few keep-alive connections.
fn traffic(s: &Server, path: &str, n: usize) {
    let mut conns: Vec<_> = (0..4).map(|_| s.connect()).collect();
    for i in 0..n {
        let c = &mut conns[i % 4];
        write!(c, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        assert_eq!(read_response(c, false).status, 200);
    }
}

#[test]
fn histogram_counts_equal_requests_sent() {
    let s = admin_server("", &[]);
    let admin = s.admin.unwrap();
    traffic(&s, "/", 123);
    traffic(&s, "/api/x", 57);
    // 20 pipelined in one write, mixed routes: one batch, still counted one by one.
    let mut c = s.connect();
    let batch: String = (0..20)
        .map(|i| {
            if i % 2 == 0 {
                "GET /api/p HTTP/1.1\r\nHost: t\r\n\r\n"
            } else {
                "GET /api/q HTTP/1.1\r\nHost: t\r\n\r\n"
            }
        })
        .collect();
    c.write_all(batch.as_bytes()).unwrap();
    for _ in 0..20 {
        assert_eq!(read_response(&mut c, false).status, 200);
    }
    // Counts are taken when the last byte is handed to the kernel; give the loop a turn.
    std::thread::sleep(Duration::from_millis(100));
    let j = json(admin, "/_uringd/latency?format=json");
    assert_eq!(j["count"], 200, "{j}");
    assert_eq!(j["routes"]["root"]["count"], 123, "{j}");
    assert_eq!(j["routes"]["api"]["count"], 77, "{j}");
    let per_worker: u64 = j["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["count"].as_u64().unwrap())
        .sum();
    assert_eq!(per_worker, 200);
    let r = json(admin, "/_uringd/latency?format=json&route=api");
    assert_eq!(r["count"], 77);
    for w in ["10s", "60s", "all"] {
        assert_eq!(
            json(admin, &format!("/_uringd/latency?format=json&window={w}"))["count"],
            200,
            "window {w}"
        );
    }
    let workers = json(admin, "/_uringd/workers");
    let ws = workers.as_array().unwrap();
    assert_eq!(ws.len(), 2);
    let reqs: u64 = ws.iter().map(|w| w["requests"].as_u64().unwrap()).sum();
    assert_eq!(reqs, 200);
    // io_uring reports its ring; epoll has none, and says which backend runs.
    let backend = common::backend();
    assert!(ws.iter().all(|w| w["ring"]["backend"] == backend), "{ws:?}");
    if backend == "io_uring" {
        assert!(
            ws.iter()
                .all(|w| w["ring"]["sq_entries"].as_u64().unwrap() > 0)
        );
    }
    // Admin pages (several were served above) are not traffic.
    let ok: u64 = ws
        .iter()
        .map(|w| w["status"]["2xx"].as_u64().unwrap())
        .sum();
    assert_eq!(ok, 200);
    let sent: u64 = ws.iter().map(|w| w["bytes_out"].as_u64().unwrap()).sum();
    assert!(sent >= 200 * 100, "every response's bytes counted: {sent}");
}

#[test]
fn percentiles_reflect_a_known_delay() {
    let s = admin_server("", &["--workers", "1"]);
    let admin = s.admin.unwrap();
    traffic(&s, "/", 90);
    // Ten requests whose heads take 250 ms to arrive: latency runs from the first byte.
    for _ in 0..10 {
        let mut c = s.connect();
        c.write_all(b"GET /api/slow HTTP/1.1\r\nHo").unwrap();
        std::thread::sleep(Duration::from_millis(250));
        c.write_all(b"st: t\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut c, false).status, 200);
    }
    std::thread::sleep(Duration::from_millis(100));
    let j = json(admin, "/_uringd/latency?format=json");
    assert_eq!(j["count"], 100);
    let p50 = j["p50"].as_u64().unwrap();
    let p99 = j["p99"].as_u64().unwrap();
    let max = j["max"].as_u64().unwrap();
    assert!(
        p50 < 50_000,
        "fast requests dominate the median: p50 {p50} us"
    );
    assert!((240_000..1_000_000).contains(&p99), "p99 {p99} us");
    assert!((240_000..1_000_000).contains(&max), "max {max} us");
    let api = json(admin, "/_uringd/latency?format=json&route=api");
    assert!(api["p50"].as_u64().unwrap() >= 240_000, "{api}");
    // The text form is the standard .hgrm table.
    let t = request(admin, "GET", "/_uringd/latency", "");
    let text = String::from_utf8(t.body).unwrap();
    assert!(
        text.contains("Value     Percentile TotalCount 1/(1-Percentile)"),
        "{text}"
    );
    assert!(text.contains("Total count    =          100"), "{text}");
}

#[test]
fn prometheus_text_parses_and_adds_up() {
    let s = admin_server("", &[]);
    let admin = s.admin.unwrap();
    traffic(&s, "/", 40);
    traffic(&s, "/api/", 10);
    std::thread::sleep(Duration::from_millis(100));
    let r = request(admin, "GET", "/_uringd/metrics", "");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = String::from_utf8(r.body).unwrap();
    let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let sum = |name: &str, label: Option<(&str, &str)>| -> f64 {
        samples
            .iter()
            .filter(|s| {
                s.name == name
                    && label.is_none_or(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
            })
            .map(|s| s.value)
            .sum()
    };
    assert_eq!(sum("uringd_requests_total", None), 50.0);
    assert_eq!(
        sum(
            "uringd_request_duration_seconds_count",
            Some(("route", "root"))
        ),
        40.0
    );
    assert_eq!(
        sum(
            "uringd_request_duration_seconds_count",
            Some(("route", "api"))
        ),
        10.0
    );
    assert_eq!(
        sum(
            "uringd_request_duration_seconds_bucket",
            Some(("le", "+Inf"))
        ),
        50.0
    );
    assert_eq!(sum("uringd_responses_total", Some(("class", "2xx"))), 50.0);
    // The buckets start at 1 us (microsecond answers are resolved, not all in the first).
    let le = |v: &str| sum("uringd_request_duration_seconds_bucket", Some(("le", v)));
    assert!(text.contains("le=\"0.000001\""), "{text}");
    assert!(le("0.000001") <= le("0.00001") && le("0.00001") <= le("0.0001"));
    // Two workers, each with its own series (shows SO_REUSEPORT balance).
    let accepts: Vec<_> = samples
        .iter()
        .filter(|s| s.name == "uringd_accepts_total")
        .collect();
    assert_eq!(accepts.len(), 2);
}

#[test]
fn reset_clears_the_histograms() {
    let s = admin_server("", &[]);
    let admin = s.admin.unwrap();
    traffic(&s, "/", 30);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(json(admin, "/_uringd/latency?format=json")["count"], 30);
    assert_eq!(request(admin, "POST", "/_uringd/reset", "").status, 200);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(json(admin, "/_uringd/latency?format=json")["count"], 0);
    assert_eq!(request(admin, "GET", "/_uringd/reset", "").status, 405);
}

#[test]
fn admin_errors_and_main_listener_isolation() {
    let s = admin_server("", &[]);
    let admin = s.admin.unwrap();
    assert_eq!(
        request(admin, "GET", "/_uringd/latency?window=5m", "").status,
        400
    );
    assert_eq!(
        request(admin, "GET", "/_uringd/latency?route=nope&format=json", "").status,
        404
    );
    assert_eq!(request(admin, "GET", "/_uringd/nothing", "").status, 404);
    assert_eq!(request(admin, "POST", "/_uringd/metrics", "").status, 405);
    // The traffic listener never serves admin data, even with a catch-all route.
    for p in [
        "/_uringd/latency",
        "/_uringd/metrics",
        "/_uringd/",
        "/_uringd/workers",
    ] {
        let r = request(s.addr, "GET", p, "");
        assert_eq!(r.status, 404, "{p}");
        assert!(!String::from_utf8_lossy(&r.body).contains("Percentile"));
    }
    // Several admin requests pipelined on one connection are answered in order.
    let mut c = std::net::TcpStream::connect(admin).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"GET /_uringd/workers HTTP/1.1\r\nHost: t\r\n\r\nGET /_uringd/nothing HTTP/1.1\r\nHost: t\r\n\r\nGET /_uringd/latency?format=json HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let a = read_response(&mut c, false);
    let b = read_response(&mut c, false);
    let d = read_response(&mut c, false);
    assert_eq!((a.status, b.status, d.status), (200, 404, 200));
    assert!(a.body.starts_with(b"["));
    assert!(d.body.starts_with(b"{"));
}

#[test]
fn bearer_token_required_when_configured() {
    let d = TempDir::new("token");
    let tok = "s3cr3t-t0ken-0123456789abcdef";
    let path = d.0.join("token");
    std::fs::write(&path, format!("{tok}\n")).unwrap();
    let p = path.to_str().unwrap();
    let s = admin_server("", &["--admin-token-file", p]);
    let admin = s.admin.unwrap();
    for hdr in [
        "",
        "Authorization: Bearer wrong\r\n",
        "Authorization: Basic Zm9vOmJhcg==\r\n",
        &format!("Authorization: Bearer {}\r\n", &tok[..tok.len() - 1]),
        &format!("Authorization: Bearer {tok}x\r\n"),
    ] {
        let r = request(admin, "GET", "/_uringd/latency", hdr);
        assert_eq!(r.status, 401, "{hdr:?}");
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            "unauthorized\n",
            "no detail"
        );
    }
    let ok = request(
        admin,
        "GET",
        "/_uringd/latency",
        &format!("Authorization: Bearer {tok}\r\n"),
    );
    assert_eq!(ok.status, 200);
    assert_eq!(request(admin, "POST", "/_uringd/reset", "").status, 401);
    // The dashboard's files and its time series follow the same rule.
    for page in [
        "/_uringd/assets/dashboard.js",
        "/_uringd/assets/uPlot.iife.min.js",
        "/_uringd/series",
    ] {
        assert_eq!(request(admin, "GET", page, "").status, 401, "{page}");
        let r = request(
            admin,
            "GET",
            page,
            &format!("Authorization: Bearer {tok}\r\n"),
        );
        assert_eq!(r.status, 200, "{page}");
        assert!(
            r.header("content-security-policy")
                .is_some_and(|c| c.contains("default-src 'none'")),
            "{page}: {r:?}"
        );
    }
    // The token is on no command line and in no log line.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", s.pid())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(tok));
    while let Ok(line) = s.log.try_recv() {
        assert!(!line.contains(tok), "{line}");
    }
}

#[test]
fn access_log_lines_and_sigusr1_reopen() {
    let d = TempDir::new("alog");
    let log = d.0.join("access.log");
    let cfg = format!("[server]\naccess_log = \"{}\"\n", log.display());
    let s = admin_server(&cfg, &["--workers", "1"]);
    let mut c = s.connect();
    c.write_all(b"GET /api/a?q=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: test\"agent\r\nReferer: http://r/\r\n\r\n").unwrap();
    read_response(&mut c, false);
    c.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n")
        .unwrap();
    read_response(&mut c, false);
    std::thread::sleep(Duration::from_millis(400)); // flushed once per 100 ms tick
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("127.0.0.1 - - ["), "{}", lines[0]);
    assert!(
        lines[0]
            .contains("] \"GET /api/a?q=1 HTTP/1.1\" 200 2 \"http://r/\" \"test\\x22agent\" 0.0"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("\"-\" 400 "),
        "a rejected head logs as \"-\": {}",
        lines[1]
    );

    let rotated = d.0.join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(s.pid() as i32, libc::SIGUSR1) };
    std::thread::sleep(Duration::from_millis(300));
    let r = request(s.addr, "GET", "/after", "");
    assert_eq!(r.status, 200);
    std::thread::sleep(Duration::from_millis(400));
    let new = std::fs::read_to_string(&log).expect("reopened under the original path");
    assert_eq!(new.lines().count(), 1, "{new}");
    assert!(new.contains("\"GET /after HTTP/1.1\" 200 13"));
    assert_eq!(
        std::fs::read_to_string(&rotated).unwrap().lines().count(),
        2
    );
}
