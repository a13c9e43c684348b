//! The access log: nginx's "combined" format plus the request time, e.g.
//! `127.0.0.1 - - [22/Nov/2026:07:36:47 +0000] "GET / HTTP/1.1" 200 13 "-" "curl/8" 0.000`.
//! Off unless configured; when on, a line is formatted per request into the worker's
//! buffer and written through the ring (see `ring::append`).

use std::io::Write;

use crate::driver::append::AppendFile;
use crate::http::date::format_log_time;
use crate::http::parser::{Head, HeaderSpan, find_header};

pub struct AccessLog {
    pub file: AppendFile,
    time: [u8; 26],
    time_secs: u64,
}

impl AccessLog {
    pub fn new(file: AppendFile) -> AccessLog {
        AccessLog {
            file,
            time: [b' '; 26],
            time_secs: u64::MAX,
        }
    }

    pub fn set_time(&mut self, unix_secs: u64) {
        if unix_secs != self.time_secs {
            self.time_secs = unix_secs;
            format_log_time(unix_secs, &mut self.time);
        }
    }
}

/// Appends `v` with quotes, backslashes and non-printable bytes escaped as `\xHH`, as nginx
/// does, so a client cannot forge log lines.
fn escaped(out: &mut Vec<u8>, v: &[u8]) {
    for &b in v {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            let _ = write!(out, "\\x{b:02X}");
        } else {
            out.push(b);
        }
    }
}

/// What a line needs from the head, copied when the head is parsed (a body may follow and
/// the receive buffer be gone by the time the response is written).
#[derive(Default)]
pub struct LineParts {
    /// The escaped request line; empty when the head never parsed (logged as "-").
    pub request: Vec<u8>,
    /// ` "referer" "user-agent"`, escaped.
    pub tail: Vec<u8>,
}

impl LineParts {
    pub fn clear(&mut self) {
        self.request.clear();
        self.tail.clear();
    }

    pub fn begin(&mut self, buf: &[u8], h: &Head, headers: &[HeaderSpan]) {
        self.clear();
        let line_end = h.target.end as usize + 9; // " HTTP/1.x"
        escaped(
            &mut self.request,
            buf.get(h.method.start as usize..line_end).unwrap_or(b"-"),
        );
        for name in [&b"referer"[..], b"user-agent"] {
            self.tail.extend_from_slice(b" \"");
            match find_header(buf, headers, name) {
                Some(v) => escaped(&mut self.tail, v),
                None => self.tail.push(b'-'),
            }
            self.tail.push(b'"');
        }
    }
}

impl AccessLog {
    /// Writes one whole line for a response.
    pub fn write(
        &mut self,
        client: Option<std::net::IpAddr>,
        parts: &LineParts,
        status: u16,
        bytes: usize,
        secs: f64,
    ) {
        let time = self.time;
        let Some(out) = self.file.line() else { return };
        match client {
            Some(ip) => {
                let _ = write!(out, "{ip}");
            }
            None => out.push(b'-'),
        }
        out.extend_from_slice(b" - - [");
        out.extend_from_slice(&time);
        out.extend_from_slice(b"] \"");
        if parts.request.is_empty() {
            out.push(b'-');
        } else {
            out.extend_from_slice(&parts.request);
        }
        let _ = write!(out, "\" {status} {bytes}");
        if parts.tail.is_empty() {
            out.extend_from_slice(b" \"-\" \"-\"");
        } else {
            out.extend_from_slice(&parts.tail);
        }
        let _ = writeln!(out, " {secs:.3}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_forge_a_line() {
        let mut v = Vec::new();
        escaped(&mut v, b"a\"b\\c\nd\x7f");
        assert_eq!(v, b"a\\x22b\\x5Cc\\x0Ad\\x7F");
    }
}
