//! The request head forwarded to an HTTP/1.1 upstream (`proxy::reqhead`).
//!
//! Input: byte 0 sets the forwarding options (trusted peer, upgrade, Via entry,
//! scheme), the rest is a request head. An accepted head is re-framed the way the
//! proxy does it (Content-Length stays a length, chunked stays chunked, no body
//! stays none) and the forwarded head is parsed again by the same strict parser.
//!
//! Checked: the forwarded head is accepted (unless it is the documented empty
//! `Host: ` of an HTTP/1.0 request that had none), ends where the output ends, is
//! HTTP/1.1 with the same method, the normalized path (http/path.rs: what routing saw;
//! heads whose path the worker refuses are skipped) and the same query, names the same host,
//! carries exactly the framing uringd chose (never both Content-Length and
//! Transfer-Encoding), carries no hop-by-hop field or client forwarding header
//! except the ones uringd generates (`Forwarded` only from a trusted peer, exactly one
//! X-Real-IP), and appends without touching earlier output.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uringd::http::framing::{Decode, Encode};
use uringd::http::parser::{Head, HeaderSpan, Limits, Method, Version, parse_head};
use uringd::http::path::normalize;
use uringd::proxy::reqhead::{Forward, write_request_head};

fn host_of<'a>(buf: &'a [u8], head: &Head, hs: &[HeaderSpan]) -> Option<&'a [u8]> {
    match head.authority {
        Some(a) => Some(a.get(buf)),
        None => hs
            .iter()
            .find(|h| h.name.get(buf).eq_ignore_ascii_case(b"host"))
            .map(|h| h.value.get(buf)),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, req)) = data.split_first() else {
        return;
    };
    let mut hs = Vec::new();
    let Ok(head) = parse_head(req, &Limits::default(), &mut hs) else {
        return;
    };
    let mut path = Vec::new();
    if normalize(head.path_or_root(req), &mut path).is_err() {
        return; // refused with 400 before any forwarding
    }
    let framing = match head.body {
        Decode::None => Encode::None,
        Decode::Length(n) => Encode::Length(n),
        Decode::Chunked => Encode::Chunked,
        Decode::UntilClose => panic!("a request body is never close-delimited"),
    };
    let f = Forward {
        path: &path,
        client_ip: "203.0.113.7".parse().unwrap(),
        client_trusted: flags & 1 != 0,
        real_ip: None,
        underscores: false,
        scheme: ["http", "https", "", "bad\r\nscheme"][usize::from(flags >> 1 & 3)],
        framing,
        upgrade: flags & 8 != 0 && head.upgrade,
        via: ["1.1 uringd", "", "1.1 bad\nvia", "1.1 a, 1.1 b"][usize::from(flags >> 4 & 3)],
    };
    let mut out = b"prefix|".to_vec();
    write_request_head(&mut out, req, &head, &hs, &f);
    assert!(out.starts_with(b"prefix|"), "earlier output changed");
    let fwd = &out[7..];

    // Room for the fields uringd adds on top of the client's.
    let limits = Limits {
        max_header_bytes: 1 << 20,
        max_headers: 1000,
        max_target_bytes: 1 << 20,
    };
    let mut hs2 = Vec::new();
    let h2 = match parse_head(fwd, &limits, &mut hs2) {
        Ok(h2) => h2,
        Err(e) => {
            let documented = head.version == Version::Http10
                && host_of(req, &head, &hs).is_none()
                && fwd.windows(10).any(|w| w == b"\r\nHost: \r\n");
            assert!(
                documented,
                "forwarded head rejected ({e:?}):\n{}",
                String::from_utf8_lossy(fwd)
            );
            return;
        }
    };
    assert_eq!(
        h2.head_len,
        fwd.len(),
        "forwarded head does not end at the end"
    );
    assert_eq!(h2.version, Version::Http11);
    assert_eq!(h2.method.get(fwd), head.method.get(req));
    assert_eq!(h2.authority, None, "absolute-form forwarded");
    assert_eq!(h2.path_or_root(fwd), &path[..], "the path routing saw");
    assert_eq!(h2.query.map(|q| q.get(fwd)), head.query.map(|q| q.get(req)));
    assert_eq!(
        h2.host.map(|h| h.get(fwd)),
        host_of(req, &head, &hs),
        "upstream sees another host"
    );

    let want = match framing {
        Encode::Length(n) => Decode::Length(n),
        Encode::Chunked => Decode::Chunked,
        Encode::None if matches!(head.method_kind, Method::Post | Method::Put | Method::Patch) => {
            Decode::Length(0)
        }
        Encode::None => Decode::None,
    };
    assert_eq!(h2.body, want, "framing changed");

    let count = |name: &[u8]| {
        hs2.iter()
            .filter(|h| h.name.get(fwd).eq_ignore_ascii_case(name))
            .count()
    };
    for hop in [
        b"keep-alive".as_slice(),
        b"te",
        b"trailer",
        b"expect",
        b"proxy",
        b"proxy-connection",
        b"proxy-authorization",
    ] {
        assert_eq!(count(hop), 0, "{} forwarded", String::from_utf8_lossy(hop));
    }
    assert_eq!(count(b"connection"), 1);
    assert_eq!(count(b"x-forwarded-for"), 1);
    assert_eq!(count(b"x-real-ip"), 1);
    if !f.client_trusted {
        assert_eq!(count(b"forwarded"), 0, "an untrusted client's Forwarded");
    }
    assert!(count(b"x-forwarded-proto") <= 1);
    assert!(count(b"x-forwarded-host") <= 1);
    assert!(count(b"via") <= 1);
    assert!(count(b"content-length") + count(b"transfer-encoding") <= 1);
    if !f.upgrade {
        assert_eq!(count(b"upgrade"), 0, "Upgrade forwarded");
    }
});
