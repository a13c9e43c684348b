//! Strict HTTP/1.1 request-head parser (RFC 9112 / RFC 9110).
//!
//! One forward pass over the head; headers are returned as offsets into the
//! caller's buffer so a single `Vec<HeaderSpan>` can be reused across requests.

use super::fields::{self, Line};
use super::framing::Decode;
use super::scan::MAX_LEADING_EMPTY_LINES;

/// Byte range `start..end` into the head buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub(super) fn new(start: usize, end: usize) -> Self {
        // parse_head caps the buffer below u32::MAX, so these never truncate.
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The bytes of this span; empty (never a panic) if it does not fit `buf`.
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One header line; `value` is already trimmed of leading/trailing SP/HTAB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderSpan {
    pub name: Span,
    pub value: Span,
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Whole head including the request line and the final CRLFCRLF.
    pub max_header_bytes: usize,
    /// Number of header lines.
    pub max_headers: usize,
    /// Raw request-target length.
    pub max_target_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_target_bytes: 8 * 1024,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Connect,
    Trace,
    Other,
}

impl Method {
    /// Methods are case-sensitive (RFC 9110 9.1), so `get` is `Other`.
    fn from_bytes(m: &[u8]) -> Method {
        match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"CONNECT" => Method::Connect,
            b"TRACE" => Method::Trace,
            _ => Method::Other,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Bytes of the head including leading empty lines and the final CRLFCRLF.
    pub head_len: usize,
    pub method: Span,
    pub method_kind: Method,
    /// Raw request-target.
    pub target: Span,
    /// Routing path. origin-form: the target up to '?'. absolute-form: the
    /// part after the authority up to '?'; it is EMPTY when the target has no
    /// path (`http://h` or `http://h?q`), meaning "/" (use `path_or_root`).
    /// asterisk-form: the span of `*`.
    pub path: Span,
    /// After '?', without it (may be empty for a trailing '?').
    pub query: Option<Span>,
    /// Authority of an absolute-form target; takes precedence over Host.
    pub authority: Option<Span>,
    pub version: Version,
    pub host: Option<Span>,
    pub body: Decode,
    pub keep_alive: bool,
    /// Only set for HTTP/1.1: RFC 9110 10.1.1 says to ignore it on 1.0.
    pub expect_continue: bool,
    pub upgrade: bool,
}

impl Head {
    /// The routing path, with an empty absolute-form path reported as "/".
    pub fn path_or_root<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        if self.path.is_empty() {
            b"/"
        } else {
            self.path.get(buf)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    BadRequest(&'static str),
    UriTooLong,
    HeaderTooLarge,
    NotImplemented,
    VersionNotSupported,
    ExpectationFailed,
    PayloadTooLarge,
}

impl ParseError {
    pub fn status(&self) -> u16 {
        match self {
            ParseError::BadRequest(_) => 400,
            ParseError::UriTooLong => 414,
            ParseError::HeaderTooLarge => 431,
            ParseError::NotImplemented => 501,
            ParseError::VersionNotSupported => 505,
            ParseError::ExpectationFailed => 417,
            ParseError::PayloadTooLarge => 413,
        }
    }
}

// Byte classes, one table lookup per byte on the hot path.
pub(super) const TCHAR: u8 = 1;
/// Field-value bytes: VCHAR, SP, HTAB, obs-text.
pub(super) const VALUE: u8 = 2;
/// Request-target bytes: anything above SP except DEL (obs-text tolerated).
const TARGET: u8 = 4;
/// reg-name / IP-literal / port characters for Host and absolute-form authority.
const HOST: u8 = 8;

const fn build_classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        let alnum = b.is_ascii_alphanumeric();
        if alnum
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            )
        {
            c |= TCHAR;
        }
        if b == b'\t' || (b >= 0x20 && b != 0x7f) {
            c |= VALUE;
        }
        if b > 0x20 && b != 0x7f {
            c |= TARGET;
        }
        if alnum
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'['
                    | b']'
            )
        {
            c |= HOST;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CLASSES: [u8; 256] = build_classes();

#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    CLASSES[b as usize] & TCHAR != 0
}

#[inline]
pub(crate) fn is_value_byte(b: u8) -> bool {
    CLASSES[b as usize] & VALUE != 0
}

/// First index >= `start` whose byte is not in `class` (or `buf.len()`).
#[inline]
pub(super) fn skip_class(buf: &[u8], start: usize, class: u8) -> usize {
    match buf.get(start..) {
        Some(rest) => {
            start
                + rest
                    .iter()
                    .position(|&b| CLASSES[b as usize] & class == 0)
                    .unwrap_or(rest.len())
        }
        None => buf.len(),
    }
}

fn all_class(s: &[u8], class: u8) -> bool {
    s.iter().all(|&b| CLASSES[b as usize] & class != 0)
}

pub(super) fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Content-Length's value (RFC 9110 8.6): 1*DIGIT, at most 19 digits so it always fits in
/// u64. The one parser for requests and responses; what a repeat means is each caller's
/// rule (a request refuses any repeat, a response allows identical ones).
pub(crate) fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n)
}

/// Transfer-Encoding rule (RFC 9112 6.1 / 6.3), value compared case-insensitively:
/// - syntax: a comma list of bare tokens; an empty element, quotes, parameters
///   (`;`) or any non-tchar -> 400.
/// - `chunked` more than once, or not the last element -> 400 (length unknowable).
/// - exactly `chunked` -> Chunked.
/// - other codings followed by a final `chunked` (e.g. `gzip, chunked`) -> 501.
/// - no `chunked`: a single registered transfer coding we do not implement
///   (gzip, x-gzip, deflate, compress, x-compress) -> 501; anything else,
///   including `identity` (removed from the registry by RFC 7230), unknown
///   tokens like `xchunked`, and lists -> 400, since the body length cannot be
///   determined (RFC 9112 6.3).
fn classify_transfer_encoding(v: &[u8]) -> Result<Decode, ParseError> {
    let mut elems = 0usize;
    let mut chunked_count = 0usize;
    let mut last_is_chunked = false;
    let mut only: &[u8] = &[];
    for raw in v.split(|&b| b == b',') {
        let e = trim_ows(raw);
        if e.is_empty() || !all_class(e, TCHAR) {
            return Err(ParseError::BadRequest("invalid Transfer-Encoding"));
        }
        elems += 1;
        last_is_chunked = e.eq_ignore_ascii_case(b"chunked");
        if last_is_chunked {
            chunked_count += 1;
        }
        only = e;
    }
    if chunked_count > 1 || (chunked_count == 1 && !last_is_chunked) {
        return Err(ParseError::BadRequest("chunked must be the final coding"));
    }
    if chunked_count == 1 {
        return if elems == 1 {
            Ok(Decode::Chunked)
        } else {
            Err(ParseError::NotImplemented)
        };
    }
    let known = [
        b"gzip".as_slice(),
        b"x-gzip",
        b"deflate",
        b"compress",
        b"x-compress",
    ];
    if elems == 1 && known.iter().any(|k| only.eq_ignore_ascii_case(k)) {
        Err(ParseError::NotImplemented)
    } else {
        Err(ParseError::BadRequest("unsupported Transfer-Encoding"))
    }
}

fn bad(why: &'static str) -> ParseError {
    ParseError::BadRequest(why)
}

/// Parse a complete request head. `buf` normally is exactly what the scanner
/// returned; bytes after the terminating empty line are ignored (the result's
/// `head_len` says where the head ends). `headers` is cleared and refilled.
/// The value of the first header named `name` (ASCII case-insensitive).
pub fn find_header<'a>(buf: &'a [u8], headers: &[HeaderSpan], name: &[u8]) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.get(buf).eq_ignore_ascii_case(name))
        .map(|h| h.value.get(buf))
}

pub fn parse_head(
    buf: &[u8],
    limits: &Limits,
    headers: &mut Vec<HeaderSpan>,
) -> Result<Head, ParseError> {
    headers.clear();
    // Keep every offset (plus small constants) far below u32::MAX so spans
    // never truncate and index arithmetic never overflows.
    let buf = buf.get(..(u32::MAX >> 1) as usize).unwrap_or(buf);

    let mut i = 0usize;
    let mut skipped = 0;
    while skipped < MAX_LEADING_EMPTY_LINES && buf.get(i..i + 2) == Some(b"\r\n") {
        i += 2;
        skipped += 1;
    }

    // method SP
    let m_start = i;
    i = skip_class(buf, i, TCHAR);
    if i == m_start || buf.get(i) != Some(&b' ') {
        return Err(bad("invalid method"));
    }
    let method = Span::new(m_start, i);
    let method_kind = Method::from_bytes(buf.get(m_start..i).unwrap_or(&[]));
    i += 1;

    // request-target SP
    let t_start = i;
    i = skip_class(buf, i, TARGET);
    let t_end = i;
    if t_end == t_start {
        return Err(bad("empty request-target"));
    }
    if t_end - t_start > limits.max_target_bytes {
        return Err(ParseError::UriTooLong);
    }
    match buf.get(i) {
        Some(b' ') => {}
        Some(b'\r') => return Err(bad("missing HTTP version")),
        _ => return Err(bad("invalid request-target")),
    }
    i += 1;

    // HTTP-version CRLF
    let version = match buf.get(i..i + 10) {
        Some(&[b'H', b'T', b'T', b'P', b'/', maj, b'.', min, b'\r', b'\n'])
            if maj.is_ascii_digit() && min.is_ascii_digit() =>
        {
            match (maj, min) {
                (b'1', b'0') => Version::Http10,
                (b'1', b'1') => Version::Http11,
                _ => return Err(ParseError::VersionNotSupported),
            }
        }
        _ => return Err(bad("invalid HTTP version")),
    };
    i += 10;

    let target = Span::new(t_start, t_end);
    let (path, query, authority) = split_target(buf, t_start, t_end, method_kind)?;

    let mut host: Option<Span> = None;
    let mut content_length: Option<u64> = None;
    let mut te: Option<Result<Decode, ParseError>> = None;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut expect_continue = false;
    let mut expect_failed = false;
    let mut upgrade = false;

    loop {
        if i > limits.max_header_bytes {
            return Err(ParseError::HeaderTooLarge);
        }
        let line = fields::read_line(buf, i);
        // The count is checked after the line-start faults and before the field's own.
        if headers.len() >= limits.max_headers
            && !matches!(line, Ok(Line::End(_)))
            && !matches!(line, Err(e) if e.at_line_start())
        {
            return Err(ParseError::HeaderTooLarge);
        }
        let (h, next) = match line {
            Ok(Line::End(end)) => {
                i = end;
                break;
            }
            Ok(Line::Field(h, next)) => (h, next),
            Err(e) => return Err(bad(e.why())),
        };
        i = next;
        headers.push(h);
        let value_span = h.value;
        let name = h.name.get(buf);
        let value = value_span.get(buf);
        // Dispatch on length first so most headers cost one compare or none.
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                if host.is_some() {
                    return Err(bad("duplicate Host"));
                }
                // Empty Host is legal only for authority-less URIs; we never
                // serve those, so reject it outright.
                if value.is_empty() || !all_class(value, HOST) {
                    return Err(bad("invalid Host"));
                }
                host = Some(value_span);
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                if value.eq_ignore_ascii_case(b"100-continue") {
                    expect_continue = true;
                } else {
                    expect_failed = true;
                }
            }
            7 if name.eq_ignore_ascii_case(b"upgrade") => upgrade = true,
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for tok in value.split(|&b| b == b',') {
                    let tok = trim_ows(tok);
                    if tok.eq_ignore_ascii_case(b"close") {
                        conn_close = true;
                    } else if tok.eq_ignore_ascii_case(b"keep-alive") {
                        conn_keep_alive = true;
                    }
                }
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                let n = parse_content_length(value).ok_or(bad("invalid Content-Length"))?;
                // RFC 9110 8.6 allows merging identical repeats; like nginx we refuse any
                // repeat, since a peer that takes the first or last line may disagree.
                if content_length.is_some() {
                    return Err(bad("repeated Content-Length"));
                }
                content_length = Some(n);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                if te.is_some() {
                    return Err(bad("multiple Transfer-Encoding"));
                }
                te = Some(classify_transfer_encoding(value));
            }
            _ => {}
        }
    }

    if i > limits.max_header_bytes {
        return Err(ParseError::HeaderTooLarge);
    }

    // All 400s first, then 501, then 417, so the most basic fault is reported.
    if version == Version::Http11 && host.is_none() {
        return Err(bad("missing Host"));
    }
    let body = match (te, content_length) {
        (Some(_), Some(_)) => return Err(bad("Transfer-Encoding with Content-Length")),
        (Some(_), None) if version == Version::Http10 => {
            return Err(bad("Transfer-Encoding on HTTP/1.0"));
        }
        (Some(Err(e)), None) => return Err(e),
        (Some(Ok(kind)), None) => kind,
        (None, Some(n)) => Decode::Length(n),
        (None, None) => Decode::None,
    };
    if expect_failed {
        return Err(ParseError::ExpectationFailed);
    }

    let keep_alive = match version {
        Version::Http11 => !conn_close,
        Version::Http10 => conn_keep_alive && !conn_close,
    };

    Ok(Head {
        head_len: i,
        method,
        method_kind,
        target,
        path,
        query,
        authority,
        version,
        host,
        body,
        keep_alive,
        expect_continue: expect_continue && version == Version::Http11,
        upgrade,
    })
}

type TargetParts = (Span, Option<Span>, Option<Span>);

/// Split the request-target into (path, query, authority) by its form.
fn split_target(
    buf: &[u8],
    t_start: usize,
    t_end: usize,
    method: Method,
) -> Result<TargetParts, ParseError> {
    let target = buf.get(t_start..t_end).unwrap_or(&[]);
    // We do not tunnel: CONNECT needs authority-form, which we reject anyway.
    if method == Method::Connect {
        return Err(ParseError::NotImplemented);
    }
    if target.first() == Some(&b'/') {
        let (path, query) = split_query(target, t_start);
        return Ok((path, query, None));
    }
    if target == b"*" {
        if method != Method::Options {
            return Err(bad("asterisk-form only valid for OPTIONS"));
        }
        return Ok((Span::new(t_start, t_end), None, None));
    }
    let scheme_len = if target
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case(b"http://"))
    {
        7
    } else if target
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case(b"https://"))
    {
        8
    } else {
        return Err(bad("unsupported request-target form"));
    };
    let rest = target.get(scheme_len..).unwrap_or(&[]);
    let auth_len = memchr::memchr2(b'/', b'?', rest).unwrap_or(rest.len());
    let auth = rest.get(..auth_len).unwrap_or(&[]);
    // Also rejects userinfo ('@'), which senders must not generate (RFC 9110 4.2.4).
    if auth.is_empty() || !all_class(auth, HOST) {
        return Err(bad("invalid authority"));
    }
    let a_start = t_start + scheme_len;
    let a_end = a_start + auth_len;
    let after = rest.get(auth_len..).unwrap_or(&[]);
    let (path, query) = split_query(after, a_end);
    Ok((path, query, Some(Span::new(a_start, a_end))))
}

/// `s` starts at buffer offset `base`; split at the first '?'.
fn split_query(s: &[u8], base: usize) -> (Span, Option<Span>) {
    match memchr::memchr(b'?', s) {
        Some(q) => (
            Span::new(base, base + q),
            Some(Span::new(base + q + 1, base + s.len())),
        ),
        None => (Span::new(base, base + s.len()), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> Result<Head, ParseError> {
        let mut h = Vec::new();
        parse_head(buf, &Limits::default(), &mut h)
    }

    fn status(buf: &[u8]) -> u16 {
        match parse(buf) {
            Ok(_) => 200,
            Err(e) => e.status(),
        }
    }

    /// A request with the given extra header lines on HTTP/1.1 with a Host.
    fn with_headers(lines: &[u8]) -> Vec<u8> {
        let mut v = b"POST / HTTP/1.1\r\nHost: example.com\r\n".to_vec();
        v.extend_from_slice(lines);
        v.extend_from_slice(b"\r\n");
        v
    }

    fn hstatus(lines: &[u8]) -> u16 {
        status(&with_headers(lines))
    }

    fn hbody(lines: &[u8]) -> Decode {
        parse(&with_headers(lines)).unwrap().body
    }

    #[test]
    fn valid_get_with_headers() {
        let buf = b"GET /index.html?a=1&b=2 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t/1.0\r\nAccept:  */*  \r\nX-Empty:\r\n\r\n";
        let mut hs = Vec::new();
        let h = parse_head(buf, &Limits::default(), &mut hs).unwrap();
        assert_eq!(h.head_len, buf.len());
        assert_eq!(h.method.get(buf), b"GET");
        assert_eq!(h.method_kind, Method::Get);
        assert_eq!(h.target.get(buf), b"/index.html?a=1&b=2");
        assert_eq!(h.path.get(buf), b"/index.html");
        assert_eq!(h.query.unwrap().get(buf), b"a=1&b=2");
        assert_eq!(h.authority, None);
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.host.unwrap().get(buf), b"example.com:8080");
        assert_eq!(h.body, Decode::None);
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
        assert!(!h.upgrade);
        assert_eq!(hs.len(), 4);
        assert_eq!(hs[1].name.get(buf), b"User-Agent");
        assert_eq!(hs[1].value.get(buf), b"t/1.0");
        assert_eq!(hs[2].value.get(buf), b"*/*");
        assert_eq!(hs[3].name.get(buf), b"X-Empty");
        assert!(hs[3].value.is_empty());
    }

    #[test]
    fn vec_is_reused_and_cleared() {
        let mut hs = Vec::new();
        let a = b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n\r\n";
        let b = b"GET / HTTP/1.1\r\nHost: b\r\n\r\n";
        parse_head(a, &Limits::default(), &mut hs).unwrap();
        assert_eq!(hs.len(), 3);
        let cap = hs.capacity();
        parse_head(b, &Limits::default(), &mut hs).unwrap();
        assert_eq!(hs.len(), 1);
        assert_eq!(hs.capacity(), cap);
    }

    #[test]
    fn trailing_bytes_after_head_are_ignored() {
        let buf = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n";
        let h = parse(buf).unwrap();
        assert_eq!(h.head_len, 28);
        assert_eq!(h.path.get(buf), b"/a");
    }

    #[test]
    fn head_method_and_others() {
        let h = parse(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(h.method_kind, Method::Head);
        for (m, k) in [
            (&b"POST"[..], Method::Post),
            (b"PUT", Method::Put),
            (b"DELETE", Method::Delete),
            (b"PATCH", Method::Patch),
            (b"TRACE", Method::Trace),
            (b"OPTIONS", Method::Options),
            (b"PROPFIND", Method::Other),
            (b"get", Method::Other),
            (b"M-SEARCH", Method::Other),
        ] {
            let mut v = m.to_vec();
            v.extend_from_slice(b" / HTTP/1.1\r\nHost: x\r\n\r\n");
            assert_eq!(parse(&v).unwrap().method_kind, k);
        }
    }

    #[test]
    fn invalid_methods() {
        assert_eq!(status(b" / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    }

    #[test]
    fn http10_keep_alive_rules() {
        let h = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(h.version, Version::Http10);
        assert!(!h.keep_alive);
        assert_eq!(h.host, None);
        let h = parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
        assert!(h.keep_alive);
        let h = parse(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        let h = parse(b"GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").unwrap();
        assert!(!h.expect_continue);
    }

    #[test]
    fn http11_connection_header() {
        let h = parse(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        let h = parse(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade , CLOSE\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        let h = parse(
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert!(!h.keep_alive);
        let h = parse(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n").unwrap();
        assert!(h.keep_alive);
    }

    #[test]
    fn leading_crlfs_are_skipped() {
        let buf = b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let h = parse(buf).unwrap();
        assert_eq!(h.head_len, buf.len());
        assert_eq!(h.method.get(buf), b"GET");
        assert_eq!(h.method.start, 4);
        let five = b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(status(five), 400);
    }

    #[test]
    fn request_line_errors() {
        // HTTP/0.9 style, missing version
        assert_eq!(status(b"GET /\r\n\r\n"), 400);
        assert_eq!(status(b"GET / \r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / http/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET /  HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\rHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/11\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.x\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.10\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\r\n"), 400);
        assert_eq!(status(b""), 400);
        assert_eq!(status(b"\r\n"), 400);
    }

    #[test]
    fn versions() {
        assert_eq!(status(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
        assert_eq!(status(b"GET / HTTP/0.9\r\nHost: x\r\n\r\n"), 505);
        assert_eq!(status(b"GET / HTTP/1.2\r\nHost: x\r\n\r\n"), 505);
        assert_eq!(status(b"GET / HTTP/3.0\r\nHost: x\r\n\r\n"), 505);
        assert_eq!(status(b"GET / HTTP/1.0\r\n\r\n"), 200);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
    }

    #[test]
    fn target_length_limit() {
        let mut ok = b"GET /".to_vec();
        ok.extend(std::iter::repeat_n(b'a', 8191));
        ok.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(parse(&ok).unwrap().target.len(), 8192);
        let mut long = b"GET /".to_vec();
        long.extend(std::iter::repeat_n(b'a', 8192));
        long.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(parse(&long), Err(ParseError::UriTooLong));
    }

    #[test]
    fn obs_text_in_target_allowed() {
        let buf = b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(parse(buf).unwrap().path.get(buf), b"/caf\xc3\xa9");
    }

    #[test]
    fn origin_form_query_edge_cases() {
        let buf = b"GET /p? HTTP/1.1\r\nHost: x\r\n\r\n";
        let h = parse(buf).unwrap();
        assert_eq!(h.path.get(buf), b"/p");
        assert_eq!(h.query.unwrap().get(buf), b"");
        let buf = b"GET /p?a?b HTTP/1.1\r\nHost: x\r\n\r\n";
        let h = parse(buf).unwrap();
        assert_eq!(h.query.unwrap().get(buf), b"a?b");
    }

    #[test]
    fn absolute_form() {
        let buf = b"GET http://Example.com:81/a/b?x=1 HTTP/1.1\r\nHost: other\r\n\r\n";
        let h = parse(buf).unwrap();
        assert_eq!(h.authority.unwrap().get(buf), b"Example.com:81");
        assert_eq!(h.path.get(buf), b"/a/b");
        assert_eq!(h.path_or_root(buf), b"/a/b");
        assert_eq!(h.query.unwrap().get(buf), b"x=1");
        assert_eq!(h.host.unwrap().get(buf), b"other");

        let buf = b"GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n";
        let h = parse(buf).unwrap();
        assert_eq!(h.authority.unwrap().get(buf), b"example.com");
        assert!(h.path.is_empty());
        assert_eq!(h.path_or_root(buf), b"/");
        assert_eq!(h.query, None);

        let buf = b"GET http://example.com?q HTTP/1.1\r\nHost: example.com\r\n\r\n";
        let h = parse(buf).unwrap();
        assert!(h.path.is_empty());
        assert_eq!(h.query.unwrap().get(buf), b"q");

        let buf = b"GET http://[::1]:8080/ HTTP/1.0\r\n\r\n";
        let h = parse(buf).unwrap();
        assert_eq!(h.authority.unwrap().get(buf), b"[::1]:8080");
        assert_eq!(h.path.get(buf), b"/");

        // empty authority, userinfo, other schemes, still needs Host / single Host
        assert_eq!(status(b"GET http:///a HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET http://u@h/ HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET ftp://h/ HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET http:/h/ HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET http://h/ HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(
            status(b"GET http://h/ HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n"),
            400
        );
    }

    #[test]
    fn asterisk_and_authority_forms() {
        let buf = b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n";
        let h = parse(buf).unwrap();
        assert_eq!(h.method_kind, Method::Options);
        assert_eq!(h.target.get(buf), b"*");
        assert_eq!(h.path.get(buf), b"*");
        assert_eq!(h.query, None);
        assert_eq!(status(b"GET * HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"OPTIONS *x HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(
            status(b"CONNECT host:443 HTTP/1.1\r\nHost: host:443\r\n\r\n"),
            501
        );
        assert_eq!(status(b"CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n"), 501);
        assert_eq!(status(b"GET host:443 HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET index.html HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    }

    #[test]
    fn header_value_bytes() {
        assert_eq!(hstatus(b"X: a\x00b\r\n"), 400);
        assert_eq!(hstatus(b"X: a\x7fb\r\n"), 400);
        assert_eq!(hstatus(b"X: a\rb\r\n"), 400);
        assert_eq!(hstatus(b"X: a\x0bb\r\n"), 400);
        assert_eq!(hstatus(b"X: a\x1bb\r\n"), 400);
        assert_eq!(hstatus(b"X: a\tb\r\n"), 200);
        let buf = with_headers(b"X: caf\xc3\xa9 \xff\r\n");
        let mut hs = Vec::new();
        parse_head(&buf, &Limits::default(), &mut hs).unwrap();
        assert_eq!(hs[1].value.get(&buf), b"caf\xc3\xa9 \xff");
    }

    #[test]
    fn header_name_errors() {
        assert_eq!(hstatus(b" X: folded-first\r\n"), 400);
        assert_eq!(hstatus(b"X: a\r\n b\r\n"), 400);
        assert_eq!(hstatus(b"X: a\r\n\tb\r\n"), 400);
        assert_eq!(hstatus(b"X : a\r\n"), 400);
        assert_eq!(hstatus(b"X\t: a\r\n"), 400);
        assert_eq!(hstatus(b": x\r\n"), 400);
        assert_eq!(hstatus(b"X\x0bY: a\r\n"), 400);
        assert_eq!(hstatus(b"X Y: a\r\n"), 400);
        assert_eq!(hstatus(b"X(Y): a\r\n"), 400);
        assert_eq!(hstatus(b"NoColon\r\n"), 400);
        assert_eq!(hstatus(b"\x80X: a\r\n"), 400);
        assert_eq!(hstatus(b"X-!#$%&'*+-.^_`|~09: a\r\n"), 200);
    }

    #[test]
    fn bare_lf_line_endings() {
        assert_eq!(status(b"GET / HTTP/1.1\nHost: x\n\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\r\n\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\r\n\r\r\n"), 400);
    }

    #[test]
    fn host_rules() {
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nhOsT: a\r\nHOST: b\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost:\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost:   \r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\xc3\xa9\r\n\r\n"), 400);
        let buf = b"GET / HTTP/1.1\r\nHOST:  [::1]:80 \r\n\r\n";
        assert_eq!(parse(buf).unwrap().host.unwrap().get(buf), b"[::1]:80");
        // HTTP/1.0 does not require Host but still rejects duplicates.
        assert_eq!(status(b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
    }

    #[test]
    fn content_length_rules() {
        assert_eq!(hbody(b"Content-Length: 5\r\n"), Decode::Length(5));
        assert_eq!(hbody(b"content-length:  5 \r\n"), Decode::Length(5));
        assert_eq!(hbody(b"Content-Length: 0\r\n"), Decode::Length(0));
        assert_eq!(hbody(b"Content-Length: 007\r\n"), Decode::Length(7));
        assert_eq!(
            hbody(b"Content-Length: 9999999999999999999\r\n"),
            Decode::Length(9_999_999_999_999_999_999)
        );
        assert_eq!(hstatus(b"Content-Length: +5\r\n"), 400);
        assert_eq!(hstatus(b"Content-Length: -5\r\n"), 400);
        assert_eq!(hstatus(b"Content-Length: 5 5\r\n"), 400);
        assert_eq!(hstatus(b"Content-Length: 0x5\r\n"), 400);
        assert_eq!(hstatus(b"Content-Length: \r\n"), 400);
        assert_eq!(hstatus(b"Content-Length:\r\n"), 400);
        assert_eq!(hstatus(b"Content-Length: 99999999999999999999\r\n"), 400);
        assert_eq!(hstatus(b"Content-Length: 5, 5\r\n"), 400);
        assert_eq!(hstatus(b"Content-Length: 5,5\r\n"), 400);
        assert_eq!(hstatus(b"Content-Length: 5.0\r\n"), 400);
        assert_eq!(hstatus(b"Content-Length: \"5\"\r\n"), 400);
        assert_eq!(hstatus(b"Content-Length: 5\r\nContent-Length: 5\r\n"), 400);
        assert_eq!(hstatus(b"Content-Length: 5\r\nContent-Length: 6\r\n"), 400);
    }

    #[test]
    fn transfer_encoding_rules() {
        assert_eq!(hbody(b"Transfer-Encoding: chunked\r\n"), Decode::Chunked);
        assert_eq!(hbody(b"Transfer-Encoding: Chunked\r\n"), Decode::Chunked);
        assert_eq!(hbody(b"transfer-encoding: CHUNKED\r\n"), Decode::Chunked);
        assert_eq!(
            hbody(b"Transfer-Encoding: \t chunked \t\r\n"),
            Decode::Chunked
        );
        assert_eq!(
            hstatus(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
            400
        );
        assert_eq!(
            hstatus(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
            400
        );
        assert_eq!(
            hstatus(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
            400
        );
        assert_eq!(hstatus(b"Transfer-Encoding: chunked\x0b\r\n"), 400);
        assert_eq!(hstatus(b"Transfer-Encoding: gzip, chunked\r\n"), 501);
        assert_eq!(hstatus(b"Transfer-Encoding: gzip,deflate,chunked\r\n"), 501);
        assert_eq!(hstatus(b"Transfer-Encoding: gzip\r\n"), 501);
        assert_eq!(hstatus(b"Transfer-Encoding: x-gzip\r\n"), 501);
        assert_eq!(hstatus(b"Transfer-Encoding: chunked, gzip\r\n"), 400);
        assert_eq!(hstatus(b"Transfer-Encoding: chunked, chunked\r\n"), 400);
        assert_eq!(hstatus(b"Transfer-Encoding: chunked,\r\n"), 400);
        assert_eq!(hstatus(b"Transfer-Encoding: , chunked\r\n"), 400);
        assert_eq!(hstatus(b"Transfer-Encoding: \r\n"), 400);
        assert_eq!(hstatus(b"Transfer-Encoding: \"chunked\"\r\n"), 400);
        assert_eq!(hstatus(b"Transfer-Encoding: chunked;q=1\r\n"), 400);
        assert_eq!(hstatus(b"Transfer-Encoding: xchunked\r\n"), 400);
        assert_eq!(hstatus(b"Transfer-Encoding: chunk\r\n"), 400);
        assert_eq!(hstatus(b"Transfer-Encoding: identity\r\n"), 400);
        assert_eq!(hstatus(b"Transfer-Encoding: gzip, deflate\r\n"), 400);
        assert_eq!(hstatus(b"Transfer-Encoding: chunked chunked\r\n"), 400);
        // 400s win over 501.
        assert_eq!(
            hstatus(b"Transfer-Encoding: gzip\r\nContent-Length: 1\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            400
        );
    }

    #[test]
    fn transfer_encoding_on_http10() {
        assert_eq!(
            status(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        assert_eq!(status(b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n"), 200);
    }

    #[test]
    fn expect_and_upgrade() {
        let h = parse(&with_headers(b"Expect: 100-Continue\r\n")).unwrap();
        assert!(h.expect_continue);
        assert_eq!(hstatus(b"Expect: 200-ok\r\n"), 417);
        assert_eq!(hstatus(b"Expect: 100-continue, foo\r\n"), 417);
        assert_eq!(hstatus(b"Expect:\r\n"), 417);
        let h = parse(&with_headers(b"Upgrade: websocket\r\n")).unwrap();
        assert!(h.upgrade);
        // 400 beats 417
        assert_eq!(status(b"GET / HTTP/1.1\r\nExpect: nope\r\n\r\n"), 400);
    }

    #[test]
    fn header_count_limit() {
        // Host plus 99 = 100 lines: fine; one more is 431.
        let mut lines = Vec::new();
        for n in 0..99 {
            lines.extend_from_slice(format!("X-H{n}: v\r\n").as_bytes());
        }
        let mut hs = Vec::new();
        let buf = with_headers(&lines);
        parse_head(&buf, &Limits::default(), &mut hs).unwrap();
        assert_eq!(hs.len(), 100);
        lines.extend_from_slice(b"X-Last: v\r\n");
        assert_eq!(
            parse(&with_headers(&lines)),
            Err(ParseError::HeaderTooLarge)
        );
    }

    #[test]
    fn head_byte_limit() {
        let limits = Limits {
            max_header_bytes: 40,
            ..Limits::default()
        };
        let mut hs = Vec::new();
        let ok = b"GET / HTTP/1.1\r\nHost: x\r\nA: 01234567\r\n\r\n";
        assert_eq!(ok.len(), 40);
        assert!(parse_head(ok, &limits, &mut hs).is_ok());
        let big = b"GET / HTTP/1.1\r\nHost: x\r\nA: 012345678\r\n\r\n";
        assert_eq!(
            parse_head(big, &limits, &mut hs).unwrap_err(),
            ParseError::HeaderTooLarge
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(ParseError::BadRequest("x").status(), 400);
        assert_eq!(ParseError::UriTooLong.status(), 414);
        assert_eq!(ParseError::HeaderTooLarge.status(), 431);
        assert_eq!(ParseError::NotImplemented.status(), 501);
        assert_eq!(ParseError::VersionNotSupported.status(), 505);
        assert_eq!(ParseError::ExpectationFailed.status(), 417);
        assert_eq!(ParseError::PayloadTooLarge.status(), 413);
    }

    #[test]
    fn span_get_never_panics() {
        let s = Span { start: 5, end: 2 };
        assert_eq!(s.get(b"0123456"), b"");
        assert_eq!(s.len(), 0);
        let s = Span { start: 2, end: 100 };
        assert_eq!(s.get(b"0123"), b"");
    }

    #[test]
    fn class_tables() {
        for b in 0u8..=255 {
            assert_eq!(is_value_byte(b), b == b'\t' || (b >= 0x20 && b != 0x7f));
            let t = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), t, "byte {b}");
        }
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"  "), b"");
    }
}
