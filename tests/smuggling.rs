//! Request framing and smuggling conformance, through the proxy, against a recording backend.
//!
//! Each case is the exact bytes a client sends and the expected outcome:
//! - `Reject(status)`: uringd answers that status with `Connection: close`, closes, and the
//!   backend receives nothing at all (checked once for the whole table, after every case).
//! - `Forward`: the backend receives exactly one request whose request line, `Host`, framing
//!   header and body bytes are the ones given: uringd's own framing, never the client's.
//!
//! Sources: RFC 9112 (sections 2.2, 3, 5, 6, 7) and RFC 9110; the published request-smuggling
//! research (Linhart et al. 2005 "HTTP Request Smuggling"; Kettle 2019 "HTTP Desync Attacks";
//! Kettle 2021 "HTTP/2: The Sequel is Always Worse", for the header-name tricks; the
//! "HTTP Garden" differential-fuzzing findings 2023-24 on chunk extensions and bare LF).

#[path = "common/backend.rs"]
mod backend;
mod common;
#[path = "common/tls.rs"]
mod tlsc;

use std::io::{Read, Write};
use std::time::Duration;

use backend::{Mode, RawBackend};
use common::Server;

enum Want {
    /// This status, then a close; nothing reaches the backend.
    Reject(u16),
    /// Forwarded once: request line, Host, framing header (None: no body header), body bytes.
    Forward {
        line: &'static str,
        host: &'static str,
        framing: Option<&'static str>,
        body: &'static [u8],
    },
}
use Want::*;

const fn fwd(line: &'static str, framing: Option<&'static str>, body: &'static [u8]) -> Want {
    Forward {
        line,
        host: "a",
        framing,
        body,
    }
}

/// (name, bytes sent, expected outcome). Every request ends the connection with
/// `Connection: close` where it is accepted, so one case never bleeds into the next.
fn cases() -> Vec<(&'static str, &'static [u8], Want)> {
    vec![
        // --- Content-Length and Transfer-Encoding together (RFC 9112 6.1, 6.3) ---
        ("CL.TE", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", Reject(400)),
        ("TE.CL", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n", Reject(400)),
        ("CL.TE on HTTP/1.0", b"POST / HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Reject(400)),
        // --- Obfuscated Transfer-Encoding ---
        ("TE space before colon", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", Reject(400)),
        ("TE leading space on the line (obs-fold)", b"POST / HTTP/1.1\r\nHost: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Reject(400)),
        ("TE folded value", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", Reject(400)),
        // A coding list whose last element is not `chunked` leaves the length undecidable:
        // 400 (RFC 9112 6.3 item 4). An unknown coding before a final chunked is 501 (6.1).
        ("TE xchunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", Reject(400)),
        ("TE quoted", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", Reject(400)),
        ("TE chunked twice in a list", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", Reject(400)),
        ("TE repeated header", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Reject(400)),
        ("TE chunked then identity", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", Reject(400)),
        ("TE identity", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", Reject(400)),
        ("TE empty", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", Reject(400)),
        ("TE list with empty element", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n", Reject(400)),
        ("TE gzip, chunked (unknown coding)", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", Reject(501)),
        ("TE chunked with a parameter", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", Reject(400)),
        ("TE vertical tab after value", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x0b\r\n\r\n0\r\n\r\n", Reject(400)),
        ("TE form feed before value", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0cchunked\r\n\r\n0\r\n\r\n", Reject(400)),
        ("TE newline in the name", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer\r\n-Encoding: chunked\r\n\r\n0\r\n\r\n", Reject(400)),
        ("TE bare-LF-terminated line", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\n\r\n0\r\n\r\n", Reject(400)),
        ("TE on HTTP/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Reject(400)),
        // Spellings RFC 9110 allows: case-insensitive coding, OWS (SP/HTAB) around the value.
        ("TE upper case", b"POST / HTTP/1.1\r\nHost: a\r\nTRANSFER-ENCODING: CHUNKED\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            fwd("POST / HTTP/1.1", Some("Transfer-Encoding: chunked"), b"3\r\nabc\r\n0\r\n\r\n")),
        ("TE tab OWS", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\t\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            fwd("POST / HTTP/1.1", Some("Transfer-Encoding: chunked"), b"3\r\nabc\r\n0\r\n\r\n")),
        // --- Content-Length forms (RFC 9112 6.3 item 5; RFC 9110 8.6) ---
        ("CL repeated, different", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", Reject(400)),
        ("CL repeated, same", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", Reject(400)),
        ("CL list, same", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", Reject(400)),
        ("CL plus sign", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", Reject(400)),
        ("CL minus sign", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -3\r\n\r\nabc", Reject(400)),
        ("CL hex", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc", Reject(400)),
        ("CL inner space", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 3\r\n\r\nabcdefghijklm", Reject(400)),
        ("CL empty", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", Reject(400)),
        ("CL overflow", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551617\r\n\r\n", Reject(400)),
        ("CL underscore", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1_0\r\n\r\n", Reject(400)),
        ("CL vertical tab", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\x0b\r\n\r\nabc", Reject(400)),
        ("CL space before colon", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 3\r\n\r\nabc", Reject(400)),
        ("CL leading zeros are still decimal", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 003\r\nConnection: close\r\n\r\nabc",
            fwd("POST / HTTP/1.1", Some("Content-Length: 3"), b"abc")),
        ("CL with OWS", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  3 \r\nConnection: close\r\n\r\nabc",
            fwd("POST / HTTP/1.1", Some("Content-Length: 3"), b"abc")),
        // A body on GET is framed like any other (RFC 9110 9.3.1): forwarded, never re-parsed
        // as a second request.
        ("GET with a CL body holding a request", b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 30\r\nConnection: close\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n",
            fwd("GET / HTTP/1.1", Some("Content-Length: 30"), b"GET /admin HTTP/1.1\r\nHost: a\r\n")),
        // --- Chunked body forms (RFC 9112 7.1) ---
        // A size past any body limit is refused before it can overflow: 413.
        ("chunk size overflow", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nabc\r\n0\r\n\r\n", Reject(413)),
        ("chunk size past the body limit", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\nabc\r\n0\r\n\r\n", Reject(413)),
        ("chunk size 0x prefix", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", Reject(400)),
        ("chunk size sign", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n", Reject(400)),
        ("chunk size leading space", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n", Reject(400)),
        ("chunk size trailing space", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", Reject(400)),
        ("chunk size not hex", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\ng\r\nabc\r\n0\r\n\r\n", Reject(400)),
        ("chunk size empty", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\nabc\r\n0\r\n\r\n", Reject(400)),
        ("chunk extension with bare LF", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x\nabc\r\n0\r\n\r\n", Reject(400)),
        ("chunk extension with a control", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x\x00y\r\nabc\r\n0\r\n\r\n", Reject(400)),
        ("chunk size line ended by bare LF", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", Reject(400)),
        ("short chunk data", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc\r\n0\r\n\r\n", Reject(400)),
        ("long chunk data (no CRLF after data)", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcde\r\n0\r\n\r\n", Reject(400)),
        ("chunk data followed by bare LF", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n", Reject(400)),
        ("last chunk ended by bare LF", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\n\r\n", Reject(400)),
        ("trailer section ended by bare LF", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\n", Reject(400)),
        ("malformed trailer line", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon here\r\n\r\n", Reject(400)),
        // Extensions are parsed and dropped; uringd re-chunks with its own sizes.
        ("chunk extensions dropped", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3 ; a=\"q;x\" ;b\r\nabc\r\n0;c\r\n\r\n",
            fwd("POST / HTTP/1.1", Some("Transfer-Encoding: chunked"), b"3\r\nabc\r\n0\r\n\r\n")),
        ("chunk size with leading zeros", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0003\r\nabc\r\n0\r\n\r\n",
            fwd("POST / HTTP/1.1", Some("Transfer-Encoding: chunked"), b"3\r\nabc\r\n0\r\n\r\n")),
        // Trailers are never merged into the head. One naming a framing or routing field
        // is refused outright (RFC 9110 6.5.1 forbids them); others are dropped, and the
        // forwarded body ends with an empty trailer section.
        ("trailer setting Content-Length", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nContent-Length: 100\r\n\r\n", Reject(400)),
        ("trailer setting Transfer-Encoding", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n", Reject(400)),
        ("trailer setting Host", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nHost: evil\r\n\r\n", Reject(400)),
        ("other trailers are dropped", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\n",
            fwd("POST / HTTP/1.1", Some("Transfer-Encoding: chunked"), b"3\r\nabc\r\n0\r\n\r\n")),
        // --- Line endings, folding and controls in the head (RFC 9112 2.2, 5.2) ---
        ("bare LF line endings", b"GET / HTTP/1.1\nHost: a\n\n", Reject(400)),
        ("bare LF after the request line", b"GET / HTTP/1.1\nHost: a\r\n\r\n", Reject(400)),
        ("bare CR in a value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", Reject(400)),
        ("bare CR line ending", b"GET / HTTP/1.1\rHost: a\r\n\r\n", Reject(400)),
        ("CR CR LF", b"GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", Reject(400)),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", Reject(400)),
        ("obs-fold with tab", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", Reject(400)),
        ("NUL in a value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", Reject(400)),
        ("NUL in a name", b"GET / HTTP/1.1\r\nHost: a\r\nX\x00Y: b\r\n\r\n", Reject(400)),
        ("ESC in a value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x1bb\r\n\r\n", Reject(400)),
        ("DEL in a value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", Reject(400)),
        ("NUL in the target", b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n", Reject(400)),
        ("empty header name", b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", Reject(400)),
        ("spaced header name", b"GET / HTTP/1.1\r\nHost: a\r\nX Y: b\r\n\r\n", Reject(400)),
        ("header name with a tab before colon", b"GET / HTTP/1.1\r\nHost: a\r\nX\t: b\r\n\r\n", Reject(400)),
        ("header line without a colon", b"GET / HTTP/1.1\r\nHost: a\r\nX-No-Colon\r\n\r\n", Reject(400)),
        ("non-token byte in a name", b"GET / HTTP/1.1\r\nHost: a\r\nX(Y): b\r\n\r\n", Reject(400)),
        ("whitespace line before the headers", b"GET / HTTP/1.1\r\n \r\nHost: a\r\n\r\n", Reject(400)),
        // --- Request line (RFC 9112 3) ---
        ("space in the target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", Reject(400)),
        ("two spaces after the method", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", Reject(400)),
        ("tab separators", b"GET\t/\tHTTP/1.1\r\nHost: a\r\n\r\n", Reject(400)),
        ("space after the version", b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", Reject(400)),
        ("HTTP/0.9 simple request", b"GET /\r\n\r\n", Reject(400)),
        ("HTTP/0.9 request line with a header", b"GET /\r\nHost: a\r\n\r\n", Reject(400)),
        ("lower-case version", b"GET / http/1.1\r\nHost: a\r\n\r\n", Reject(400)),
        ("version with extra digits", b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", Reject(400)),
        ("HTTP/2.0 in a request line", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", Reject(505)),
        ("control in the method", b"G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n", Reject(400)),
        ("target not starting with / (not absolute)", b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", Reject(400)),
        ("CONNECT (no tunnels)", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", Reject(501)),
        // --- Host (RFC 9112 3.2) ---
        ("missing Host", b"GET / HTTP/1.1\r\n\r\n", Reject(400)),
        ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Reject(400)),
        ("Host list", b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", Reject(400)),
        ("Host with a space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Reject(400)),
        ("Host with a slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", Reject(400)),
        ("Host with userinfo", b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", Reject(400)),
        // --- absolute-form: the authority wins, and is the only Host forwarded (RFC 9112 3.2.2) ---
        ("absolute-form replaces Host", b"GET http://example.test/x?q=1 HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
            Forward { line: "GET /x?q=1 HTTP/1.1", host: "example.test", framing: None, body: b"" }),
        ("absolute-form with an empty path", b"GET http://example.test HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n",
            Forward { line: "GET / HTTP/1.1", host: "example.test", framing: None, body: b"" }),
        ("absolute-form with userinfo", b"GET http://u:p@example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n", Reject(400)),
        ("absolute-form with another scheme", b"GET ftp://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n", Reject(400)),
        ("absolute-form with an empty authority", b"GET http:///x HTTP/1.1\r\nHost: example.test\r\n\r\n", Reject(400)),
        ("absolute-form still needs a Host", b"GET http://example.test/ HTTP/1.1\r\n\r\n", Reject(400)),
        // --- Expect (RFC 9110 10.1.1): uringd answers 100 itself, forwards no Expect ---
        ("Expect: 100-continue", b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
            fwd("POST / HTTP/1.1", Some("Content-Length: 3"), b"abc")),
        ("unknown expectation", b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 3\r\n\r\nabc", Reject(417)),
        // --- A head that never has an LF: refused at the first bare CR, not at the timeout ---
        ("a head of bare CRs only", b"GET / HTTP/1.1\rHost: a\r\r", Reject(400)),
        ("bare CR then more bytes, no LF", b"GET / HTTP/1.1\r\nHost: a\rX: y", Reject(400)),
        // --- Paths: normalized once (RFC 3986 6.2.2, 5.2.4); routing and the backend read
        // the same one (http/path.rs) ---
        ("%00 in the path", b"GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n", Reject(400)),
        ("encoded dot segments above the root", b"GET /a/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n", Reject(400)),
        ("raw dot segments above the root", b"GET /../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n", Reject(400)),
        ("dot segments behind encoded slashes", b"GET /a/..%2F..%2Fetc/passwd HTTP/1.1\r\nHost: a\r\n\r\n", Reject(400)),
        ("malformed escape", b"GET /a%zzb HTTP/1.1\r\nHost: a\r\n\r\n", Reject(400)),
        ("truncated escape", b"GET /a% HTTP/1.1\r\nHost: a\r\n\r\n", Reject(400)),
        ("dot segments resolved", b"GET /a/./b/../c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            fwd("GET /a/c HTTP/1.1", None, b"")),
        ("encoded dot segments resolved", b"GET /a/b/%2E%2e/c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            fwd("GET /a/c HTTP/1.1", None, b"")),
        ("unreserved escapes decoded", b"GET /%61dmin%7E HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            fwd("GET /admin~ HTTP/1.1", None, b"")),
        ("reserved escapes kept, uppercased", b"GET /a%2fb%3f HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            fwd("GET /a%2Fb%3F HTTP/1.1", None, b"")),
        ("repeated slashes merged", b"GET //a///b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            fwd("GET /a/b HTTP/1.1", None, b"")),
        ("the query is left alone", b"GET /a/../b?x=/../%2e&y=%00 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            fwd("GET /b?x=/../%2e&y=%00 HTTP/1.1", None, b"")),
        ("absolute-form paths are normalized too", b"GET http://a/x/../y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            fwd("GET /y HTTP/1.1", None, b"")),
    ]
}

/// Splits a forwarded request into (head lines, body).
fn split(raw: &[u8]) -> (Vec<String>, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let lines = head.split("\r\n").map(str::to_string).collect();
    (lines, raw[end + 4..].to_vec())
}

fn named<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
    lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// Reads everything until the server closes; None if it did not close within 5 s.
fn until_close(c: &mut std::net::TcpStream) -> Option<Vec<u8>> {
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return Some(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(out),
            Err(_) => return None,
        }
    }
}

#[test]
fn framing_conformance_through_the_proxy() {
    // Request buffering (the default): a chunked body is held and goes with its length.
    conformance("");
}

#[test]
fn framing_conformance_through_a_streaming_proxy() {
    // Streaming: a chunked body is re-chunked by uringd as it comes.
    conformance("request_buffering = false");
}

/// A chunked body decoded (the expectations are written for a streaming proxy).
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 4 + n..];
    }
}

fn conformance(pool: &str) {
    let buffered = pool.is_empty();
    let b = RawBackend::start(Mode::Echo);
    let cfg = format!(
        "[upstream.app]\nservers = [\"http://{}\"]\n{pool}\n[[route]]\nname = \"app\"\nprefix = \"/\"\nupstream = \"app\"\n",
        b.addr
    );
    let s = Server::start(Some(&cfg), &["--workers", "1"]);
    let mut failures = Vec::new();
    let mut forwarded = 0;
    for (name, bytes, want) in cases() {
        let mut c = s.connect();
        c.write_all(bytes).unwrap();
        let Some(out) = until_close(&mut c) else {
            failures.push(format!("{name}: no close within 5 s"));
            continue;
        };
        let text = String::from_utf8_lossy(&out).into_owned();
        match want {
            Reject(status) => {
                let ok = common::status_of(&text) == status
                    && text.matches("HTTP/1.1 ").count() == 1
                    && text.contains("\r\nConnection: close\r\n");
                if !ok {
                    failures.push(format!("{name}: want {status} + close, got {text:?}"));
                }
            }
            Forward {
                line,
                host,
                framing,
                body,
            } => {
                forwarded += 1;
                // The final response is the echo: its body is what the backend received.
                let start = text.rfind("HTTP/1.1 200 ").unwrap_or(0);
                let mut rd = std::io::BufReader::new(&out[start..]);
                let resp = match backend::read_response(&mut rd, false) {
                    Ok(r) if r.status == 200 => r,
                    other => {
                        failures.push(format!("{name}: want 200, got {other:?} in {text:?}"));
                        continue;
                    }
                };
                let (lines, got_body) = split(&resp.body);
                let mut why = Vec::new();
                if lines[0] != line {
                    why.push(format!("request line {:?}", lines[0]));
                }
                if named(&lines, "host") != [host] {
                    why.push(format!("Host {:?}", named(&lines, "host")));
                }
                let cl = named(&lines, "content-length");
                let te = named(&lines, "transfer-encoding");
                let framing_seen: Vec<String> = cl
                    .iter()
                    .map(|v| format!("Content-Length: {v}"))
                    .chain(te.iter().map(|v| format!("Transfer-Encoding: {v}")))
                    .collect();
                let (want_framing, body): (Vec<String>, Vec<u8>) =
                    if buffered && framing == Some("Transfer-Encoding: chunked") {
                        let d = dechunk(body);
                        (vec![format!("Content-Length: {}", d.len())], d)
                    } else {
                        (
                            framing.iter().map(|f| f.to_string()).collect(),
                            body.to_vec(),
                        )
                    };
                if framing_seen != want_framing {
                    why.push(format!("framing {framing_seen:?}"));
                }
                for h in ["expect", "trailer", "te", "keep-alive"] {
                    if !named(&lines, h).is_empty() {
                        why.push(format!("{h} forwarded"));
                    }
                }
                if got_body != body {
                    why.push(format!("body {:?}", String::from_utf8_lossy(&got_body)));
                }
                if !why.is_empty() {
                    failures.push(format!(
                        "{name}: {}; backend saw {:?}",
                        why.join(", "),
                        resp.text()
                    ));
                }
            }
        }
    }
    // Rejected requests must not have reached the backend even in part: it records a partial
    // request after 200 ms idle, so give it that long.
    std::thread::sleep(Duration::from_millis(400));
    let seen = b.requests();
    if seen.len() != forwarded {
        failures.push(format!(
            "backend received {} requests, expected {forwarded}: {:?}",
            seen.len(),
            b.requests_text()
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases().len(),
        failures.join("\n")
    );
}

/// TLS feeds the same codec: every refused case of the table is refused the same way when
/// it arrives in TLS records, and nothing reaches the backend. One case is also sent a byte
/// per record (the codec sees it in 1-byte pieces).
#[test]
fn the_refusals_hold_over_tls() {
    let b = RawBackend::start(Mode::Echo);
    let d = common::TempDir::new("smuggle-tls");
    let pki = tlsc::Pki::new(&d.0);
    let (cert, key) = pki.leaf("a", &["a"], 30);
    let cfg = format!(
        "[tls]\nlisten = [\"127.0.0.1:0\"]\n[[tls.cert]]\ncert = \"{}\"\nkey = \"{}\"\n\
         [[route]]\nname = \"app\"\nprefix = \"/\"\nupstream = \"http://{}\"\n",
        cert.display(),
        key.display(),
        b.addr
    );
    let s = Server::start(Some(&cfg), &["--workers", "1"]);
    let addr = tlsc::tls_addr(&s.log);
    let client = tlsc::client_config(&pki.ca);
    let exchange = |bytes: &[u8], per_byte: bool| -> String {
        let mut t = tlsc::connect(addr, "a", &client).unwrap();
        if per_byte {
            for b in bytes {
                t.write_all(std::slice::from_ref(b)).unwrap();
                t.flush().unwrap();
            }
        } else {
            t.write_all(bytes).unwrap();
        }
        t.flush().unwrap();
        let mut out = Vec::new();
        let _ = t.read_to_end(&mut out); // a close with or without close_notify
        String::from_utf8_lossy(&out).into_owned()
    };
    let mut failures = Vec::new();
    for (name, bytes, want) in cases() {
        let Reject(status) = want else { continue };
        let per_byte = name == "CL.TE";
        for split in [false, per_byte].into_iter().filter(|&x| !x || per_byte) {
            let text = exchange(bytes, split);
            let ok = common::status_of(&text) == status
                && text.matches("HTTP/1.1 ").count() == 1
                && text.contains("\r\nConnection: close\r\n");
            if !ok {
                failures.push(format!(
                    "{name} (byte records: {split}): want {status}, got {text:?}"
                ));
            }
        }
    }
    std::thread::sleep(Duration::from_millis(400));
    if !b.requests().is_empty() {
        failures.push(format!("the backend received {:?}", b.requests_text()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn proxy(b: &RawBackend) -> Server {
    let cfg = format!(
        "[[route]]\nname = \"app\"\nprefix = \"/\"\nupstream = \"http://{}\"\n",
        b.addr
    );
    Server::start(Some(&cfg), &["--workers", "1"])
}

/// A request pipelined behind a refused one is never parsed, let alone forwarded.
#[test]
fn nothing_after_a_refused_request_reaches_the_backend() {
    let b = RawBackend::start(Mode::Echo);
    let s = proxy(&b);
    let mut c = s.connect();
    c.write_all(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .unwrap();
    let out = until_close(&mut c).expect("closed");
    let text = String::from_utf8_lossy(&out);
    assert_eq!(common::status_of(&text), 400, "{text}");
    assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text}");
    std::thread::sleep(Duration::from_millis(400));
    assert!(b.requests().is_empty(), "{:?}", b.requests_text());
}

/// An Upgrade the backend declines (200, not 101) opens no tunnel: bytes pipelined behind it
/// are parsed and re-framed as a request of their own.
#[test]
fn a_declined_upgrade_opens_no_tunnel() {
    let b = RawBackend::start(Mode::Echo);
    let s = proxy(&b);
    let mut c = s.connect();
    c.write_all(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    let out = until_close(&mut c).expect("closed");
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text.matches("HTTP/1.1 200 ").count(), 2, "{text}");
    let seen = b.wait_requests(2, Duration::from_secs(2));
    assert_eq!(seen.len(), 2, "{:?}", b.requests_text());
    let second = String::from_utf8_lossy(&seen[1]);
    assert!(second.starts_with("GET /next HTTP/1.1\r\n"), "{second}");
    assert!(
        second.contains("\r\nVia: 1.1 uringd\r\n"),
        "re-framed: {second}"
    );
}

/// The response side gets the same strictness: a backend answer whose length two peers could
/// read differently is never relayed (502), and the backend connection is not reused.
#[test]
fn ambiguous_backend_responses_are_502() {
    let cases: [(&str, &str); 6] = [
        (
            "CL and TE",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "two different CLs",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
        (
            "CL with sign",
            "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
        ),
        (
            "bare LF head",
            "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",
        ),
        (
            "obs-fold",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: a\r\n b\r\n\r\nhello",
        ),
        (
            "TE not ending in chunked",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nhello",
        ),
    ];
    for (name, resp) in cases {
        let b = RawBackend::start(Mode::Fixed(resp.into()));
        let s = proxy(&b);
        let r = backend::http_raw(s.addr, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false);
        assert!(matches!(&r, Ok(r) if r.status == 502), "{name}: {r:?}");
    }
}

/// A route that refuses a path refuses every spelling of it that a backend would read as
/// that path: routing sees the normalized path (and `%2F` as a slash), never the raw one.
#[test]
fn every_spelling_of_a_refused_path_is_refused() {
    let b = RawBackend::start(Mode::Echo);
    let cfg = format!(
        "[[route]]\nprefix = \"/admin\"\nreturn = {{ status = 403, body = \"denied\" }}\n\
         [[route]]\nprefix = \"/\"\nupstream = \"http://{}\"\n",
        b.addr
    );
    let s = Server::start(Some(&cfg), &["--workers", "1"]);
    for path in [
        "/admin/secret",
        "/%61dmin/secret",
        "/%61%64%6d%69%6e/secret",
        "//admin/secret",
        "/x/../admin/secret",
        "/x/%2e%2e/admin/secret",
        "/./admin/secret",
        "/admin%2Fsecret",
        "/admin%2fsecret",
    ] {
        let r = common::request(s.addr, "GET", path, "");
        assert_eq!(r.status, 403, "{path}: {r:?}");
    }
    let r = common::request(s.addr, "GET", "/x/../public", "");
    assert_eq!(r.status, 200, "{r:?}");
    let seen = b.wait_requests(1, Duration::from_secs(2));
    assert_eq!(
        seen.len(),
        1,
        "only the allowed path reached the backend: {:?}",
        b.requests_text()
    );
    assert!(
        seen[0].starts_with(b"GET /public HTTP/1.1\r\n"),
        "{:?}",
        b.requests_text()
    );
}

/// h2c is never tunnelled (h2csmuggler): the backend never sees the Upgrade, and a 101 it
/// sends anyway is a 502, not a tunnel past uringd's routing.
#[test]
fn h2c_upgrades_are_never_tunnelled() {
    let b = RawBackend::start(Mode::Fixed(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".into(),
    ));
    let s = proxy(&b);
    let mut c = s.connect();
    c.write_all(
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\
          Connection: Upgrade, HTTP2-Settings\r\n\r\n",
    )
    .unwrap();
    let out = until_close(&mut c).expect("closed");
    let text = String::from_utf8_lossy(&out);
    assert_eq!(common::status_of(&text), 502, "{text}");
    let seen = b.wait_requests(1, Duration::from_secs(2));
    let req = String::from_utf8_lossy(&seen[0]).to_ascii_lowercase();
    assert!(!req.contains("upgrade:"), "{req}");
    assert!(!req.contains("http2-settings"), "{req}");
    assert!(req.contains("\r\nconnection: keep-alive\r\n"), "{req}");
}

/// Only the protocols a route lists are offered to its backend; a 101 to another one is 502.
#[test]
fn only_allowed_upgrade_protocols_reach_the_backend() {
    let ws101 =
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let ws = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    // Default: websocket is offered and tunnelled.
    let b = RawBackend::start(Mode::Fixed(ws101.into()));
    let s = proxy(&b);
    let mut c = s.connect();
    c.write_all(ws).unwrap();
    let r = common::read_response(&mut c, true);
    assert_eq!(r.status, 101, "{r:?}");
    // `upgrades = []`: the route tunnels nothing; the backend sees a plain request.
    let b = RawBackend::start(Mode::Fixed(ws101.into()));
    let cfg = format!(
        "[[route]]\nprefix = \"/\"\nupstream = \"http://{}\"\nupgrades = []\n",
        b.addr
    );
    let s = Server::start(Some(&cfg), &["--workers", "1"]);
    let mut c = s.connect();
    c.write_all(ws).unwrap();
    let out = until_close(&mut c).expect("closed");
    assert_eq!(common::status_of(&String::from_utf8_lossy(&out)), 502);
    let seen = b.wait_requests(1, Duration::from_secs(2));
    assert!(
        !String::from_utf8_lossy(&seen[0])
            .to_ascii_lowercase()
            .contains("upgrade:")
    );
    // A websocket request answered by a switch to something else: 502.
    let b = RawBackend::start(Mode::Fixed(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".into(),
    ));
    let s = proxy(&b);
    let mut c = s.connect();
    c.write_all(ws).unwrap();
    let out = until_close(&mut c).expect("closed");
    assert_eq!(common::status_of(&String::from_utf8_lossy(&out)), 502);
}

/// X-Real-IP, Forwarded and X-Forwarded-For from a client that is not a trusted proxy never
/// reach the backend; uringd's own values do, once each.
#[test]
fn spoofed_client_addresses_never_reach_the_backend() {
    let b = RawBackend::start(Mode::Echo);
    let s = proxy(&b);
    let r = backend::http_raw(
        s.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n\
          X-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n",
        false,
    )
    .unwrap();
    let (lines, _) = split(&r.body);
    assert_eq!(named(&lines, "x-real-ip"), ["127.0.0.1"], "{lines:?}");
    assert_eq!(named(&lines, "x-forwarded-for"), ["127.0.0.1"], "{lines:?}");
    assert!(named(&lines, "forwarded").is_empty(), "{lines:?}");
}

#[test]
fn a_redirect_reflects_no_header_and_reads_no_body_as_a_request() {
    let s = Server::start(
        Some("[[route]]\nprefix = \"/\"\nredirect = { to = \"https://$host$request_uri\" }\n"),
        &["--workers", "1"],
    );
    // An encoded CRLF stays encoded in the Location: no header line can ride in on it.
    let r = common::raw(
        s.addr,
        b"GET /a%0d%0aSet-Cookie:%20x=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(
        r.contains("\r\nLocation: https://a/a%0d%0aSet-Cookie:%20x=1\r\n"),
        "{r}"
    );
    assert!(!r.contains("\r\nSet-Cookie"), "{r}");
    // Raw CR or LF in the target or in Host never gets as far as a Location.
    for bad in [
        &b"GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET /a HTTP/1.1\r\nHost: a\rSet-Cookie: x=1\r\n\r\n",
        b"GET /a HTTP/1.1\r\nHost: a b\r\n\r\n",
    ] {
        let r = common::raw(s.addr, bad);
        assert_eq!(
            common::status_of(&r),
            400,
            "{}: {r}",
            String::from_utf8_lossy(bad)
        );
        assert!(!r.contains("Location:"), "{r}");
    }
    // A chunked body holding a request is discarded with the connection, never answered.
    let mut c = s.connect();
    c.write_all(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n23\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n\r\n0\r\n\r\n",
    )
    .unwrap();
    let all = until_close(&mut c).expect("closed after the answer");
    let all = String::from_utf8_lossy(&all);
    assert_eq!(all.matches("HTTP/1.1 ").count(), 1, "{all}");
    assert!(!all.contains("smuggled"), "{all}");
}

/// A PROXY header is read once, before anything else: a smuggling attempt behind it is
/// refused as on any connection, a second header is a bad request, and a header line with
/// a request folded into it is no header at all.
#[test]
fn a_proxy_header_carries_no_smuggled_request() {
    let b = RawBackend::start(Mode::Echo);
    let cfg = format!(
        "trusted_proxies = [\"127.0.0.1\"]\nreal_ip = \"proxy_protocol\"\n[[route]]\nprefix = \"/\"\nupstream = \"http://{}\"\n",
        b.addr
    );
    // The listener from the command line this time (tests/edge.rs uses the config key).
    let s = Server::start(
        Some(&cfg),
        &["--workers", "1", "--proxy-protocol-listen", "127.0.0.1:0"],
    );
    let pp = common::proxy_protocol_addr(&s);
    let hdr = "PROXY TCP4 198.51.100.9 127.0.0.1 40000 80\r\n";
    for (sent, want) in [
        (
            format!(
                "{hdr}POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
            ),
            Some(400),
        ),
        (
            format!("{hdr}{hdr}GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(400),
        ),
        (
            "PROXY TCP4 198.51.100.9 127.0.0.1 40000 80 GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
                .into(),
            None,
        ),
        (
            "PROXY TCP4 198.51.100.9 127.0.0.1 40000 80\rGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
                .into(),
            None,
        ),
    ] {
        let mut c = std::net::TcpStream::connect(pp).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(sent.as_bytes()).unwrap();
        let out = until_close(&mut c).expect("closed");
        let text = String::from_utf8_lossy(&out);
        match want {
            Some(status) => {
                assert_eq!(common::status_of(&text), status, "{sent:?}: {text}");
                assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text}");
            }
            None => assert!(out.is_empty(), "{sent:?}: {text}"),
        }
    }
    std::thread::sleep(Duration::from_millis(400));
    assert!(b.requests().is_empty(), "{:?}", b.requests_text());
}

/// Sites route by the Host the backend is then given: a port, a trailing dot or case make
/// no other site, a malformed port makes none (the default takes it), and an absolute-form
/// target's authority both routes and is the Host forwarded.
#[test]
fn hosts_route_to_the_site_whose_host_the_backend_gets() {
    let a = RawBackend::start(Mode::Echo);
    let b = RawBackend::start(Mode::Echo);
    let cfg = format!(
        "[[vhost]]\nnames = [\"a.test\"]\n[[vhost.route]]\nprefix = \"/\"\nupstream = \"http://{}\"\n\
         [[vhost]]\nnames = [\"b.test\"]\n[[vhost.route]]\nprefix = \"/\"\nupstream = \"http://{}\"\n\
         [[vhost]]\ndefault = true\n[[vhost.route]]\nprefix = \"/\"\nreturn = {{ status = 200, body = \"default\" }}\n",
        a.addr, b.addr
    );
    let s = Server::start(Some(&cfg), &["--workers", "1"]);
    let ask = |req: &str| {
        backend::http_raw(s.addr, req.as_bytes(), false)
            .map(|r| r.text())
            .unwrap_or_default()
    };
    for (host, site) in [
        ("a.test.:80", "a"),
        ("A.Test", "a"),
        ("b.test:8080", "b"),
        ("a.test..", "default"),
        ("a.test:80:80", "default"),
        ("a.test:x", "default"),
        ("b.test.a.test", "default"),
    ] {
        let got = ask(&format!(
            "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ));
        match site {
            "default" => assert_eq!(got, "default", "Host: {host}"),
            _ => assert!(
                got.contains(&format!("Host: {host}\r\n")),
                "Host: {host}: {got}"
            ),
        }
    }
    assert_eq!(a.requests().len(), 2, "{:?}", a.requests_text());
    assert_eq!(b.requests().len(), 1, "{:?}", b.requests_text());
    let got = ask("GET http://b.test/x HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
    assert!(got.contains("Host: b.test\r\n"), "{got}");
    assert_eq!(b.requests().len(), 2, "the authority routed it to b");
    assert_eq!(a.requests().len(), 2);
}

/// An X-Accel-Redirect target is never resolved out of its directory, in any spelling of
/// a dot segment; the file beside the internal directory is not served.
#[test]
fn x_accel_redirect_targets_with_dot_segments_are_refused() {
    let dir = common::TempDir::new("smuggle-accel");
    std::fs::create_dir(dir.0.join("private")).unwrap();
    std::fs::write(dir.0.join("private/ok.txt"), "ok").unwrap();
    std::fs::write(dir.0.join("secret.txt"), "secret").unwrap();
    for target in [
        "/private/../secret.txt",
        "/private/%2e%2e/secret.txt",
        "/private/%2E%2e/secret.txt",
        "/private/.%2e/secret.txt",
        "/private/..\\secret.txt",
        "/private/./../secret.txt",
        "/private/..",
        "private/ok.txt",
    ] {
        let b = RawBackend::start(Mode::Fixed(format!(
            "HTTP/1.1 200 OK\r\nX-Accel-Redirect: {target}\r\nContent-Length: 0\r\n\r\n"
        )));
        let cfg = format!(
            "[[route]]\nprefix = \"/private/\"\nstatic = \"{0}/private\"\ninternal = true\n[[route]]\nprefix = \"/secret.txt\"\nstatic = \"{0}\"\ninternal = true\n[[route]]\nprefix = \"/\"\nupstream = \"http://{1}\"\n",
            dir.0.display(),
            b.addr
        );
        let s = Server::start(Some(&cfg), &["--workers", "1"]);
        let r = backend::http_raw(
            s.addr,
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(r.status, 502, "{target}: {}", r.text());
        assert!(!r.text().contains("secret"), "{target}");
    }
}
