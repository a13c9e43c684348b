//! The strict request-head parser and the incremental head scanner in front of it.
//!
//! Input: raw bytes offered as a request head. Checked:
//! - no panic, and an error always maps to one of the statuses uringd sends;
//! - an accepted head is self-consistent: every span lies inside the head, names are
//!   tokens, values carry no CR/LF/NUL/controls and no surrounding whitespace, the
//!   head ends in CRLFCRLF, the limits hold, Host/Content-Length/Transfer-Encoding
//!   agree with the header lines (never both framings: request smuggling);
//! - the bytes after the head do not change the verdict;
//! - the scanner, fed in one piece and byte by byte, finds the same end of head as
//!   the parser;
//! - tighter limits never accept what the default limits reject, and agree when both
//!   accept.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uringd::http::framing::Decode;
use uringd::http::parser::{
    Head, HeaderSpan, Limits, Method, ParseError, Version, parse_head,
};
use uringd::http::scan::HeadScanner;

const TIGHT: Limits = Limits {
    max_header_bytes: 256,
    max_headers: 4,
    max_target_bytes: 32,
};

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn values<'a>(buf: &'a [u8], hs: &'a [HeaderSpan], name: &'a [u8]) -> Vec<&'a [u8]> {
    hs.iter()
        .filter(|h| h.name.get(buf).eq_ignore_ascii_case(name))
        .map(|h| h.value.get(buf))
        .collect()
}

fn check_accepted(buf: &[u8], limits: &Limits, head: &Head, hs: &[HeaderSpan]) {
    let n = head.head_len;
    assert!(n <= buf.len(), "head_len past the input");
    assert!(n <= limits.max_header_bytes, "head over max_header_bytes");
    assert!(
        hs.len() <= limits.max_headers,
        "more headers than max_headers"
    );
    assert!(
        buf[..n].ends_with(b"\r\n\r\n"),
        "head does not end in CRLFCRLF"
    );
    let inside = |s: uringd::http::parser::Span| {
        assert!(
            s.start <= s.end && (s.end as usize) <= n,
            "span {s:?} outside the head ({n})"
        )
    };
    for s in [head.method, head.target, head.path] {
        inside(s);
    }
    for s in [head.query, head.authority, head.host]
        .into_iter()
        .flatten()
    {
        inside(s);
    }

    let method = head.method.get(buf);
    assert!(!method.is_empty() && method.iter().all(|&b| is_tchar(b)));
    let kind = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        b"POST" => Method::Post,
        b"PUT" => Method::Put,
        b"DELETE" => Method::Delete,
        b"OPTIONS" => Method::Options,
        b"PATCH" => Method::Patch,
        b"TRACE" => Method::Trace,
        b"CONNECT" => panic!("CONNECT accepted"),
        _ => Method::Other,
    };
    assert_eq!(head.method_kind, kind);

    let target = head.target.get(buf);
    assert!(!target.is_empty() && target.len() <= limits.max_target_bytes);
    assert!(
        target.iter().all(|&b| b > 0x20 && b != 0x7f),
        "bad target byte"
    );
    // The request line is exactly `method SP target SP HTTP/1.x CRLF`.
    let line_start = head.method.start as usize;
    let line_end = head.target.end as usize;
    assert_eq!(head.target.start as usize, head.method.end as usize + 1);
    let version = &buf[line_end..line_end + 11];
    match head.version {
        Version::Http10 => assert_eq!(version, b" HTTP/1.0\r\n"),
        Version::Http11 => assert_eq!(version, b" HTTP/1.1\r\n"),
    }
    // Only CRLFs (at most four) before the request line.
    assert!(line_start.is_multiple_of(2) && line_start <= 8);
    assert!(buf[..line_start].chunks(2).all(|c| c == b"\r\n"));

    // path / query / authority lie inside the target, in order.
    let (ts, te) = (head.target.start, head.target.end);
    for s in [Some(head.path), head.query, head.authority]
        .into_iter()
        .flatten()
    {
        assert!(s.start >= ts && s.end <= te, "target part outside target");
    }
    if let Some(q) = head.query {
        assert_eq!(buf[q.start as usize - 1], b'?');
        assert!(!head.path.get(buf).contains(&b'?'));
    }
    match head.authority {
        Some(a) => {
            assert!(!a.get(buf).is_empty());
            let t = target.to_ascii_lowercase();
            assert!(t.starts_with(b"http://") || t.starts_with(b"https://"));
        }
        None if target == b"*" => assert_eq!(head.method_kind, Method::Options),
        None => assert_eq!(target[0], b'/', "origin-form must start with '/'"),
    }

    // Header lines: tokens, clean values, all inside the head.
    let mut prev_end = head.target.end;
    for h in hs {
        inside(h.name);
        inside(h.value);
        assert!(h.name.start > prev_end, "headers out of order");
        prev_end = h.value.end;
        let name = h.name.get(buf);
        let value = h.value.get(buf);
        assert!(!name.is_empty() && name.iter().all(|&b| is_tchar(b)));
        assert_eq!(buf[h.name.end as usize], b':');
        assert!(value.iter().all(|&b| is_value_byte(b)), "control in value");
        assert_eq!(trim(value), value, "value not trimmed");
    }

    // Host: exactly one for HTTP/1.1, and it is the Host line's value.
    let hosts = values(buf, hs, b"host");
    assert!(hosts.len() <= 1, "several Host lines accepted");
    assert_eq!(head.host.map(|h| h.get(buf)), hosts.first().copied());
    if head.version == Version::Http11 {
        assert!(head.host.is_some(), "HTTP/1.1 without Host accepted");
    }
    if let Some(h) = head.host {
        assert!(!h.get(buf).is_empty());
    }

    // Framing agrees with the header lines; never both Content-Length and
    // Transfer-Encoding.
    let cls = values(buf, hs, b"content-length");
    let tes = values(buf, hs, b"transfer-encoding");
    assert!(cls.is_empty() || tes.is_empty(), "CL and TE both accepted");
    match head.body {
        Decode::None => assert!(cls.is_empty() && tes.is_empty()),
        Decode::UntilClose => panic!("a request body is never close-delimited"),
        Decode::Length(len) => {
            assert!(!cls.is_empty());
            for v in &cls {
                assert!(!v.is_empty() && v.iter().all(u8::is_ascii_digit));
                let parsed: u64 = std::str::from_utf8(v).unwrap().parse().unwrap();
                assert_eq!(parsed, len, "Content-Length disagrees");
            }
        }
        Decode::Chunked => {
            assert_eq!(tes.len(), 1);
            assert!(trim(tes[0]).eq_ignore_ascii_case(b"chunked"));
            assert_eq!(head.version, Version::Http11);
        }
    }
    for v in values(buf, hs, b"expect") {
        assert!(
            v.eq_ignore_ascii_case(b"100-continue"),
            "unknown Expect accepted"
        );
    }
    if head.expect_continue {
        assert_eq!(head.version, Version::Http11);
    }
}

fn status_ok(e: &ParseError) {
    assert!(
        [400, 413, 414, 417, 431, 501, 505].contains(&e.status()),
        "unexpected status {}",
        e.status()
    );
}

fn run(buf: &[u8], limits: &Limits) -> Result<(Head, Vec<HeaderSpan>), ParseError> {
    let mut hs = Vec::new();
    // Reuse of a dirty vector must not matter.
    hs.push(HeaderSpan {
        name: uringd::http::parser::Span { start: 1, end: 0 },
        value: uringd::http::parser::Span { start: 7, end: 3 },
    });
    let r = parse_head(buf, limits, &mut hs);
    match &r {
        Ok(head) => check_accepted(buf, limits, head, &hs),
        Err(e) => status_ok(e),
    }
    r.map(|h| (h, hs))
}

fn scan_whole(buf: &[u8], limits: &Limits) -> Result<Option<usize>, ParseError> {
    HeadScanner::new().scan(buf, limits)
}

fn scan_bytewise(buf: &[u8], limits: &Limits) -> Result<Option<usize>, ParseError> {
    let mut s = HeadScanner::new();
    for end in 1..=buf.len() {
        match s.scan(&buf[..end], limits) {
            Ok(None) => {}
            other => return other,
        }
    }
    Ok(None)
}

fn check(buf: &[u8], limits: &Limits) -> Option<(Head, Vec<HeaderSpan>)> {
    let parsed = run(buf, limits);
    let whole = scan_whole(buf, limits);
    assert_eq!(
        whole,
        scan_bytewise(buf, limits),
        "scanner depends on the split"
    );
    if let Err(e) = &whole {
        status_ok(e);
    }
    if let Ok(Some(n)) = whole {
        // What the server does: parse exactly the head the scanner found.
        let exact = run(&buf[..n], limits);
        if let Ok((h, _)) = &exact {
            assert_eq!(
                h.head_len, n,
                "parser and scanner disagree on the end of head"
            );
        }
    }
    if let Ok((head, hs)) = &parsed {
        let n = head.head_len;
        // The bytes after the head never change the verdict.
        let again = run(&buf[..n], limits).expect("head alone rejected");
        assert_eq!(again.0, *head);
        assert_eq!(&again.1, hs);
        // The scanner stops at the same place, unless the request line is
        // longer than it allows (a long method: the parser caps only the target).
        match whole {
            Ok(Some(m)) => assert_eq!(m, n, "scanner and parser disagree"),
            Err(ParseError::UriTooLong) => {
                // The scanner counts the request line with its CR.
                let line = head.target.end as usize - head.method.start as usize + 10;
                assert!(
                    line > limits.max_target_bytes + 64,
                    "scanner 414 on a short line"
                );
            }
            other => panic!("parser accepted, scanner said {other:?}"),
        }
    }
    parsed.ok()
}

fuzz_target!(|data: &[u8]| {
    let loose = check(data, &Limits::default());
    let tight = check(data, &TIGHT);
    if let Some((th, ths)) = tight {
        let (lh, lhs) = loose.expect("accepted with tight limits, rejected with default ones");
        assert_eq!(th, lh);
        assert_eq!(ths, lhs);
    }
});
