//! A route's response header edits: `headers` adds lines (replacing any of the same
//! name), `hide_headers` drops upstream lines. uringd's own heads are edited in place just
//! before they are queued (`rewrite`); an upstream's are filtered while they are copied
//! (`proxy::resphead`), so neither costs a route without edits anything.

use std::sync::Arc;

use crate::http::sink::Sink;

/// What a route does to the heads of its responses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderEdit {
    /// Lines to add, each `Name: value\r\n`.
    pub add: Vec<u8>,
    /// Lowercase names of the added lines: any other line so named is dropped.
    pub replaces: Vec<Box<[u8]>>,
    /// Lowercase names dropped from upstream responses (`hide_headers`, and `replaces`).
    pub hides: Vec<Box<[u8]>>,
}

/// Names a config may not set or hide: they frame the message or belong to the hop, and
/// uringd writes them itself.
pub const RESERVED: &[&str] = &[
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "date",
    "content-encoding",
    "content-range",
];

/// An upstream header uringd never passes on: `X-Accel-*` are instructions to the front
/// (nginx hides them the same way), the client has no business seeing them.
pub fn is_accel(name: &[u8]) -> bool {
    name.len() > 8 && name[..8].eq_ignore_ascii_case(b"x-accel-")
}

impl HeaderEdit {
    /// From `headers` (name, value) and `hide_headers`, already validated.
    pub fn new(add: &[(String, String)], hide: &[String]) -> HeaderEdit {
        let mut e = HeaderEdit::default();
        for (n, v) in add {
            let lower: Box<[u8]> = n.to_ascii_lowercase().into_bytes().into();
            e.add.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
            if !e.replaces.contains(&lower) {
                e.replaces.push(lower.clone());
                e.hides.push(lower);
            }
        }
        for h in hide {
            let lower: Box<[u8]> = h.to_ascii_lowercase().into_bytes().into();
            if !e.hides.contains(&lower) {
                e.hides.push(lower);
            }
        }
        e
    }

    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.hides.is_empty()
    }

    /// An upstream line so named is dropped.
    pub fn hides(&self, name: &[u8]) -> bool {
        self.hides.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    fn replaces(&self, name: &[u8]) -> bool {
        self.replaces.iter().any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// Edits the response head that starts at `v[start..]` (a status line, field lines, the
/// blank line, then perhaps body bytes, which move along): lines `e` replaces are dropped
/// and its own added before the blank line. Moves bytes in place; allocates only if `v`
/// must grow. A region without a complete head is left alone.
pub fn rewrite(v: &mut Vec<u8>, start: usize, e: &HeaderEdit) {
    if e.add.is_empty() {
        return;
    }
    let Some(end) = memchr::memmem::find(&v[start..], b"\r\n\r\n").map(|i| start + i + 2) else {
        return;
    };
    // `end` is where the blank line starts. Walk the field lines after the status line.
    let Some(first) = memchr::memmem::find(&v[start..end], b"\r\n").map(|i| start + i + 2) else {
        return;
    };
    let mut at = first;
    let mut end = end;
    while at < end {
        let line_end = memchr::memmem::find(&v[at..end], b"\r\n").map_or(end, |i| at + i + 2);
        let colon = memchr::memchr(b':', &v[at..line_end]).map_or(line_end, |i| at + i);
        if e.replaces(&v[at..colon]) {
            v.drain(at..line_end);
            end -= line_end - at;
        } else {
            at = line_end;
        }
    }
    v.splice(end..end, e.add.iter().copied());
}

/// A sink that edits the first head committed through it (`rewrite`), for writers that
/// know nothing of routes (error pages, redirects, fixed answers).
pub struct Edited<'a, S: Sink> {
    inner: &'a mut S,
    edit: Option<&'a HeaderEdit>,
}

impl<'a, S: Sink> Edited<'a, S> {
    pub fn new(inner: &'a mut S, edit: Option<&'a HeaderEdit>) -> Edited<'a, S> {
        Edited { inner, edit }
    }
}

impl<S: Sink> Sink for Edited<'_, S> {
    fn bytes(&mut self) -> &mut Vec<u8> {
        self.inner.bytes()
    }

    fn commit(&mut self, n: usize) {
        let Some(e) = self.edit.take() else {
            return self.inner.commit(n);
        };
        let v = self.inner.bytes();
        let start = v.len() - n;
        rewrite(v, start, e);
        let n = v.len() - start;
        self.inner.commit(n);
    }

    fn push_shared(&mut self, body: &Arc<[u8]>, zc_threshold: usize) {
        self.inner.push_shared(body, zc_threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit() -> HeaderEdit {
        HeaderEdit::new(
            &[
                (
                    "Strict-Transport-Security".into(),
                    "max-age=63072000".into(),
                ),
                ("Server".into(), "edge".into()),
            ],
            &["X-Powered-By".into()],
        )
    }

    #[test]
    fn adds_lines_and_replaces_ones_of_the_same_name() {
        let mut v = b"earlier bytes".to_vec();
        let start = v.len();
        v.extend_from_slice(
            b"HTTP/1.1 404 Not Found\r\nserver: uringd\r\nContent-Length: 4\r\n\r\nnope",
        );
        rewrite(&mut v, start, &edit());
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "earlier bytesHTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nStrict-Transport-Security: max-age=63072000\r\nServer: edge\r\n\r\nnope"
        );
    }

    #[test]
    fn a_head_without_fields_or_without_an_end_is_handled() {
        let mut v = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        rewrite(&mut v, 0, &edit());
        assert!(v.starts_with(b"HTTP/1.1 200 OK\r\nStrict-Transport-Security: "));
        assert!(v.ends_with(b"Server: edge\r\n\r\n"));
        let mut partial = b"HTTP/1.1 200 OK\r\nX: y\r\n".to_vec();
        rewrite(&mut partial, 0, &edit());
        assert_eq!(partial, b"HTTP/1.1 200 OK\r\nX: y\r\n");
    }

    #[test]
    fn hides_name_upstream_lines_and_x_accel_is_recognised() {
        let e = edit();
        assert!(e.hides(b"x-powered-by") && e.hides(b"SERVER") && !e.hides(b"ETag"));
        assert!(is_accel(b"X-Accel-Redirect") && is_accel(b"x-accel-buffering"));
        assert!(!is_accel(b"X-Accel-") && !is_accel(b"X-Acceleration"));
        assert!(HeaderEdit::default().is_empty() && !e.is_empty());
    }
}
