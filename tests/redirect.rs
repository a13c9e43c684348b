//! `redirect` routes: the status and a Location built from the request, byte for byte.

mod common;

use std::io::Write;

use common::*;

const ROUTES: &str = r#"
[[route]]
prefix = "/"
redirect = { to = "https://$host$request_uri" }

[[route]]
prefix = "/moved"
redirect = { to = "$scheme://new.test$uri?$args", status = 308 }

[[route]]
prefix = "/fixed"
redirect = { to = "/elsewhere", status = 302 }
"#;

#[test]
fn a_plain_listener_sends_everyone_to_https() {
    let s = Server::start(Some(ROUTES), &[]);
    let mut c = s.connect();
    c.write_all(b"GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: shop.test:8080\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, false);
    assert!(
        r.head.starts_with("HTTP/1.1 301 Moved Permanently\r\n"),
        "{}",
        r.head
    );
    assert_eq!(
        r.header("Location").as_deref(),
        Some("https://shop.test:8080/a/b?x=1&y=%20"),
        "$request_uri is the target as sent"
    );
    assert_eq!(r.body, b"301 Moved Permanently\n");
    assert_eq!(
        r.header("Cache-Control"),
        None,
        "a permanent redirect may be cached"
    );
    // Keep-alive: the next request on the same connection is answered too.
    c.write_all(b"HEAD /moved/p/../q?k=v HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, true);
    assert!(
        r.head.starts_with("HTTP/1.1 308 Permanent Redirect\r\n"),
        "{}",
        r.head
    );
    assert_eq!(
        r.header("Location").as_deref(),
        Some("http://new.test/moved/q?k=v"),
        "$uri is the normalized path, $args the query"
    );
    assert!(r.body.is_empty(), "HEAD: no body");
    c.write_all(b"GET /fixed HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let rest = read_to_close(&mut c);
    assert!(rest.starts_with("HTTP/1.1 302 Found\r\n"), "{rest}");
    assert!(rest.contains("\r\nLocation: /elsewhere\r\n"), "{rest}");
    assert!(rest.contains("\r\nConnection: close\r\n"), "{rest}");
}

#[test]
fn the_authority_of_an_absolute_target_wins_and_a_missing_host_is_400() {
    let s = Server::start(Some(ROUTES), &[]);
    let r = raw(
        s.addr,
        b"GET http://abs.test/p?q HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
    );
    assert!(r.contains("\r\nLocation: https://abs.test/p?q\r\n"), "{r}");
    // HTTP/1.0 may omit Host; then there is nothing to build `$host` from.
    let r = raw(s.addr, b"GET /x HTTP/1.0\r\n\r\n");
    assert_eq!(status_of(&r), 400, "{r}");
}

#[test]
fn an_http10_client_that_asks_for_keep_alive_is_told_so() {
    let s = Server::start(Some(ROUTES), &[]);
    let mut c = s.connect();
    for _ in 0..2 {
        c.write_all(b"GET /x HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let r = read_response(&mut c, false);
        assert!(r.head.starts_with("HTTP/1.1 301 "), "{}", r.head);
        assert_eq!(
            r.header("Connection").as_deref(),
            Some("keep-alive"),
            "{}",
            r.head
        );
    }
}

#[test]
fn a_request_with_a_body_is_answered_and_closed() {
    let s = Server::start(Some(ROUTES), &[]);
    let mut c = s.connect();
    // The body must never be read as a next request.
    c.write_all(
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 41\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .unwrap();
    let all = read_to_close(&mut c);
    assert_eq!(all.matches("HTTP/1.1 ").count(), 1, "one answer: {all}");
    assert!(all.contains("\r\nLocation: https://a/x\r\n"), "{all}");
    assert!(all.contains("\r\nConnection: close\r\n"), "{all}");
}
