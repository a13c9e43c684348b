//! Pieces shared by the proxy codecs: header-name classification, the set of
//! headers a `Connection` header names (hop-by-hop, RFC 9110 7.6.1), and
//! small allocation-free writers.

use std::cmp::Ordering;
use std::net::IpAddr;

use crate::http::parser::{Head, HeaderSpan, find_header, is_value_byte, trim_ows};

/// Header names the proxy treats specially; everything else is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Host,
    Connection,
    KeepAlive,
    Te,
    Trailer,
    TransferEncoding,
    ContentLength,
    ContentType,
    Upgrade,
    /// `Proxy-*` (Proxy-Connection, Proxy-Authorization, Proxy-Authenticate,
    /// ...) and the bare `Proxy` header (httpoxy: it would become HTTP_PROXY).
    Proxy,
    Forwarded,
    XRealIp,
    XForwardedFor,
    XForwardedHost,
    XForwardedProto,
    Via,
    Cookie,
    Date,
    Server,
    /// `Expect`: uringd answers `100-continue` itself and sends the body it has taken.
    Expect,
    Other,
}

/// Classify a header name (ASCII case-insensitive). Dispatches on length
/// first, so most names cost one length compare and at most one byte compare.
pub(crate) fn classify(name: &[u8]) -> Field {
    let is = |s: &[u8]| name.eq_ignore_ascii_case(s);
    match name.len() {
        2 if is(b"te") => Field::Te,
        3 if is(b"via") => Field::Via,
        4 if is(b"host") => Field::Host,
        4 if is(b"date") => Field::Date,
        5 if is(b"proxy") => Field::Proxy,
        6 if is(b"cookie") => Field::Cookie,
        6 if is(b"server") => Field::Server,
        6 if is(b"expect") => Field::Expect,
        7 if is(b"trailer") => Field::Trailer,
        7 if is(b"upgrade") => Field::Upgrade,
        9 if is(b"forwarded") => Field::Forwarded,
        9 if is(b"x-real-ip") => Field::XRealIp,
        10 if is(b"connection") => Field::Connection,
        10 if is(b"keep-alive") => Field::KeepAlive,
        12 if is(b"content-type") => Field::ContentType,
        14 if is(b"content-length") => Field::ContentLength,
        15 if is(b"x-forwarded-for") => Field::XForwardedFor,
        16 if is(b"x-forwarded-host") => Field::XForwardedHost,
        17 if is(b"transfer-encoding") => Field::TransferEncoding,
        17 if is(b"x-forwarded-proto") => Field::XForwardedProto,
        _ if name
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"proxy-")) =>
        {
            Field::Proxy
        }
        _ => Field::Other,
    }
}

/// The non-empty, OWS-trimmed elements of a comma-separated list value.
pub(crate) fn list_elements(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Connection options that never need a lookup: every call site already
/// handles the `Keep-Alive` and `Upgrade` headers by an explicit rule.
fn handled_option(tok: &[u8]) -> bool {
    tok.eq_ignore_ascii_case(b"keep-alive") || tok.eq_ignore_ascii_case(b"upgrade")
}

/// Headers tracked in the bitset; more than this (only possible with a raised
/// `max_headers`) are checked by rescanning the Connection values.
const CAP: usize = 256;
/// The first few options are looked up by a plain scan over the headers;
/// after that the header names are sorted once and binary-searched, so a
/// Connection header listing thousands of options costs O(T log H), not O(T*H).
const LINEAR_OPTIONS: usize = 4;

/// Which headers are named by a `Connection` header's options (RFC 9110
/// 7.6.1: a proxy must remove them). Options `keep-alive` and `upgrade` are
/// skipped (see `handled_option`). Built once per head, queried per header.
pub(crate) struct ConnNamed {
    bits: [u64; CAP / 64],
    any: bool,
}

fn name_at<'a>(buf: &'a [u8], headers: &[HeaderSpan], j: usize) -> &'a [u8] {
    headers.get(j).map_or(&[][..], |h| h.name.get(buf))
}

/// ASCII case-insensitive total order (lowercase bytes, then length).
fn cmp_ci(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase()) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    a.len().cmp(&b.len())
}

impl ConnNamed {
    pub(crate) fn new(buf: &[u8], headers: &[HeaderSpan]) -> Self {
        let mut s = ConnNamed {
            bits: [0; CAP / 64],
            any: false,
        };
        let n = headers.len().min(CAP);
        let tracked = headers.get(..n).unwrap_or(&[]);
        let mut sorted = [0u16; CAP];
        let mut sorted_ready = false;
        let mut looked_up = 0usize;
        for h in headers {
            if classify(h.name.get(buf)) != Field::Connection {
                continue;
            }
            for tok in list_elements(h.value.get(buf)) {
                if handled_option(tok) {
                    continue;
                }
                s.any = true;
                if looked_up < LINEAR_OPTIONS {
                    looked_up += 1;
                    for (j, hj) in tracked.iter().enumerate() {
                        if hj.name.get(buf).eq_ignore_ascii_case(tok) {
                            s.set(j);
                        }
                    }
                    continue;
                }
                let idx = sorted.get_mut(..n).unwrap_or(&mut []);
                if !sorted_ready {
                    for (j, slot) in idx.iter_mut().enumerate() {
                        *slot = j as u16; // j < CAP <= u16::MAX
                    }
                    idx.sort_unstable_by(|&a, &b| {
                        cmp_ci(
                            name_at(buf, headers, a.into()),
                            name_at(buf, headers, b.into()),
                        )
                    });
                    sorted_ready = true;
                }
                let from = idx.partition_point(|&j| {
                    cmp_ci(name_at(buf, headers, j.into()), tok) == Ordering::Less
                });
                for &j in idx.get(from..).unwrap_or(&[]) {
                    if !name_at(buf, headers, j.into()).eq_ignore_ascii_case(tok) {
                        break;
                    }
                    s.set(j.into());
                }
            }
        }
        s
    }

    fn set(&mut self, j: usize) {
        if let Some(w) = self.bits.get_mut(j / 64) {
            *w |= 1 << (j % 64);
        }
    }

    /// Is header `j` (an index into the same `headers`) named by a
    /// Connection option?
    pub(crate) fn contains(&self, buf: &[u8], headers: &[HeaderSpan], j: usize) -> bool {
        if !self.any {
            return false;
        }
        if j < CAP {
            return self
                .bits
                .get(j / 64)
                .is_some_and(|w| w & (1 << (j % 64)) != 0);
        }
        let name = name_at(buf, headers, j);
        headers
            .iter()
            .filter(|h| classify(h.name.get(buf)) == Field::Connection)
            .flat_map(|h| list_elements(h.value.get(buf)))
            .any(|tok| !handled_option(tok) && tok.eq_ignore_ascii_case(name))
    }
}

/// True if `s` is a non-empty run of field-value bytes (no CR, LF, NUL, ...).
pub(crate) fn valid_value(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_value_byte(b))
}

pub(crate) fn push_dec(out: &mut Vec<u8>, mut n: u64) {
    let mut b = [0u8; 20];
    let mut i = b.len();
    loop {
        i -= 1;
        b[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(b.get(i..).unwrap_or(&[]));
}

/// Lowercase hex, no leading zeros ("0" for zero).
pub(crate) fn push_hex(out: &mut Vec<u8>, mut n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut b = [0u8; 16];
    let mut i = b.len();
    loop {
        i -= 1;
        b[i] = DIGITS[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(b.get(i..).unwrap_or(&[]));
}

/// The address in its canonical text form; an IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`, what a dual-stack listener reports for IPv4 peers) is
/// written as plain IPv4 so applications see one form per client.
pub(crate) fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    use std::io::Write;
    // Writing into a Vec cannot fail; Display for IpAddr uses no heap.
    let _ = write!(out, "{}", ip.to_canonical());
}

/// `name: value\r\n`
pub(crate) fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The request-target to forward: the raw target for origin-form and
/// asterisk-form; for absolute-form its origin-form (path, "/" if empty, then
/// `?query` when the target had a '?', even with an empty query).
/// The forwarded request-target in origin-form: the normalized `path` (http/path.rs, what
/// routing saw) and the client's query, untouched.
pub(crate) fn push_target(out: &mut Vec<u8>, path: &[u8], buf: &[u8], head: &Head) {
    out.extend_from_slice(path);
    if let Some(q) = head.query {
        out.push(b'?');
        out.extend_from_slice(q.get(buf));
    }
}

/// The host the request is for: an absolute-form target's authority wins over
/// the Host header (RFC 9112 3.2.2), else the first Host header, else none
/// (HTTP/1.0 without Host).
/// The client address an application should believe (X-Real-IP): a trusted proxy's own
/// `X-Real-IP` (its first non-empty one) when it sent one, else the peer address. A client
/// that is not a trusted proxy never chooses it.
pub(crate) fn push_real_ip(
    out: &mut Vec<u8>,
    buf: &[u8],
    headers: &[HeaderSpan],
    peer: IpAddr,
    trusted: bool,
) {
    let theirs = headers
        .iter()
        .filter(|h| classify(h.name.get(buf)) == Field::XRealIp)
        .map(|h| h.value.get(buf))
        .find(|v| !v.is_empty());
    match theirs {
        Some(v) if trusted => out.extend_from_slice(v),
        _ => push_ip(out, peer),
    }
}

pub(crate) fn effective_host<'a>(
    buf: &'a [u8],
    head: &Head,
    headers: &[HeaderSpan],
) -> Option<&'a [u8]> {
    match head.authority {
        Some(a) => Some(a.get(buf)),
        None => find_header(buf, headers, b"host"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parser::Span;

    fn spans(buf: &[u8]) -> Vec<HeaderSpan> {
        // "name: value\r\n" lines, test helper only.
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) {
            let line = &buf[pos..pos + nl - 1];
            let colon = line.iter().position(|&b| b == b':').unwrap();
            out.push(HeaderSpan {
                name: Span {
                    start: pos as u32,
                    end: (pos + colon) as u32,
                },
                value: Span {
                    start: (pos + colon + 2) as u32,
                    end: (pos + line.len()) as u32,
                },
            });
            pos += nl + 1;
        }
        out
    }

    #[test]
    fn classify_names() {
        assert_eq!(classify(b"TE"), Field::Te);
        assert_eq!(classify(b"Proxy-Authorization"), Field::Proxy);
        assert_eq!(classify(b"proxy-connection"), Field::Proxy);
        assert_eq!(classify(b"PROXY-"), Field::Proxy);
        assert_eq!(classify(b"Proxy"), Field::Proxy);
        assert_eq!(classify(b"Proxyx"), Field::Other);
        assert_eq!(classify(b"X-Proxy-Id"), Field::Other);
        assert_eq!(classify(b"Transfer-Encoding"), Field::TransferEncoding);
        assert_eq!(classify(b"x-FORWARDED-proto"), Field::XForwardedProto);
        assert_eq!(classify(b"Keep-Alive"), Field::KeepAlive);
        assert_eq!(classify(b"Connectio"), Field::Other);
        assert_eq!(classify(b""), Field::Other);
    }

    #[test]
    fn numbers() {
        let mut v = Vec::new();
        push_dec(&mut v, 0);
        v.push(b' ');
        push_dec(&mut v, u64::MAX);
        v.push(b' ');
        push_hex(&mut v, 0);
        v.push(b' ');
        push_hex(&mut v, 0xabc);
        v.push(b' ');
        push_hex(&mut v, u64::MAX);
        assert_eq!(v, b"0 18446744073709551615 0 abc ffffffffffffffff");
    }

    #[test]
    fn ip_text() {
        let mut v = Vec::new();
        push_ip(&mut v, "::ffff:10.1.2.3".parse().unwrap());
        v.push(b' ');
        push_ip(&mut v, "2001:db8::1".parse().unwrap());
        assert_eq!(v, b"10.1.2.3 2001:db8::1");
    }

    #[test]
    fn connection_named_few_and_many() {
        let buf = b"A: 1\r\nConnection: close, b , keep-alive\r\nB: 2\r\nc: 3\r\nConnection: C,,upgrade\r\nUpgrade: x\r\n";
        let hs = spans(buf);
        let c = ConnNamed::new(buf, &hs);
        let got: Vec<bool> = (0..hs.len()).map(|j| c.contains(buf, &hs, j)).collect();
        assert_eq!(got, [false, false, true, true, false, false]);

        // Many options: the sorted path; duplicates of a name all match.
        let mut buf = b"Connection: o1, o2, o3, o4, o5, x-a, o6, x-b\r\n".to_vec();
        buf.extend_from_slice(b"X-A: 1\r\nX-C: 2\r\nx-b: 3\r\nx-a: 4\r\nKeep: 5\r\n");
        let hs = spans(&buf);
        let c = ConnNamed::new(&buf, &hs);
        let got: Vec<bool> = (0..hs.len()).map(|j| c.contains(&buf, &hs, j)).collect();
        assert_eq!(got, [false, true, false, true, true, false]);

        let buf = b"A: 1\r\nConnection: keep-alive\r\n";
        let hs = spans(buf);
        let c = ConnNamed::new(buf, &hs);
        assert!(!c.any);
    }

    #[test]
    fn connection_named_beyond_cap() {
        let mut buf = b"Connection: close, x-last\r\n".to_vec();
        for _ in 0..CAP + 10 {
            buf.extend_from_slice(b"Y: 1\r\n");
        }
        buf.extend_from_slice(b"X-Last: 1\r\n");
        let hs = spans(&buf);
        let c = ConnNamed::new(&buf, &hs);
        assert!(c.contains(&buf, &hs, hs.len() - 1));
        assert!(!c.contains(&buf, &hs, hs.len() - 2));
        assert!(!c.contains(&buf, &hs, 5));
        assert!(!c.contains(&buf, &hs, 100_000));
    }
}
