//! Path normalization (`http::path`): what routing matches and what a backend is sent.
//!
//! Input: a request path (a leading '/' is added when missing). Checked against an
//! independent model written from RFC 3986 (decode the escapes of unreserved characters,
//! split into segments, resolve `.` and `..` on a stack, drop empty segments but keep a
//! trailing slash) for the bytes and for the verdict; and the properties routing relies on:
//! the result is a fixed point (normalizing it again changes nothing), starts with '/',
//! holds no empty, `.` or `..` segment, no `%00`, and only uppercase escapes of
//! characters that are not unreserved; `route_key` of it, when accepted, has no dot segment
//! either, even where `%2F` became '/'.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uringd::http::path::{PathError, normalize, route_key};

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

/// The RFC 3986 reading, written independently of the code under test.
fn model(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut segments: Vec<Vec<u8>> = Vec::new();
    let parts: Vec<&[u8]> = raw[1..].split(|&b| b == b'/').collect();
    let last = parts.len() - 1;
    let mut trailing = false;
    for (i, part) in parts.iter().enumerate() {
        let mut seg = Vec::new();
        let mut j = 0;
        while j < part.len() {
            if part[j] == b'%' {
                let (Some(h), Some(l)) = (
                    part.get(j + 1).copied().and_then(hex),
                    part.get(j + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::BadEscape);
                };
                let v = h * 16 + l;
                if v == 0 {
                    return Err(PathError::Nul);
                }
                if unreserved(v) {
                    seg.push(v);
                } else {
                    seg.extend_from_slice(format!("%{v:02X}").as_bytes());
                }
                j += 3;
            } else {
                seg.push(part[j]);
                j += 1;
            }
        }
        match seg.as_slice() {
            b"." => trailing = i == last,
            b".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
                trailing = i == last;
            }
            b"" => trailing = i == last,
            _ => {
                segments.push(seg);
                trailing = false;
            }
        }
    }
    let mut out = Vec::new();
    for s in &segments {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    if trailing || out.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let mut raw = data.to_vec();
    if raw.first() != Some(&b'/') {
        raw.insert(0, b'/');
    }
    let mut out = Vec::new();
    let got = normalize(&raw, &mut out).map(|_| out.clone());
    let want = model(&raw);
    assert_eq!(
        got.as_ref().map_err(|e| *e),
        want.as_ref().map_err(|e| *e),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    let Ok(path) = got else { return };
    assert_eq!(path.first(), Some(&b'/'));
    let mut again = Vec::new();
    normalize(&path, &mut again).expect("a normalized path is accepted");
    assert_eq!(again, path, "not a fixed point");
    let segs: Vec<&[u8]> = path[1..].split(|&b| b == b'/').collect();
    for (i, s) in segs.iter().enumerate() {
        assert!(*s != b"." && *s != b"..", "dot segment left");
        assert!(!s.is_empty() || i == segs.len() - 1, "empty segment left");
    }
    let mut i = 0;
    while let Some(p) = path[i..].iter().position(|&b| b == b'%') {
        let at = i + p;
        let (h, l) = (path[at + 1], path[at + 2]);
        assert!(h.is_ascii_hexdigit() && !h.is_ascii_lowercase());
        assert!(l.is_ascii_hexdigit() && !l.is_ascii_lowercase());
        let v = hex(h).unwrap() * 16 + hex(l).unwrap();
        assert!(v != 0 && !unreserved(v), "escape that should be decoded");
        i = at + 3;
    }
    let mut key = Vec::new();
    if route_key(&path, &mut key).is_ok() {
        assert!(
            key.split(|&b| b == b'/').all(|s| s != b"." && s != b".."),
            "route key has a dot segment"
        );
    }
});
