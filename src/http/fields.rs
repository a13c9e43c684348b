//! Field lines (RFC 9112 5): the one strict reader behind the request head parser
//! (`parser.rs`) and the upstream response head parser (`proxy/resphead.rs`).
//!
//! A field line is a tchar name directly followed by `:`, optional whitespace, a value of
//! VCHAR / SP / HTAB / obs-text, optional whitespace, CRLF. Anything else is an error:
//! obs-fold, a bare CR or LF, whitespace before the colon, control bytes. The value span
//! excludes the surrounding whitespace.

use super::parser::{HeaderSpan, Span, TCHAR, VALUE, is_ows, skip_class};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldError {
    /// The buffer ended inside the head.
    Incomplete,
    /// A line starting with SP or HTAB (a continuation line, RFC 9112 5.2).
    ObsFold,
    /// A line starting with a CR that no LF follows.
    BareCr,
    /// An LF without the CR before it.
    BareLf,
    BadName,
    BadValue,
}

impl FieldError {
    /// For the parsers' error values (both say the same thing for the same fault).
    pub fn why(self) -> &'static str {
        match self {
            FieldError::Incomplete => "incomplete head",
            FieldError::ObsFold => "obs-fold",
            FieldError::BareCr => "bare CR",
            FieldError::BareLf => "bare LF",
            FieldError::BadName => "invalid header name",
            FieldError::BadValue => "invalid header value",
        }
    }

    /// A fault seen at the start of the line, before its field would be counted.
    pub fn at_line_start(self) -> bool {
        matches!(
            self,
            FieldError::Incomplete | FieldError::ObsFold | FieldError::BareCr
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// A field line, and where the next line starts.
    Field(HeaderSpan, usize),
    /// The empty line that ends the head, and where the head ends (after its CRLF).
    End(usize),
}

/// Reads the line starting at `i`. Always inlined: it runs once per header line of every
/// request, and as a call it cost the request parser ~15 ns per request (bench/README.md).
#[inline(always)]
pub fn read_line(buf: &[u8], i: usize) -> Result<Line, FieldError> {
    match buf.get(i) {
        Some(b'\r') if buf.get(i + 1) == Some(&b'\n') => return Ok(Line::End(i + 2)),
        Some(b'\r') => return Err(FieldError::BareCr),
        Some(b'\n') => return Err(FieldError::BareLf),
        Some(b' ' | b'\t') => return Err(FieldError::ObsFold),
        Some(_) => {}
        None => return Err(FieldError::Incomplete),
    }
    let n_end = skip_class(buf, i, TCHAR);
    match buf.get(n_end) {
        Some(b':') if n_end > i => {}
        Some(b'\n') => return Err(FieldError::BareLf),
        _ => return Err(FieldError::BadName),
    }
    let mut v_start = n_end + 1;
    while buf.get(v_start).is_some_and(|&b| is_ows(b)) {
        v_start += 1;
    }
    let stop = skip_class(buf, v_start, VALUE);
    if buf.get(stop..stop + 2) != Some(b"\r\n") {
        return Err(if buf.get(stop) == Some(&b'\n') {
            FieldError::BareLf
        } else {
            FieldError::BadValue
        });
    }
    let mut v_end = stop;
    while v_end > v_start && buf.get(v_end - 1).is_some_and(|&b| is_ows(b)) {
        v_end -= 1;
    }
    let h = HeaderSpan {
        name: Span::new(i, n_end),
        value: Span::new(v_start, v_end),
    };
    Ok(Line::Field(h, stop + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &[u8]) -> Result<Line, FieldError> {
        read_line(s, 0)
    }

    #[test]
    fn a_field_line_and_the_end() {
        let buf = b"Name:  v a l \t\r\n\r\n";
        let Ok(Line::Field(h, next)) = read(buf) else {
            panic!("a field")
        };
        assert_eq!(
            (h.name.get(buf), h.value.get(buf)),
            (&b"Name"[..], &b"v a l"[..])
        );
        assert_eq!(read_line(buf, next), Ok(Line::End(buf.len())));
        let Ok(Line::Field(h, _)) = read(b"E:\r\n") else {
            panic!("empty value")
        };
        assert!(h.value.is_empty());
    }

    #[test]
    fn every_fault_has_its_name() {
        let cases: [(&[u8], FieldError); 11] = [
            (b"", FieldError::Incomplete),
            (b" X: a\r\n", FieldError::ObsFold),
            (b"\tX: a\r\n", FieldError::ObsFold),
            (b"\rX: a\r\n", FieldError::BareCr),
            (b"\nX: a\r\n", FieldError::BareLf),
            (b"X\n: a\r\n", FieldError::BareLf),
            (b"X: a\nY: b\r\n", FieldError::BareLf),
            (b"X : a\r\n", FieldError::BadName),
            (b": a\r\n", FieldError::BadName),
            (b"X: a\rb\r\n", FieldError::BadValue),
            (b"X: a\x00b\r\n", FieldError::BadValue),
        ];
        for (buf, want) in cases {
            assert_eq!(read(buf), Err(want), "{:?}", String::from_utf8_lossy(buf));
        }
        assert_eq!(read(b"X: a\x7f\r\n"), Err(FieldError::BadValue));
        assert_eq!(read(b"X: a"), Err(FieldError::BadValue), "no CRLF");
    }
}
