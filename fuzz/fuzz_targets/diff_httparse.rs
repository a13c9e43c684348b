//! Differential: uringd's strict parser against the httparse crate.
//!
//! uringd is meant to be stricter than httparse, so:
//! - uringd accepts, httparse accepts: method, target, version, the header lines
//!   (count, names, values) and the head length must agree;
//! - uringd accepts, httparse rejects or wants more: a finding (uringd accepted
//!   something a mainstream parser considers malformed), so the target fails;
//!   One known exception, skipped: a request-target that is not UTF-8 (obs-text
//!   bytes, which uringd tolerates and httparse's &str API cannot return);
//! - httparse accepts, uringd rejects: expected (Host rules, framing rules, limits,
//!   obs-text, ...), not checked.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uringd::http::parser::{Limits, Version, parse_head};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let mut hs = Vec::new();
    let Ok(head) = parse_head(data, &limits, &mut hs) else {
        return;
    };

    // More slots than uringd's default max_headers, so a count difference shows.
    let mut slots = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(data) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            panic!("uringd accepted a complete head, httparse wants more")
        }
        // httparse hands the target out as &str, so it refuses a target that is
        // not UTF-8; uringd passes obs-text through as bytes (deliberately).
        Err(httparse::Error::Token) if std::str::from_utf8(head.target.get(data)).is_err() => {
            return;
        }
        Err(e) => panic!("uringd accepted, httparse rejected: {e:?}"),
    };

    assert_eq!(len, head.head_len, "head length");
    assert_eq!(
        req.method.map(str::as_bytes),
        Some(head.method.get(data)),
        "method"
    );
    assert_eq!(
        req.path.map(str::as_bytes),
        Some(head.target.get(data)),
        "request-target"
    );
    let version = match head.version {
        Version::Http10 => 0,
        Version::Http11 => 1,
    };
    assert_eq!(req.version, Some(version), "version");
    assert_eq!(req.headers.len(), hs.len(), "header count");
    for (theirs, ours) in req.headers.iter().zip(&hs) {
        assert_eq!(theirs.name.as_bytes(), ours.name.get(data), "header name");
        assert_eq!(theirs.value, ours.value.get(data), "header value");
    }
});
