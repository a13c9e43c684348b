//! The streaming chunked decoder.
//!
//! Input: `[max_body selector, max_trailer selector, cut count k, k x u16le cut
//! positions, message bytes...]`. Checked:
//! - split invariance: feeding the message in one piece and cut at the fuzzer's
//!   positions gives the same body, the same consumed count and the same error;
//! - a call that is not done consumes its whole input; after done, later calls
//!   consume nothing; after an error, later calls return the same error;
//! - `body_len()` equals the bytes handed out and never exceeds `max_body`;
//! - a reference decoder written here from RFC 9112 7.1 (whole-buffer, no limits)
//!   agrees: same body and end for a complete message, and uringd rejects as
//!   malformed only what the grammar rejects (or a forbidden trailer field).

#![no_main]

use libfuzzer_sys::fuzz_target;
use uringd::http::chunked::{ChunkedDecoder, ChunkedError};

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Message complete: body, bytes consumed.
    Done(Vec<u8>, usize),
    /// Everything consumed, more needed: body so far.
    More(Vec<u8>),
    Failed(ChunkedError),
}

fn decode(msg: &[u8], cuts: &[usize], max_body: u64, max_trailer: usize) -> Outcome {
    let mut d = ChunkedDecoder::new(max_body, max_trailer);
    let mut body = Vec::new();
    let mut consumed = 0usize;
    let mut start = 0usize;
    let mut bounds: Vec<usize> = cuts.to_vec();
    bounds.push(msg.len());
    for end in bounds {
        let piece = &msg[start..end];
        let r = d.feed(piece, &mut |s: &[u8]| body.extend_from_slice(s));
        assert_eq!(
            d.body_len(),
            body.len() as u64,
            "body_len != bytes handed out"
        );
        assert!(d.body_len() <= max_body, "body over max_body");
        match r {
            Ok((n, true)) => {
                assert!(n <= piece.len());
                assert!(d.is_done());
                consumed += n;
                // Done is final: nothing more is consumed or produced.
                let again = d.feed(b"0\r\n\r\n", &mut |_: &[u8]| panic!("data after done"));
                assert_eq!(again, Ok((0, true)));
                return Outcome::Done(body, consumed);
            }
            Ok((n, false)) => {
                assert_eq!(n, piece.len(), "not done, yet input left unconsumed");
                assert!(!d.is_done());
                consumed += n;
            }
            Err(e) => {
                let again = d.feed(b"0\r\n\r\n", &mut |_: &[u8]| panic!("data after error"));
                assert_eq!(again, Err(e), "error not sticky");
                return Outcome::Failed(e);
            }
        }
        start = end;
    }
    assert_eq!(consumed, msg.len());
    Outcome::More(body)
}

// ---- reference decoder (RFC 9112 7.1, strict, whole buffer, no limits) ----

#[derive(Debug, PartialEq, Eq)]
enum Reference {
    Complete(Vec<u8>, usize),
    Incomplete,
    Invalid,
}

fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn vchar_or_ws(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// A cursor; `None` from a step means "ran out of input".
struct Cur<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn bws(&mut self) -> Option<()> {
        while matches!(self.peek()?, b' ' | b'\t') {
            self.i += 1;
        }
        Some(())
    }
    fn token(&mut self) -> Option<bool> {
        let start = self.i;
        while tchar(self.peek()?) {
            self.i += 1;
        }
        Some(self.i > start)
    }
    fn crlf(&mut self) -> Option<bool> {
        if self.peek()? != b'\r' {
            return Some(false);
        }
        self.i += 1;
        let ok = self.peek()? == b'\n';
        self.i += 1;
        Some(ok)
    }
}

/// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), then CRLF.
/// Some(true): valid through the CRLF; Some(false): invalid; None: need more.
fn chunk_ext_and_crlf(c: &mut Cur) -> Option<bool> {
    loop {
        c.bws()?;
        match c.peek()? {
            b'\r' => {
                // BWS right before CRLF is not in the grammar.
                let ws_before = matches!(c.s[c.i - 1], b' ' | b'\t');
                return Some(!ws_before && c.crlf()?);
            }
            b';' => c.i += 1,
            _ => return Some(false),
        }
        c.bws()?;
        if !c.token()? {
            return Some(false);
        }
        let after_name = c.i;
        c.bws()?;
        if c.peek()? != b'=' {
            // No value: back up so the loop sees the whitespace, if any.
            c.i = after_name;
            continue;
        }
        c.i += 1;
        c.bws()?;
        if c.peek()? == b'"' {
            c.i += 1;
            loop {
                match c.peek()? {
                    b'"' => {
                        c.i += 1;
                        break;
                    }
                    b'\\' => {
                        c.i += 1;
                        if !vchar_or_ws(c.peek()?) {
                            return Some(false);
                        }
                        c.i += 1;
                    }
                    b if vchar_or_ws(b) => c.i += 1,
                    _ => return Some(false),
                }
            }
        } else if !c.token()? {
            return Some(false);
        }
    }
}

const FORBIDDEN: [&[u8]; 8] = [
    b"content-length",
    b"transfer-encoding",
    b"host",
    b"content-type",
    b"trailer",
    b"connection",
    b"expect",
    b"upgrade",
];

/// `forbidden` is set when the only fault is a trailer uringd refuses by name.
fn reference(s: &[u8], forbidden: &mut bool) -> Reference {
    match reference_inner(s, forbidden) {
        Some(Some((body, n))) => Reference::Complete(body, n),
        Some(None) => Reference::Invalid,
        None => Reference::Incomplete,
    }
}

fn reference_inner(s: &[u8], forbidden: &mut bool) -> Option<Option<(Vec<u8>, usize)>> {
    let mut c = Cur { s, i: 0 };
    let mut body = Vec::new();
    loop {
        let start = c.i;
        let mut size: u128 = 0;
        while c.peek()?.is_ascii_hexdigit() {
            size = size * 16 + u128::from((c.peek()? as char).to_digit(16).unwrap());
            c.i += 1;
            if c.i - start > 16 {
                return Some(None);
            }
        }
        if c.i == start {
            return Some(None);
        }
        if !chunk_ext_and_crlf(&mut c)? {
            return Some(None);
        }
        if size == 0 {
            break;
        }
        let size = usize::try_from(size).ok()?;
        let end = c.i.checked_add(size)?;
        body.extend_from_slice(s.get(c.i..end)?);
        c.i = end;
        if !c.crlf()? {
            return Some(None);
        }
    }
    // trailer-section = *( field-line CRLF ) CRLF
    loop {
        if c.peek()? == b'\r' {
            return Some(c.crlf()?.then_some((body, c.i)));
        }
        let start = c.i;
        if !c.token()? || c.peek()? != b':' {
            return Some(None);
        }
        let name = s[start..c.i].to_ascii_lowercase();
        if FORBIDDEN.contains(&name.as_slice()) {
            *forbidden = true;
        }
        c.i += 1;
        while vchar_or_ws(c.peek()?) {
            c.i += 1;
        }
        if !c.crlf()? {
            return Some(None);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (Some(&mb), Some(&mt), Some(&k)) = (data.first(), data.get(1), data.get(2)) else {
        return;
    };
    let k = usize::from(k % 8);
    let Some(cut_bytes) = data.get(3..3 + 2 * k) else {
        return;
    };
    let msg = &data[3 + 2 * k..];
    let max_body = match mb % 6 {
        0 => u64::MAX,
        1 => 0,
        2 => 1,
        3 => 16,
        4 => 1 << 20,
        _ => u64::from(mb),
    };
    let max_trailer = match mt % 4 {
        0 => 0,
        1 => 8,
        2 => 1024,
        _ => usize::from(mt),
    };
    let mut cuts: Vec<usize> = cut_bytes
        .chunks(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (msg.len() + 1))
        .collect();
    cuts.sort_unstable();

    let whole = decode(msg, &[], max_body, max_trailer);
    let split = decode(msg, &cuts, max_body, max_trailer);
    assert_eq!(
        whole, split,
        "result depends on how the input was split (cuts {cuts:?})"
    );
    // One byte at a time, for short messages.
    if msg.len() <= 256 {
        let every: Vec<usize> = (1..msg.len()).collect();
        assert_eq!(
            whole,
            decode(msg, &every, max_body, max_trailer),
            "bytewise"
        );
    }

    let mut forbidden = false;
    let r = reference(msg, &mut forbidden);
    match (&whole, &r) {
        (Outcome::Done(b, n), Reference::Complete(rb, rn)) => {
            assert_eq!(b, rb, "body differs from the reference");
            assert_eq!(n, rn, "end differs from the reference");
            assert!(!forbidden, "forbidden trailer accepted");
        }
        (Outcome::Done(..), _) => panic!("uringd done, reference says {r:?}"),
        (Outcome::More(b), Reference::Incomplete) => {
            // The body so far is a prefix of what the reference would decode
            // (not checked further: the reference needs the whole message).
            let _ = b;
        }
        (Outcome::More(_), _) => panic!("uringd wants more, reference says {r:?}"),
        (Outcome::Failed(ChunkedError::TooLarge), _) => {}
        (Outcome::Failed(ChunkedError::Malformed(why)), Reference::Complete(..)) => {
            assert!(
                forbidden,
                "uringd rejected ({why}) a message the grammar allows"
            );
        }
        (Outcome::Failed(ChunkedError::Malformed(why)), Reference::Incomplete) => {
            // Fine only if the fault is a forbidden trailer name the reference saw,
            // or one uringd can see before the reference runs out of input.
            assert!(
                forbidden || *why == "chunk size too long",
                "uringd rejected ({why}) a valid prefix"
            );
        }
        (Outcome::Failed(ChunkedError::Malformed(_)), Reference::Invalid) => {}
    }
});
