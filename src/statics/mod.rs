//! `static` routes: files under a root, with validators (ETag, Last-Modified), conditional
//! requests (304), a single byte range (206/416) and HEAD. Bodies of `SPLICE_MIN` bytes or
//! more go file -> pipe -> socket in the kernel (splice), never through user space.

pub mod mime;
pub mod resolve;
pub mod variant;

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use crate::driver::outq::OutQueue;
use crate::http::date::{format_http_date, parse_http_date};
use crate::http::response::reason;

use resolve::{Miss, clean_path, open_file, open_root};

/// Below this a file is read into the send queue (one copy beats a pipe round trip).
const SPLICE_MIN: u64 = 64 * 1024;

pub struct Site {
    root: OwnedFd,
    index: String,
    /// Refuse to follow symlinks out of the root (RESOLVE_BENEATH).
    confine: bool,
    /// The route's `compress` codings, in its order, and `compress_min`.
    compress: Vec<crate::compress::Codec>,
    compress_min: u64,
}

impl Site {
    pub fn open(dir: &Path, index: &str, confine: bool) -> std::io::Result<Site> {
        Ok(Site {
            root: open_root(dir)?,
            index: index.to_string(),
            confine,
            compress: Vec::new(),
            compress_min: 0,
        })
    }

    /// Serves precompressed siblings and compresses small files in these codings.
    pub fn with_compression(mut self, codings: &[crate::compress::Codec], min: u64) -> Site {
        self.compress = codings.to_vec();
        self.compress_min = min;
        self
    }
}

/// The request facts a static answer depends on.
pub struct Req<'a> {
    pub head_only: bool,
    pub if_match: Option<&'a [u8]>,
    pub if_unmodified_since: Option<&'a [u8]>,
    pub if_none_match: Option<&'a [u8]>,
    pub if_modified_since: Option<&'a [u8]>,
    pub range: Option<&'a [u8]>,
    pub if_range: Option<&'a [u8]>,
    pub accept_encoding: Option<&'a [u8]>,
}

/// The names `Req` reads, in its field order.
const KEPT: [&[u8]; 7] = [
    b"if-match",
    b"if-unmodified-since",
    b"if-none-match",
    b"if-modified-since",
    b"range",
    b"if-range",
    b"accept-encoding",
];

/// A request's conditional and range headers, owned: kept with a proxied request whose
/// upstream may answer with X-Accel-Redirect, so the file it names is served as the
/// client asked (a video's ranges, a browser's If-None-Match).
#[derive(Debug, Default)]
pub struct Kept {
    bytes: Vec<u8>,
    spans: [Option<(u32, u32)>; 7],
}

impl Kept {
    /// From a request's parsed head, in one pass over its fields; None when it has none
    /// of them (the usual case: nothing is allocated). The first field of a name counts.
    pub fn capture(buf: &[u8], headers: &[crate::http::parser::HeaderSpan]) -> Option<Box<Kept>> {
        let mut k: Option<Box<Kept>> = None;
        for h in headers {
            let name = h.name.get(buf);
            let Some(i) = KEPT.iter().position(|n| n.eq_ignore_ascii_case(name)) else {
                continue;
            };
            let k = k.get_or_insert_with(Box::default);
            if k.spans[i].is_none() {
                let v = h.value.get(buf);
                k.spans[i] = Some((k.bytes.len() as u32, v.len() as u32));
                k.bytes.extend_from_slice(v);
            }
        }
        k
    }

    pub fn req(&self, head_only: bool) -> Req<'_> {
        let get =
            |i: usize| self.spans[i].map(|(at, n)| &self.bytes[at as usize..(at + n) as usize]);
        Req {
            head_only,
            if_match: get(0),
            if_unmodified_since: get(1),
            if_none_match: get(2),
            if_modified_since: get(3),
            range: get(4),
            if_range: get(5),
            accept_encoding: get(6),
        }
    }
}

impl Req<'_> {
    /// A plain GET (or HEAD): no conditionals, no range.
    pub fn plain(head_only: bool) -> Req<'static> {
        Req {
            head_only,
            if_match: None,
            if_unmodified_since: None,
            if_none_match: None,
            if_modified_since: None,
            range: None,
            if_range: None,
            accept_encoding: None,
        }
    }
}

/// How a response should be written; errors (`Err(status)`) use the error pages.
pub struct Reply {
    pub status: u16,
    pub body_len: u64,
    /// The file shrank while being read: the connection must close after this.
    pub cut: bool,
    /// The content coding of a body sent (None: identity, or no body).
    pub coding: Option<crate::compress::Codec>,
}

/// True if any entity-tag in an If-None-Match list matches (weak comparison).
fn etag_matches(list: &[u8], tag: &str) -> bool {
    let tag = tag.as_bytes();
    list.split(|&b| b == b',').any(|t| {
        let t = t.trim_ascii();
        t == b"*" || t.strip_prefix(b"W/").unwrap_or(t) == tag
    })
}

/// True if an If-Match list names `tag` (strong comparison: a weak tag never matches).
fn etag_matches_strong(list: &[u8], tag: &str) -> bool {
    list.split(|&b| b == b',')
        .any(|t| matches!(t.trim_ascii(), b"*") || t.trim_ascii() == tag.as_bytes())
}

/// If-Match, else If-Unmodified-Since (RFC 9110 13.2.2 steps 1-2): false means 412.
fn preconditions_hold(req: &Req, tag: &str, mtime: u64) -> bool {
    match (req.if_match, req.if_unmodified_since) {
        (Some(im), _) => etag_matches_strong(im, tag),
        // An unparsable date is ignored (RFC 9110 13.1.4).
        (None, Some(ius)) => parse_http_date(ius).is_none_or(|t| mtime <= t),
        (None, None) => true,
    }
}

/// If-Range (RFC 9110 13.1.5): the range applies only if the validator still matches,
/// an entity-tag (strongly) or a date (exactly the Last-Modified time).
fn if_range_holds(v: &[u8], tag: &str, mtime: u64) -> bool {
    let v = v.trim_ascii();
    if v.starts_with(b"\"") || v.starts_with(b"W/") {
        v == tag.as_bytes()
    } else {
        parse_http_date(v) == Some(mtime)
    }
}

/// A single `bytes=` range against `size`: Some(Ok((start, end_inclusive))) to serve,
/// Some(Err(())) when unsatisfiable (416), None to ignore the header (serve it all).
fn byte_range(v: &[u8], size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = v.strip_prefix(b"bytes=")?;
    if spec.contains(&b',') {
        return None; // several ranges: allowed to answer with the whole file
    }
    let dash = spec.iter().position(|&b| b == b'-')?;
    let num = |s: &[u8]| -> Option<u64> {
        let s = s.trim_ascii();
        (!s.is_empty() && s.iter().all(u8::is_ascii_digit))
            .then(|| std::str::from_utf8(s).ok()?.parse().ok())?
    };
    let (a, b) = (&spec[..dash], &spec[dash + 1..]);
    let r = match (num(a), num(b)) {
        (Some(s), Some(e)) if s <= e => (s, e.min(size.saturating_sub(1))),
        (Some(s), None) if b.trim_ascii().is_empty() => (s, size.saturating_sub(1)),
        (None, Some(n)) if a.trim_ascii().is_empty() && n > 0 => {
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        _ => return None, // malformed: ignored, as RFC 9110 allows
    };
    if size == 0 || r.0 >= size {
        return Some(Err(()));
    }
    Some(Ok(r))
}

/// Writes the answer for `rel` under `site` into `out`. Returns the status and body length,
/// or Err(status) for the caller's error page (400, 403, 404).
#[allow(clippy::too_many_arguments)]
pub fn respond(
    out: &mut OutQueue,
    edit: Option<&crate::edge::headers::HeaderEdit>,
    site: &Site,
    rel: &[u8],
    req: &Req,
    date: &[u8; 29],
    server: &str,
    keep_alive: bool,
    http10_keep_alive: bool,
) -> Result<Reply, u16> {
    let miss = |m: Miss| -> u16 {
        match m {
            Miss::Bad => 400,
            Miss::Forbidden => 403,
            Miss::NotFound => 404,
        }
    };
    let path = clean_path(rel).map_err(miss)?;
    let f = open_file(&site.root, &path, &site.index, site.confine).map_err(miss)?;
    let mtime = f.mtime_s.max(0) as u64;
    let ctype = mime::content_type(&f.name);
    let size = f.size;
    let var = variant::choose_variant(site, f, ctype, req);
    let tag = &var.tag;
    let mut lm = [0u8; 29];
    format_http_date(mtime, &mut lm);

    // Conditionals in RFC 9110 13.2.2's order: If-Match / If-Unmodified-Since (412), then
    // If-None-Match, which wins over If-Modified-Since (304), then If-Range.
    if !preconditions_hold(req, tag, mtime) {
        return Err(412);
    }
    let not_modified = match (req.if_none_match, req.if_modified_since) {
        (Some(inm), _) => etag_matches(inm, tag),
        (None, Some(ims)) => parse_http_date(ims).is_some_and(|t| mtime <= t),
        _ => false,
    };
    let range = if not_modified
        || req
            .if_range
            .is_some_and(|ir| !if_range_holds(ir, tag, mtime))
    {
        None
    } else {
        req.range
            .filter(|_| var.coding.is_none())
            .and_then(|r| byte_range(r, size))
    };
    let (status, start, len) = match range {
        _ if not_modified => (304, 0, 0),
        Some(Err(())) => (416, 0, 0),
        Some(Ok((s, e))) => (206, s, e - s + 1),
        None => (200, 0, var.size()),
    };

    let v = out.bytes();
    let at = v.len();
    let _ = write!(v, "HTTP/1.1 {status} {}\r\n", reason(status));
    if !server.is_empty() {
        let _ = write!(v, "Server: {server}\r\n");
    }
    v.extend_from_slice(b"ETag: ");
    v.extend_from_slice(tag.as_bytes());
    v.extend_from_slice(b"\r\nLast-Modified: ");
    v.extend_from_slice(&lm);
    v.extend_from_slice(b"\r\n");
    if var.varies {
        v.extend_from_slice(b"Vary: Accept-Encoding\r\n");
    }
    if status != 304 {
        let _ = write!(
            v,
            "Content-Type: {}\r\nAccept-Ranges: bytes\r\nContent-Length: {len}\r\n",
            if status == 416 { "text/plain" } else { ctype }
        );
        if let Some(c) = var.coding {
            let _ = write!(v, "Content-Encoding: {}\r\n", c.token());
        }
    }
    match status {
        206 => {
            let _ = write!(
                v,
                "Content-Range: bytes {start}-{}/{}\r\n",
                start + len - 1,
                size
            );
        }
        416 => {
            let _ = write!(v, "Content-Range: bytes */{size}\r\n");
        }
        _ => {}
    }
    v.extend_from_slice(b"Date: ");
    v.extend_from_slice(date);
    if !keep_alive {
        v.extend_from_slice(b"\r\nConnection: close");
    } else if http10_keep_alive {
        v.extend_from_slice(b"\r\nConnection: keep-alive");
    }
    v.extend_from_slice(b"\r\n\r\n");
    if let Some(e) = edit {
        crate::edge::headers::rewrite(v, at, e);
    }
    let n = v.len() - at;
    out.commit(n);

    let send_body = !req.head_only && (status == 200 || status == 206) && len > 0;
    let mut cut = false;
    let coding = var.coding.filter(|_| send_body);
    if send_body {
        match var.body {
            variant::Body::File(f) if len >= SPLICE_MIN => out.push_file(f.fd, start, len),
            variant::Body::File(f) => cut = !read_into(out, &f.fd, start, len),
            variant::Body::Memory(b) => {
                let v = out.bytes();
                v.extend_from_slice(&b);
                out.commit(b.len());
            }
        }
    }
    Ok(Reply {
        status,
        body_len: if send_body { len } else { 0 },
        cut,
        coding,
    })
}

/// Copies a small file range into the send queue. Returns false on a short read (the file
/// shrank): the announced length is then unmet and the caller must close the connection.
fn read_into(out: &mut OutQueue, fd: &OwnedFd, start: u64, len: u64) -> bool {
    let v = out.bytes();
    let at = v.len();
    v.resize(at + len as usize, 0);
    let mut got = 0usize;
    while got < len as usize {
        // SAFETY: reads into the unfilled tail of the buffer we just sized.
        let n = unsafe {
            libc::pread(
                fd.as_raw_fd(),
                v[at + got..].as_mut_ptr().cast(),
                len as usize - got,
                (start + got as u64) as libc::off_t,
            )
        };
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    // Never pad a short read: send what there is and let the caller cut the connection.
    v.truncate(at + got);
    out.commit(got);
    got == len as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(byte_range(b"bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(byte_range(b"bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(byte_range(b"bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(byte_range(b"bytes=95-200", 100), Some(Ok((95, 99))));
        assert_eq!(byte_range(b"bytes=100-", 100), Some(Err(())));
        assert_eq!(byte_range(b"bytes=0-1,5-6", 100), None);
        assert_eq!(byte_range(b"bytes=9-1", 100), None);
        assert_eq!(byte_range(b"items=0-1", 100), None);
        assert_eq!(byte_range(b"bytes=-0", 100), None);
    }

    #[test]
    fn etags() {
        assert!(etag_matches(b"\"a\", W/\"b\"", "\"b\""));
        assert!(etag_matches(b"*", "\"x\""));
        assert!(!etag_matches(b"\"a\"", "\"b\""));
        assert!(etag_matches_strong(b"\"a\", \"b\"", "\"b\""));
        assert!(!etag_matches_strong(b"W/\"b\"", "\"b\""));
        assert!(etag_matches_strong(b"*", "\"b\""));
    }

    #[test]
    fn validators_in_rfc_order() {
        let date = b"Sun, 06 Nov 1994 08:49:37 GMT";
        let t = parse_http_date(date).unwrap();
        let req = |im: Option<&'static [u8]>, ius: Option<&'static [u8]>| Req {
            head_only: false,
            if_match: im,
            if_unmodified_since: ius,
            if_none_match: None,
            if_modified_since: None,
            range: None,
            if_range: None,
            accept_encoding: None,
        };
        assert!(preconditions_hold(&req(None, None), "\"x\"", t));
        assert!(!preconditions_hold(&req(Some(b"\"y\""), None), "\"x\"", t));
        assert!(preconditions_hold(
            &req(Some(b"\"x\""), Some(b"garbage")),
            "\"x\"",
            t
        ));
        assert!(preconditions_hold(&req(None, Some(date)), "\"x\"", t));
        assert!(!preconditions_hold(&req(None, Some(date)), "\"x\"", t + 1));
        assert!(preconditions_hold(
            &req(None, Some(b"not a date")),
            "\"x\"",
            t + 1
        ));
        assert!(if_range_holds(b"\"x\"", "\"x\"", t));
        assert!(!if_range_holds(b"W/\"x\"", "\"x\"", t));
        assert!(if_range_holds(date, "\"x\"", t));
        assert!(!if_range_holds(date, "\"x\"", t + 1));
    }
}
