//! The uwsgi protocol (modifier1 0: a WSGI request), as spoken by uWSGI and by
//! gunicorn's `--protocol uwsgi`.
//!
//! Packet: `modifier1` (0), `datasize` (u16 little-endian: size of the vars
//! block), `modifier2` (0), then the vars block: for each variable
//! `u16le keylen, key, u16le vallen, value`. The request body follows the
//! packet separately (framed by CONTENT_LENGTH).
//!
//! Variables, in this order:
//! - REQUEST_METHOD; REQUEST_URI (`UwsgiVars::path`, the normalized path routing
//!   matched, plus `?query`); PATH_INFO (that path percent-decoded, see below);
//!   QUERY_STRING (empty if
//!   none); SERVER_PROTOCOL (the client's, "HTTP/1.1" or "HTTP/1.0");
//! - CONTENT_TYPE (first Content-Type, empty if absent); CONTENT_LENGTH: always
//!   the decimal of `content_length`, "0" included (unambiguous; uWSGI and
//!   gunicorn read an absent, empty or "0" length the same way);
//! - REMOTE_ADDR (IPv4-mapped IPv6 written as IPv4), REMOTE_PORT;
//! - SERVER_NAME: the request host (absolute-form authority, else Host) without
//!   its port, else `server_name`; SERVER_PORT; REQUEST_SCHEME; HTTPS ("on" for
//!   https, else "off");
//! - HTTP_HOST: the request host (absolute-form authority wins, as in the HTTP
//!   proxy path), omitted if there is none;
//! - one HTTP_<NAME> per distinct client header name (uppercased, '-' -> '_'),
//!   duplicate lines joined with ", " (Cookie: "; "), empty values skipped;
//! - HTTP_X_FORWARDED_FOR: only the peer address, or for a trusted peer its
//!   X-Forwarded-For values joined with ", " then the peer address;
//!   HTTP_X_FORWARDED_PROTO (`scheme`) and HTTP_X_FORWARDED_HOST (the request
//!   host, if any): the client's values of these two are dropped, as in the HTTP
//!   proxy path, so an application configured to trust its proxy sees uringd's
//!   values, never a client's spoofed ones. HTTP_X_REAL_IP is the peer address
//!   (a trusted peer's own X-Real-IP is kept); `Forwarded` becomes HTTP_FORWARDED
//!   only from a trusted peer.
//!
//! Client headers not turned into HTTP_ vars: names containing '_' (after the
//! '-' -> '_' mapping `X_Foo` would collide with `X-Foo`, the classic header
//! spoofing trick), Content-Type and Content-Length (already CONTENT_*), Host
//! (HTTP_HOST above), hop-by-hop ones (Connection and the headers it names,
//! Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, `Proxy-*`), the bare
//! `Proxy` header (httpoxy: HTTP_PROXY is taken as an outbound proxy by many
//! libraries) and the forwarding headers above.
//!
//! No client data can produce a key starting with `UWSGI_` (uWSGI gives such
//! vars special meaning, e.g. UWSGI_SCRIPT, UWSGI_CHDIR): every client-derived
//! key is `HTTP_` + name, so a header `uwsgi-script` becomes the harmless
//! HTTP_UWSGI_SCRIPT, which needs no special dropping.
//!
//! PATH_INFO: `%XX` with two hex digits is decoded (as WSGI/CGI expect, like
//! nginx's `$uri`); a '%' not followed by two hex digits is left as-is, and so
//! is `%00` (a NUL would truncate the path in C-string consumers). The worker
//! refuses both before this (http/path.rs) and has removed dot segments, so
//! PATH_INFO climbs nowhere.
//!
//! Duplicate detection compares each header name with the earlier ones, which
//! is quadratic in the number of header lines; the request parser caps those
//! (`max_headers`, 100 by default).

use std::net::IpAddr;

use super::hop::{
    ConnNamed, Field, classify, effective_host, push_dec, push_ip, push_real_ip, push_target,
};
use crate::http::parser::{Head, HeaderSpan, Version};

#[derive(Clone, Copy, Debug)]
pub struct UwsgiVars<'a> {
    /// The normalized path (http/path.rs), as routing matched it.
    pub path: &'a [u8],
    pub remote_addr: IpAddr,
    pub remote_port: u16,
    /// Used for SERVER_NAME when the request names no host.
    pub server_name: &'a str,
    pub server_port: u16,
    /// "http" (or "https").
    pub scheme: &'a str,
    pub content_length: u64,
    /// The peer is in `trusted_proxies`: append to its X-Forwarded-For.
    pub client_trusted: bool,
    /// The client as `real_ip` found it behind trusted proxies: REMOTE_ADDR and X-Real-IP
    /// (None: the peer).
    pub real_ip: Option<IpAddr>,
    /// Pass header names with an underscore (else dropped: `underscores_in_headers`).
    pub underscores: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UwsgiError {
    /// A key, a value or the whole vars block exceeds 65535 bytes: answer 431.
    TooLarge,
}

/// A uwsgi ping (modifier1 100, no vars), for health checks. uWSGI answers
/// with the 4-byte header `[100, size_lo, size_hi, 1]` (modifier2 1 marks the
/// answer); `size` is 0 normally, or the length of a warning message the node
/// has set, which follows the header (see `pong_message_len`).
pub const PING: [u8; 4] = [100, 0, 0, 0];

/// Whether `b` starts with a uwsgi pong header (modifier1 100, modifier2 1).
pub fn is_pong(b: &[u8]) -> bool {
    matches!(b, [100, _, _, 1, ..])
}

/// For a pong header: the length of the warning message that follows it
/// (0 for a plain pong).
pub fn pong_message_len(b: &[u8]) -> Option<usize> {
    match b {
        [100, lo, hi, 1, ..] => Some(u16::from_le_bytes([*lo, *hi]).into()),
        _ => None,
    }
}

const MAX: usize = u16::MAX as usize;

/// Appends the 4-byte header + vars block for a request to `out`. The body
/// follows separately. On error `out` is left as it was.
pub fn write_request(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &Head,
    headers: &[HeaderSpan],
    v: &UwsgiVars,
) -> Result<(), UwsgiError> {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    let size = write_vars(out, buf, head, headers, v)
        .and_then(|()| u16::try_from(out.len() - start - 4).map_err(|_| UwsgiError::TooLarge));
    match (size, out.get_mut(start + 1..start + 3)) {
        (Ok(n), Some(slot)) => {
            slot.copy_from_slice(&n.to_le_bytes());
            Ok(())
        }
        _ => {
            out.truncate(start);
            Err(UwsgiError::TooLarge)
        }
    }
}

fn push_len(out: &mut Vec<u8>, n: usize) -> Result<(), UwsgiError> {
    let n = u16::try_from(n).map_err(|_| UwsgiError::TooLarge)?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

fn key(out: &mut Vec<u8>, key: &[u8]) -> Result<(), UwsgiError> {
    push_len(out, key.len())?;
    out.extend_from_slice(key);
    Ok(())
}

/// Runs `write` to append a value, then fills in its length in front of it.
fn value(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) -> Result<(), UwsgiError> {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    write(out);
    let len = u16::try_from(out.len() - at - 2).map_err(|_| UwsgiError::TooLarge)?;
    if let Some(slot) = out.get_mut(at..at + 2) {
        slot.copy_from_slice(&len.to_le_bytes());
    }
    Ok(())
}

fn var(out: &mut Vec<u8>, k: &[u8], write: impl FnOnce(&mut Vec<u8>)) -> Result<(), UwsgiError> {
    key(out, k)?;
    value(out, write)
}

fn var_bytes(out: &mut Vec<u8>, key: &[u8], value: &[u8]) -> Result<(), UwsgiError> {
    var(out, key, |o| o.extend_from_slice(value))
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `s` into `out` (see the module docs for what stays as-is).
fn push_percent_decoded(out: &mut Vec<u8>, s: &[u8]) {
    let mut rest = s;
    while let Some(p) = memchr::memchr(b'%', rest) {
        out.extend_from_slice(rest.get(..p).unwrap_or(&[]));
        let hi = rest.get(p + 1).copied().and_then(hex_val);
        let lo = rest.get(p + 2).copied().and_then(hex_val);
        match (hi, lo) {
            (Some(h), Some(l)) if (h | l) != 0 => {
                out.push(h << 4 | l);
                rest = rest.get(p + 3..).unwrap_or(&[]);
            }
            _ => {
                out.push(b'%');
                rest = rest.get(p + 1..).unwrap_or(&[]);
            }
        }
    }
    out.extend_from_slice(rest);
}

/// `host` without a port: `[v6]:p` -> `[v6]`, `name:p` -> `name`.
fn strip_port(host: &[u8]) -> &[u8] {
    let end = if host.first() == Some(&b'[') {
        memchr::memchr(b']', host).map_or(host.len(), |i| i + 1)
    } else {
        memchr::memchr(b':', host).unwrap_or(host.len())
    };
    host.get(..end).unwrap_or(host)
}

fn write_vars(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &Head,
    headers: &[HeaderSpan],
    v: &UwsgiVars,
) -> Result<(), UwsgiError> {
    let conn = &ConnNamed::new(buf, headers);
    let host = effective_host(buf, head, headers);
    // Values of client headers of one kind, skipping Connection-named lines.
    let values = |field: Field| {
        headers.iter().enumerate().filter_map(move |(j, h)| {
            let keep = classify(h.name.get(buf)) == field && !conn.contains(buf, headers, j);
            keep.then(|| h.value.get(buf))
        })
    };

    var_bytes(out, b"REQUEST_METHOD", head.method.get(buf))?;
    var(out, b"REQUEST_URI", |o| push_target(o, v.path, buf, head))?;
    var(out, b"PATH_INFO", |o| push_percent_decoded(o, v.path))?;
    var_bytes(
        out,
        b"QUERY_STRING",
        head.query.map_or(&[][..], |q| q.get(buf)),
    )?;
    let protocol: &[u8] = match head.version {
        Version::Http11 => b"HTTP/1.1",
        Version::Http10 => b"HTTP/1.0",
    };
    var_bytes(out, b"SERVER_PROTOCOL", protocol)?;
    let content_type = values(Field::ContentType).next().unwrap_or(&[]);
    var_bytes(out, b"CONTENT_TYPE", content_type)?;
    var(out, b"CONTENT_LENGTH", |o| push_dec(o, v.content_length))?;
    var(out, b"REMOTE_ADDR", |o| {
        push_ip(o, v.real_ip.unwrap_or(v.remote_addr))
    })?;
    var(out, b"REMOTE_PORT", |o| push_dec(o, v.remote_port.into()))?;
    let server_name = host
        .map(strip_port)
        .filter(|h| !h.is_empty())
        .unwrap_or(v.server_name.as_bytes());
    var_bytes(out, b"SERVER_NAME", server_name)?;
    var(out, b"SERVER_PORT", |o| push_dec(o, v.server_port.into()))?;
    var_bytes(out, b"REQUEST_SCHEME", v.scheme.as_bytes())?;
    let https: &[u8] = if v.scheme.eq_ignore_ascii_case("https") {
        b"on"
    } else {
        b"off"
    };
    var_bytes(out, b"HTTPS", https)?;
    if let Some(h) = host {
        var_bytes(out, b"HTTP_HOST", h)?;
    }

    let block_start = out.len();
    for (j, h) in headers.iter().enumerate() {
        let name = h.name.get(buf);
        let sep: &[u8] = match classify(name) {
            Field::Cookie => b"; ",
            Field::Via | Field::Date | Field::Server | Field::Other => b", ",
            Field::Forwarded if v.client_trusted => b", ",
            _ => continue,
        };
        if (!v.underscores && name.contains(&b'_')) || conn.contains(buf, headers, j) {
            continue;
        }
        let earlier = headers.get(..j).unwrap_or(&[]);
        if earlier
            .iter()
            .any(|p| p.name.get(buf).eq_ignore_ascii_case(name))
        {
            continue; // joined into the first line's var
        }
        // Key: always "HTTP_" + NAME, so never UWSGI_*.
        push_len(out, 5 + name.len())?;
        out.extend_from_slice(b"HTTP_");
        out.extend(name.iter().map(|&b| {
            if b == b'-' {
                b'_'
            } else {
                b.to_ascii_uppercase()
            }
        }));
        let later = headers.get(j..).unwrap_or(&[]);
        value(out, |o| {
            let mut first = true;
            for p in later {
                if p.value.is_empty() || !p.name.get(buf).eq_ignore_ascii_case(name) {
                    continue;
                }
                if !std::mem::replace(&mut first, false) {
                    o.extend_from_slice(sep);
                }
                o.extend_from_slice(p.value.get(buf));
            }
        })?;
        // Stop early rather than render the rest of a hopeless block.
        if out.len() - block_start > MAX {
            return Err(UwsgiError::TooLarge);
        }
    }

    var(out, b"HTTP_X_FORWARDED_FOR", |o| {
        if v.client_trusted {
            for val in values(Field::XForwardedFor).filter(|x| !x.is_empty()) {
                o.extend_from_slice(val);
                o.extend_from_slice(b", ");
            }
        }
        push_ip(o, v.remote_addr);
    })?;
    var(out, b"HTTP_X_REAL_IP", |o| match v.real_ip {
        Some(ip) => push_ip(o, ip),
        None => push_real_ip(o, buf, headers, v.remote_addr, v.client_trusted),
    })?;
    var_bytes(out, b"HTTP_X_FORWARDED_PROTO", v.scheme.as_bytes())?;
    if let Some(h) = host {
        var_bytes(out, b"HTTP_X_FORWARDED_HOST", h)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parser::{Limits, parse_head};

    fn vars() -> UwsgiVars<'static> {
        UwsgiVars {
            path: b"",
            remote_addr: "198.51.100.4".parse().unwrap(),
            remote_port: 50123,
            server_name: "default.example",
            server_port: 8080,
            scheme: "http",
            content_length: 0,
            client_trusted: false,
            real_ip: None,
            underscores: false,
        }
    }

    type Pairs = Vec<(String, Vec<u8>)>;

    /// `write_request` with the path the worker would pass: the head's, normalized.
    fn encode(
        out: &mut Vec<u8>,
        req: &[u8],
        head: &Head,
        hs: &[HeaderSpan],
        v: &UwsgiVars,
    ) -> Result<(), UwsgiError> {
        let mut path = Vec::new();
        if crate::http::path::normalize(head.path_or_root(req), &mut path).is_err() {
            path = head.path_or_root(req).to_vec();
        }
        write_request(out, req, head, hs, &UwsgiVars { path: &path, ..*v })
    }

    /// Strict decoder for the test: the whole packet must be consumed.
    fn decode(pkt: &[u8]) -> Pairs {
        assert_eq!(pkt[0], 0, "modifier1");
        assert_eq!(pkt[3], 0, "modifier2");
        let size = u16::from_le_bytes([pkt[1], pkt[2]]) as usize;
        assert_eq!(pkt.len(), 4 + size, "datasize");
        let mut p = &pkt[4..];
        let mut out = Vec::new();
        let take = |p: &mut &[u8]| {
            let n = u16::from_le_bytes([p[0], p[1]]) as usize;
            let v = p[2..2 + n].to_vec();
            *p = &p[2 + n..];
            v
        };
        while !p.is_empty() {
            let k = String::from_utf8(take(&mut p)).unwrap();
            let v = take(&mut p);
            out.push((k, v));
        }
        out
    }

    fn request(req: &[u8], v: &UwsgiVars) -> Result<Pairs, UwsgiError> {
        let mut hs = Vec::new();
        let head = parse_head(req, &Limits::default(), &mut hs).expect("valid request");
        let mut out = b"keep".to_vec();
        let r = encode(&mut out, req, &head, &hs, v);
        assert_eq!(&out[..4], b"keep");
        match r {
            Ok(()) => Ok(decode(&out[4..])),
            Err(e) => {
                assert_eq!(out, b"keep", "left unchanged on error");
                Err(e)
            }
        }
    }

    fn get<'a>(p: &'a Pairs, k: &str) -> Option<&'a [u8]> {
        let mut it = p.iter().filter(|(key, _)| key == k);
        let v = it.next().map(|(_, v)| v.as_slice());
        assert!(it.next().is_none(), "{k} emitted twice");
        v
    }

    #[test]
    fn every_var() {
        let req = b"POST /a%20b/c%2Fd?x=1&y=%20 HTTP/1.1\r\nHost: www.example.com:8443\r\n\
            Content-Type: application/json\r\nContent-Length: 2\r\nUser-Agent: t/1\r\n\
            Accept: a\r\naccept: b\r\nX-Empty:\r\n\r\n";
        let v = UwsgiVars {
            content_length: 2,
            ..vars()
        };
        let p = request(req, &v).unwrap();
        let want: &[(&str, &[u8])] = &[
            ("REQUEST_METHOD", b"POST"),
            ("REQUEST_URI", b"/a%20b/c%2Fd?x=1&y=%20"),
            ("PATH_INFO", b"/a b/c/d"),
            ("QUERY_STRING", b"x=1&y=%20"),
            ("SERVER_PROTOCOL", b"HTTP/1.1"),
            ("CONTENT_TYPE", b"application/json"),
            ("CONTENT_LENGTH", b"2"),
            ("REMOTE_ADDR", b"198.51.100.4"),
            ("REMOTE_PORT", b"50123"),
            ("SERVER_NAME", b"www.example.com"),
            ("SERVER_PORT", b"8080"),
            ("REQUEST_SCHEME", b"http"),
            ("HTTPS", b"off"),
            ("HTTP_HOST", b"www.example.com:8443"),
            ("HTTP_USER_AGENT", b"t/1"),
            ("HTTP_ACCEPT", b"a, b"),
            ("HTTP_X_EMPTY", b""),
            ("HTTP_X_FORWARDED_FOR", b"198.51.100.4"),
            ("HTTP_X_REAL_IP", b"198.51.100.4"),
            ("HTTP_X_FORWARDED_PROTO", b"http"),
            ("HTTP_X_FORWARDED_HOST", b"www.example.com:8443"),
        ];
        let got: Vec<(&str, &[u8])> = p.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn exact_packet_bytes() {
        let req = b"GET / HTTP/1.0\r\n\r\n";
        let mut hs = Vec::new();
        let head = parse_head(req, &Limits::default(), &mut hs).unwrap();
        let mut out = Vec::new();
        encode(&mut out, req, &head, &hs, &vars()).unwrap();
        let mut want: Vec<u8> = vec![0, 0, 0, 0];
        for (k, v) in [
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", "/"),
            ("PATH_INFO", "/"),
            ("QUERY_STRING", ""),
            ("SERVER_PROTOCOL", "HTTP/1.0"),
            ("CONTENT_TYPE", ""),
            ("CONTENT_LENGTH", "0"),
            ("REMOTE_ADDR", "198.51.100.4"),
            ("REMOTE_PORT", "50123"),
            ("SERVER_NAME", "default.example"),
            ("SERVER_PORT", "8080"),
            ("REQUEST_SCHEME", "http"),
            ("HTTPS", "off"),
            ("HTTP_X_FORWARDED_FOR", "198.51.100.4"),
            ("HTTP_X_REAL_IP", "198.51.100.4"),
            ("HTTP_X_FORWARDED_PROTO", "http"),
        ] {
            want.extend_from_slice(&(k.len() as u16).to_le_bytes());
            want.extend_from_slice(k.as_bytes());
            want.extend_from_slice(&(v.len() as u16).to_le_bytes());
            want.extend_from_slice(v.as_bytes());
        }
        let n = (want.len() - 4) as u16;
        want[1..3].copy_from_slice(&n.to_le_bytes());
        assert_eq!(out, want);
        assert_eq!(&out[..4], &[0, n as u8, (n >> 8) as u8, 0]);
    }

    #[test]
    fn underscore_headers_dropped() {
        let req = b"GET / HTTP/1.1\r\nHost: h\r\nX-Real-IP: 1.1.1.1\r\nX_Real_IP: 6.6.6.6\r\n\
            x_forwarded_for: 6.6.6.6\r\n\r\n";
        let p = request(req, &vars()).unwrap();
        // Neither spelling reaches the app: X-Real-IP is the peer's address.
        assert_eq!(get(&p, "HTTP_X_REAL_IP"), Some(&b"198.51.100.4"[..]));
        assert_eq!(get(&p, "HTTP_X_FORWARDED_FOR"), Some(&b"198.51.100.4"[..]));
    }

    #[test]
    fn real_ip_and_forwarded_only_from_trusted_peers() {
        let req =
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n\r\n";
        let p = request(req, &vars()).unwrap();
        assert_eq!(get(&p, "HTTP_X_REAL_IP"), Some(&b"198.51.100.4"[..]));
        assert_eq!(get(&p, "HTTP_FORWARDED"), None);
        let trusted = UwsgiVars {
            client_trusted: true,
            real_ip: None,
            underscores: false,
            ..vars()
        };
        let p = request(req, &trusted).unwrap();
        assert_eq!(get(&p, "HTTP_X_REAL_IP"), Some(&b"6.6.6.6"[..]));
        assert_eq!(get(&p, "HTTP_FORWARDED"), Some(&b"for=6.6.6.6"[..]));
        let p = request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &trusted).unwrap();
        assert_eq!(get(&p, "HTTP_X_REAL_IP"), Some(&b"198.51.100.4"[..]));
    }

    #[test]
    fn uwsgi_prefixed_header_is_namespaced() {
        let req = b"GET / HTTP/1.1\r\nHost: h\r\nuwsgi-x: 1\r\nUWSGI-SCRIPT: evil\r\n\r\n";
        let p = request(req, &vars()).unwrap();
        assert_eq!(get(&p, "HTTP_UWSGI_X"), Some(&b"1"[..]));
        assert_eq!(get(&p, "HTTP_UWSGI_SCRIPT"), Some(&b"evil"[..]));
        assert!(p.iter().all(|(k, _)| !k.starts_with("UWSGI")));
    }

    #[test]
    fn hop_by_hop_and_special_headers() {
        let req = b"POST / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\
            Keep-Alive: 5\r\nTE: trailers\r\nTrailer: X\r\nTransfer-Encoding: chunked\r\n\
            Upgrade: websocket\r\nProxy-Authorization: x\r\nProxy: http://evil:1\r\n\
            Forwarded: for=1.1.1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n\
            Content-Type: text/plain\r\nX-Keep: yes\r\n\r\n";
        let p = request(req, &vars()).unwrap();
        let http: Vec<&str> = p
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| k.starts_with("HTTP_"))
            .collect();
        assert_eq!(
            http,
            [
                "HTTP_HOST",
                "HTTP_X_KEEP",
                "HTTP_X_FORWARDED_FOR",
                "HTTP_X_REAL_IP",
                "HTTP_X_FORWARDED_PROTO",
                "HTTP_X_FORWARDED_HOST"
            ]
        );
        assert_eq!(get(&p, "HTTP_X_FORWARDED_PROTO"), Some(&b"http"[..]));
        assert_eq!(get(&p, "HTTP_X_FORWARDED_HOST"), Some(&b"h"[..]));
        assert_eq!(get(&p, "CONTENT_TYPE"), Some(&b"text/plain"[..]));
        assert_eq!(get(&p, "CONTENT_LENGTH"), Some(&b"0"[..]));
    }

    #[test]
    fn percent_decoded_path_info() {
        // (client path, REQUEST_URI path: the normalized one, PATH_INFO). The worker
        // refuses malformed escapes and %00 before this; passed raw, they stay as-is.
        let cases: &[(&str, &str, &[u8])] = &[
            ("/caf%C3%A9", "/caf%C3%A9", b"/caf\xc3\xa9"),
            ("/a%2fb%2F", "/a%2Fb%2F", b"/a/b/"),
            ("/%", "/%", b"/%"),
            ("/%4", "/%4", b"/%4"),
            ("/%zz%4g", "/%zz%4g", b"/%zz%4g"),
            ("/%%41", "/%%41", b"/%A"),
            ("/%00x", "/%00x", b"/%00x"),
            ("/%2500", "/%2500", b"/%00"),
            ("/plain", "/plain", b"/plain"),
            ("/%41%42%43", "/ABC", b"/ABC"),
            ("/a/./b/../c", "/a/c", b"/a/c"),
        ];
        for (path, uri, want) in cases {
            let req = format!("GET {path}?q=%41 HTTP/1.1\r\nHost: h\r\n\r\n");
            let p = request(req.as_bytes(), &vars()).unwrap();
            assert_eq!(get(&p, "PATH_INFO"), Some(*want), "{path}");
            assert_eq!(get(&p, "QUERY_STRING"), Some(&b"q=%41"[..]));
            assert_eq!(
                get(&p, "REQUEST_URI").unwrap(),
                format!("{uri}?q=%41").as_bytes()
            );
        }
    }

    #[test]
    fn absolute_form_and_hosts() {
        let req = b"GET http://Auth.example:81/p%21?z HTTP/1.1\r\nHost: other\r\n\r\n";
        let p = request(req, &vars()).unwrap();
        assert_eq!(get(&p, "REQUEST_URI"), Some(&b"/p%21?z"[..]));
        assert_eq!(get(&p, "PATH_INFO"), Some(&b"/p!"[..]));
        assert_eq!(get(&p, "HTTP_HOST"), Some(&b"Auth.example:81"[..]));
        assert_eq!(get(&p, "SERVER_NAME"), Some(&b"Auth.example"[..]));
        let p = request(b"GET http://h HTTP/1.0\r\n\r\n", &vars()).unwrap();
        assert_eq!(get(&p, "REQUEST_URI"), Some(&b"/"[..]));
        assert_eq!(get(&p, "PATH_INFO"), Some(&b"/"[..]));
        let p = request(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", &vars()).unwrap();
        assert_eq!(get(&p, "SERVER_NAME"), Some(&b"[::1]"[..]));
        let p = request(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &vars()).unwrap();
        assert_eq!(get(&p, "REQUEST_URI"), Some(&b"*"[..]));
        assert_eq!(get(&p, "PATH_INFO"), Some(&b"*"[..]));
        assert_eq!(get(&p, "SERVER_NAME"), Some(&b"h"[..]));
    }

    #[test]
    fn cookie_and_duplicate_joining() {
        let req = b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nX-A: 1\r\ncookie: b=2; c=3\r\n\
            COOKIE:\r\nx-a: 2\r\nCookie: d=4\r\n\r\n";
        let p = request(req, &vars()).unwrap();
        assert_eq!(get(&p, "HTTP_COOKIE"), Some(&b"a=1; b=2; c=3; d=4"[..]));
        assert_eq!(get(&p, "HTTP_X_A"), Some(&b"1, 2"[..]));
    }

    #[test]
    fn xff_replace_or_append() {
        let req = b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n\
            X-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n\r\n";
        let p = request(req, &vars()).unwrap();
        assert_eq!(get(&p, "HTTP_X_FORWARDED_FOR"), Some(&b"198.51.100.4"[..]));
        let v = UwsgiVars {
            client_trusted: true,
            real_ip: None,
            underscores: false,
            remote_addr: "::ffff:10.0.0.1".parse().unwrap(),
            ..vars()
        };
        let p = request(req, &v).unwrap();
        assert_eq!(
            get(&p, "HTTP_X_FORWARDED_FOR"),
            Some(&b"1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.1"[..])
        );
        assert_eq!(get(&p, "REMOTE_ADDR"), Some(&b"10.0.0.1"[..]));
        // Trusted, but the client marked its XFF hop-by-hop: not carried over.
        let req = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Forwarded-For\r\n\
            X-Forwarded-For: 1.1.1.1\r\n\r\n";
        let p = request(req, &v).unwrap();
        assert_eq!(get(&p, "HTTP_X_FORWARDED_FOR"), Some(&b"10.0.0.1"[..]));
    }

    #[test]
    fn https_scheme() {
        let v = UwsgiVars {
            scheme: "https",
            ..vars()
        };
        let p = request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &v).unwrap();
        assert_eq!(get(&p, "HTTPS"), Some(&b"on"[..]));
        assert_eq!(get(&p, "REQUEST_SCHEME"), Some(&b"https"[..]));
        assert_eq!(get(&p, "HTTP_X_FORWARDED_PROTO"), Some(&b"https"[..]));
    }

    fn limits() -> Limits {
        Limits {
            max_header_bytes: 1 << 20,
            max_headers: 1000,
            max_target_bytes: 1 << 20,
        }
    }

    fn raw(req: &[u8]) -> Result<Vec<u8>, UwsgiError> {
        let mut hs = Vec::new();
        let head = parse_head(req, &limits(), &mut hs).unwrap();
        let mut out = Vec::new();
        encode(&mut out, req, &head, &hs, &vars()).map(|()| out)
    }

    #[test]
    fn too_large() {
        // One huge header value.
        let mut req = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: ".to_vec();
        req.extend(std::iter::repeat_n(b'a', 70_000));
        req.extend_from_slice(b"\r\n\r\n");
        assert_eq!(raw(&req), Err(UwsgiError::TooLarge));
        // Joined duplicates over 64 KiB.
        let mut req = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for _ in 0..3 {
            req.extend_from_slice(b"X-Dup: ");
            req.extend(std::iter::repeat_n(b'b', 30_000));
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"\r\n");
        assert_eq!(raw(&req), Err(UwsgiError::TooLarge));
        // Many small headers: each var fits, the block does not.
        let mut req = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 0..700 {
            req.extend_from_slice(format!("X-H{i}: ").as_bytes());
            req.extend(std::iter::repeat_n(b'c', 100));
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"\r\n");
        assert_eq!(raw(&req), Err(UwsgiError::TooLarge));
        // A huge target (REQUEST_URI / PATH_INFO).
        let mut req = b"GET /".to_vec();
        req.extend(std::iter::repeat_n(b'p', 70_000));
        req.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(raw(&req), Err(UwsgiError::TooLarge));
        // Just under the limit works and the size field is exact.
        let mut req = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: ".to_vec();
        req.extend(std::iter::repeat_n(b'a', 60_000));
        req.extend_from_slice(b"\r\n\r\n");
        let out = raw(&req).unwrap();
        let p = decode(&out);
        assert_eq!(get(&p, "HTTP_X_BIG").unwrap().len(), 60_000);
    }

    #[test]
    fn ping_pong() {
        assert_eq!(PING, [100, 0, 0, 0]);
        assert!(is_pong(&[100, 0, 0, 1]));
        assert!(is_pong(&[100, 5, 0, 1, b'h']));
        assert_eq!(pong_message_len(&[100, 5, 1, 1]), Some(261));
        assert_eq!(pong_message_len(&[100, 0, 0, 1]), Some(0));
        assert!(!is_pong(&PING));
        assert!(!is_pong(&[100, 0, 0]));
        assert!(!is_pong(&[0, 0, 0, 1]));
        assert!(!is_pong(b""));
        assert_eq!(pong_message_len(&[72, 0, 0, 1]), None);
    }

    #[test]
    fn mutated_requests_encode_and_decode() {
        let base = b"POST http://h:1/p%41?q HTTP/1.1\r\nHost: h:1\r\nConnection: a\r\n\
            A: 1\r\nCookie: c=1\r\nx-a: 2\r\nA_B: 3\r\nX-Forwarded-For: 1.1.1.1\r\n\
            Content-Length: 3\r\n\r\n";
        let mut hs = Vec::new();
        let mut out = Vec::new();
        let mut checked = 0;
        for i in 0..base.len() {
            for b in [0u8, b'\r', b'\n', b' ', b':', b'_', b'%', b'-', b'a', 0xff] {
                let mut m = base.to_vec();
                m[i] = b;
                let Ok(head) = parse_head(&m, &Limits::default(), &mut hs) else {
                    continue;
                };
                out.clear();
                encode(&mut out, &m, &head, &hs, &vars()).unwrap();
                let p = decode(&out);
                assert!(p.iter().all(|(k, _)| !k.starts_with("UWSGI")));
                assert_eq!(get(&p, "REQUEST_METHOD"), Some(head.method.get(&m)));
                checked += 1;
            }
        }
        assert!(checked > 100, "{checked}");
    }
}
