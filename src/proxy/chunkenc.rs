//! Chunked transfer coding, encoder side (RFC 9112 7.1).
//!
//! A body is sent as, for each non-empty piece of data:
//! `chunk_header(len)`, the `len` data bytes, `CHUNK_END`; and finally
//! `LAST_CHUNK` once. No chunk extensions and no trailer fields are produced.

use super::hop::push_hex;

/// Ends one chunk's data: the CRLF that follows the `len` data bytes announced
/// by `chunk_header`. Send it after every data chunk, never after `LAST_CHUNK`.
pub const CHUNK_END: &[u8] = b"\r\n";

/// The last-chunk (size 0) followed by the empty trailer section: ends the body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Appends the chunk-size line for a chunk of `len` data bytes: lowercase hex
/// without leading zeros, then CRLF.
///
/// `len == 0` appends nothing: a zero size would be the last-chunk and end the
/// body early, so an empty read can never terminate a message by accident.
/// Callers skip empty data entirely (no `CHUNK_END` either) and end the body
/// with `LAST_CHUNK`.
pub fn chunk_header(out: &mut Vec<u8>, len: usize) {
    if len == 0 {
        return;
    }
    push_hex(out, len as u64);
    out.extend_from_slice(b"\r\n");
}

/// `chunk_header` into a fixed buffer (no allocation): the line for `len` (> 0) bytes.
pub fn chunk_head(buf: &mut [u8; 20], len: usize) -> &[u8] {
    let digits = (64 - (len as u64 | 1).leading_zeros()).div_ceil(4) as usize;
    for (i, b) in buf[..digits].iter_mut().enumerate() {
        let nibble = (len as u64 >> (4 * (digits - 1 - i))) & 0xf;
        *b = b"0123456789abcdef"[nibble as usize];
    }
    buf[digits] = b'\r';
    buf[digits + 1] = b'\n';
    &buf[..digits + 2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::chunked::ChunkedDecoder;

    fn header(len: usize) -> Vec<u8> {
        let mut v = b"x".to_vec();
        chunk_header(&mut v, len);
        v.split_off(1)
    }

    #[test]
    fn fixed_buffer_lines_match() {
        for len in [1, 9, 15, 16, 255, 4096, 65535, 1 << 20, usize::MAX] {
            let mut b = [0u8; 20];
            assert_eq!(chunk_head(&mut b, len), &header(len)[..], "{len}");
        }
    }

    #[test]
    fn headers() {
        assert_eq!(header(0), b"");
        assert_eq!(header(1), b"1\r\n");
        assert_eq!(header(15), b"f\r\n");
        assert_eq!(header(16), b"10\r\n");
        assert_eq!(header(255), b"ff\r\n");
        assert_eq!(header(4096), b"1000\r\n");
        assert_eq!(header(65535), b"ffff\r\n");
        assert_eq!(
            header(usize::MAX),
            format!("{:x}\r\n", usize::MAX).as_bytes()
        );
        assert_eq!(CHUNK_END, b"\r\n");
        assert_eq!(LAST_CHUNK, b"0\r\n\r\n");
    }

    #[test]
    fn round_trip_through_strict_decoder() {
        let pieces: [&[u8]; 5] = [b"hello", b"", b" ", &[0u8; 300], b"world\r\n0\r\n\r\n"];
        let mut wire = Vec::new();
        let mut want = Vec::new();
        for p in pieces {
            if p.is_empty() {
                chunk_header(&mut wire, 0); // must add nothing
                continue;
            }
            chunk_header(&mut wire, p.len());
            wire.extend_from_slice(p);
            wire.extend_from_slice(CHUNK_END);
            want.extend_from_slice(p);
        }
        wire.extend_from_slice(LAST_CHUNK);
        wire.extend_from_slice(b"NEXT");
        assert!(wire.starts_with(b"5\r\nhello\r\n1\r\n \r\n12c\r\n"));

        let mut d = ChunkedDecoder::new(1 << 20, 1024);
        let mut got = Vec::new();
        let (used, done) = d
            .feed(&wire, &mut |b: &[u8]| got.extend_from_slice(b))
            .unwrap();
        assert!(done);
        assert_eq!(&wire[used..], b"NEXT");
        assert_eq!(got, want);
    }

    #[test]
    fn empty_body() {
        let mut d = ChunkedDecoder::new(0, 64);
        let (used, done) = d.feed(LAST_CHUNK, &mut |_: &[u8]| {}).unwrap();
        assert!(done);
        assert_eq!(used, LAST_CHUNK.len());
    }
}
