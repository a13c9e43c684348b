//! Responses rendered from templates prepared at start-up: per request only the Date and
//! Connection headers vary, so writing a response is three or four memcpys.

use std::sync::Arc;

use super::sink::Sink;

pub fn reason(status: u16) -> &'static str {
    match status {
        // RFC 9110 section 15, and 429 from RFC 6585.
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        // A status with no registered phrase: the class name, never "Unknown".
        s => match s / 100 {
            1 => "Informational",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}

/// A fixed response: everything before the Date value, and the body.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub status: u16,
    head: Vec<u8>,
    body: Arc<[u8]>,
    /// Error responses always close the connection.
    pub closes: bool,
}

pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The answer to plain HTTP on a TLS port (as nginx words it), sent unencrypted.
pub const PLAIN_HTTP_TO_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 60\r\nConnection: close\r\n\r\n400 Bad Request: a plain HTTP request sent to an HTTPS port\n";

impl Prepared {
    pub fn new(
        status: u16,
        server: &str,
        content_type: &str,
        body: &[u8],
        closes: bool,
    ) -> Prepared {
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes();
        if !server.is_empty() {
            head.extend_from_slice(format!("Server: {server}\r\n").as_bytes());
        }
        if !body.is_empty() {
            head.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        if status != 204 && status != 304 {
            head.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        head.extend_from_slice(b"Date: ");
        Prepared {
            status,
            head,
            body: body.into(),
            closes,
        }
    }

    /// A short plain-text error page that reveals nothing internal. A 405 names the
    /// methods allowed (RFC 9110 15.5.6): traffic routes answer 405 only for static files.
    pub fn error(status: u16, server: &str) -> Prepared {
        let body = format!("{status} {}\n", reason(status));
        let mut p = Prepared::new(status, server, "text/plain", body.as_bytes(), true);
        if status == 405 {
            p.add_line("Allow: GET, HEAD\r\n");
        }
        p
    }

    /// Adds a header line (ending CRLF) to every response written from it.
    pub fn add_line(&mut self, line: &str) {
        let at = self.head.len() - b"Date: ".len();
        self.head.splice(at..at, line.bytes());
    }

    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// Appends this response to `out`. `keep_alive` false adds `Connection: close`;
    /// `http10_keep_alive` adds the `Connection: keep-alive` an HTTP/1.0 client asked for.
    pub fn write(
        &self,
        out: &mut impl Sink,
        date: &[u8; 29],
        keep_alive: bool,
        http10_keep_alive: bool,
        head_only: bool,
        zc_threshold: usize,
    ) {
        self.write_with(
            out,
            date,
            keep_alive,
            http10_keep_alive,
            head_only,
            zc_threshold,
            b"",
        );
    }

    /// `write`, with `extra` header lines (each ending CRLF) before the Date.
    #[allow(clippy::too_many_arguments)]
    pub fn write_with(
        &self,
        out: &mut impl Sink,
        date: &[u8; 29],
        keep_alive: bool,
        http10_keep_alive: bool,
        head_only: bool,
        zc_threshold: usize,
        extra: &[u8],
    ) {
        let v = out.bytes();
        let start = v.len();
        if extra.is_empty() {
            v.extend_from_slice(&self.head);
        } else {
            let at = self.head.len() - b"Date: ".len();
            v.extend_from_slice(&self.head[..at]);
            v.extend_from_slice(extra);
            v.extend_from_slice(b"Date: ");
        }
        v.extend_from_slice(date);
        if !keep_alive {
            v.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        } else if http10_keep_alive {
            v.extend_from_slice(b"\r\nConnection: keep-alive\r\n\r\n");
        } else {
            v.extend_from_slice(b"\r\n\r\n");
        }
        let n = v.len() - start;
        out.commit(n);
        if !head_only && !self.body.is_empty() {
            out.push_shared(&self.body, zc_threshold);
        }
    }
}

/// Writes a one-off response (admin pages, short answers): not on the traffic hot path, so
/// the head is formatted on the spot. `extra` is a block of header lines, each ending CRLF.
#[allow(clippy::too_many_arguments)]
pub fn write_dynamic(
    out: &mut impl Sink,
    status: u16,
    server: &str,
    content_type: &str,
    extra: &str,
    body: &[u8],
    date: &[u8; 29],
    keep_alive: bool,
    head_only: bool,
) {
    let v = out.bytes();
    let start = v.len();
    v.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
    if !server.is_empty() {
        v.extend_from_slice(format!("Server: {server}\r\n").as_bytes());
    }
    v.extend_from_slice(
        format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{extra}Date: ",
            body.len()
        )
        .as_bytes(),
    );
    v.extend_from_slice(date);
    v.extend_from_slice(if keep_alive {
        b"\r\n\r\n"
    } else {
        b"\r\nConnection: close\r\n\r\n"
    });
    if !head_only {
        v.extend_from_slice(body);
    }
    let n = v.len() - start;
    out.commit(n);
}

/// Writes a redirect to `location`: traffic (a plain listener may send every request
/// here), so nothing is formatted per response, and nothing says not to cache it (a
/// permanent redirect is meant to be remembered). `status` is one `redirect::status_allowed`
/// admits. `http10_keep_alive` adds the `Connection: keep-alive` an HTTP/1.0 client asked
/// for. Returns the body bytes written (for the access log).
#[allow(clippy::too_many_arguments)]
pub fn write_redirect(
    out: &mut impl Sink,
    status: u16,
    server: &str,
    location: &[u8],
    date: &[u8; 29],
    keep_alive: bool,
    http10_keep_alive: bool,
    head_only: bool,
) -> usize {
    let (line, body, len): (&[u8], &[u8], &[u8]) = match status {
        301 => (b"301 Moved Permanently", b"301 Moved Permanently\n", b"22"),
        302 => (b"302 Found", b"302 Found\n", b"10"),
        307 => (
            b"307 Temporary Redirect",
            b"307 Temporary Redirect\n",
            b"23",
        ),
        _ => (
            b"308 Permanent Redirect",
            b"308 Permanent Redirect\n",
            b"23",
        ),
    };
    let v = out.bytes();
    let start = v.len();
    v.extend_from_slice(b"HTTP/1.1 ");
    v.extend_from_slice(line);
    if !server.is_empty() {
        v.extend_from_slice(b"\r\nServer: ");
        v.extend_from_slice(server.as_bytes());
    }
    v.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
    v.extend_from_slice(len);
    v.extend_from_slice(b"\r\nLocation: ");
    v.extend_from_slice(location);
    v.extend_from_slice(b"\r\nDate: ");
    v.extend_from_slice(date);
    v.extend_from_slice(match (keep_alive, http10_keep_alive) {
        (false, _) => b"\r\nConnection: close\r\n\r\n",
        (true, true) => b"\r\nConnection: keep-alive\r\n\r\n",
        (true, false) => b"\r\n\r\n",
    });
    if !head_only {
        v.extend_from_slice(body);
    }
    let n = v.len() - start;
    out.commit(n);
    if head_only { 0 } else { body.len() }
}

/// Error responses for every status the connection state machine can produce.
#[derive(Clone, Debug)]
pub struct ErrorPages {
    pages: Vec<Prepared>,
}

const ERROR_STATUSES: [u16; 20] = [
    400, 403, 404, 405, 408, 412, 413, 414, 416, 417, 421, 429, 431, 500, 501, 502, 503, 504, 505,
    507,
];

impl ErrorPages {
    pub fn new(server: &str) -> ErrorPages {
        let pages = ERROR_STATUSES
            .iter()
            .map(|&s| {
                let mut p = Prepared::error(s, server);
                // 403/404/405/412/421/429 are answers, not framing doubts: the connection
                // stays usable.
                p.closes = !matches!(s, 403..=405 | 412 | 421 | 429);
                p
            })
            .collect();
        ErrorPages { pages }
    }

    /// The page for `status`; a status without a page is a bug, answered as 500.
    pub fn get(&self, status: u16) -> &Prepared {
        debug_assert!(
            ERROR_STATUSES.contains(&status),
            "no error page for {status}"
        );
        let i = ERROR_STATUSES
            .iter()
            .position(|&s| s == status)
            .or_else(|| ERROR_STATUSES.iter().position(|&s| s == 500))
            .unwrap_or(0);
        &self.pages[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_render_exact_bytes_and_their_lengths_are_right() {
        let date = *b"Sun, 06 Nov 1994 08:49:37 GMT";
        let mut q = Vec::new();
        write_redirect(
            &mut q,
            308,
            "uringd",
            b"https://a.test/x?y",
            &date,
            false,
            false,
            false,
        );
        let want = "HTTP/1.1 308 Permanent Redirect\r\nServer: uringd\r\nContent-Type: text/plain\r\nContent-Length: 23\r\nLocation: https://a.test/x?y\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n308 Permanent Redirect\n";
        assert_eq!(String::from_utf8_lossy(&q), want);
        for status in [301, 302, 307, 308] {
            let mut q = Vec::new();
            write_redirect(&mut q, status, "", b"/", &date, true, false, false);
            let text = String::from_utf8(q).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let len = head
                .split("Content-Length: ")
                .nth(1)
                .unwrap()
                .split("\r\n")
                .next();
            assert_eq!(len, Some(body.len().to_string().as_str()), "{status}");
            assert!(head.starts_with(&format!("HTTP/1.1 {status} {}", reason(status))));
            assert!(body.starts_with(&status.to_string()));
        }
    }

    #[test]
    fn renders_exact_bytes() {
        let p = Prepared::new(200, "uringd", "text/plain", b"Hello, World!", false);
        let mut q = Vec::new();
        let date = *b"Sun, 06 Nov 1994 08:49:37 GMT";
        p.write(&mut q, &date, true, false, false, 1 << 20);
        p.write(&mut q, &date, false, false, true, 1 << 20);
        let want = "HTTP/1.1 200 OK\r\nServer: uringd\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\nHello, World!\
HTTP/1.1 200 OK\r\nServer: uringd\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n";
        assert_eq!(String::from_utf8_lossy(&q), want);
    }
}
