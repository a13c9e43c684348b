//! The uwsgi request encoder (`proxy::uwsgi::write_request`).
//!
//! Input byte 0 picks the mode:
//! - even: the rest is a raw request head, parsed by uringd's parser (generous
//!   limits) as the proxy does; a rejected head ends the run;
//! - odd: a `Head` and header spans are built directly from the bytes (any bytes in
//!   method, target, names and values; header values up to just past 64 KiB), to
//!   reach what the parser would never produce and the size limits.
//!
//! The packet is decoded here (4-byte header: modifier1, datasize u16le, modifier2;
//! then `u16le len, key, u16le len, value` pairs) and compared with a model of the
//! variables written here from the module's documentation. Checked: either the
//! encoder returns Ok and the packet decodes exactly to the model's variables (no
//! duplicate key, no `UWSGI_` key, datasize right), or it returns TooLarge exactly
//! when the model's packet would not fit the u16 sizes, leaving the output buffer
//! as it was.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use uringd::http::framing::Decode;
use uringd::http::parser::{Head, HeaderSpan, Limits, Method, Span, Version, parse_head};
use uringd::proxy::uwsgi::{UwsgiError, UwsgiVars, write_request};

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

// ---------------------------------------------------------------- the model

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Names whose client lines never become an HTTP_ variable (`Forwarded` does from a
/// trusted peer).
fn dropped(name: &[u8], trusted: bool) -> bool {
    let n = name.to_ascii_lowercase();
    if n == b"forwarded" {
        return !trusted;
    }
    const DROP: [&[u8]; 15] = [
        b"host",
        // uringd answers 100-continue itself and sends the body it has taken.
        b"expect",
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"content-length",
        b"content-type",
        b"upgrade",
        b"proxy",
        b"x-real-ip",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
    ];
    DROP.contains(&n.as_slice()) || n.starts_with(b"proxy-")
}

/// Lowercased names listed by Connection headers (hop-by-hop), minus the two
/// options handled by explicit rules.
fn connection_named(buf: &[u8], hs: &[HeaderSpan]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for h in hs {
        if !h.name.get(buf).eq_ignore_ascii_case(b"connection") {
            continue;
        }
        for tok in h.value.get(buf).split(|&b| b == b',').map(trim) {
            let t = tok.to_ascii_lowercase();
            if !t.is_empty() && t != b"keep-alive" && t != b"upgrade" {
                out.push(t);
            }
        }
    }
    out
}

fn pct_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            )
            && (h, l) != (0, 0)
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fn model(buf: &[u8], head: &Head, hs: &[HeaderSpan], v: &UwsgiVars) -> Pairs {
    let conn = connection_named(buf, hs);
    let named = |name: &[u8]| conn.contains(&name.to_ascii_lowercase());
    let host: Option<&[u8]> = match head.authority {
        Some(a) => Some(a.get(buf)),
        None => hs
            .iter()
            .find(|h| h.name.get(buf).eq_ignore_ascii_case(b"host"))
            .map(|h| h.value.get(buf)),
    };
    // The path the worker passes: what routing matched (normalized, http/path.rs).
    let path: &[u8] = v.path;
    let mut p: Pairs = Vec::new();
    let mut put = |k: &[u8], val: Vec<u8>| p.push((k.to_vec(), val));

    put(b"REQUEST_METHOD", head.method.get(buf).to_vec());
    let mut uri = path.to_vec();
    if let Some(q) = head.query {
        uri.push(b'?');
        uri.extend_from_slice(q.get(buf));
    }
    put(b"REQUEST_URI", uri);
    put(b"PATH_INFO", pct_decode(path));
    put(
        b"QUERY_STRING",
        head.query.map(|q| q.get(buf).to_vec()).unwrap_or_default(),
    );
    put(
        b"SERVER_PROTOCOL",
        match head.version {
            Version::Http10 => b"HTTP/1.0".to_vec(),
            Version::Http11 => b"HTTP/1.1".to_vec(),
        },
    );
    let ctype = hs
        .iter()
        .map(|h| (h.name.get(buf), h.value.get(buf)))
        .find(|(n, _)| n.eq_ignore_ascii_case(b"content-type") && !named(n))
        .map(|(_, v)| v.to_vec())
        .unwrap_or_default();
    put(b"CONTENT_TYPE", ctype);
    put(b"CONTENT_LENGTH", v.content_length.to_string().into_bytes());
    let ip = v.remote_addr.to_canonical().to_string().into_bytes();
    put(b"REMOTE_ADDR", ip.clone());
    put(b"REMOTE_PORT", v.remote_port.to_string().into_bytes());
    let server_name = host
        .map(|h| {
            if h.first() == Some(&b'[') {
                match h.iter().position(|&b| b == b']') {
                    Some(i) => &h[..=i],
                    None => h,
                }
            } else {
                h.split(|&b| b == b':').next().unwrap_or(h)
            }
        })
        .filter(|h| !h.is_empty())
        .unwrap_or(v.server_name.as_bytes());
    put(b"SERVER_NAME", server_name.to_vec());
    put(b"SERVER_PORT", v.server_port.to_string().into_bytes());
    put(b"REQUEST_SCHEME", v.scheme.as_bytes().to_vec());
    let https = v.scheme.eq_ignore_ascii_case("https");
    put(
        b"HTTPS",
        if https {
            b"on".to_vec()
        } else {
            b"off".to_vec()
        },
    );
    if let Some(h) = host {
        put(b"HTTP_HOST", h.to_vec());
    }

    let mut seen: Vec<Vec<u8>> = Vec::new();
    for h in hs {
        let name = h.name.get(buf);
        let lower = name.to_ascii_lowercase();
        if dropped(name, v.client_trusted) || name.contains(&b'_') || named(name) || seen.contains(&lower) {
            continue;
        }
        seen.push(lower);
        let sep: &[u8] = if name.eq_ignore_ascii_case(b"cookie") {
            b"; "
        } else {
            b", "
        };
        let joined: Vec<&[u8]> = hs
            .iter()
            .filter(|o| o.name.get(buf).eq_ignore_ascii_case(name))
            .map(|o| o.value.get(buf))
            .filter(|v| !v.is_empty())
            .collect();
        let mut key = b"HTTP_".to_vec();
        key.extend(name.iter().map(|&b| match b {
            b'-' => b'_',
            _ => b.to_ascii_uppercase(),
        }));
        put(&key, joined.join(sep));
    }

    let mut xff = Vec::new();
    if v.client_trusted {
        for h in hs {
            let (n, val) = (h.name.get(buf), h.value.get(buf));
            if n.eq_ignore_ascii_case(b"x-forwarded-for") && !named(n) && !val.is_empty() {
                xff.extend_from_slice(val);
                xff.extend_from_slice(b", ");
            }
        }
    }
    xff.extend_from_slice(&ip);
    put(b"HTTP_X_FORWARDED_FOR", xff);
    let theirs = hs
        .iter()
        .filter(|h| h.name.get(buf).eq_ignore_ascii_case(b"x-real-ip"))
        .map(|h| h.value.get(buf))
        .find(|v| !v.is_empty());
    let real = match theirs {
        Some(t) if v.client_trusted => t.to_vec(),
        _ => ip.clone(),
    };
    put(b"HTTP_X_REAL_IP", real);
    put(b"HTTP_X_FORWARDED_PROTO", v.scheme.as_bytes().to_vec());
    if let Some(h) = host {
        put(b"HTTP_X_FORWARDED_HOST", h.to_vec());
    }
    p
}

fn fits(p: &Pairs) -> bool {
    let max = usize::from(u16::MAX);
    let total: usize = p.iter().map(|(k, v)| 4 + k.len() + v.len()).sum();
    total <= max && p.iter().all(|(k, v)| k.len() <= max && v.len() <= max)
}

/// Decodes a uwsgi request packet; panics on any malformation.
fn decode(pkt: &[u8]) -> Pairs {
    assert!(pkt.len() >= 4, "packet shorter than its header");
    assert_eq!(pkt[0], 0, "modifier1");
    assert_eq!(pkt[3], 0, "modifier2");
    let size = usize::from(u16::from_le_bytes([pkt[1], pkt[2]]));
    assert_eq!(size, pkt.len() - 4, "datasize");
    let mut rest = &pkt[4..];
    let take = |rest: &mut &[u8]| -> Vec<u8> {
        assert!(rest.len() >= 2, "truncated length");
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        assert!(rest.len() >= 2 + n, "truncated item");
        let item = rest[2..2 + n].to_vec();
        *rest = &rest[2 + n..];
        item
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        let k = take(&mut rest);
        let v = take(&mut rest);
        out.push((k, v));
    }
    out
}

fn check(buf: &[u8], head: &Head, hs: &[HeaderSpan], v: &UwsgiVars) {
    let mut out = b"previous bytes".to_vec();
    let r = write_request(&mut out, buf, head, hs, v);
    let want = model(buf, head, hs, v);
    match r {
        Ok(()) => {
            assert!(out.starts_with(b"previous bytes"), "earlier output changed");
            let got = decode(&out[14..]);
            for (i, (k, _)) in got.iter().enumerate() {
                assert!(!k.starts_with(b"UWSGI_"), "client-made UWSGI_ key");
                assert!(
                    got[..i].iter().all(|(o, _)| o != k),
                    "duplicate key {}",
                    String::from_utf8_lossy(k)
                );
            }
            if got != want {
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        (String::from_utf8_lossy(&g.0), String::from_utf8_lossy(&g.1)),
                        (String::from_utf8_lossy(&w.0), String::from_utf8_lossy(&w.1)),
                        "variable {i} differs from the model"
                    );
                }
                panic!("{} variables, model has {}", got.len(), want.len());
            }
        }
        Err(UwsgiError::TooLarge) => {
            assert_eq!(out, b"previous bytes", "output changed on error");
            assert!(!fits(&want), "TooLarge, but the model's packet fits");
        }
    }
}

// -------------------------------------------------------- building inputs

struct Reader<'a> {
    d: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> u8 {
        match self.d.split_first() {
            Some((&b, rest)) => {
                self.d = rest;
                b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.d.split_at(n.min(self.d.len()));
        self.d = b;
        a
    }
    /// A short byte string; a length byte of 0xf0 and up makes it a long one
    /// (just under to just over 64 KiB, or a few KiB).
    fn blob(&mut self) -> Vec<u8> {
        let len = self.u8();
        let seed = self.bytes(usize::from(len % 48)).to_vec();
        let fill = |n: usize| -> Vec<u8> {
            if seed.is_empty() {
                vec![b'a'; n]
            } else {
                seed.iter().copied().cycle().take(n).collect()
            }
        };
        match len {
            0xf0.. => fill(65535 - 8 + usize::from(len - 0xf0)),
            0xe0.. => fill(usize::from(len - 0xdf) * 1024),
            _ => seed,
        }
    }
}

const NAMES: [&[u8]; 24] = [
    b"Host",
    b"Connection",
    b"Content-Type",
    b"Content-Length",
    b"Cookie",
    b"Via",
    b"X-Forwarded-For",
    b"X-Forwarded-Host",
    b"X-Forwarded-Proto",
    b"Forwarded",
    b"Proxy",
    b"Proxy-Authorization",
    b"Keep-Alive",
    b"TE",
    b"Trailer",
    b"Transfer-Encoding",
    b"Upgrade",
    b"X-Foo",
    b"x-foo",
    b"X_Foo",
    b"uwsgi-script",
    b"Accept",
    b"cookie",
    b"HOST",
];

fn vars_from(flags: u8, r: &mut Reader, server_name: &'static str) -> UwsgiVars<'static> {
    let ip = match flags >> 2 & 3 {
        0 => IpAddr::V4(Ipv4Addr::new(198, 51, 100, 4)),
        1 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
        2 => IpAddr::V6(Ipv4Addr::new(192, 0, 2, 9).to_ipv6_mapped()),
        _ => {
            let b = r.bytes(16);
            let mut a = [0u8; 16];
            a[..b.len()].copy_from_slice(b);
            IpAddr::V6(Ipv6Addr::from(a))
        }
    };
    let scheme = ["http", "https", "HTTPS", ""][usize::from(flags >> 4 & 3)];
    UwsgiVars {
        path: b"",
        remote_addr: ip,
        remote_port: u16::from_le_bytes([r.u8(), r.u8()]),
        server_name,
        server_port: 8080,
        scheme,
        content_length: 0,
        client_trusted: flags & 2 != 0,
        real_ip: None,
        underscores: false,
    }
}

fn server_name(flags: u8) -> &'static str {
    static LONG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if flags & 0x40 != 0 {
        LONG.get_or_init(|| "s".repeat(65535 - 300))
    } else {
        "default.example"
    }
}

fn parsed_mode(flags: u8, req: &[u8]) {
    let limits = Limits {
        max_header_bytes: 1 << 20,
        max_headers: 10_000,
        max_target_bytes: 1 << 20,
    };
    let mut hs = Vec::new();
    let Ok(head) = parse_head(req, &limits, &mut hs) else {
        return;
    };
    let mut r = Reader {
        d: &req[head.head_len..],
    };
    let mut path = Vec::new();
    if uringd::http::path::normalize(head.path_or_root(req), &mut path).is_err() {
        return; // refused with 400 before it reaches an upstream
    }
    let mut v = vars_from(flags, &mut r, server_name(flags));
    if let Decode::Length(n) = head.body {
        v.content_length = n;
    }
    check(req, &head, &hs, &UwsgiVars { path: &path, ..v });
}

fn built_mode(flags: u8, d: &[u8]) {
    let mut r = Reader { d };
    let mut buf: Vec<u8> = Vec::new();
    let span = |buf: &mut Vec<u8>, b: &[u8]| {
        let start = buf.len() as u32;
        buf.extend_from_slice(b);
        Span {
            start,
            end: buf.len() as u32,
        }
    };
    let method = r.blob();
    let method = span(&mut buf, &method);
    let form = r.u8();
    let t_start = buf.len() as u32;
    let (path, query, authority) = match form % 3 {
        0 => {
            let p = r.blob();
            let path = span(&mut buf, &p);
            let query = (form & 4 != 0).then(|| {
                buf.push(b'?');
                let q = r.blob();
                span(&mut buf, &q)
            });
            (path, query, None)
        }
        1 => {
            buf.extend_from_slice(b"http://");
            let a = r.blob();
            let authority = span(&mut buf, &a);
            let p = r.blob();
            let path = span(&mut buf, &p);
            let query = (form & 4 != 0).then(|| {
                buf.push(b'?');
                let q = r.blob();
                span(&mut buf, &q)
            });
            (path, query, Some(authority))
        }
        _ => {
            let star = span(&mut buf, b"*");
            (star, None, None)
        }
    };
    let target = Span {
        start: t_start,
        end: buf.len() as u32,
    };
    let mut hs = Vec::new();
    for _ in 0..r.u8() % 24 {
        let pick = r.u8();
        let name = match NAMES.get(usize::from(pick)) {
            Some(n) => n.to_vec(),
            None => {
                let n = usize::from(pick % 12);
                r.bytes(n).to_vec()
            }
        };
        let name = span(&mut buf, &name);
        let value = r.blob();
        let value = span(&mut buf, &value);
        hs.push(HeaderSpan { name, value });
    }
    let host = hs
        .iter()
        .find(|h| h.name.get(&buf).eq_ignore_ascii_case(b"host"))
        .map(|h| h.value);
    let head = Head {
        head_len: buf.len(),
        method,
        method_kind: Method::Other,
        target,
        path,
        query,
        authority,
        version: if form & 8 != 0 {
            Version::Http10
        } else {
            Version::Http11
        },
        host,
        body: Decode::None,
        keep_alive: true,
        expect_continue: false,
        upgrade: false,
    };
    let mut v = vars_from(flags, &mut r, server_name(flags));
    let cl = r.bytes(8);
    let mut a = [0u8; 8];
    a[..cl.len()].copy_from_slice(cl);
    v.content_length = u64::from_le_bytes(a);
    // Any bytes as the path: the encoder writes what it is given.
    let path = head.path.get(&buf).to_vec();
    check(&buf, &head, &hs, &UwsgiVars { path: &path, ..v });
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    if flags & 1 == 0 {
        parsed_mode(flags, rest);
    } else {
        built_mode(flags, rest);
    }
});
