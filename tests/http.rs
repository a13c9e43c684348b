//! HTTP/1.1 behaviour of `uringd serve`, checked byte for byte against the real binary.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

const ROUTES: &str = r#"
[[route]]
prefix = "/"
return = { status = 200, body = "Hello, World!", content_type = "text/plain" }

[[route]]
prefix = "/health"
return = { status = 200, body = "ok", content_type = "text/plain" }

[[route]]
prefix = "/teapot"
return = { status = 418, body = "short and stout", content_type = "text/plain" }
"#;

fn server() -> Server {
    Server::start(Some(ROUTES), &[])
}

#[test]
fn plain_get_exact_bytes() {
    let s = server();
    let mut c = s.connect();
    c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let r = read_response(&mut c, false);
    let lines: Vec<&str> = r.head.split("\r\n").collect();
    assert_eq!(lines[0], "HTTP/1.1 200 OK");
    assert_eq!(lines[1], "Server: uringd");
    assert_eq!(lines[2], "Content-Type: text/plain");
    assert_eq!(lines[3], "Content-Length: 13");
    let date = lines[4].strip_prefix("Date: ").unwrap();
    assert_eq!(date.len(), 29, "IMF-fixdate: {date}");
    assert!(date.ends_with(" GMT"));
    assert_eq!(lines[5], "");
    assert_eq!(r.body, b"Hello, World!");
}

#[test]
fn longest_prefix_wins_and_unknown_path_is_404() {
    let s = Server::start(
        Some(
            "[[route]]\nprefix=\"/health\"\nreturn={body=\"ok\"}\n[[route]]\nprefix=\"/health/deep\"\nreturn={body=\"deep\"}\n",
        ),
        &[],
    );
    let mut c = s.connect();
    c.write_all(b"GET /health/deep/x HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, false).body, b"deep");
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, false).body, b"ok");
    c.write_all(b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, false);
    assert_eq!(r.status, 404);
    assert_eq!(r.header("connection"), None, "a 404 keeps the connection");
    c.write_all(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, false).status, 200);
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let s = server();
    let mut c = s.connect();
    for _ in 0..50 {
        c.write_all(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let r = read_response(&mut c, false);
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
    }
}

#[test]
fn pipelined_responses_come_in_order() {
    let s = server();
    let mut c = s.connect();
    let mut batch = Vec::new();
    for p in ["/health", "/teapot", "/", "/health", "/teapot"] {
        batch.extend_from_slice(format!("GET {p} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
    }
    c.write_all(&batch).unwrap();
    let got: Vec<u16> = (0..5)
        .map(|_| read_response(&mut c, false).status)
        .collect();
    assert_eq!(got, vec![200, 418, 200, 200, 418]);
}

#[test]
fn pipelined_batch_split_at_every_byte_boundary() {
    let s = server();
    let req = b"GET /health HTTP/1.1\r\nHost: a\r\n\r\nGET /teapot HTTP/1.1\r\nHost: a\r\n\r\n";
    for cut in [1, 5, 17, 30, 33, 34, 50, req.len() - 1] {
        let mut c = s.connect();
        c.write_all(&req[..cut]).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        c.write_all(&req[cut..]).unwrap();
        assert_eq!(read_response(&mut c, false).status, 200, "cut {cut}");
        assert_eq!(read_response(&mut c, false).status, 418, "cut {cut}");
    }
}

#[test]
fn deep_pipeline_of_a_thousand() {
    let s = server();
    let mut c = s.connect();
    let one = b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n";
    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
    let w = {
        let mut w = c.try_clone().unwrap();
        std::thread::spawn(move || w.write_all(&batch).unwrap())
    };
    for i in 0..1000 {
        let r = read_response(&mut c, false);
        assert_eq!(r.body, b"ok", "response {i}");
    }
    w.join().unwrap();
}

#[test]
fn http10_closes_unless_keep_alive_asked() {
    let s = server();
    let out = raw(s.addr, b"GET /health HTTP/1.0\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("\r\nConnection: close\r\n"), "{out}");
    assert!(
        out.ends_with("\r\n\r\nok"),
        "server closed after the body: {out}"
    );

    let mut c = s.connect();
    c.write_all(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, false);
    assert_eq!(r.header("connection").as_deref(), Some("keep-alive"));
    c.write_all(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, false).body, b"ok");
}

#[test]
fn connection_close_is_honoured() {
    let s = server();
    let out = raw(
        s.addr,
        b"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /teapot HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_eq!(
        out.matches("HTTP/1.1").count(),
        1,
        "nothing after a close: {out}"
    );
    assert!(out.contains("Connection: close"));
}

#[test]
fn head_has_headers_but_no_body() {
    let s = server();
    let mut c = s.connect();
    c.write_all(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /health HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, true);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length").as_deref(), Some("13"));
    // The very next bytes must be the second response, not a body.
    let r2 = read_response(&mut c, false);
    assert_eq!(r2.body, b"ok");
}

#[test]
fn expect_100_continue_then_answer() {
    let s = server();
    let mut c = s.connect();
    c.write_all(
        b"POST /health HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let r = read_response(&mut c, true);
    assert_eq!(r.status, 100);
    assert_eq!(r.head, "HTTP/1.1 100 Continue\r\n\r\n");
    c.write_all(b"hello").unwrap();
    assert_eq!(read_response(&mut c, false).body, b"ok");
}

#[test]
fn unsupported_expectation_is_417() {
    let s = server();
    let out = raw(
        s.addr,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 200-ok\r\n\r\nx",
    );
    assert_eq!(status_of(&out), 417, "{out}");
}

#[test]
fn bodies_are_drained_and_the_next_request_is_served() {
    let s = server();
    let mut c = s.connect();
    c.write_all(b"POST /health HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world")
        .unwrap();
    c.write_all(b"GET /teapot HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, false).status, 200);
    assert_eq!(read_response(&mut c, false).status, 418);
    c.write_all(
        b"POST /health HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: y\r\n\r\nGET /teapot HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .unwrap();
    assert_eq!(read_response(&mut c, false).status, 200);
    assert_eq!(read_response(&mut c, false).status, 418);
}

#[test]
fn body_over_the_limit_is_413() {
    let s = Server::start(
        Some(&format!("[limits]\nmax_body_bytes = 100\n{ROUTES}")),
        &[],
    );
    let out = raw(
        s.addr,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n",
    );
    assert_eq!(status_of(&out), 413, "{out}");
    let mut big = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    big.extend_from_slice(b"40\r\n");
    big.extend_from_slice(&[b'x'; 64]);
    big.extend_from_slice(b"\r\n40\r\n");
    let out = raw(s.addr, &big);
    assert_eq!(status_of(&out), 413, "chunked over the limit: {out}");
}

/// Each of these must get exactly this status, `Connection: close`, and then a closed socket.
#[test]
fn strict_parsing_rejections() {
    let s = server();
    let big_value = "a".repeat(70 * 1024);
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let long_target = format!("/{}", "a".repeat(9000));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("missing version (HTTP/0.9)", b"GET /\r\n\r\n".to_vec(), 400),
        ("bad method token", b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), 400),
        ("space in header name", b"GET / HTTP/1.1\r\nHost: a\r\nX Y: z\r\n\r\n".to_vec(), 400),
        ("space before colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n".to_vec(), 400),
        ("NUL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n".to_vec(), 400),
        ("DEL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n".to_vec(), 400),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n".to_vec(), 400),
        ("bare CR", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n".to_vec(), 400),
        ("bare LF", b"GET / HTTP/1.1\nHost: a\n\n".to_vec(), 400),
        ("missing Host", b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        ("repeated Host", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), 400),
        ("CL with sign", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello".to_vec(), 400),
        ("CL hex", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello".to_vec(), 400),
        ("CL list", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello".to_vec(), 400),
        ("CL differing repeats", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello".to_vec(), 400),
        ("CL overflow", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec(), 400),
        ("TE with CL", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), 400),
        ("TE not final chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n".to_vec(), 400),
        ("TE unknown coding", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(), 501),
        ("TE on HTTP/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), 400),
        ("bad chunk size", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".to_vec(), 400),
        ("short chunk data", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel\r\n0\r\n\r\n".to_vec(), 400),
        ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n".to_vec(), 505),
        ("HTTP/1.2", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n".to_vec(), 505),
        ("lowercase version", b"GET / http/1.1\r\nHost: a\r\n\r\n".to_vec(), 400),
        ("header block over 64 KiB", format!("GET / HTTP/1.1\r\nHost: a\r\nX: {big_value}\r\n\r\n").into_bytes(), 431),
        ("101 headers", format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").into_bytes(), 431),
        ("target over 8 KiB", format!("GET {long_target} HTTP/1.1\r\nHost: a\r\n\r\n").into_bytes(), 414),
    ];
    for (name, req, want) in cases {
        let out = raw(s.addr, &req);
        assert_eq!(status_of(&out), want, "{name}: {out:?}");
        assert!(out.contains("\r\nConnection: close\r\n"), "{name}: {out:?}");
        assert_eq!(
            out.matches("HTTP/1.1 ").count(),
            1,
            "{name}: exactly one response: {out:?}"
        );
    }
    // The server survived all of that.
    let out = raw(
        s.addr,
        b"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&out), 200);
}

#[test]
fn request_after_a_rejection_on_the_same_connection_is_not_answered() {
    let s = server();
    let out = raw(
        s.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET /health HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_eq!(status_of(&out), 400);
    assert!(
        !out.contains("\r\n\r\nok"),
        "smuggled second request answered: {out}"
    );
}

#[test]
fn large_body_goes_out_whole() {
    // 256 KiB body: above a 16 KiB SEND_ZC threshold, so it goes out as its own zero-copy
    // segment, whose buffer must stay alive until the kernel's notification.
    let body = "z".repeat(256 * 1024);
    let cfg = format!(
        "[server]\nsend_zc_threshold=\"16KiB\"\n[[route]]\nprefix=\"/\"\nreturn={{body=\"{body}\"}}\n"
    );
    let s = Server::start(Some(&cfg), &[]);
    let mut c = s.connect();
    for _ in 0..3 {
        c.write_all(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let r = read_response(&mut c, false);
        assert_eq!(r.body.len(), body.len());
        assert!(r.body.iter().all(|&b| b == b'z'));
    }
}

#[test]
fn a_client_that_does_not_read_is_paused_not_buffered_without_bound() {
    // 8 KiB: below the SEND_ZC threshold, so every answer is copied into the send queue and
    // unbounded queuing would show in RSS.
    let body = "y".repeat(8 * 1024);
    let cfg = format!("[[route]]\nprefix=\"/\"\nreturn={{body=\"{body}\"}}\n");
    let s = Server::start(Some(&cfg), &[]);
    let mut c = s.connect();
    let one = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let n = 4000; // 32 MiB of answers: far beyond socket buffers
    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * n).collect();
    c.write_all(&batch).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let rss_kib = rss_kib(s.pid());
    assert!(
        rss_kib < 24 * 1024,
        "server buffered the answers: RSS {rss_kib} KiB"
    );
    for i in 0..n {
        let r = read_response(&mut c, false);
        assert_eq!(r.body.len(), body.len(), "response {i}");
    }
}

#[test]
fn server_header_is_configurable() {
    let s = Server::start(
        Some(&format!("[server]\nserver_header = \"edge\"\n{ROUTES}")),
        &[],
    );
    let out = raw(
        s.addr,
        b"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(out.contains("\r\nServer: edge\r\n"), "{out}");
}

#[test]
fn many_concurrent_connections() {
    let s = Server::start(Some(ROUTES), &["--workers", "2"]);
    let addr = s.addr;
    let threads: Vec<_> = (0..16)
        .map(|_| {
            std::thread::spawn(move || {
                let mut conns: Vec<_> = (0..16)
                    .map(|_| {
                        let c = std::net::TcpStream::connect(addr).unwrap();
                        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        c
                    })
                    .collect();
                for _ in 0..20 {
                    for c in &mut conns {
                        c.write_all(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
                            .unwrap();
                    }
                    for c in &mut conns {
                        assert_eq!(read_response(c, false).body, b"ok");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// A client that leaves in the middle of a large response must not leave its bytes behind
/// for the next connection that gets the same slot (a cross-client leak).
#[test]
fn a_slot_reused_after_an_abandoned_response_starts_clean() {
    let big = "L".repeat(4 * 1024 * 1024);
    let cfg = format!(
        "[[route]]\nprefix=\"/big\"\nreturn={{body=\"{big}\"}}\n[[route]]\nprefix=\"/\"\nreturn={{body=\"small\"}}\n"
    );
    let s = Server::start(Some(&cfg), &[]);
    for round in 0..5 {
        let mut a = s.connect();
        a.write_all(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let mut some = [0u8; 1000];
        let _ = std::io::Read::read(&mut a, &mut some).unwrap();
        drop(a); // leaves with megabytes still queued
        std::thread::sleep(Duration::from_millis(200));
        let mut b = s.connect();
        b.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let r = read_response(&mut b, false);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"small"[..]),
            "round {round}: {:?}",
            &r.head
        );
    }
}
