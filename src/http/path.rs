//! A request path as routing and backends must both read it (RFC 3986 6.2.2).
//!
//! A front process that routes on one reading of a path and forwards another lets a client
//! reach what a route refuses: `/a/%2e%2e/admin` matches no `/admin` route, yet the backend
//! decodes and resolves it to `/admin`. So uringd normalizes once, routes on the result and
//! forwards the same bytes:
//!
//! - `%XX` of an unreserved character (ALPHA, DIGIT, `-._~`) is decoded; every other escape
//!   stays encoded, its hex digits uppercased (`%2f` -> `%2F`), so nothing reserved changes
//!   meaning;
//! - `.` and `..` segments are removed (RFC 3986 5.2.4), after decoding, so `%2e%2e` counts;
//!   a `..` that would climb above the root is refused;
//! - repeated slashes are merged, as nginx's `merge_slashes` does (`//admin` would
//!   otherwise miss an `/admin` route);
//! - `%00` and a `%` not followed by two hex digits are refused.
//!
//! An encoded slash (`%2F`) stays encoded in what is forwarded (applications such as
//! GitLab's API depend on it), but many backends decode it to `/` before routing (WSGI's
//! PATH_INFO does). So routing uses a second reading, [`route_key`], in which `%2F` is a
//! slash, and a dot segment that appears only in that reading (`..%2F`) is refused too.
//! The query is not touched.

/// Why a path is refused: all are answered 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// `%` not followed by two hex digits.
    BadEscape,
    /// `%00`: a NUL truncates the path for C-string consumers.
    Nul,
    /// A `..` segment with nothing left to remove.
    AboveRoot,
}

impl PathError {
    pub fn why(self) -> &'static str {
        match self {
            PathError::BadEscape => "malformed percent-escape in the path",
            PathError::Nul => "%00 in the path",
            PathError::AboveRoot => "the path climbs above the root",
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// What the normalized path holds, besides its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Normalized {
    /// It contains `%2F`, so routing needs [`route_key`].
    pub encoded_slash: bool,
}

/// Writes the normalized form of `raw` (a path starting with `/`) into `out`, which is
/// cleared first. Anything else (`*`, an empty path) is copied unchanged.
pub fn normalize(raw: &[u8], out: &mut Vec<u8>) -> Result<Normalized, PathError> {
    out.clear();
    let mut n = Normalized::default();
    if raw.first() != Some(&b'/') {
        out.extend_from_slice(raw);
        return Ok(n);
    }
    let mut i = 0;
    // Each iteration takes one segment: the '/' at raw[i] and the bytes up to the next '/'.
    while i < raw.len() {
        i += 1; // the '/'
        let seg_start = out.len();
        out.push(b'/');
        while let Some(&b) = raw.get(i).filter(|&&b| b != b'/') {
            if b == b'%' {
                let hi = raw.get(i + 1).copied().and_then(hex);
                let lo = raw.get(i + 2).copied().and_then(hex);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(PathError::BadEscape);
                };
                let v = hi << 4 | lo;
                if v == 0 {
                    return Err(PathError::Nul);
                }
                if unreserved(v) {
                    out.push(v);
                } else {
                    n.encoded_slash |= v == b'/';
                    out.extend_from_slice(&[b'%', UPPER_HEX[hi as usize], UPPER_HEX[lo as usize]]);
                }
                i += 3;
            } else {
                out.push(b);
                i += 1;
            }
        }
        let last = i >= raw.len();
        match out.get(seg_start + 1..) {
            Some(b".") => out.truncate(seg_start + usize::from(last)),
            Some(b"..") => {
                // Drop this segment and the one before it.
                let Some(prev) = out.get(..seg_start).and_then(|o| memchr::memrchr(b'/', o)) else {
                    return Err(PathError::AboveRoot);
                };
                out.truncate(prev + usize::from(last));
            }
            // An empty segment in the middle ("//"): merged into its neighbour.
            Some(b"") if !last => out.truncate(seg_start),
            _ => {}
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    Ok(n)
}

/// The reading of a normalized path that routing uses when it holds `%2F`: the escape as
/// a slash. A dot segment that only this reading has (`/a/..%2Fb`) is refused, since a
/// backend that decodes `%2F` would resolve it.
pub fn route_key(path: &[u8], out: &mut Vec<u8>) -> Result<(), PathError> {
    out.clear();
    let mut rest = path;
    while let Some(p) = memchr::memmem::find(rest, b"%2F") {
        out.extend_from_slice(rest.get(..p).unwrap_or(&[]));
        out.push(b'/');
        rest = rest.get(p + 3..).unwrap_or(&[]);
    }
    out.extend_from_slice(rest);
    let dot = out
        .split(|&b| b == b'/')
        .any(|seg| seg == b"." || seg == b"..");
    if dot {
        return Err(PathError::AboveRoot);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> Result<String, PathError> {
        let mut out = Vec::new();
        normalize(raw.as_bytes(), &mut out).map(|_| String::from_utf8(out).unwrap())
    }

    #[test]
    fn plain_paths_are_unchanged() {
        for p in [
            "/",
            "/a",
            "/a/b/",
            "/a.b/c..d/.e",
            "/~x/_y-z",
            "/a/b?c",
            "/é",
        ] {
            assert_eq!(norm(p).unwrap(), p);
        }
        assert_eq!(norm("*").unwrap(), "*");
        assert_eq!(norm("").unwrap(), "");
    }

    #[test]
    fn rfc3986_dot_segments() {
        // RFC 3986 5.2.4 and 5.4 (the path parts of its examples).
        for (raw, want) in [
            ("/a/b/c/./../../g", "/a/g"),
            ("/mid/content=5/../6", "/mid/6"),
            ("/a/./b", "/a/b"),
            ("/a/.", "/a/"),
            ("/a/..", "/"),
            ("/a/b/..", "/a/"),
            ("/a/b/../", "/a/"),
            ("/./", "/"),
            ("/.", "/"),
            ("/a/b/c/..", "/a/b/"),
            ("/a/../b/../c", "/c"),
        ] {
            assert_eq!(norm(raw).unwrap(), want, "{raw}");
        }
    }

    #[test]
    fn climbing_above_the_root_is_refused() {
        for p in [
            "/..",
            "/../a",
            "/a/../..",
            "/a/%2e%2e/%2e%2e/etc/passwd",
            "/%2E%2E/x",
            "/.%2e",
        ] {
            assert_eq!(norm(p), Err(PathError::AboveRoot), "{p}");
        }
    }

    #[test]
    fn unreserved_escapes_are_decoded_others_uppercased() {
        assert_eq!(norm("/%41%62%2D%2e%5f%7E").unwrap(), "/Ab-._~");
        assert_eq!(norm("/a%2fb%3f%20").unwrap(), "/a%2Fb%3F%20");
        assert_eq!(norm("/a/%2e/b").unwrap(), "/a/b");
        assert_eq!(norm("/a/b/%2E%2E/c").unwrap(), "/a/c");
        // Decoding happens once: %252e is "%2e" as text, not a dot.
        assert_eq!(norm("/a/%252e%252e/b").unwrap(), "/a/%252e%252e/b");
        let mut out = Vec::new();
        assert!(normalize(b"/a%2Fb", &mut out).unwrap().encoded_slash);
        assert!(!normalize(b"/a%2Eb", &mut out).unwrap().encoded_slash);
    }

    #[test]
    fn nul_and_bad_escapes_are_refused() {
        assert_eq!(norm("/a%00b"), Err(PathError::Nul));
        for p in ["/%", "/%4", "/%zz", "/a%g1", "/%%41"] {
            assert_eq!(norm(p), Err(PathError::BadEscape), "{p}");
        }
    }

    #[test]
    fn repeated_slashes_are_merged() {
        assert_eq!(norm("//admin").unwrap(), "/admin");
        assert_eq!(norm("/a//b///c//").unwrap(), "/a/b/c/");
        assert_eq!(norm("///").unwrap(), "/");
        assert_eq!(norm("//..//a").unwrap_err(), PathError::AboveRoot);
    }

    #[test]
    fn normalizing_twice_changes_nothing() {
        for p in ["/a/./b/../c//d%2f%41", "/x/%7e/.%2E/y/", "/a%2Fb/../c"] {
            let once = norm(p).unwrap();
            assert_eq!(norm(&once).unwrap(), once, "{p}");
        }
    }

    #[test]
    fn route_key_reads_encoded_slashes_as_slashes() {
        let mut k = Vec::new();
        route_key(b"/admin%2Fsecret", &mut k).unwrap();
        assert_eq!(k, b"/admin/secret");
        assert_eq!(route_key(b"/a/..%2Fetc", &mut k), Err(PathError::AboveRoot));
        assert_eq!(route_key(b"/a%2F.%2Fb", &mut k), Err(PathError::AboveRoot));
        route_key(b"/a%2F..b", &mut k).unwrap();
        assert_eq!(k, b"/a/..b");
    }
}
