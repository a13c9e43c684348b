//! An upstream's response head: strict parse (the proxy's framing decision)
//! and the rewritten head uringd sends to its client.
//!
//! Parse rules (every violation is `Invalid`, which the caller answers with 502):
//! - Status line `HTTP/1.x SP 3DIGIT [SP reason] CRLF`; the reason may be empty
//!   (`HTTP/1.1 200 \r\n`) or missing with its SP (`HTTP/1.1 200\r\n`). Minor
//!   versions above 1 are treated as 1.1 (RFC 9110 2.5); other majors are
//!   invalid. The status must be 100..=599.
//! - Field lines read by `http::fields`, the request parser's reader: tchar name
//!   directly followed by ':', value of VCHAR/SP/HTAB/obs-text, CRLF endings
//!   only; obs-fold, bare CR/LF and control bytes are invalid. No leading empty
//!   lines.
//! - Content-Length must be 1-19 plain digits; repeated lines must agree.
//!   Content-Length together with Transfer-Encoding is invalid (smuggling
//!   indicator, RFC 9112 6.3), and so is Transfer-Encoding in an HTTP/1.0
//!   response (RFC 9112 6.1: faulty framing).
//! - Bodyless: 1xx, 204, 304 and every response to HEAD -> `Decode::None`
//!   whatever the framing headers say.
//! - Otherwise Transfer-Encoding must be exactly `chunked` (all TE lines
//!   combined) -> `Chunked`. Any other transfer coding (`gzip, chunked`,
//!   `gzip`, ...) is `Invalid`: uringd removes Transfer-Encoding and re-frames,
//!   so relaying such a body would hand the client transfer-coded bytes as if
//!   they were the content (nginx rejects these too).
//! - Content-Length -> `Length`; neither -> `UntilClose` (any version).
//! - `keep_alive`: HTTP/1.1 unless a `close` option; HTTP/1.0 only with a
//!   `keep-alive` option and no `close`; always false for `UntilClose` and 101.
//! - Interim 1xx responses (100 Continue, 102, 103) come back like any other
//!   head, with `head_len`, so the caller can skip them and parse again from
//!   `buf[head_len..]`. 101 sets `upgrade`.
//!
//! The whole head is found with one memmem pass for CRLFCRLF, then the status
//! line with memchr and the field lines one pass each, so the cost is linear;
//! nothing is kept between calls.

use super::hop::{ConnNamed, Field, classify, list_elements, push_dec, push_header};
use crate::edge::headers::is_accel;
use crate::http::fields::{Line, read_line};
use crate::http::framing::{Decode, Encode};
use crate::http::parser::{
    HeaderSpan, Span, Version, is_value_byte, parse_content_length, trim_ows,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RespHead {
    /// Bytes of the head including the final CRLFCRLF.
    pub head_len: usize,
    pub status: u16,
    pub version: Version,
    /// May be empty.
    pub reason: Span,
    pub body: Decode,
    pub keep_alive: bool,
    /// Status 101 (the connection switches protocols after this head).
    pub upgrade: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RespError {
    /// No CRLFCRLF yet (and still within `max_bytes`): read more.
    Incomplete,
    /// The head would exceed `max_bytes`.
    TooLarge,
    /// Malformed; the caller answers 502.
    Invalid(&'static str),
}

fn invalid(why: &'static str) -> RespError {
    RespError::Invalid(why)
}

/// Parse the status line `line` (without its CRLF): (version, status, reason
/// offset range within `line`).
fn parse_status_line(line: &[u8]) -> Result<(Version, u16, usize, usize), RespError> {
    let version = match line.get(..8) {
        Some(&[b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'0']) => Version::Http10,
        Some(&[b'H', b'T', b'T', b'P', b'/', b'1', b'.', m]) if m.is_ascii_digit() => {
            Version::Http11
        }
        Some(&[b'H', b'T', b'T', b'P', b'/', maj, b'.', min])
            if maj.is_ascii_digit() && min.is_ascii_digit() =>
        {
            return Err(invalid("unsupported HTTP version"));
        }
        _ => return Err(invalid("invalid status line")),
    };
    let status = match line.get(8..12) {
        Some(&[b' ', a, b, c])
            if (b'1'..=b'5').contains(&a) && b.is_ascii_digit() && c.is_ascii_digit() =>
        {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err(invalid("invalid status code")),
    };
    match line.get(12) {
        None => Ok((version, status, 12, 12)),
        Some(b' ') => {
            let reason = line.get(13..).unwrap_or(&[]);
            if reason.iter().all(|&b| is_value_byte(b)) {
                Ok((version, status, 13, line.len()))
            } else {
                Err(invalid("invalid reason phrase"))
            }
        }
        Some(_) => Err(invalid("invalid status code")),
    }
}

/// Parse an upstream response head from the start of `buf`. `headers` is
/// cleared and refilled with spans into `buf`. See the module docs for rules.
pub fn parse_response_head(
    buf: &[u8],
    request_was_head: bool,
    max_bytes: usize,
    headers: &mut Vec<HeaderSpan>,
) -> Result<RespHead, RespError> {
    headers.clear();
    // Keep offsets far below u32::MAX so spans never truncate.
    let cap = max_bytes.min((u32::MAX >> 1) as usize);
    let window = buf.get(..cap).unwrap_or(buf);
    let Some(end) = memchr::memmem::find(window, b"\r\n\r\n") else {
        // A head in bare LFs never ends in CRLFCRLF: refuse it now, not at the timeout.
        if memchr::memchr_iter(b'\n', window).any(|i| i == 0 || window[i - 1] != b'\r') {
            return Err(invalid("bare LF"));
        }
        return Err(if buf.len() >= cap {
            RespError::TooLarge
        } else {
            RespError::Incomplete
        });
    };
    let head_len = end + 4;
    // Every line of the head, each ending in CRLF; `end + 2` is where the
    // final empty line starts.
    let lines_end = end + 2;

    let line_at = |pos: usize| -> Result<(usize, usize), RespError> {
        // memchr finds the first LF; it must be preceded by CR.
        let rest = buf.get(pos..lines_end).unwrap_or(&[]);
        match memchr::memchr(b'\n', rest) {
            Some(n) if n > 0 && rest.get(n - 1) == Some(&b'\r') => Ok((pos + n - 1, pos + n + 1)),
            _ => Err(invalid("bare LF")),
        }
    };

    let (sl_end, mut pos) = line_at(0)?;
    let (version, status, r_start, r_end) = parse_status_line(buf.get(..sl_end).unwrap_or(&[]))?;
    let reason = Span {
        start: r_start as u32,
        end: r_end as u32,
    };

    let mut content_length: Option<u64> = None;
    let mut te_seen = false;
    let mut te_chunked = 0usize;
    let mut te_other = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;

    // The field lines: the same reader as the request parser's, bounded by the head.
    let head = &buf[..head_len];
    loop {
        let h = match read_line(head, pos) {
            Ok(Line::End(_)) => break,
            Ok(Line::Field(h, next)) => {
                pos = next;
                h
            }
            Err(e) => return Err(invalid(e.why())),
        };
        headers.push(h);
        let value = h.value.get(buf);
        match classify(h.name.get(buf)) {
            Field::ContentLength => {
                let n = parse_content_length(value).ok_or(invalid("invalid Content-Length"))?;
                if content_length.is_some_and(|prev| prev != n) {
                    return Err(invalid("conflicting Content-Length"));
                }
                content_length = Some(n);
            }
            Field::TransferEncoding => {
                te_seen = true;
                if value.split(|&b| b == b',').any(|e| trim_ows(e).is_empty()) {
                    te_other = true;
                }
                for e in list_elements(value) {
                    if e.eq_ignore_ascii_case(b"chunked") {
                        te_chunked += 1;
                    } else {
                        te_other = true;
                    }
                }
            }
            Field::Connection => {
                for tok in list_elements(value) {
                    if tok.eq_ignore_ascii_case(b"close") {
                        conn_close = true;
                    } else if tok.eq_ignore_ascii_case(b"keep-alive") {
                        conn_keep_alive = true;
                    }
                }
            }
            _ => {}
        }
    }

    if te_seen && content_length.is_some() {
        return Err(invalid("Transfer-Encoding with Content-Length"));
    }
    if te_seen && version == Version::Http10 {
        return Err(invalid("Transfer-Encoding in HTTP/1.0 response"));
    }
    let bodyless = request_was_head || status < 200 || status == 204 || status == 304;
    let body = if bodyless {
        Decode::None
    } else if te_seen {
        if te_chunked == 1 && !te_other {
            Decode::Chunked
        } else {
            return Err(invalid("unsupported Transfer-Encoding"));
        }
    } else if let Some(n) = content_length {
        Decode::Length(n)
    } else {
        Decode::UntilClose
    };
    let upgrade = status == 101;
    let keep_alive = match version {
        Version::Http11 => !conn_close,
        Version::Http10 => conn_keep_alive && !conn_close,
    } && body != Decode::UntilClose
        && !upgrade;

    Ok(RespHead {
        head_len,
        status,
        version,
        reason,
        body,
        keep_alive,
        upgrade,
    })
}

/// How the client gets the response: framing and keep-alive chosen by the proxy, and
/// uringd's own Date and Server (None: leave the upstream's alone, as unit tests do).
#[derive(Clone, Copy, Debug)]
pub struct ToClient<'a> {
    pub framing: Encode,
    pub keep_alive: bool,
    pub http10: bool,
    pub date: Option<&'a [u8]>,
    pub server: Option<&'a [u8]>,
    /// The route's header edits (`headers`, `hide_headers`).
    pub edit: Option<&'a crate::edge::headers::HeaderEdit>,
}

impl ToClient<'_> {
    /// Without uringd's own Date and Server (tests of the rest of the head).
    pub fn plain(framing: Encode, keep_alive: bool, http10: bool) -> ToClient<'static> {
        ToClient {
            framing,
            keep_alive,
            http10,
            date: None,
            server: None,
            edit: None,
        }
    }
}

/// Appends the response head uringd sends to its client:
/// - `HTTP/1.1 <status> <reason>` (the SP before an empty reason is kept);
/// - `Server: <ours>` when `ours.server` is given (the upstream's Server is then dropped,
///   as nginx does: the front names itself, the backend's stack stays private; an empty
///   value sends none), and `Date: <ours>` when given and the upstream sent no Date (its
///   own is kept: it is when the response was generated). uwsgi backends send neither,
///   so every response carries both, as uringd's own do;
/// - the upstream fields minus hop-by-hop ones: Connection and every field
///   a Connection option names, Keep-Alive, TE, Trailer, Transfer-Encoding,
///   Content-Length, Upgrade (kept for 101), `Proxy-*` and `Proxy`; `X-Accel-*`
///   (instructions to the front, never the client's business); and the names the
///   route's `ToClient::edit` hides or sets itself. Names and values byte-exact, ": "
///   separator;
/// - the route's added header lines (`headers`);
/// - exception: with `Encode::None` on a bodyless response that may
///   describe a representation (HEAD response, 304: `r.body == None` with a
///   status of at least 200, not 204) the upstream's Content-Length is passed
///   through (first line only; RFC 9110 8.6), since the client may rely on it;
/// - uringd's framing: `Content-Length: n`, `Transfer-Encoding: chunked`, or
///   nothing. The caller must not choose `Chunked` for an HTTP/1.0 client;
/// - `Connection: upgrade` for 101; nothing for other 1xx; otherwise
///   `Connection: close` if `!client_keep_alive`, `Connection: keep-alive` for
///   a keep-alive HTTP/1.0 client, nothing for a keep-alive HTTP/1.1 client;
/// - CRLF.
///
/// uringd adds no Via to responses (optional for a gateway, RFC 9110 7.6.3).
pub fn write_client_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    r: &RespHead,
    headers: &[HeaderSpan],
    to: &ToClient,
) {
    let ToClient {
        framing,
        keep_alive: client_keep_alive,
        http10: client_http10,
        date,
        server,
        edit,
    } = *to;
    let edited = |name: &[u8]| edit.is_some_and(|e| e.hides(name));
    out.extend_from_slice(b"HTTP/1.1 ");
    push_dec(out, r.status.into());
    out.push(b' ');
    out.extend_from_slice(r.reason.get(buf));
    out.extend_from_slice(b"\r\n");
    if let Some(s) = server.filter(|s| !s.is_empty() && !edited(b"server")) {
        push_header(out, b"Server", s);
    }
    let theirs = |f: Field| headers.iter().any(|h| classify(h.name.get(buf)) == f);
    if let Some(d) = date.filter(|_| !theirs(Field::Date)) {
        push_header(out, b"Date", d);
    }

    let is_101 = r.status == 101;
    let mut pass_cl =
        framing == Encode::None && r.body == Decode::None && r.status >= 200 && r.status != 204;
    let conn = ConnNamed::new(buf, headers);
    for (j, h) in headers.iter().enumerate() {
        let name = h.name.get(buf);
        if is_accel(name) || edited(name) {
            continue;
        }
        let copy = match classify(name) {
            Field::Upgrade => is_101,
            Field::Server if server.is_some() => false,
            Field::ContentLength => std::mem::replace(&mut pass_cl, false),
            Field::Connection
            | Field::KeepAlive
            | Field::Te
            | Field::Trailer
            | Field::TransferEncoding
            | Field::Proxy => false,
            _ => !conn.contains(buf, headers, j),
        };
        if copy {
            push_header(out, name, h.value.get(buf));
        }
    }

    if let Some(e) = edit {
        out.extend_from_slice(&e.add);
    }
    match framing {
        Encode::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            push_dec(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Encode::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Encode::None => {}
    }

    let connection: &[u8] = if is_101 {
        b"Connection: upgrade\r\n"
    } else if r.status < 200 {
        b""
    } else if !client_keep_alive {
        b"Connection: close\r\n"
    } else if client_http10 {
        b"Connection: keep-alive\r\n"
    } else {
        b""
    };
    out.extend_from_slice(connection);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> Result<RespHead, RespError> {
        let mut hs = Vec::new();
        parse_response_head(buf, false, 64 * 1024, &mut hs)
    }

    fn body(buf: &[u8]) -> Decode {
        parse(buf).expect("valid").body
    }

    fn why(buf: &[u8]) -> &'static str {
        match parse(buf) {
            Err(RespError::Invalid(w)) => w,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn with(lines: &str) -> Vec<u8> {
        format!("HTTP/1.1 200 OK\r\n{lines}\r\n").into_bytes()
    }

    #[test]
    fn content_length_response() {
        let buf = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length:  12 \r\n\r\nhello world!";
        let mut hs = Vec::new();
        let r = parse_response_head(buf, false, 1024, &mut hs).unwrap();
        assert_eq!(r.head_len, buf.len() - 12);
        assert_eq!(r.status, 200);
        assert_eq!(r.version, Version::Http11);
        assert_eq!(r.reason.get(buf), b"OK");
        assert_eq!(r.body, Decode::Length(12));
        assert!(r.keep_alive);
        assert!(!r.upgrade);
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[0].name.get(buf), b"Content-Type");
        assert_eq!(hs[0].value.get(buf), b"text/plain");
        assert_eq!(hs[1].name.get(buf), b"Content-Length");
        assert_eq!(hs[1].value.get(buf), b"12");
    }

    #[test]
    fn chunked_and_until_close() {
        assert_eq!(
            body(&with("Transfer-Encoding: chunked\r\n")),
            Decode::Chunked
        );
        assert_eq!(
            body(&with("transfer-encoding:  CHUNKED \r\n")),
            Decode::Chunked
        );
        let r = parse(&with("X: y\r\n")).unwrap();
        assert_eq!(r.body, Decode::UntilClose);
        assert!(!r.keep_alive);
        let r = parse(b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
        assert_eq!(r.body, Decode::UntilClose);
        assert_eq!(r.version, Version::Http10);
        assert!(!r.keep_alive);
    }

    #[test]
    fn unsupported_transfer_codings() {
        for te in [
            "gzip, chunked",
            "gzip",
            "chunked, gzip",
            "chunked, chunked",
            "identity",
            "chunked,",
            ", chunked",
            "",
        ] {
            let buf = with(&format!("Transfer-Encoding: {te}\r\n"));
            assert_eq!(why(&buf), "unsupported Transfer-Encoding", "{te:?}");
        }
        let two = with("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n");
        assert_eq!(why(&two), "unsupported Transfer-Encoding");
        // Bodyless: the coding does not matter.
        let mut hs = Vec::new();
        let buf = with("Transfer-Encoding: gzip\r\n");
        let r = parse_response_head(&buf, true, 1024, &mut hs).unwrap();
        assert_eq!(r.body, Decode::None);
    }

    #[test]
    fn bodyless_statuses_and_head() {
        let mut hs = Vec::new();
        let buf = with("Content-Length: 1000\r\n");
        let r = parse_response_head(&buf, true, 1024, &mut hs).unwrap();
        assert_eq!(r.body, Decode::None);
        assert!(r.keep_alive);
        let r = parse_response_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            true,
            1024,
            &mut hs,
        )
        .unwrap();
        assert_eq!(r.body, Decode::None);
        assert_eq!(
            body(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
            Decode::None
        );
        assert_eq!(
            body(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"),
            Decode::None
        );
        assert_eq!(body(b"HTTP/1.1 304 Not Modified\r\n\r\n"), Decode::None);
        assert!(
            parse(b"HTTP/1.1 204 No Content\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert_eq!(body(b"HTTP/1.1 205 Reset\r\n\r\n"), Decode::UntilClose);
    }

    #[test]
    fn framing_errors() {
        assert_eq!(
            why(&with("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")),
            "Transfer-Encoding with Content-Length"
        );
        assert_eq!(
            why(b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"),
            "Transfer-Encoding with Content-Length"
        );
        assert_eq!(
            why(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            "Transfer-Encoding in HTTP/1.0 response"
        );
        for cl in [
            "",
            "+5",
            "-5",
            "5 5",
            "0x5",
            "5, 5",
            "5,5",
            "5.0",
            "\"5\"",
            "99999999999999999999",
        ] {
            assert_eq!(
                why(&with(&format!("Content-Length: {cl}\r\n"))),
                "invalid Content-Length",
                "{cl:?}"
            );
        }
        assert_eq!(
            why(&with("Content-Length: 5\r\nContent-Length: 6\r\n")),
            "conflicting Content-Length"
        );
        assert_eq!(
            body(&with("Content-Length: 5\r\ncontent-length: 005\r\n")),
            Decode::Length(5)
        );
        assert_eq!(
            body(&with("Content-Length: 9999999999999999999\r\n")),
            Decode::Length(9_999_999_999_999_999_999)
        );
        // A bad Content-Length is invalid even where no body is read.
        assert_eq!(
            why(b"HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n"),
            "invalid Content-Length"
        );
    }

    #[test]
    fn header_syntax_errors() {
        assert_eq!(why(&with("X: a\r\n b\r\n")), "obs-fold");
        assert_eq!(why(&with("X: a\r\n\tb\r\n")), "obs-fold");
        assert_eq!(why(&with(" X: a\r\n")), "obs-fold");
        assert_eq!(why(&with("X : a\r\n")), "invalid header name");
        assert_eq!(why(&with(": a\r\n")), "invalid header name");
        assert_eq!(why(&with("X(Y): a\r\n")), "invalid header name");
        assert_eq!(why(&with("NoColon\r\n")), "invalid header name");
        assert_eq!(why(&with("X: a\x00b\r\n")), "invalid header value");
        assert_eq!(why(&with("X: a\x7fb\r\n")), "invalid header value");
        assert_eq!(why(&with("X: a\rb\r\n")), "invalid header value");
        assert_eq!(why(&with("X: a\nY: b\r\n")), "bare LF");
        assert_eq!(why(b"HTTP/1.1 200 OK\nX: a\r\n\r\n"), "bare LF");
        // Refused before the head is complete: it would never be.
        assert_eq!(why(b"HTTP/1.1 200 OK\nX: a\n"), "bare LF");
        assert_eq!(
            why(b"HTTP/1.1 200 OK\r\nX: a\r\r\n\r\n"),
            "invalid header value"
        );
        // Allowed bytes: HTAB, obs-text, empty value, all tchars.
        let buf = b"HTTP/1.1 200 OK\r\nX-!#$%&'*+-.^_`|~09: a\tb \xff\r\nE:\r\n\r\n";
        let buf = &buf[..];
        let mut hs = Vec::new();
        parse_response_head(buf, false, 1024, &mut hs).unwrap();
        assert_eq!(hs[0].value.get(buf), b"a\tb \xff");
        assert!(hs[1].value.is_empty());
    }

    #[test]
    fn status_lines() {
        let buf = b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n";
        let r = parse(buf).unwrap();
        assert_eq!(r.status, 200);
        assert!(r.reason.is_empty());
        let buf = b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n";
        let r = parse(buf).unwrap();
        assert_eq!(r.status, 404);
        assert!(r.reason.is_empty());
        let buf = b"HTTP/1.1 500  Internal \t Error \xe2\x9c\x93\r\n\r\n";
        assert_eq!(
            parse(buf).unwrap().reason.get(buf),
            b" Internal \t Error \xe2\x9c\x93"
        );
        assert_eq!(
            parse(b"HTTP/1.2 200 OK\r\n\r\n").unwrap().version,
            Version::Http11
        );
        for bad in [&b"HTTP/2.0 200 OK\r\n\r\n"[..], b"HTTP/0.9 200 OK\r\n\r\n"] {
            assert_eq!(why(bad), "unsupported HTTP version");
        }
        assert_eq!(why(b"HTTP/1.1\r\n\r\n"), "invalid status code");
        for bad in [
            &b"http/1.1 200 OK\r\n\r\n"[..],
            b"HTTP/1.x 200 OK\r\n\r\n",
            b"\r\nHTTP/1.1 200 OK\r\n\r\n",
            b"ICY 200 OK\r\n\r\n",
        ] {
            assert_eq!(why(bad), "invalid status line");
        }
        for bad in [
            &b"HTTP/1.1 20 OK\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 099 OK\r\n\r\n",
            b"HTTP/1.1 600 OK\r\n\r\n",
            b"HTTP/1.1  200 OK\r\n\r\n",
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"HTTP/1.1 200\tOK\r\n\r\n",
        ] {
            assert_eq!(
                why(bad),
                "invalid status code",
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(why(b"HTTP/1.1 200 O\x00K\r\n\r\n"), "invalid reason phrase");
        assert_eq!(why(b"HTTP/1.1 200 O\rK\r\n\r\n"), "invalid reason phrase");
    }

    #[test]
    fn keep_alive_rules() {
        assert!(
            !parse(&with("Connection: close\r\nContent-Length: 0\r\n"))
                .unwrap()
                .keep_alive
        );
        assert!(
            !parse(&with("Connection: foo, CLOSE\r\nContent-Length: 0\r\n"))
                .unwrap()
                .keep_alive
        );
        assert!(
            parse(&with("Connection: keep-alive\r\nContent-Length: 0\r\n"))
                .unwrap()
                .keep_alive
        );
        let r = parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(!r.keep_alive);
        let r = parse(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        assert!(r.keep_alive);
        let r = parse(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(!r.keep_alive);
        let r = parse(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").unwrap();
        assert_eq!(r.body, Decode::UntilClose);
        assert!(!r.keep_alive);
    }

    #[test]
    fn continue_then_final_in_one_buffer() {
        let buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let mut hs = Vec::new();
        let r = parse_response_head(buf, false, 1024, &mut hs).unwrap();
        assert_eq!(r.status, 100);
        assert_eq!(r.head_len, 25);
        assert_eq!(r.body, Decode::None);
        assert!(!r.upgrade);
        assert!(hs.is_empty());
        let rest = &buf[r.head_len..];
        let r2 = parse_response_head(rest, false, 1024, &mut hs).unwrap();
        assert_eq!(r2.status, 200);
        assert_eq!(r2.body, Decode::Length(2));
        assert_eq!(&rest[r2.head_len..], b"ok");
        assert_eq!(hs[0].value.get(rest), b"2");
        // 103 Early Hints with headers is interim too.
        let buf = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n";
        let r = parse_response_head(buf, false, 1024, &mut hs).unwrap();
        assert_eq!(
            (r.status, r.body, r.head_len),
            (103, Decode::None, buf.len())
        );
    }

    #[test]
    fn switching_protocols() {
        let buf = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: abc=\r\n\r\n";
        let mut hs = Vec::new();
        let r = parse_response_head(buf, false, 1024, &mut hs).unwrap();
        assert!(r.upgrade);
        assert!(!r.keep_alive);
        assert_eq!(r.body, Decode::None);
        let mut out = Vec::new();
        write_client_head(
            &mut out,
            buf,
            &r,
            &hs,
            &ToClient::plain(Encode::None, true, false),
        );
        assert_eq!(
            out,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: abc=\r\nConnection: upgrade\r\n\r\n"
        );
    }

    #[test]
    fn incomplete_and_too_large() {
        let mut hs = Vec::new();
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(
                parse_response_head(&full[..cut], false, 1024, &mut hs),
                Err(RespError::Incomplete),
                "cut {cut}"
            );
        }
        // Exactly max_bytes is fine; one less is too large.
        assert!(parse_response_head(full, false, full.len(), &mut hs).is_ok());
        assert_eq!(
            parse_response_head(full, false, full.len() - 1, &mut hs),
            Err(RespError::TooLarge)
        );
        // Still incomplete below the limit, too large once it is reached.
        assert_eq!(
            parse_response_head(&full[..20], false, 21, &mut hs),
            Err(RespError::Incomplete)
        );
        assert_eq!(
            parse_response_head(&full[..20], false, 20, &mut hs),
            Err(RespError::TooLarge)
        );
        assert_eq!(
            parse_response_head(b"", false, 0, &mut hs),
            Err(RespError::TooLarge)
        );
        // A huge buffer without an end is rejected after scanning max_bytes only.
        let big = vec![b'a'; 1 << 20];
        assert_eq!(
            parse_response_head(&big, false, 4096, &mut hs),
            Err(RespError::TooLarge)
        );
    }

    #[test]
    fn headers_vec_is_cleared() {
        let mut hs = vec![HeaderSpan {
            name: Span { start: 0, end: 1 },
            value: Span { start: 0, end: 1 },
        }];
        let r = parse_response_head(b"HTTP/1.1 204 x\r\n\r\n", false, 100, &mut hs).unwrap();
        assert!(hs.is_empty());
        assert_eq!(r.head_len, 18);
        let _ = parse_response_head(b"garbage\r\n\r\n", false, 100, &mut hs);
        assert!(hs.is_empty());
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // Cheap deterministic fuzz: every prefix and single-byte mutation of a
        // head, with both head/no-head requests and small limits.
        let base = b"HTTP/1.1 200 OK\r\nConnection: a, close\r\nTransfer-Encoding: chunked\r\nA: b\r\n\r\n".to_vec();
        let mut hs = Vec::new();
        let mut out = Vec::new();
        for i in 0..base.len() {
            for b in [0u8, b'\r', b'\n', b' ', b':', b',', b'0', 0xff] {
                let mut m = base.clone();
                m[i] = b;
                for lim in [0, 10, 64, 1000] {
                    if let Ok(r) = parse_response_head(&m, i % 2 == 0, lim, &mut hs) {
                        out.clear();
                        write_client_head(
                            &mut out,
                            &m,
                            &r,
                            &hs,
                            &ToClient::plain(Encode::Chunked, false, true),
                        );
                        assert!(out.ends_with(b"\r\n\r\n"));
                    }
                }
            }
        }
    }

    fn client(resp: &[u8], req_head: bool, framing: Encode, ka: bool, h10: bool) -> String {
        let mut hs = Vec::new();
        let r = parse_response_head(resp, req_head, 4096, &mut hs).unwrap();
        let mut out = b"x".to_vec();
        write_client_head(&mut out, resp, &r, &hs, &ToClient::plain(framing, ka, h10));
        String::from_utf8(out)
            .unwrap()
            .strip_prefix('x')
            .unwrap()
            .to_string()
    }

    #[test]
    fn client_head_carries_our_server_and_a_date() {
        let mut hs = Vec::new();
        let mut ours = |resp: &[u8]| {
            let r = parse_response_head(resp, false, 4096, &mut hs).unwrap();
            let mut out = Vec::new();
            let to = ToClient {
                date: Some(b"Tue, 01 Dec 2026 10:00:00 GMT"),
                server: Some(b"uringd"),
                ..ToClient::plain(Encode::Length(2), true, false)
            };
            write_client_head(&mut out, resp, &r, &hs, &to);
            String::from_utf8(out).unwrap()
        };
        // A uwsgi app's answer: neither field.
        assert_eq!(
            ours(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nServer: uringd\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\n\
             Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n"
        );
        // gunicorn's: its Date stays (one Date), its Server gives way to ours.
        assert_eq!(
            ours(b"HTTP/1.1 200 OK\r\nServer: gunicorn\r\nDate: Mon, 30 Nov 2026 00:00:00 GMT\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nServer: uringd\r\nDate: Mon, 30 Nov 2026 00:00:00 GMT\r\n\
             Content-Length: 2\r\n\r\n"
        );
    }

    #[test]
    fn client_head_filters_hop_by_hop() {
        let resp =
            b"HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nConnection: keep-alive\r\n\
            Keep-Alive: timeout=5\r\nContent-Type: text/html\r\nContent-Length: 42\r\n\
            Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nProxy-Authenticate: Basic\r\nTrailer: X-T\r\n\
            Upgrade: h2c\r\nTE: x\r\n\r\n";
        assert_eq!(
            client(resp, false, Encode::Length(42), true, false),
            "HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: text/html\r\n\
             Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 42\r\n\r\n"
        );
        assert_eq!(
            client(resp, false, Encode::Length(42), false, false),
            "HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: text/html\r\n\
             Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 42\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            client(resp, false, Encode::Length(42), true, true),
            "HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: text/html\r\n\
             Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 42\r\nConnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn client_head_connection_named_and_reframing() {
        let resp = b"HTTP/1.1 200 OK\r\nConnection: close, X-Internal\r\nX-Internal: 1\r\n\
            Transfer-Encoding: chunked\r\nX-Public: 2\r\n\r\n";
        assert_eq!(
            client(resp, false, Encode::Chunked, true, false),
            "HTTP/1.1 200 OK\r\nX-Public: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        // Close-delimited to the client.
        let resp = b"HTTP/1.0 200 Fine\r\nServer: g\r\n\r\n";
        assert_eq!(
            client(resp, false, Encode::None, false, true),
            "HTTP/1.1 200 Fine\r\nServer: g\r\nConnection: close\r\n\r\n"
        );
        // Reasonless status line keeps the SP.
        let resp = b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            client(resp, false, Encode::Length(0), true, false),
            "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn client_head_content_length_metadata() {
        // HEAD response and 304 keep the upstream's Content-Length (first only).
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Length: 1000\r\nETag: \"x\"\r\n\r\n";
        assert_eq!(
            client(resp, true, Encode::None, true, false),
            "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nETag: \"x\"\r\n\r\n"
        );
        let resp = b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 7\r\n\r\n";
        assert_eq!(
            client(resp, false, Encode::None, true, false),
            "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 7\r\n\r\n"
        );
        // 204 never carries it.
        let resp = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            client(resp, false, Encode::None, true, false),
            "HTTP/1.1 204 No Content\r\n\r\n"
        );
        // With explicit framing the caller's value wins.
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(
            client(resp, false, Encode::Length(5), true, false),
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
        );
    }

    #[test]
    fn client_head_interim() {
        let resp = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n";
        assert_eq!(
            client(resp, false, Encode::None, false, false),
            "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        );
    }
}
