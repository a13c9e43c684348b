//! The request head uringd forwards to an HTTP/1.1 upstream.
//!
//! Output layout: request line, `Host` (only when uringd generates it), the
//! client's end-to-end headers in their original order, then uringd's own
//! `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host`, `Via`, the
//! framing header and `Connection`, then the empty line.
//!
//! Rules (names compared ASCII case-insensitively):
//! - Request line `METHOD TARGET HTTP/1.1`. An absolute-form target is sent in
//!   origin-form (path, "/" if empty, plus `?query`), and its authority becomes
//!   the `Host` field, replacing any client Host: RFC 9112 3.2.2 says a proxy
//!   MUST ignore the received Host for such requests and generate a new one
//!   from the target, and uringd's own parser gives the authority precedence
//!   too, so uringd and the upstream always agree on the host. Otherwise the
//!   client's (first) Host is passed through unchanged in place. Exactly one
//!   Host is ever sent; an HTTP/1.0 request with neither gets an empty
//!   `Host: ` (RFC 9112 3.2: an HTTP/1.1 request must carry one).
//! - Dropped hop-by-hop fields: Connection, every field named by a Connection
//!   option, Keep-Alive, TE, Trailer, Transfer-Encoding, Content-Length (uringd
//!   re-frames), Upgrade (kept when `Forward::upgrade`), `Proxy-*` and the
//!   bare `Proxy` field (httpoxy: a WSGI upstream would expose it as
//!   HTTP_PROXY, which many HTTP libraries take as their outbound proxy).
//!   Host is never dropped because of a Connection option (the request would
//!   become invalid); the fields uringd generates ignore such an option except
//!   that the client's own values are not carried over.
//! - The request-target is `Forward::path` (the normalized path routing used,
//!   http/path.rs) plus the client's `?query`: the backend reads the path uringd routed.
//! - X-Forwarded-Proto and X-Forwarded-Host from the client are dropped and
//!   replaced by uringd's values. `Forwarded` is passed only from a trusted peer:
//!   uringd does not generate it, and forwarding an untrusted client's copy would
//!   let it spoof `for=`/`proto=` to applications that trust it.
//! - X-Forwarded-For: untrusted peer -> only the peer address; trusted peer ->
//!   one field with the peer's non-empty values joined by ", ", then the peer
//!   address.
//! - X-Real-IP: the peer address, replacing the client's; a trusted peer's own
//!   X-Real-IP is kept.
//! - Via: the client's Via values and uringd's entry combined into one field
//!   (RFC 9110 7.6.3).
//! - Framing from `Forward::framing`; with `Encode::None`, POST, PUT and PATCH
//!   get `Content-Length: 0` (a body-carrying method without framing would make
//!   some servers wait for a body).
//! - `Connection: keep-alive`, or `Connection: upgrade` for an upgrade attempt.
//! - Names and values of passed fields are copied byte-exact (they were
//!   validated by the strict parser); the separator is normalised to ": ".
//!   `scheme` and `via` are emitted only if they are valid field values.

use std::net::IpAddr;

use super::hop::{
    ConnNamed, Field, classify, effective_host, push_dec, push_header, push_ip, push_real_ip,
    push_target, valid_value,
};
use crate::http::framing::Encode;
use crate::http::parser::{Head, HeaderSpan, Method};

#[derive(Clone, Copy, Debug)]
pub struct Forward<'a> {
    /// The normalized path (http/path.rs): what routing matched, sent as the target.
    pub path: &'a [u8],
    pub client_ip: IpAddr,
    /// The peer is in `trusted_proxies`: append to its X-Forwarded-For instead
    /// of replacing it.
    pub client_trusted: bool,
    /// The client as `real_ip` found it behind trusted proxies: sent as X-Real-IP
    /// (None: the peer, or a trusted peer's own X-Real-IP).
    pub real_ip: Option<IpAddr>,
    /// "http" (or "https"), sent as X-Forwarded-Proto.
    pub scheme: &'a str,
    /// What uringd itself will send (decided by the caller).
    pub framing: Encode,
    /// Forward Upgrade + `Connection: upgrade` (WebSocket attempt).
    pub upgrade: bool,
    /// uringd's Via entry, e.g. "1.1 uringd"; empty for none.
    pub via: &'a str,
    /// Forward header names with an underscore (else dropped: `underscores_in_headers`).
    pub underscores: bool,
}

/// Appends the forwarded head (request line + headers + CRLF) to `out`.
/// `head`/`headers` must come from parsing `buf`.
pub fn write_request_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &Head,
    headers: &[HeaderSpan],
    f: &Forward,
) {
    let conn = &ConnNamed::new(buf, headers);
    let host = effective_host(buf, head, headers);

    out.extend_from_slice(head.method.get(buf));
    out.push(b' ');
    push_target(out, f.path, buf, head);
    out.extend_from_slice(b" HTTP/1.1\r\n");

    // Once true, client Host fields are no longer copied.
    let mut host_sent = true;
    match (head.authority, host) {
        (Some(_), Some(h)) => push_header(out, b"Host", h),
        (None, None) => push_header(out, b"Host", b""),
        (None, Some(_)) => host_sent = false,
        (Some(_), None) => {} // unreachable: authority implies a host
    }

    for (j, h) in headers.iter().enumerate() {
        let name = h.name.get(buf);
        let copy = match classify(name) {
            Field::Host => !std::mem::replace(&mut host_sent, true),
            Field::Upgrade if f.upgrade => true,
            Field::Forwarded if f.client_trusted => !conn.contains(buf, headers, j),
            Field::Connection
            | Field::KeepAlive
            | Field::Te
            | Field::Trailer
            | Field::TransferEncoding
            | Field::ContentLength
            | Field::Expect
            | Field::Upgrade
            | Field::Proxy
            | Field::Forwarded
            | Field::XForwardedProto
            | Field::XForwardedHost
            | Field::XForwardedFor
            | Field::XRealIp
            | Field::Via => false,
            Field::ContentType | Field::Cookie | Field::Date | Field::Server | Field::Other => {
                !conn.contains(buf, headers, j)
            }
        };
        if copy && (f.underscores || !name.contains(&b'_')) {
            push_header(out, name, h.value.get(buf));
        }
    }

    // Client values of a generated field, unless named by a Connection option.
    let client_values = |field: Field| {
        headers.iter().enumerate().filter_map(move |(j, h)| {
            let keep = !h.value.is_empty()
                && classify(h.name.get(buf)) == field
                && !conn.contains(buf, headers, j);
            keep.then(|| h.value.get(buf))
        })
    };

    out.extend_from_slice(b"X-Forwarded-For: ");
    if f.client_trusted {
        for v in client_values(Field::XForwardedFor) {
            out.extend_from_slice(v);
            out.extend_from_slice(b", ");
        }
    }
    push_ip(out, f.client_ip);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b"X-Real-IP: ");
    match f.real_ip {
        Some(ip) => push_ip(out, ip),
        None => push_real_ip(out, buf, headers, f.client_ip, f.client_trusted),
    }
    out.extend_from_slice(b"\r\n");

    if valid_value(f.scheme.as_bytes()) {
        push_header(out, b"X-Forwarded-Proto", f.scheme.as_bytes());
    }
    if let Some(h) = host.filter(|h| !h.is_empty()) {
        push_header(out, b"X-Forwarded-Host", h);
    }

    let ours = Some(f.via.as_bytes()).filter(|v| valid_value(v));
    let mut via = client_values(Field::Via).chain(ours).peekable();
    if via.peek().is_some() {
        out.extend_from_slice(b"Via: ");
        let mut first = true;
        for v in via {
            if !std::mem::replace(&mut first, false) {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(v);
        }
        out.extend_from_slice(b"\r\n");
    }

    match f.framing {
        Encode::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            push_dec(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Encode::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Encode::None => {
            if matches!(head.method_kind, Method::Post | Method::Put | Method::Patch) {
                out.extend_from_slice(b"Content-Length: 0\r\n");
            }
        }
    }

    out.extend_from_slice(if f.upgrade {
        b"Connection: upgrade\r\n"
    } else {
        b"Connection: keep-alive\r\n"
    });
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parser::{Limits, parse_head};

    fn fwd() -> Forward<'static> {
        Forward {
            path: b"",
            client_ip: "203.0.113.7".parse().unwrap(),
            client_trusted: false,
            real_ip: None,
            underscores: false,
            scheme: "http",
            framing: Encode::None,
            upgrade: false,
            via: "1.1 uringd",
        }
    }

    /// `write_request_head` with the path the worker would pass: the head's, normalized.
    fn forward(out: &mut Vec<u8>, req: &[u8], head: &Head, hs: &[HeaderSpan], f: &Forward) {
        let mut path = Vec::new();
        if crate::http::path::normalize(head.path_or_root(req), &mut path).is_err() {
            path = head.path_or_root(req).to_vec();
        }
        write_request_head(out, req, head, hs, &Forward { path: &path, ..*f });
    }

    #[test]
    fn underscore_names_are_dropped_unless_kept() {
        let req = b"GET / HTTP/1.1\r\nHost: a\r\nX_Real_IP: 6.6.6.6\r\nMy_Header: x\r\nMy-Header: y\r\n\r\n";
        let out = render(req, &fwd());
        assert!(
            !out.contains("X_Real_IP") && !out.contains("My_Header"),
            "{out}"
        );
        assert!(out.contains("\r\nMy-Header: y\r\n"), "{out}");
        let kept = render(
            req,
            &Forward {
                underscores: true,
                ..fwd()
            },
        );
        assert!(kept.contains("\r\nMy_Header: x\r\n"), "{kept}");
    }

    fn render(req: &[u8], f: &Forward) -> String {
        let mut hs = Vec::new();
        let head = parse_head(req, &Limits::default(), &mut hs).expect("valid request");
        let mut out = b"prefix|".to_vec();
        forward(&mut out, req, &head, &hs, f);
        let s = String::from_utf8(out).unwrap();
        let rest = s.strip_prefix("prefix|").expect("appends, never clears");
        // The output is itself a valid request for the strict parser (which
        // rejects the empty Host generated for HTTP/1.0 requests without one).
        if !rest.contains("\r\nHost: \r\n") {
            let mut hs2 = Vec::new();
            let h2 = parse_head(rest.as_bytes(), &Limits::default(), &mut hs2).expect("reparse");
            assert_eq!(h2.head_len, rest.len());
        }
        rest.to_string()
    }

    const TAIL: &str = "X-Forwarded-For: 203.0.113.7\r\nX-Real-IP: 203.0.113.7\r\nX-Forwarded-Proto: http\r\n\
                        X-Forwarded-Host: example.com\r\nVia: 1.1 uringd\r\n";

    #[test]
    fn simple_get() {
        let got = render(
            b"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\nAccept:  */* \r\n\r\n",
            &fwd(),
        );
        let want = format!(
            "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\nAccept: */*\r\n{TAIL}Connection: keep-alive\r\n\r\n"
        );
        assert_eq!(got, want);
    }

    #[test]
    fn hop_by_hop_removed() {
        let req = b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close, X-Foo\r\n\
            X-Foo: secret\r\nX-Bar: ok\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n\
            Trailer: X-T\r\nUpgrade: websocket\r\nProxy-Connection: keep-alive\r\n\
            Proxy-Authorization: Basic eA==\r\nProxy-Authenticate: x\r\nProxy-Foo: y\r\n\
            Proxy: http://evil\r\nForwarded: for=1.2.3.4\r\nX-Forwarded-Proto: https\r\n\
            X-Forwarded-Host: evil\r\nx-foo: again\r\nX-Proxy-Id: keep\r\n\r\n";
        let got = render(req, &fwd());
        let want = format!(
            "GET / HTTP/1.1\r\nHost: example.com\r\nX-Bar: ok\r\nX-Proxy-Id: keep\r\n{TAIL}Connection: keep-alive\r\n\r\n"
        );
        assert_eq!(got, want);
    }

    #[test]
    fn connection_cannot_drop_host_or_our_headers() {
        let req = b"GET / HTTP/1.1\r\nHost: example.com\r\n\
            Connection: Host, X-Forwarded-For, Via, X-Forwarded-Proto, Cookie\r\n\
            X-Forwarded-For: 10.0.0.1\r\nVia: 1.0 a\r\nCookie: a=b\r\n\r\n";
        let f = Forward {
            client_trusted: true,
            real_ip: None,
            underscores: false,
            ..fwd()
        };
        let want =
            format!("GET / HTTP/1.1\r\nHost: example.com\r\n{TAIL}Connection: keep-alive\r\n\r\n");
        assert_eq!(render(req, &f), want);
    }

    #[test]
    fn many_connection_options() {
        let req =
            b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: a, b, c, d, e, f, x-z, g\r\n\
            X-Z: 1\r\nX-Y: 2\r\nx-z: 3\r\n\r\n";
        let want = format!(
            "GET / HTTP/1.1\r\nHost: example.com\r\nX-Y: 2\r\n{TAIL}Connection: keep-alive\r\n\r\n"
        );
        assert_eq!(render(req, &fwd()), want);
    }

    #[test]
    fn xff_replaced_when_untrusted() {
        let req = b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 1.1.1.1\r\n\
            x-forwarded-for: 2.2.2.2\r\n\r\n";
        let want =
            format!("GET / HTTP/1.1\r\nHost: example.com\r\n{TAIL}Connection: keep-alive\r\n\r\n");
        assert_eq!(render(req, &fwd()), want);
    }

    #[test]
    fn xff_appended_when_trusted() {
        let req = b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 1.1.1.1, 3.3.3.3\r\n\
            X-Other: z\r\nX-Forwarded-For:\r\nx-forwarded-for: 2.2.2.2\r\n\r\n";
        let f = Forward {
            client_trusted: true,
            real_ip: None,
            underscores: false,
            client_ip: "::ffff:10.0.0.9".parse().unwrap(),
            ..fwd()
        };
        let got = render(req, &f);
        assert_eq!(
            got,
            "GET / HTTP/1.1\r\nHost: example.com\r\nX-Other: z\r\n\
             X-Forwarded-For: 1.1.1.1, 3.3.3.3, 2.2.2.2, 10.0.0.9\r\nX-Real-IP: 10.0.0.9\r\nX-Forwarded-Proto: http\r\n\
             X-Forwarded-Host: example.com\r\nVia: 1.1 uringd\r\nConnection: keep-alive\r\n\r\n"
        );
        // Trusted but no client XFF: just the peer.
        let got = render(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &f);
        assert!(got.contains("\r\nX-Forwarded-For: 10.0.0.9\r\n"));
        // IPv6 peer.
        let f = Forward {
            client_ip: "2001:db8::2".parse().unwrap(),
            ..fwd()
        };
        let got = render(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &f);
        assert!(got.contains("\r\nX-Forwarded-For: 2001:db8::2\r\n"));
    }

    #[test]
    fn real_ip_and_forwarded_only_from_trusted_peers() {
        let req = b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Real-IP: 6.6.6.6\r\n\
            Forwarded: for=6.6.6.6\r\nx-real-ip: 7.7.7.7\r\n\r\n";
        let got = render(req, &fwd());
        assert_eq!(got.matches("X-Real-IP").count(), 1, "{got}");
        assert!(got.contains("\r\nX-Real-IP: 203.0.113.7\r\n"), "{got}");
        assert!(
            !got.contains("Forwarded:") && !got.contains("6.6.6.6"),
            "{got}"
        );
        let f = Forward {
            client_trusted: true,
            real_ip: None,
            underscores: false,
            ..fwd()
        };
        let got = render(req, &f);
        assert!(got.contains("\r\nX-Real-IP: 6.6.6.6\r\n"), "{got}");
        assert!(got.contains("\r\nForwarded: for=6.6.6.6\r\n"), "{got}");
        assert_eq!(got.matches("X-Real-IP").count(), 1, "{got}");
    }

    #[test]
    fn the_target_is_the_normalized_path() {
        let got = render(
            b"GET /a/./b/../%63?x=/../y HTTP/1.1\r\nHost: h\r\n\r\n",
            &fwd(),
        );
        assert!(got.starts_with("GET /a/c?x=/../y HTTP/1.1\r\n"), "{got}");
        let got = render(b"GET http://h//x/%2fy HTTP/1.1\r\nHost: h\r\n\r\n", &fwd());
        assert!(got.starts_with("GET /x/%2Fy HTTP/1.1\r\n"), "{got}");
    }

    #[test]
    fn absolute_form_rewritten() {
        let f = fwd();
        let got = render(
            b"GET http://Example.com:81/a/b?x=1 HTTP/1.1\r\nHost: other\r\nA: 1\r\n\r\n",
            &f,
        );
        assert_eq!(
            got,
            "GET /a/b?x=1 HTTP/1.1\r\nHost: Example.com:81\r\nA: 1\r\n\
             X-Forwarded-For: 203.0.113.7\r\nX-Real-IP: 203.0.113.7\r\nX-Forwarded-Proto: http\r\n\
             X-Forwarded-Host: Example.com:81\r\nVia: 1.1 uringd\r\nConnection: keep-alive\r\n\r\n"
        );
        let got = render(b"GET https://h HTTP/1.0\r\n\r\n", &f);
        assert!(got.starts_with("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For"));
        assert!(got.contains("X-Forwarded-Host: h\r\n"));
        let got = render(b"GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n", &f);
        assert!(got.starts_with("GET /?q HTTP/1.1\r\nHost: h\r\nX-Forwarded-For"));
        assert_eq!(got.matches("Host: ").count(), 2); // Host + X-Forwarded-Host
        let got = render(b"GET http://h/p? HTTP/1.1\r\nHost: h\r\n\r\n", &f);
        assert!(got.starts_with("GET /p? HTTP/1.1\r\n"));
    }

    #[test]
    fn http10_without_host() {
        let got = render(b"GET /x HTTP/1.0\r\nA: b\r\n\r\n", &fwd());
        assert_eq!(
            got,
            "GET /x HTTP/1.1\r\nHost: \r\nA: b\r\nX-Forwarded-For: 203.0.113.7\r\nX-Real-IP: 203.0.113.7\r\n\
             X-Forwarded-Proto: http\r\nVia: 1.1 uringd\r\nConnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn asterisk_form_kept() {
        let got = render(b"OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n", &fwd());
        assert!(got.starts_with("OPTIONS * HTTP/1.1\r\nHost: example.com\r\n"));
    }

    #[test]
    fn via_appended() {
        let req = b"GET / HTTP/1.1\r\nHost: example.com\r\nVia: 1.0 fred, 1.1 p.example.net\r\n\
            X-A: 1\r\nvia: 1.1 second\r\n\r\n";
        let got = render(req, &fwd());
        assert_eq!(
            got,
            "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nX-Forwarded-For: 203.0.113.7\r\nX-Real-IP: 203.0.113.7\r\n\
             X-Forwarded-Proto: http\r\nX-Forwarded-Host: example.com\r\n\
             Via: 1.0 fred, 1.1 p.example.net, 1.1 second, 1.1 uringd\r\nConnection: keep-alive\r\n\r\n"
        );
        // No Via entry of our own: the client's is still passed (combined).
        let f = Forward { via: "", ..fwd() };
        let got = render(req, &f);
        assert!(got.contains("\r\nVia: 1.0 fred, 1.1 p.example.net, 1.1 second\r\n"));
        // Neither: no Via at all.
        let got = render(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &f);
        assert!(!got.contains("Via"));
        // An invalid configured value is never emitted.
        let f = Forward {
            via: "1.1 x\r\nEvil: 1",
            scheme: "ht\ntp",
            ..fwd()
        };
        let got = render(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &f);
        assert!(!got.contains("Via") && !got.contains("Evil") && !got.contains("Proto"));
    }

    #[test]
    fn upgrade_only_when_asked() {
        let req = b"GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\n\
            Upgrade: websocket\r\nSec-WebSocket-Key: k==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let got = render(req, &fwd());
        assert_eq!(
            got,
            format!(
                "GET /ws HTTP/1.1\r\nHost: example.com\r\nSec-WebSocket-Key: k==\r\n\
                 Sec-WebSocket-Version: 13\r\n{TAIL}Connection: keep-alive\r\n\r\n"
            )
        );
        let f = Forward {
            upgrade: true,
            ..fwd()
        };
        let got = render(req, &f);
        assert_eq!(
            got,
            format!(
                "GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Key: k==\r\nSec-WebSocket-Version: 13\r\n{TAIL}Connection: upgrade\r\n\r\n"
            )
        );
    }

    #[test]
    fn framing() {
        let req = b"POST /u HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\
            Content-Type: text/plain\r\n\r\n";
        let f = Forward {
            framing: Encode::Length(12345),
            ..fwd()
        };
        let got = render(req, &f);
        assert_eq!(
            got,
            format!(
                "POST /u HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\n{TAIL}\
                 Content-Length: 12345\r\nConnection: keep-alive\r\n\r\n"
            )
        );
        let f = Forward {
            framing: Encode::Chunked,
            ..fwd()
        };
        let req = b"PUT /u HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n";
        let got = render(req, &f);
        assert_eq!(
            got,
            format!(
                "PUT /u HTTP/1.1\r\nHost: example.com\r\n{TAIL}\
                 Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
            )
        );
        for (m, cl0) in [
            ("POST", true),
            ("PUT", true),
            ("PATCH", true),
            ("GET", false),
            ("DELETE", false),
            ("HEAD", false),
            ("OPTIONS", false),
        ] {
            let req = format!("{m} / HTTP/1.1\r\nHost: example.com\r\n\r\n");
            let got = render(req.as_bytes(), &fwd());
            assert_eq!(got.contains("\r\nContent-Length: 0\r\n"), cl0, "{m}");
        }
    }

    #[test]
    fn values_byte_exact() {
        let req =
            b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Bin: caf\xc3\xa9 \xff\tz\r\nX-E:\r\n\r\n";
        let mut hs = Vec::new();
        let head = parse_head(req, &Limits::default(), &mut hs).unwrap();
        let mut out = Vec::new();
        forward(&mut out, req, &head, &hs, &fwd());
        let want =
            b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Bin: caf\xc3\xa9 \xff\tz\r\nX-E: \r\n";
        assert!(out.starts_with(want));
    }

    #[test]
    fn mutated_requests_forward_to_valid_heads() {
        // Every single-byte mutation the strict parser still accepts must
        // yield a head the strict parser accepts again, with one Host.
        let base = b"POST http://h:1/p%41?q HTTP/1.1\r\nHost: h:1\r\nConnection: a, te\r\n\
            A: 1\r\nTE: x\r\nVia: 1.0 v\r\nX-Forwarded-For: 1.1.1.1\r\nUpgrade: w\r\n\
            Content-Length: 3\r\n\r\n";
        let mut hs = Vec::new();
        let mut hs2 = Vec::new();
        let mut out = Vec::new();
        let mut checked = 0;
        for i in 0..base.len() {
            for b in [0u8, b'\r', b'\n', b' ', b':', b',', b'/', b'?', b'a', 0xff] {
                let mut m = base.to_vec();
                m[i] = b;
                let Ok(head) = parse_head(&m, &Limits::default(), &mut hs) else {
                    continue;
                };
                for (trusted, upgrade) in [(false, false), (true, true)] {
                    let f = Forward {
                        client_trusted: trusted,
                        real_ip: None,
                        underscores: false,
                        upgrade,
                        framing: Encode::Length(3),
                        ..fwd()
                    };
                    out.clear();
                    forward(&mut out, &m, &head, &hs, &f);
                    let h2 = parse_head(&out, &Limits::default(), &mut hs2).expect("reparse");
                    assert_eq!(h2.head_len, out.len());
                    assert_eq!(h2.body, crate::http::framing::Decode::Length(3));
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "{checked}");
    }
}
