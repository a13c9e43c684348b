//! Incremental end-of-head finder: resumes where it stopped, so a client that
//! trickles bytes costs O(n) in total.

use super::parser::{Limits, ParseError};

/// Empty lines tolerated before the request line (RFC 9112 2.2).
pub const MAX_LEADING_EMPTY_LINES: usize = 4;

/// Slack on top of `max_target_bytes` for method, version and separators.
const REQUEST_LINE_SLACK: usize = 64;

#[derive(Clone, Debug, Default)]
pub struct HeadScanner {
    /// Next byte offset not yet searched for LF.
    pos: usize,
    /// Offset where the current (unfinished) line starts.
    line_start: usize,
    /// Empty lines seen before the request line.
    leading: usize,
    seen_request_line: bool,
}

impl HeadScanner {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Called each time more bytes were appended to `buf` (which always starts
    /// at the request start). Ok(Some(n)): the head, including leading empty
    /// lines and the final CRLFCRLF, is `buf[..n]`. Ok(None): need more bytes.
    /// The scanner resets itself after Ok(Some) or Err, ready for the next
    /// request; call `reset` explicitly if a buffer is abandoned otherwise.
    pub fn scan(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<usize>, ParseError> {
        let r = self.scan_inner(buf, limits);
        if !matches!(r, Ok(None)) {
            self.reset();
        }
        r
    }

    fn scan_inner(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<usize>, ParseError> {
        // A shorter buffer than last time means the caller started over.
        if self.pos > buf.len() {
            self.reset();
        }
        let line_limit = limits.max_target_bytes.saturating_add(REQUEST_LINE_SLACK);
        while let Some(off) = buf
            .get(self.pos..)
            .and_then(|rest| memchr::memchr2(b'\n', b'\r', rest))
        {
            let at = self.pos + off;
            if buf.get(at) == Some(&b'\r') {
                // A CR must end a line: refused as soon as the byte after it is not LF,
                // instead of waiting for an LF that a CR-only client never sends.
                match buf.get(at + 1) {
                    Some(b'\n') => {
                        self.pos = at + 1;
                        continue;
                    }
                    Some(_) => {
                        if let Some(e) = self.limit_error(at + 1, line_limit, limits) {
                            return Err(e);
                        }
                        return Err(ParseError::BadRequest("bare CR"));
                    }
                    None => {
                        self.pos = at;
                        break;
                    }
                }
            }
            let lf = at;
            // The limits first, as a byte-at-a-time feed would have hit them
            // before this LF arrived.
            if let Some(e) = self.limit_error(lf, line_limit, limits) {
                return Err(e);
            }
            self.pos = lf + 1;
            // The byte before LF must be CR; at a line start it is the previous
            // LF (or nothing), so this also rejects an LF-only empty line.
            if lf.checked_sub(1).and_then(|p| buf.get(p)) != Some(&b'\r') {
                return Err(ParseError::BadRequest("bare LF"));
            }
            let line_len = (lf - 1).saturating_sub(self.line_start);
            self.line_start = lf + 1;
            if line_len == 0 {
                if self.seen_request_line {
                    let n = lf + 1;
                    // Checked here too so the verdict does not depend on how
                    // the bytes happened to be split into reads.
                    if n > limits.max_header_bytes {
                        return Err(ParseError::HeaderTooLarge);
                    }
                    return Ok(Some(n));
                }
                self.leading += 1;
                if self.leading > MAX_LEADING_EMPTY_LINES {
                    return Err(ParseError::BadRequest(
                        "too many empty lines before request",
                    ));
                }
            } else {
                // limit_error above already capped the request line.
                self.seen_request_line = true;
            }
        }
        if buf.get(self.pos) != Some(&b'\r') {
            self.pos = buf.len();
        }
        match self.limit_error(buf.len(), line_limit, limits) {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// The error for the first `len` bytes of an unfinished head: 414 once the
    /// unfinished request line (its CR included) is over `line_limit`, 431 once
    /// the head is over `max_header_bytes`. When both apply, the one a
    /// byte-at-a-time feed reaches first wins (414 on a tie), so the verdict
    /// never depends on how the bytes were split into reads.
    fn limit_error(&self, len: usize, line_limit: usize, limits: &Limits) -> Option<ParseError> {
        let uri_at = if self.seen_request_line {
            usize::MAX
        } else {
            self.line_start.saturating_add(line_limit).saturating_add(1)
        };
        let head_at = limits.max_header_bytes.saturating_add(1);
        if uri_at <= len && uri_at <= head_at {
            Some(ParseError::UriTooLong)
        } else if head_at <= len {
            Some(ParseError::HeaderTooLarge)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::{Head, HeaderSpan, parse_head};
    use super::*;

    fn scan_all(buf: &[u8]) -> Result<Option<usize>, ParseError> {
        HeadScanner::new().scan(buf, &Limits::default())
    }

    /// Feed `buf` one byte at a time, returning the first non-None result.
    fn scan_bytewise(buf: &[u8], limits: &Limits) -> Result<Option<usize>, ParseError> {
        let mut s = HeadScanner::new();
        for end in 1..=buf.len() {
            match s.scan(&buf[..end], limits) {
                Ok(None) => {}
                other => return other,
            }
        }
        Ok(None)
    }

    #[test]
    fn finds_simple_head() {
        let b = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(scan_all(b), Ok(Some(b.len())));
        assert_eq!(scan_bytewise(b, &Limits::default()), Ok(Some(b.len())));
    }

    #[test]
    fn pipelined_returns_first_head_only() {
        let b = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(scan_all(b), Ok(Some(28)));
        // after Some the scanner is reset and can scan the remainder
        let mut s = HeadScanner::new();
        let l = Limits::default();
        assert_eq!(s.scan(b, &l), Ok(Some(28)));
        assert_eq!(s.scan(&b[28..], &l), Ok(Some(28)));
    }

    #[test]
    fn need_more() {
        assert_eq!(scan_all(b""), Ok(None));
        assert_eq!(scan_all(b"GET / HTTP/1.1\r\n"), Ok(None));
        assert_eq!(scan_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r"), Ok(None));
    }

    #[test]
    fn leading_empty_lines() {
        let b = b"\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(scan_all(b), Ok(Some(b.len())));
        assert_eq!(scan_bytewise(b, &Limits::default()), Ok(Some(b.len())));
        let b = b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(matches!(scan_all(b), Err(ParseError::BadRequest(_))));
        assert!(matches!(
            scan_bytewise(b, &Limits::default()),
            Err(ParseError::BadRequest(_))
        ));
    }

    #[test]
    fn bare_lf_rejected() {
        for b in [
            &b"GET / HTTP/1.1\nHost: x\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: x\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n\n",
            b"\nGET / HTTP/1.1\r\n",
            b"\r\n\nGET",
        ] {
            assert_eq!(scan_all(b), Err(ParseError::BadRequest("bare LF")));
            assert_eq!(
                scan_bytewise(b, &Limits::default()),
                Err(ParseError::BadRequest("bare LF"))
            );
        }
    }

    #[test]
    fn request_line_too_long() {
        let l = Limits::default();
        let mut b = b"GET /".to_vec();
        b.extend(std::iter::repeat_n(b'a', 8192 + 64));
        // Incomplete request line over the limit: reject without waiting.
        assert_eq!(scan_all(&b), Err(ParseError::UriTooLong));
        // Just at the limit: still waiting.
        assert_eq!(scan_all(&b[..8192 + 64]), Ok(None));
        // Completed over-long request line in one read: same verdict.
        b.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(scan_all(&b), Err(ParseError::UriTooLong));
        assert_eq!(scan_bytewise(&b, &l), Err(ParseError::UriTooLong));
        // A maximal legal target passes the scanner.
        let mut ok = b"GET /".to_vec();
        ok.extend(std::iter::repeat_n(b'a', 8191));
        ok.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(scan_bytewise(&ok, &l), Ok(Some(ok.len())));
    }

    /// Found by fuzzing (fuzz/fuzz_targets/request_parser.rs): the verdict on
    /// an over-long request line depended on how the bytes were split.
    #[test]
    fn limits_do_not_depend_on_the_split() {
        let l = Limits {
            max_header_bytes: 256,
            max_headers: 4,
            max_target_bytes: 32,
        };
        let line_limit = 32 + REQUEST_LINE_SLACK;
        // A request line of exactly line_limit bytes plus CR: a bytewise feed
        // sees line_limit + 1 unfinished bytes before the LF; one read used to
        // accept it.
        let mut exact = b"GET /".to_vec();
        exact.resize(line_limit - " HTTP/1.1".len(), b'a');
        exact.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(scan_bytewise(&exact, &l), Err(ParseError::UriTooLong));
        assert_eq!(
            HeadScanner::new().scan(&exact, &l),
            Err(ParseError::UriTooLong)
        );
        // One byte shorter passes both ways.
        exact.remove(5);
        let n = exact.len();
        assert_eq!(scan_bytewise(&exact, &l), Ok(Some(n)));
        assert_eq!(HeadScanner::new().scan(&exact, &l), Ok(Some(n)));
        // An over-long line ended by a bare LF: 414 (what a trickling client
        // gets) whether or not the LF arrives in the same read.
        let mut lf = b"GET /".to_vec();
        lf.resize(line_limit + 20, b'F');
        lf.extend_from_slice(b"\nHost: x\r\n\r\n");
        assert_eq!(scan_bytewise(&lf, &l), Err(ParseError::UriTooLong));
        assert_eq!(
            HeadScanner::new().scan(&lf, &l),
            Err(ParseError::UriTooLong)
        );
        // A bare LF past max_header_bytes: 431 either way.
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(300, b'v');
        big.extend_from_slice(b"\n\r\n");
        assert_eq!(scan_bytewise(&big, &l), Err(ParseError::HeaderTooLarge));
        assert_eq!(
            HeadScanner::new().scan(&big, &l),
            Err(ParseError::HeaderTooLarge)
        );
        // max_target_bytes close to max_header_bytes: the head limit is reached
        // first while the request line is still unfinished.
        let wide = Limits {
            max_header_bytes: 1024,
            max_headers: 4,
            max_target_bytes: 1000,
        };
        let mut long = b"GET /".to_vec();
        long.resize(2000, b'a');
        assert_eq!(scan_bytewise(&long, &wide), Err(ParseError::HeaderTooLarge));
        assert_eq!(
            HeadScanner::new().scan(&long, &wide),
            Err(ParseError::HeaderTooLarge)
        );
    }

    #[test]
    fn head_too_large() {
        let l = Limits {
            max_header_bytes: 64,
            ..Limits::default()
        };
        let mut b = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        b.resize(64, b'a');
        assert_eq!(HeadScanner::new().scan(&b, &l), Ok(None));
        b.push(b'a');
        assert_eq!(
            HeadScanner::new().scan(&b, &l),
            Err(ParseError::HeaderTooLarge)
        );
        // Complete but too large in a single read: same verdict.
        b.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            HeadScanner::new().scan(&b, &l),
            Err(ParseError::HeaderTooLarge)
        );
        assert_eq!(scan_bytewise(&b, &l), Err(ParseError::HeaderTooLarge));
        // Exactly at the limit is fine.
        let mut ok = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        ok.resize(60, b'a');
        ok.extend_from_slice(b"\r\n\r\n");
        assert_eq!(scan_bytewise(&ok, &l), Ok(Some(64)));
    }

    #[test]
    fn every_split_agrees() {
        let b = b"\r\nPOST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET";
        let l = Limits::default();
        for k in 0..=b.len() {
            let mut s = HeadScanner::new();
            let first = s.scan(&b[..k], &l);
            let r = match first {
                Ok(None) => s.scan(b, &l),
                other => other,
            };
            assert_eq!(r, Ok(Some(b.len() - 6)), "split at {k}");
        }
    }

    #[test]
    fn shrunk_buffer_restarts() {
        let mut s = HeadScanner::new();
        let l = Limits::default();
        assert_eq!(s.scan(b"GET / HTTP/1.1\r\nHost: x\r\n", &l), Ok(None));
        assert_eq!(s.scan(b"GET / HTTP/1.0\r\n\r\n", &l), Ok(Some(18)));
    }

    #[test]
    fn bytewise_is_linear() {
        // 60 KiB of header bytes fed one at a time: quadratic would be ~1.8e9
        // byte visits; this guards against regressing to rescanning.
        let l = Limits::default();
        let mut b = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        b.resize(60 * 1024, b'v');
        b.extend_from_slice(b"\r\n\r\n");
        let mut s = HeadScanner::new();
        let mut found = None;
        for end in 1..=b.len() {
            if let Some(n) = s.scan(&b[..end], &l).unwrap() {
                found = Some(n);
            }
        }
        assert_eq!(found, Some(b.len()));
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
    }

    const PIECES: &[&[u8]] = &[
        b"GET ",
        b"POST ",
        b"OPTIONS ",
        b"CONNECT ",
        b"/",
        b"/a?b",
        b"*",
        b"http://h",
        b"https://",
        b" ",
        b" ",
        b"HTTP/1.1",
        b"HTTP/1.0",
        b"HTTP/2.0",
        b"\r\n",
        b"\r\n",
        b"\r\n",
        b"\r",
        b"\n",
        b":",
        b": ",
        b"Host: x",
        b"Host:",
        b"Content-Length: ",
        b"Transfer-Encoding: ",
        b"chunked",
        b"gzip",
        b",",
        b"5",
        b"12",
        b"\t",
        b"\x00",
        b"\x7f",
        b"\xff",
        b"\x0b",
        b"Connection: close",
        b"Expect: 100-continue",
        b"Expect: x",
        b"Upgrade: y",
        b"X-A: v",
        b"@",
        b"[::1]",
    ];

    fn random_input(rng: &mut Rng) -> Vec<u8> {
        let mut v = Vec::new();
        let pieces = rng.below(40);
        if rng.below(2) == 0 {
            v.extend_from_slice(b"GET / HTTP/1.1\r\nHost: h\r\n");
        }
        for _ in 0..pieces {
            if rng.below(5) == 0 {
                v.push(rng.next() as u8);
            } else {
                v.extend_from_slice(PIECES[rng.below(PIECES.len())]);
            }
        }
        if rng.below(2) == 0 {
            v.extend_from_slice(b"\r\n\r\n");
        }
        v
    }

    fn check_spans(head: &Head, hs: &[HeaderSpan], len: usize) {
        let mut spans = vec![head.method, head.target, head.path];
        spans.extend(head.query);
        spans.extend(head.authority);
        spans.extend(head.host);
        for h in hs {
            spans.push(h.name);
            spans.push(h.value);
        }
        for s in spans {
            assert!(s.start <= s.end && s.end as usize <= head.head_len, "{s:?}");
        }
        assert!(head.head_len <= len);
    }

    #[test]
    fn random_inputs_never_panic_and_agree() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let l = Limits::default();
        let tiny = Limits {
            max_header_bytes: 40,
            max_headers: 2,
            max_target_bytes: 8,
        };
        let mut hs: Vec<HeaderSpan> = Vec::new();
        let (mut found, mut accepted) = (0, 0);
        for round in 0..20_000 {
            let buf = random_input(&mut rng);
            let whole = scan_all(&buf);
            // Default limits are never hit here, so the verdict must not
            // depend on how the bytes were split.
            if round % 8 == 0 {
                assert_eq!(scan_bytewise(&buf, &l), whole, "{buf:?}");
            }
            let k = rng.below(buf.len() + 1);
            let mut s = HeadScanner::new();
            let split = match s.scan(&buf[..k], &l) {
                Ok(None) => s.scan(&buf, &l),
                other => other,
            };
            assert_eq!(split, whole, "{buf:?} split at {k}");
            let _ = scan_bytewise(&buf, &tiny);

            let direct = parse_head(&buf, &l, &mut hs);
            if let Ok(h) = &direct {
                accepted += 1;
                check_spans(h, &hs, buf.len());
                // Anything the parser accepts, the scanner delimits identically.
                assert_eq!(whole, Ok(Some(h.head_len)), "{buf:?}");
            }
            if let Ok(Some(n)) = whole {
                found += 1;
                let exact = parse_head(&buf[..n], &l, &mut hs);
                if let Ok(h) = &exact {
                    assert_eq!(h.head_len, n);
                    check_spans(h, &hs, n);
                }
                assert_eq!(exact, direct);
            }
            let _ = parse_head(&buf, &tiny, &mut hs);
        }
        eprintln!("scanner found {found}, parser accepted {accepted} of 20000");
        // Make sure the generator reaches deep paths, not just early errors.
        assert!(found > 2_000 && accepted > 200, "{found} {accepted}");
    }
}
