//! The reverse proxy against real backends: gunicorn (HTTP over TCP and Unix sockets), uWSGI
//! (uwsgi protocol over TCP and Unix sockets), and an in-process raw backend for exact bytes
//! and failures. scripts/setup installs gunicorn and uWSGI.

#[path = "common/backend.rs"]
mod backend;
mod common;

use std::io::{Read, Write};
use std::time::Duration;

use backend::{Gunicorn, Mode, RawBackend, Uwsgi, http_request, refused_addr};
use common::Server;

fn proxy_to(url: &str, extra: &str) -> Server {
    let cfg = format!("{extra}\n[[route]]\nname = \"app\"\nprefix = \"/\"\nupstream = \"{url}\"\n");
    Server::start(Some(&cfg), &["--workers", "1"])
}

/// A one-server pool that streams both ways (buffering off), for the streaming paths.
fn streaming_to(url: &str, server: &str) -> Server {
    let cfg = format!("{server}\n{}", pool_cfg(&[url.to_string()], STREAMING));
    Server::start(Some(&cfg), &["--workers", "1", "--admin", "127.0.0.1:0"])
}

const STREAMING: &str = "request_buffering = false\nresponse_buffering = false";

fn pool_cfg(servers: &[String], opts: &str) -> String {
    let list: Vec<String> = servers.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        "[upstream.app]\nservers = [{}]\n{opts}\n[[route]]\nprefix = \"/\"\nupstream = \"app\"\n",
        list.join(", ")
    )
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

fn sha256_hex(data: &[u8]) -> String {
    // The echo app reports sha256; compute it with the system tool rather than a new crate.
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn forwarded_head_is_reframed_and_cleaned() {
    let b = RawBackend::start(Mode::Echo);
    let s = proxy_to(&format!("http://{}", b.addr), "");
    let r = http_request(
        s.addr,
        "GET",
        "/a/b?c=d",
        &[
            ("Host", "example.test"),
            ("Connection", "keep-alive, X-Secret"),
            ("X-Secret", "drop me"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Proxy-Authorization", "Basic Zm9v"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Kept", "yes"),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    let seen = String::from_utf8(r.body).unwrap();
    assert!(seen.starts_with("GET /a/b?c=d HTTP/1.1\r\n"), "{seen}");
    let has = |h: &str| seen.to_ascii_lowercase().contains(&h.to_ascii_lowercase());
    assert!(has("\r\nHost: example.test\r\n"), "{seen}");
    assert!(has("\r\nX-Kept: yes\r\n"));
    for gone in [
        "X-Secret",
        "\r\nKeep-Alive:",
        "\r\nTE:",
        "Proxy-Authorization",
        "6.6.6.6",
    ] {
        assert!(!has(gone), "{gone} forwarded: {seen}");
    }
    assert!(has("\r\nX-Forwarded-For: 127.0.0.1\r\n"), "{seen}");
    assert!(has("\r\nX-Forwarded-Proto: http\r\n"));
    assert!(has("\r\nX-Forwarded-Host: example.test\r\n"));
    assert!(has("\r\nVia: 1.1 uringd\r\n"));
    assert_eq!(seen.matches("\r\nHost:").count(), 1);
}

/// A WSGI server reads `X_Forwarded_For` as `X-Forwarded-For`: names with an underscore
/// never reach a backend, unless `underscores_in_headers = true`.
#[test]
fn underscore_header_names_never_reach_an_http_backend() {
    let b = RawBackend::start(Mode::Echo);
    for (extra, kept) in [
        ("", false),
        ("[server]\nunderscores_in_headers = true", true),
    ] {
        let s = proxy_to(&format!("http://{}", b.addr), extra);
        let r = http_request(
            s.addr,
            "GET",
            "/",
            &[
                ("X_Forwarded_For", "6.6.6.6"),
                ("Foo_Bar", "x"),
                ("Foo-Bar", "y"),
            ],
            b"",
        );
        let seen = String::from_utf8(r.body).unwrap();
        assert!(seen.contains("\r\nFoo-Bar: y\r\n"), "{seen}");
        assert_eq!(seen.contains("\r\nFoo_Bar: x\r\n"), kept, "{seen}");
        assert!(!seen.contains("6.6.6.6") || kept, "{seen}");
    }
}

#[test]
fn trusted_proxy_extends_x_forwarded_for() {
    let b = RawBackend::start(Mode::Echo);
    let s = proxy_to(
        &format!("http://{}", b.addr),
        "trusted_proxies = [\"127.0.0.1\"]",
    );
    let r = http_request(
        s.addr,
        "GET",
        "/",
        &[("X-Forwarded-For", "203.0.113.7")],
        b"",
    );
    let seen = String::from_utf8(r.body).unwrap();
    assert!(
        seen.contains("\r\nX-Forwarded-For: 203.0.113.7, 127.0.0.1\r\n"),
        "{seen}"
    );
}

#[test]
fn bodies_are_forwarded_with_uringds_own_framing() {
    let b = RawBackend::start(Mode::Echo);
    let s = streaming_to(&format!("http://{}", b.addr), "");
    let r = http_request(s.addr, "POST", "/p", &[], b"0123456789");
    let seen = String::from_utf8(r.body).unwrap();
    assert!(seen.contains("\r\nContent-Length: 10\r\n"), "{seen}");
    assert!(seen.ends_with("\r\n\r\n0123456789"), "{seen}");
    // A chunked client body is decoded and re-chunked by uringd (its extensions dropped).
    let raw = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    let r = backend::http_raw(s.addr, raw, false).unwrap();
    let seen = String::from_utf8(r.body).unwrap();
    assert!(
        seen.contains("\r\nTransfer-Encoding: chunked\r\n"),
        "{seen}"
    );
    assert!(
        seen.ends_with("\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
        "{seen}"
    );
    assert!(!seen.contains("ext=1"));
}

#[test]
fn upstream_connections_are_pooled() {
    let b = RawBackend::start(Mode::Echo);
    let s = proxy_to(&format!("http://{}", b.addr), "");
    let mut c = s.connect();
    for _ in 0..20 {
        c.write_all(b"GET /k HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(common::read_response(&mut c, false).status, 200);
    }
    for _ in 0..10 {
        assert_eq!(http_request(s.addr, "GET", "/n", &[], b"").status, 200);
    }
    assert_eq!(
        b.connections(),
        1,
        "30 sequential requests, one upstream connection"
    );
}

#[test]
fn pipelined_requests_through_the_proxy_stay_in_order() {
    let b = RawBackend::start(Mode::Echo);
    let s = proxy_to(&format!("http://{}", b.addr), "");
    let mut c = s.connect();
    let batch: String = (0..10)
        .map(|i| format!("GET /seq/{i} HTTP/1.1\r\nHost: x\r\n\r\n"))
        .collect();
    c.write_all(batch.as_bytes()).unwrap();
    for i in 0..10 {
        let r = common::read_response(&mut c, false);
        assert!(
            String::from_utf8_lossy(&r.body).starts_with(&format!("GET /seq/{i} ")),
            "response {i}"
        );
    }
}

#[test]
fn stale_pooled_connection_is_retried_on_a_fresh_one() {
    let b = RawBackend::start(Mode::CloseAfter(1));
    let s = proxy_to(&format!("http://{}", b.addr), "");
    for i in 0..5 {
        let r = http_request(s.addr, "GET", "/", &[], b"");
        assert_eq!(r.status, 200, "request {i}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Passive health as nginx: a lone server is never taken out (every request tries it, so
/// it is served again the moment it is back), and a pool whose servers are all out forgets
/// their failures and tries again.
#[test]
fn a_lone_server_is_never_taken_out_and_recovers_at_once() {
    let dead = refused_addr();
    let s = Server::start(
        Some(&pool_cfg(
            &[format!("http://{dead}")],
            "max_fails = 1\nfail_timeout = \"30s\"",
        )),
        &["--workers", "1"],
    );
    for _ in 0..3 {
        assert_eq!(http_request(s.addr, "GET", "/", &[], b"").status, 502);
    }
    // The backend comes back on its address: the next request is served.
    let l = std::net::TcpListener::bind(dead).unwrap();
    let answer = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = c.read(&mut buf);
        c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nback")
            .unwrap();
    });
    let r = http_request(s.addr, "GET", "/", &[], b"");
    assert_eq!((r.status, &r.body[..]), (200, &b"back"[..]));
    answer.join().unwrap();
}

#[test]
fn a_pool_whose_servers_are_all_out_tries_them_again() {
    let (d1, d2) = (refused_addr(), refused_addr());
    let s = Server::start(
        Some(&pool_cfg(
            &[format!("http://{d1}"), format!("http://{d2}")],
            "max_fails = 1\nfail_timeout = \"30s\"",
        )),
        &["--workers", "1"],
    );
    // Both refused: both out after the first request (it tried both), yet the next
    // request tries again (502 from a connect, not uringd's 503 for an empty pool).
    assert_eq!(http_request(s.addr, "GET", "/", &[], b"").status, 502);
}

#[test]
fn a_refused_server_is_skipped_for_a_healthy_one() {
    let b = RawBackend::start(Mode::Echo);
    let cfg = pool_cfg(
        &[
            format!("http://{}", refused_addr()),
            format!("http://{}", b.addr),
        ],
        "retries = 1",
    );
    let s = Server::start(Some(&cfg), &["--workers", "1"]);
    for _ in 0..4 {
        assert_eq!(http_request(s.addr, "GET", "/", &[], b"").status, 200);
    }
}

#[test]
fn dead_and_lying_upstreams_are_502() {
    let dead = RawBackend::start(Mode::Dead);
    let s = proxy_to(&format!("http://{}", dead.addr), "");
    assert_eq!(http_request(s.addr, "POST", "/", &[], b"x").status, 502);
    for bad in [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello",
        "HTTP/9 200 OK\r\n\r\n",
        "garbage\r\n\r\n",
    ] {
        let b = RawBackend::start(Mode::Fixed(bad.into()));
        let s = proxy_to(&format!("http://{}", b.addr), "");
        assert_eq!(
            http_request(s.addr, "GET", "/", &[], b"").status,
            502,
            "{bad:?}"
        );
    }
}

#[test]
fn slow_upstream_is_504() {
    let b = RawBackend::start(Mode::Slow(Duration::from_secs(3)));
    let s = Server::start(
        Some(&pool_cfg(
            &[format!("http://{}", b.addr)],
            "read_timeout = \"500ms\"",
        )),
        &["--workers", "1"],
    );
    let t0 = std::time::Instant::now();
    assert_eq!(http_request(s.addr, "GET", "/", &[], b"").status, 504);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[test]
fn a_broken_request_body_ends_its_upstream_connection() {
    // The client's chunked body turns malformed after the exchange has begun: the client
    // gets its 400, and the upstream connection, left holding half a request, is closed
    // at once (not kept until the upstream gives up on it).
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let s = streaming_to(&format!("http://{}", l.local_addr().unwrap()), "");
    let mut c = s.connect();
    c.write_all(b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        .unwrap();
    let mut up = None;
    assert!(
        backend::wait_until(Duration::from_secs(5), || {
            up = l.accept().ok().map(|(u, _)| u);
            up.is_some()
        }),
        "uringd never connected to the upstream"
    );
    let mut up = up.unwrap();
    up.set_nonblocking(false).unwrap();
    up.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.ends_with(b"3\r\nabc\r\n") {
        let n = up
            .read(&mut buf)
            .expect("the forwarded head and first chunk");
        assert!(n > 0, "closed before the first chunk arrived");
        seen.extend_from_slice(&buf[..n]);
    }
    c.write_all(b"zz\r\n").unwrap();
    assert_eq!(common::read_response(&mut c, false).status, 400);
    loop {
        match up.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) => panic!("the upstream connection is still open after the client's 400: {e}"),
        }
    }
}

#[test]
fn a_request_refused_in_its_first_read_starts_no_upstream_attempt() {
    // Head and a broken chunk arrive together: the 400 is the only answer, and no pooled
    // upstream connection is taken (and lost) for a request already refused.
    let b = RawBackend::start(Mode::Echo);
    let s = proxy_to(&format!("http://{}", b.addr), "");
    assert_eq!(http_request(s.addr, "GET", "/warm", &[], b"").status, 200);
    assert_eq!(b.connections(), 1, "one pooled upstream connection");
    for _ in 0..3 {
        let all = common::raw(
            s.addr,
            b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n",
        );
        assert_eq!(common::status_of(&all), 400, "{all}");
        assert_eq!(
            all.matches("HTTP/1.1 ").count(),
            1,
            "one answer only: {all}"
        );
    }
    assert_eq!(http_request(s.addr, "GET", "/after", &[], b"").status, 200);
    assert_eq!(
        b.connections(),
        1,
        "the pooled connection served the next request: none was opened or closed for the refused ones"
    );
    assert_eq!(
        b.requests().len(),
        2,
        "the backend saw only the two good requests"
    );
}

#[test]
fn upstream_dying_mid_body_cuts_the_client() {
    let b = RawBackend::start(Mode::CloseMidBody);
    let s = proxy_to(&format!("http://{}", b.addr), "");
    let mut c = s.connect();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Content-Length: 100000"));
    let body = got.len() - text.find("\r\n\r\n").unwrap() - 4;
    assert!(
        body < 100_000,
        "a short body and a close, never a fake end: {body}"
    );
}

#[test]
fn gunicorn_over_tcp_and_unix() {
    for g in [Gunicorn::tcp(2), Gunicorn::unix()] {
        let url = match (&g.addr, &g.unix) {
            (Some(a), _) => format!("http://{a}"),
            (_, Some(p)) => format!("http://unix:{}", p.display()),
            _ => unreachable!(),
        };
        let s = proxy_to(&url, "");
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let r = http_request(s.addr, "POST", "/echo/path?x=1", &[("X-Test", "t")], &body);
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        let j = json(&r.body);
        assert_eq!(j["method"], "POST");
        assert_eq!(j["path"], "/echo/path");
        assert_eq!(j["query"], "x=1");
        assert_eq!(j["body_len"], 100_000);
        assert_eq!(j["body_sha256"], sha256_hex(&body));
        assert_eq!(j["headers"]["HTTP_X_TEST"], "t");
        assert_eq!(j["headers"]["HTTP_X_FORWARDED_FOR"], "127.0.0.1");
        // A large streamed response (no Content-Length upstream) arrives whole, re-chunked.
        let r = http_request(s.addr, "GET", "/big/3000000", &[], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), 3_000_000);
        assert!(r.chunked);
        assert_eq!(&r.body[..10], b"abcdefghij");
        let r = http_request(s.addr, "GET", "/status/418", &[], b"");
        assert_eq!(r.status, 418);
        let r = http_request(s.addr, "GET", "/headers-out", &[], b"");
        assert_eq!(r.headers_named("set-cookie").len(), 2, "{:?}", r.headers);
        let r = http_request(s.addr, "HEAD", "/big-cl/5000", &[], b"");
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty());
    }
}

#[test]
fn uwsgi_over_tcp_and_unix() {
    for u in [Uwsgi::tcp(), Uwsgi::unix()] {
        let url = match (&u.addr, &u.unix) {
            (Some(a), _) => format!("uwsgi://{a}"),
            (_, Some(p)) => format!("uwsgi+unix:{}", p.display()),
            _ => unreachable!(),
        };
        let s = proxy_to(&url, "");
        let r = http_request(
            s.addr,
            "GET",
            "/some%20path/x?q=1&r=2",
            &[
                ("X-Custom", "v"),
                ("X_Under", "collides"),
                ("Uwsgi-Script", "evil"),
            ],
            b"",
        );
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        // uWSGI sends neither: uringd's own, as on every other response.
        assert_eq!(r.header("server"), Some("uringd"), "{url}");
        assert!(
            r.header("date").is_some_and(|d| d.ends_with(" GMT")),
            "{url}"
        );
        assert_eq!(r.headers_named("date").len(), 1);
        let j = json(&r.body);
        assert_eq!(j["server"], "uwsgi");
        assert_eq!(j["path"], "/some path/x");
        assert_eq!(j["query"], "q=1&r=2");
        assert_eq!(j["headers"]["HTTP_X_CUSTOM"], "v");
        assert!(
            j["headers"].get("HTTP_X_UNDER").is_none(),
            "a header with '_' must be dropped: {j}"
        );
        assert_eq!(
            j["environ_uwsgi"],
            serde_json::json!([]),
            "no UWSGI_* var from a client"
        );
        // A chunked request body is de-chunked for uwsgi, which frames by CONTENT_LENGTH.
        let raw = b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let r = backend::http_raw(s.addr, raw, false).unwrap();
        let j = json(&r.body);
        assert_eq!(j["body_len"], 11);
        assert_eq!(j["body_sha256"], sha256_hex(b"hello world"));
        let r = http_request(s.addr, "GET", "/big/1000000", &[], b"");
        assert_eq!(r.body.len(), 1_000_000);
    }
}

#[test]
fn a_slow_client_does_not_make_uringd_buffer_the_whole_response() {
    let g = Gunicorn::tcp(1);
    let s = streaming_to(&format!("http://{}", g.addr.unwrap()), "");
    let mut c = s.connect();
    c.write_all(b"GET /big/200000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = c.read(&mut buf).unwrap();
    std::thread::sleep(Duration::from_millis(1500)); // the client stalls; gunicorn keeps writing
    let rss = common::rss_kib(s.pid());
    assert!(
        rss < 64 * 1024,
        "uringd buffered the response: RSS {rss} KiB"
    );
    while got < 200_000_000 {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed early at {got}");
        got += n;
    }
}

#[test]
fn upgrade_tunnels_only_after_101() {
    use backend::Action;
    let head101 = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nserver-hello".to_vec();
    let b = RawBackend::start(Mode::Script(vec![
        Action::ReadRequest,
        Action::Write(head101),
        Action::ReadRequest,
        Action::Write(b"got-it".to_vec()),
        Action::Sleep(Duration::from_millis(100)),
        Action::Close,
    ]));
    let s = proxy_to(&format!("http://{}", b.addr), "");
    let mut c = s.connect();
    c.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: k\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"server-hello") {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).to_string();
    assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("\r\nupgrade: websocket\r\n"),
        "{text}"
    );
    c.write_all(b"ping\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert_eq!(rest, b"got-it", "tunnel relayed both ways, then closed");
    let seen = b.requests();
    let first = String::from_utf8_lossy(&seen[0]).to_ascii_lowercase();
    assert!(
        first.contains("\r\nupgrade: websocket\r\n")
            && first.contains("\r\nconnection: upgrade\r\n"),
        "{first}"
    );
    assert_eq!(seen[1], b"ping\r\n\r\n");
}

#[test]
fn an_upgrade_answered_without_101_stays_http() {
    let b = RawBackend::start(Mode::Echo);
    let s = proxy_to(&format!("http://{}", b.addr), "");
    let mut c = s.connect();
    c.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    )
    .unwrap();
    assert_eq!(common::read_response(&mut c, false).status, 200);
    c.write_all(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let r = common::read_response(&mut c, false);
    assert!(
        String::from_utf8_lossy(&r.body).starts_with("GET /next "),
        "still HTTP after the refused upgrade"
    );
}

#[test]
fn an_unrequested_101_is_refused() {
    let b = RawBackend::start(Mode::Fixed(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\nConnection: Upgrade\r\n\r\n".into(),
    ));
    let s = proxy_to(&format!("http://{}", b.addr), "");
    assert_eq!(http_request(s.addr, "GET", "/", &[], b"").status, 502);
}

#[test]
fn upstream_time_is_recorded_per_phase() {
    let b = RawBackend::start(Mode::Slow(Duration::from_millis(300)));
    let cfg = format!(
        "[[route]]\nname = \"app\"\nprefix = \"/\"\nupstream = \"http://{}\"\n",
        b.addr
    );
    let s = Server::start(Some(&cfg), &["--workers", "1", "--admin", "127.0.0.1:0"]);
    for _ in 0..3 {
        assert_eq!(http_request(s.addr, "GET", "/", &[], b"").status, 200);
    }
    std::thread::sleep(Duration::from_millis(100));
    let admin = s.admin.unwrap();
    let r = common::request(admin, "GET", "/_uringd/latency?format=json", "");
    let j = json(&r.body);
    let up = &j["routes"]["app"]["upstream"];
    assert_eq!(up["whole"]["count"], 3, "{j}");
    let connect = up["connect"]["p50"].as_u64().unwrap();
    let first = up["first_byte"]["p50"].as_u64().unwrap();
    let whole = up["whole"]["p50"].as_u64().unwrap();
    assert!(connect < 50_000, "connect {connect} us");
    assert!(
        (290_000..1_000_000).contains(&first),
        "first byte {first} us"
    );
    assert!(whole >= first, "whole {whole} < first byte {first}");
    let r = common::request(admin, "GET", "/_uringd/metrics", "");
    let text = String::from_utf8(r.body).unwrap();
    let samples = uringd::stats::render::parse_exposition(&text).unwrap();
    let n: f64 = samples
        .iter()
        .filter(|x| {
            x.name == "uringd_upstream_duration_seconds_count" && x.label("phase") == Some("whole")
        })
        .map(|x| x.value)
        .sum();
    assert_eq!(n, 3.0);
}

#[test]
fn active_health_checks_take_a_failing_server_out() {
    let bad = RawBackend::start(Mode::Fixed(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nbad!".into(),
    ));
    let good = RawBackend::start(Mode::Echo);
    let cfg = pool_cfg(
        &[
            format!("http://{}", bad.addr),
            format!("http://{}", good.addr),
        ],
        "max_fails = 0\nhealth_interval = \"100ms\"\nhealth_path = \"/healthz\"",
    );
    let s = Server::start(Some(&cfg), &["--workers", "1"]);
    std::thread::sleep(Duration::from_millis(600));
    for i in 0..10 {
        let r = http_request(s.addr, "GET", "/x", &[], b"");
        assert_eq!(r.status, 200, "request {i} went to the failing server");
    }
    let probes = bad.requests_text();
    assert!(
        probes
            .iter()
            .any(|r| r.starts_with("GET /healthz HTTP/1.1\r\n")),
        "{probes:?}"
    );
}

#[test]
fn a_pool_with_no_healthy_server_answers_503_itself() {
    let bad = RawBackend::start(Mode::Fixed(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nbad!".into(),
    ));
    let cfg = pool_cfg(
        &[format!("http://{}", bad.addr)],
        "max_fails = 0\nhealth_interval = \"100ms\"",
    );
    let s = Server::start(Some(&cfg), &["--workers", "1"]);
    std::thread::sleep(Duration::from_millis(600));
    let r = http_request(s.addr, "GET", "/", &[], b"");
    assert_eq!(r.status, 503);
    assert_ne!(
        r.body, b"bad!",
        "uringd's own 503, not the backend's answer"
    );
}

#[test]
fn uwsgi_health_checks_keep_a_live_server_healthy() {
    let u = Uwsgi::tcp();
    let cfg = pool_cfg(
        &[format!("uwsgi://{}", u.addr.unwrap())],
        "health_interval = \"100ms\"\nhealth_path = \"/health\"",
    );
    let s = Server::start(Some(&cfg), &["--workers", "1"]);
    std::thread::sleep(Duration::from_millis(600));
    let r = http_request(s.addr, "GET", "/health", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn large_bodies_are_spliced_intact_and_the_connection_is_reused() {
    let b = RawBackend::start(Mode::Echo);
    // Threshold 64 KiB: the echoed 600 KB body goes socket -> pipe -> socket.
    let s = streaming_to(
        &format!("http://{}", b.addr),
        "[server]\nsplice_threshold = \"64KiB\"",
    );
    let body: Vec<u8> = (0..600_000u32).map(|i| (i % 253) as u8).collect();
    for round in 0..3 {
        let r = http_request(s.addr, "POST", "/splice", &[], &body);
        assert_eq!(r.status, 200, "round {round}");
        assert!(
            r.body.ends_with(&body),
            "round {round}: spliced body differs"
        );
        assert_eq!(
            r.header("content-length")
                .unwrap()
                .parse::<usize>()
                .unwrap(),
            r.body.len()
        );
    }
    let r = http_request(s.addr, "GET", "/after", &[], b"");
    assert!(
        String::from_utf8_lossy(&r.body).starts_with("GET /after "),
        "in step after splicing"
    );
    assert_eq!(
        b.connections(),
        1,
        "the upstream connection survives splicing and is reused"
    );
    let w = common::request(s.admin.unwrap(), "GET", "/_uringd/workers", "");
    let w = json(&w.body);
    assert_eq!(
        w[0]["spliced_bodies"], 3,
        "the bodies really went by splice: {w}"
    );
}

#[test]
fn spliced_content_length_body_from_gunicorn_with_a_stalled_client() {
    let g = Gunicorn::tcp_threads(1, 2);
    let s = streaming_to(&format!("http://{}", g.addr.unwrap()), "");
    let mut c = s.connect();
    c.write_all(b"GET /big-cl/100000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let got = c.read(&mut buf).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let rss = common::rss_kib(s.pid());
    assert!(rss < 64 * 1024, "uringd buffered the body: RSS {rss} KiB");
    let head_end = buf[..got]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap()
        + 4;
    assert!(String::from_utf8_lossy(&buf[..head_end]).contains("Content-Length: 100000000"));
    let mut body = got - head_end;
    let first = buf[head_end..got].to_vec();
    assert!(first.is_empty() || first.starts_with(b"abcdefghij"));
    while body < 100_000_000 {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed early at {body}");
        body += n;
    }
    assert_eq!(body, 100_000_000);
    // The connection is still in step for a next request.
    c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(common::read_response(&mut c, false).status, 200);
}
