//! Strict streaming decoder for the chunked transfer coding (RFC 9112 7.1).
//!
//! Byte-driven state machine for the framing, bulk copies for chunk data, so
//! input may be split anywhere, down to one byte per call.

use super::parser::{is_tchar, is_value_byte};

/// Cap on chunk-extension bytes over the whole message: extensions carry no
/// body data, so without a cap a peer could stream them forever for free.
const MAX_EXT_BYTES: usize = 16 * 1024;

/// At most 16 hex digits, so the size always fits in u64.
const MAX_SIZE_DIGITS: u8 = 16;

/// Longest forbidden trailer name ("transfer-encoding").
const NAME_BUF: usize = 17;

const FORBIDDEN_TRAILERS: [&[u8]; 8] = [
    b"content-length",
    b"transfer-encoding",
    b"host",
    b"content-type",
    b"trailer",
    b"connection",
    b"expect",
    b"upgrade",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkedError {
    /// Maps to 400.
    Malformed(&'static str),
    /// Maps to 413.
    TooLarge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading chunk-size hex digits.
    Size,
    /// SP/HTAB after the size, a chunk-ext name or value: only ';' may follow.
    BwsBeforeSemi,
    /// After ';' (BWS allowed), expecting an ext name.
    ExtNameStart,
    ExtName,
    /// SP/HTAB after an ext name: '=' or ';' may follow.
    BwsAfterName,
    /// After '=' (BWS allowed), expecting a token or quoted-string.
    ExtValueStart,
    ExtValueToken,
    ExtQuoted,
    ExtQuotedEscape,
    /// Right after a closing quote.
    AfterQuoted,
    /// CR seen at the end of the chunk-size line.
    SizeLf,
    /// `remaining` data bytes still to pass through.
    Data,
    DataCr,
    DataLf,
    /// Start of a trailer line (or of the final empty line).
    TrailerLineStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    /// CR of the final empty line seen.
    EndLf,
    Done,
    Failed(ChunkedError),
}

pub struct ChunkedDecoder {
    state: State,
    max_body: u64,
    max_trailer_bytes: usize,
    /// Size being parsed, then bytes left in the current chunk.
    size: u64,
    size_digits: u8,
    /// Sum of all announced chunk sizes (checked against max_body early).
    announced: u64,
    /// Data bytes handed to the callback.
    body_len: u64,
    ext_bytes: usize,
    trailer_bytes: usize,
    /// Lowercased prefix of the current trailer name, for the forbidden check.
    name_buf: [u8; NAME_BUF],
    name_len: usize,
}

impl ChunkedDecoder {
    pub fn new(max_body: u64, max_trailer_bytes: usize) -> Self {
        ChunkedDecoder {
            state: State::Size,
            max_body,
            max_trailer_bytes,
            size: 0,
            size_digits: 0,
            announced: 0,
            body_len: 0,
            ext_bytes: 0,
            trailer_bytes: 0,
            name_buf: [0; NAME_BUF],
            name_len: 0,
        }
    }

    /// Total body bytes delivered so far.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// True once the final CRLF of the message was consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Feed the next input bytes (any split). Calls `data` with each run of
    /// body bytes. Returns (consumed, done); when done, `consumed` ends right
    /// after the message's final CRLF and the rest of `input` is not touched.
    /// After an error every later call returns the same error.
    pub fn feed(
        &mut self,
        input: &[u8],
        data: &mut impl FnMut(&[u8]),
    ) -> Result<(usize, bool), ChunkedError> {
        match self.state {
            State::Done => return Ok((0, true)),
            State::Failed(e) => return Err(e),
            _ => {}
        }
        let mut pos = 0usize;
        while pos < input.len() {
            if self.state == State::Data {
                let avail = input.len() - pos;
                // Fits usize because it is <= avail.
                let n = self.size.min(avail as u64) as usize;
                let run = input.get(pos..pos + n).unwrap_or(&[]);
                data(run);
                pos += n;
                self.size -= n as u64;
                self.body_len = self.body_len.saturating_add(n as u64);
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let Some(&b) = input.get(pos) else { break };
            pos += 1;
            if let Err(e) = self.step(b) {
                self.state = State::Failed(e);
                return Err(e);
            }
            if self.state == State::Done {
                return Ok((pos, true));
            }
        }
        Ok((pos, false))
    }

    /// Advance the framing state machine by one byte (never in Data).
    fn step(&mut self, b: u8) -> Result<(), ChunkedError> {
        use ChunkedError::Malformed;
        use State::*;
        if self.in_ext() {
            self.ext_bytes += 1;
            if self.ext_bytes > MAX_EXT_BYTES {
                return Err(ChunkedError::TooLarge);
            }
        }
        if self.in_trailer() {
            self.trailer_bytes += 1;
            if self.trailer_bytes > self.max_trailer_bytes {
                return Err(ChunkedError::TooLarge);
            }
        }
        self.state = match self.state {
            Size => match hex_value(b) {
                Some(d) => {
                    if self.size_digits == MAX_SIZE_DIGITS {
                        return Err(Malformed("chunk size too long"));
                    }
                    self.size_digits += 1;
                    self.size = (self.size << 4) | u64::from(d);
                    // The final size can only grow, so reject as soon as the
                    // announced total is over the limit.
                    if self.announced.saturating_add(self.size) > self.max_body {
                        return Err(ChunkedError::TooLarge);
                    }
                    Size
                }
                None if self.size_digits == 0 => return Err(Malformed("invalid chunk size")),
                None => match b {
                    b'\r' => SizeLf,
                    b';' => ExtNameStart,
                    b' ' | b'\t' => BwsBeforeSemi,
                    _ => return Err(Malformed("invalid chunk size")),
                },
            },
            BwsBeforeSemi => match b {
                b' ' | b'\t' => BwsBeforeSemi,
                b';' => ExtNameStart,
                _ => return Err(Malformed("invalid chunk extension")),
            },
            ExtNameStart => match b {
                b' ' | b'\t' => ExtNameStart,
                _ if is_tchar(b) => ExtName,
                _ => return Err(Malformed("invalid chunk extension")),
            },
            ExtName => match b {
                b'\r' => SizeLf,
                b';' => ExtNameStart,
                b'=' => ExtValueStart,
                b' ' | b'\t' => BwsAfterName,
                _ if is_tchar(b) => ExtName,
                _ => return Err(Malformed("invalid chunk extension")),
            },
            BwsAfterName => match b {
                b' ' | b'\t' => BwsAfterName,
                b';' => ExtNameStart,
                b'=' => ExtValueStart,
                _ => return Err(Malformed("invalid chunk extension")),
            },
            ExtValueStart => match b {
                b' ' | b'\t' => ExtValueStart,
                b'"' => ExtQuoted,
                _ if is_tchar(b) => ExtValueToken,
                _ => return Err(Malformed("invalid chunk extension")),
            },
            ExtValueToken => match b {
                b'\r' => SizeLf,
                b';' => ExtNameStart,
                b' ' | b'\t' => BwsBeforeSemi,
                _ if is_tchar(b) => ExtValueToken,
                _ => return Err(Malformed("invalid chunk extension")),
            },
            // qdtext = HTAB / SP / VCHAR except '"' and '\' / obs-text
            ExtQuoted => match b {
                b'"' => AfterQuoted,
                b'\\' => ExtQuotedEscape,
                _ if is_value_byte(b) => ExtQuoted,
                _ => return Err(Malformed("invalid chunk extension")),
            },
            ExtQuotedEscape => match b {
                _ if is_value_byte(b) => ExtQuoted,
                _ => return Err(Malformed("invalid chunk extension")),
            },
            AfterQuoted => match b {
                b'\r' => SizeLf,
                b';' => ExtNameStart,
                b' ' | b'\t' => BwsBeforeSemi,
                _ => return Err(Malformed("invalid chunk extension")),
            },
            SizeLf => match b {
                b'\n' if self.size == 0 => TrailerLineStart,
                b'\n' => {
                    self.announced = self.announced.saturating_add(self.size);
                    self.size_digits = 0;
                    Data
                }
                _ => return Err(Malformed("expected LF after chunk size")),
            },
            // Any other byte here means the chunk data was longer than announced.
            DataCr => match b {
                b'\r' => DataLf,
                _ => return Err(Malformed("expected CRLF after chunk data")),
            },
            DataLf => match b {
                b'\n' => {
                    self.size = 0;
                    Size
                }
                _ => return Err(Malformed("expected CRLF after chunk data")),
            },
            TrailerLineStart => match b {
                b'\r' => EndLf,
                b' ' | b'\t' => return Err(Malformed("obs-fold in trailer")),
                _ if is_tchar(b) => {
                    self.name_len = 0;
                    self.push_name(b);
                    TrailerName
                }
                _ => return Err(Malformed("invalid trailer name")),
            },
            TrailerName => match b {
                b':' => {
                    if self.is_forbidden_name() {
                        return Err(Malformed("forbidden trailer"));
                    }
                    TrailerValue
                }
                _ if is_tchar(b) => {
                    self.push_name(b);
                    TrailerName
                }
                _ => return Err(Malformed("invalid trailer name")),
            },
            TrailerValue => match b {
                b'\r' => TrailerLf,
                _ if is_value_byte(b) => TrailerValue,
                _ => return Err(Malformed("invalid trailer value")),
            },
            TrailerLf => match b {
                b'\n' => TrailerLineStart,
                _ => return Err(Malformed("bare CR in trailer")),
            },
            EndLf => match b {
                b'\n' => Done,
                _ => return Err(Malformed("bare CR in trailer")),
            },
            // feed() handles these before calling step.
            Data | Done | Failed(_) => return Err(Malformed("internal state")),
        };
        Ok(())
    }

    fn in_ext(&self) -> bool {
        use State::*;
        matches!(
            self.state,
            BwsBeforeSemi
                | ExtNameStart
                | ExtName
                | BwsAfterName
                | ExtValueStart
                | ExtValueToken
                | ExtQuoted
                | ExtQuotedEscape
                | AfterQuoted
        )
    }

    fn in_trailer(&self) -> bool {
        use State::*;
        matches!(
            self.state,
            TrailerLineStart | TrailerName | TrailerValue | TrailerLf | EndLf
        )
    }

    fn push_name(&mut self, b: u8) {
        if let Some(slot) = self.name_buf.get_mut(self.name_len) {
            *slot = b.to_ascii_lowercase();
        }
        self.name_len = self.name_len.saturating_add(1);
    }

    fn is_forbidden_name(&self) -> bool {
        // Longer names were truncated in the buffer and cannot match.
        match self.name_buf.get(..self.name_len) {
            Some(name) => FORBIDDEN_TRAILERS.contains(&name),
            None => false,
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Outcome = Result<(Vec<u8>, usize), ChunkedError>;

    /// Feed `input` in pieces cut at `cuts`; returns body and total consumed.
    fn run_cuts(input: &[u8], cuts: &[usize], max_body: u64, max_trailer: usize) -> Outcome {
        let mut d = ChunkedDecoder::new(max_body, max_trailer);
        let mut body = Vec::new();
        let mut sink = |s: &[u8]| body.extend_from_slice(s);
        let mut consumed = 0usize;
        let mut bounds: Vec<usize> = cuts.to_vec();
        bounds.push(input.len());
        let mut start = 0;
        for &end in &bounds {
            if end < start {
                continue;
            }
            let (n, done) = d.feed(&input[start..end], &mut sink)?;
            consumed += n;
            if done {
                assert_eq!(d.body_len() as usize, body.len());
                assert!(d.is_done());
                return Ok((body, consumed));
            }
            assert_eq!(n, end - start, "not done must consume everything");
            start = end;
        }
        Err(ChunkedError::Malformed("incomplete"))
    }

    fn run(input: &[u8]) -> Outcome {
        run_cuts(input, &[], 1 << 20, 1024)
    }

    fn bytewise(input: &[u8]) -> Outcome {
        let cuts: Vec<usize> = (1..input.len()).collect();
        run_cuts(input, &cuts, 1 << 20, 1024)
    }

    /// Whole, every single split, every pair of splits, and byte-at-a-time
    /// must all agree.
    fn check_all_splits(input: &[u8], expect: &Outcome) {
        assert_eq!(&run(input), expect, "whole");
        assert_eq!(&bytewise(input), expect, "bytewise");
        for i in 0..=input.len() {
            assert_eq!(&run_cuts(input, &[i], 1 << 20, 1024), expect, "cut {i}");
            for j in i..=input.len() {
                assert_eq!(
                    &run_cuts(input, &[i, j], 1 << 20, 1024),
                    expect,
                    "cuts {i} {j}"
                );
            }
        }
    }

    fn malformed(input: &[u8]) {
        assert!(
            matches!(run(input), Err(ChunkedError::Malformed(_))),
            "{:?} -> {:?}",
            String::from_utf8_lossy(input),
            run(input)
        );
        assert!(matches!(bytewise(input), Err(ChunkedError::Malformed(_))));
    }

    #[test]
    fn simple_and_pipelined() {
        let msg = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
        let expect = Ok((b"hello world".to_vec(), msg.len() - 16));
        check_all_splits(msg, &expect);
    }

    #[test]
    fn extensions_and_trailers_all_splits() {
        let msg = b"A;name=val ; q=\"a\\\"b;c\"\r\n0123456789\r\n1;x\r\nZ\r\n0;last\r\nX-Sum: abc \t\xff\r\nEtag: \"1\"\r\n\r\nNEXT";
        let expect = Ok((b"0123456789Z".to_vec(), msg.len() - 4));
        check_all_splits(msg, &expect);
    }

    #[test]
    fn uppercase_hex_and_leading_zeros() {
        let mut msg = b"0000F\r\n".to_vec();
        msg.extend(std::iter::repeat_n(b'x', 15));
        msg.extend_from_slice(b"\r\n0\r\n\r\n");
        let (body, n) = run(&msg).unwrap();
        assert_eq!(body.len(), 15);
        assert_eq!(n, msg.len());
        let mut msg = b"1a\r\n".to_vec();
        msg.extend(std::iter::repeat_n(b'y', 26));
        msg.extend_from_slice(b"\r\n000\r\n\r\n");
        assert_eq!(run(&msg).unwrap().0.len(), 26);
    }

    #[test]
    fn empty_body() {
        check_all_splits(b"0\r\n\r\n", &Ok((Vec::new(), 5)));
    }

    #[test]
    fn bad_sizes() {
        malformed(b"\r\n\r\n");
        malformed(b"0x5\r\nhello\r\n0\r\n\r\n");
        malformed(b"+5\r\nhello\r\n0\r\n\r\n");
        malformed(b"-5\r\nhello\r\n0\r\n\r\n");
        malformed(b" 5\r\nhello\r\n0\r\n\r\n");
        malformed(b"\t5\r\nhello\r\n0\r\n\r\n");
        malformed(b"g\r\n");
        malformed(b";x\r\n0\r\n\r\n");
        malformed(b"5 \r\nhello\r\n0\r\n\r\n");
        malformed(b"00000000000000001\r\nx\r\n0\r\n\r\n");
        malformed(b"5\nhello\r\n0\r\n\r\n");
        malformed(b"5\rhello\r\n0\r\n\r\n");
        malformed(b"5\r\r\nhello\r\n0\r\n\r\n");
    }

    #[test]
    fn sixteen_digit_sizes() {
        // 16 digits is allowed syntactically; the body limit then applies.
        let mut d = ChunkedDecoder::new(u64::MAX, 64);
        let mut sink = |_: &[u8]| {};
        assert_eq!(
            d.feed(b"ffffffffffffffff\r\nabc", &mut sink),
            Ok((21, false))
        );
        assert_eq!(d.body_len(), 3);
        let mut d = ChunkedDecoder::new(u64::MAX, 64);
        assert!(matches!(
            d.feed(b"10000000000000000\r\n", &mut sink),
            Err(ChunkedError::Malformed(_))
        ));
    }

    #[test]
    fn bad_data_framing() {
        // short data: the next bytes are not CRLF
        malformed(b"5\r\nhell\r\n0\r\n\r\n");
        // long data
        malformed(b"5\r\nhello!\r\n0\r\n\r\n");
        malformed(b"5\r\nhello\n0\r\n\r\n");
        malformed(b"5\r\nhello\r0\r\n\r\n");
        malformed(b"5\r\nhello\r\r\n0\r\n\r\n");
    }

    #[test]
    fn bad_extensions() {
        malformed(b"5;\r\nhello\r\n0\r\n\r\n");
        malformed(b"5;=v\r\nhello\r\n0\r\n\r\n");
        malformed(b"5;a=\r\nhello\r\n0\r\n\r\n");
        malformed(b"5;a=b c\r\nhello\r\n0\r\n\r\n");
        malformed(b"5;a=b \r\nhello\r\n0\r\n\r\n");
        malformed(b"5;a \r\nhello\r\n0\r\n\r\n");
        malformed(b"5;a\x0b\r\nhello\r\n0\r\n\r\n");
        malformed(b"5;a=\"x\x00\"\r\nhello\r\n0\r\n\r\n");
        malformed(b"5;a=\"x\r\nhello\r\n0\r\n\r\n");
        malformed(b"5;a=\"x\"y\r\nhello\r\n0\r\n\r\n");
        malformed(b"5;a=\"x\\\x01\"\r\nhello\r\n0\r\n\r\n");
        malformed(b"5;a\nhello\r\n0\r\n\r\n");
        malformed(b"5;a=b\rhello\r\n0\r\n\r\n");
        malformed(b"5;a\x7f\r\nhello\r\n0\r\n\r\n");
        // every ';' must introduce a name
        malformed(b"5;a;;b\r\nhello\r\n0\r\n\r\n");
        malformed(b"5;a=b;\r\nhello\r\n0\r\n\r\n");
    }

    #[test]
    fn good_extensions() {
        for m in [
            &b"5;a\r\nhello\r\n0\r\n\r\n"[..],
            b"5 ;a\r\nhello\r\n0\r\n\r\n",
            b"5\t; \ta \t= \tb\r\nhello\r\n0\r\n\r\n",
            b"5;a=b;c;d=\"\"\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"q \\\" \t\xe9\" ;b\r\nhello\r\n0\r\n\r\n",
        ] {
            assert_eq!(run(m), Ok((b"hello".to_vec(), m.len())), "{m:?}");
        }
    }

    #[test]
    fn extension_flood_is_capped() {
        let mut msg = b"1;".to_vec();
        msg.extend(std::iter::repeat_n(b'a', MAX_EXT_BYTES + 10));
        assert_eq!(run(&msg), Err(ChunkedError::TooLarge));
    }

    #[test]
    fn body_limit_detected_at_announcement() {
        let mut d = ChunkedDecoder::new(10, 64);
        let mut sink = |_: &[u8]| {};
        assert_eq!(d.feed(b"5\r\nhello\r\n", &mut sink), Ok((10, false)));
        // 5 + 6 > 10: rejected on the size digit, before any data arrives.
        assert_eq!(d.feed(b"6", &mut sink), Err(ChunkedError::TooLarge));
        // error is sticky
        assert_eq!(d.feed(b"\r\n", &mut sink), Err(ChunkedError::TooLarge));

        let mut d = ChunkedDecoder::new(10, 64);
        assert_eq!(
            d.feed(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", &mut sink),
            Ok((25, true))
        );
        assert_eq!(d.body_len(), 10);
        assert_eq!(d.feed(b"more", &mut sink), Ok((0, true)));

        let mut d = ChunkedDecoder::new(u64::MAX - 1, 64);
        assert_eq!(
            d.feed(b"ffffffffffffffff", &mut sink),
            Err(ChunkedError::TooLarge)
        );
    }

    #[test]
    fn trailers() {
        assert_eq!(run(b"0\r\nX-A: 1\r\nX-B:\r\n\r\n"), Ok((Vec::new(), 19)));
        malformed(b"0\r\nX-A: 1\r\n folded\r\n\r\n");
        malformed(b"0\r\n X: 1\r\n\r\n");
        malformed(b"0\r\nX-A : 1\r\n\r\n");
        malformed(b"0\r\n: 1\r\n\r\n");
        malformed(b"0\r\nX\x0bA: 1\r\n\r\n");
        malformed(b"0\r\nX-A: a\x00b\r\n\r\n");
        malformed(b"0\r\nX-A: a\x7fb\r\n\r\n");
        malformed(b"0\r\nX-A: a\rb\r\n\r\n");
        malformed(b"0\r\nX-A: 1\n\r\n");
        malformed(b"0\r\nX-A: 1\r\n\n");
        malformed(b"0\r\n\r\r\n");
        malformed(b"0\r\nNoColon\r\n\r\n");
        malformed(b"0\n\r\n");
        for name in [
            "Content-Length",
            "TRANSFER-ENCODING",
            "host",
            "Content-Type",
            "Trailer",
            "Connection",
            "Expect",
            "Upgrade",
        ] {
            let msg = format!("0\r\n{name}: 1\r\n\r\n");
            assert_eq!(
                run(msg.as_bytes()),
                Err(ChunkedError::Malformed("forbidden trailer")),
                "{name}"
            );
        }
        // similar but allowed names
        assert!(run(b"0\r\nHosts: 1\r\nTransfer-Encodings: x\r\nContent: 1\r\n\r\n").is_ok());
    }

    #[test]
    fn trailer_size_limit() {
        let msg = b"0\r\nX-A: 12345\r\n\r\n"; // trailer section is 14 bytes
        assert!(run_cuts(msg, &[], 100, 14).is_ok());
        assert_eq!(run_cuts(msg, &[], 100, 13), Err(ChunkedError::TooLarge));
        let cuts: Vec<usize> = (1..msg.len()).collect();
        assert_eq!(run_cuts(msg, &cuts, 100, 13), Err(ChunkedError::TooLarge));
    }

    #[test]
    fn incomplete_is_not_done() {
        let mut d = ChunkedDecoder::new(100, 100);
        let mut sink = |_: &[u8]| {};
        assert_eq!(d.feed(b"", &mut sink), Ok((0, false)));
        assert_eq!(d.feed(b"3\r\nab", &mut sink), Ok((5, false)));
        assert_eq!(d.feed(b"c\r\n0\r\n\r", &mut sink), Ok((7, false)));
        assert!(!d.is_done());
        assert_eq!(d.feed(b"\nrest", &mut sink), Ok((1, true)));
    }

    /// xorshift64*: deterministic pseudo-random numbers without crates.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn cuts(&mut self, len: usize) -> Vec<usize> {
            let mut c: Vec<usize> = (0..self.below(6)).map(|_| self.below(len + 1)).collect();
            c.sort_unstable();
            c
        }
    }

    const PIECES: &[&[u8]] = &[
        b"0",
        b"5",
        b"a",
        b"F",
        b"10",
        b"\r\n",
        b"\r\n",
        b"\r\n",
        b"\r",
        b"\n",
        b";",
        b"=",
        b"\"",
        b"\\",
        b" ",
        b"\t",
        b"x",
        b":",
        b"hello",
        b"X-T: v",
        b"Host: h",
        b"\x00",
        b"\xff",
        b"ffffffffffffffffff",
    ];

    const TEMPLATES: &[&[u8]] = &[
        b"5\r\nhello\r\n0\r\n\r\n",
        b"3;a=b\r\nabc\r\n1\r\nd\r\n0\r\nX-T: v\r\n\r\nNEXT",
        b"2 ; q=\"x\\\"y\"\r\nhi\r\n0;z\r\n\r\n",
        b"0\r\nA: 1\r\nB: 2\r\n\r\n",
    ];

    #[test]
    fn random_inputs_never_panic_and_split_independent() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut done = 0;
        for _ in 0..20_000 {
            let mut v = Vec::new();
            if rng.below(2) == 0 {
                for _ in 0..rng.below(30) {
                    if rng.below(6) == 0 {
                        v.push(rng.next() as u8);
                    } else {
                        v.extend_from_slice(PIECES[rng.below(PIECES.len())]);
                    }
                }
            } else {
                // Mutate a valid message so deep states are reached too.
                v.extend_from_slice(TEMPLATES[rng.below(TEMPLATES.len())]);
                for _ in 0..rng.below(3) {
                    let at = rng.below(v.len() + 1);
                    match rng.below(3) {
                        0 => v.insert(at, rng.next() as u8),
                        1 if at < v.len() => {
                            v.remove(at);
                        }
                        _ if at < v.len() => v[at] = PIECES[rng.below(PIECES.len())][0],
                        _ => {}
                    }
                }
            }
            let max_body = rng.below(64) as u64;
            let whole = run_cuts(&v, &[], max_body, 32);
            let cuts = rng.cuts(v.len());
            assert_eq!(run_cuts(&v, &cuts, max_body, 32), whole, "{v:?} {cuts:?}");
            if let Ok((_, n)) = whole {
                assert!(n <= v.len());
                done += 1;
            }
        }
        assert!(
            done > 2_000,
            "generator too rarely produced a full message: {done}"
        );
    }

    #[test]
    fn random_valid_messages_round_trip() {
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        for _ in 0..3_000 {
            let mut msg = Vec::new();
            let mut body = Vec::new();
            for _ in 0..rng.below(5) {
                let size = 1 + rng.below(40);
                let digits = format!("{size:x}");
                msg.extend_from_slice(
                    if rng.below(2) == 0 {
                        digits.to_uppercase()
                    } else {
                        digits
                    }
                    .as_bytes(),
                );
                if rng.below(3) == 0 {
                    msg.extend_from_slice(b" ; ext=\"v\\\"\"");
                }
                msg.extend_from_slice(b"\r\n");
                for _ in 0..size {
                    // Data may contain anything, including CR and LF.
                    let b = rng.next() as u8;
                    msg.push(b);
                    body.push(b);
                }
                msg.extend_from_slice(b"\r\n");
            }
            msg.extend_from_slice(b"0\r\n");
            if rng.below(2) == 0 {
                msg.extend_from_slice(b"X-Trailer: t\r\n");
            }
            msg.extend_from_slice(b"\r\n");
            let end = msg.len();
            msg.extend_from_slice(b"POST /next HTTP/1.1\r\n");
            let cuts = rng.cuts(msg.len());
            assert_eq!(
                run_cuts(&msg, &cuts, 1 << 20, 1024),
                Ok((body.clone(), end)),
                "{msg:?} {cuts:?}"
            );
            // One byte over the body limit is caught.
            if !body.is_empty() {
                let limit = body.len() as u64 - 1;
                assert_eq!(
                    run_cuts(&msg, &cuts, limit, 1024),
                    Err(ChunkedError::TooLarge)
                );
            }
        }
    }
}
