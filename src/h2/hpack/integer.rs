//! HPACK's prefix integers (RFC 7541 section 5.1): a value in the low `prefix` bits of the
//! first octet, or that prefix full and the rest in 7-bit groups, least significant first.
//! Decoding stops at four continuation octets (values up to 2^28 and a bit): more than any
//! index, length or table size a peer can mean, and never an overflow.

/// Continuation octets accepted after the prefix.
const MAX_CONTINUATIONS: usize = 4;

#[derive(Debug, PartialEq, Eq)]
pub enum IntError {
    /// The input ended inside the integer.
    Truncated,
    /// More continuation octets than any sane value needs.
    TooLong,
}

/// Decodes an integer with a `prefix`-bit prefix (1..=8) from the start of `src`; returns
/// it and the octets it took.
pub fn decode(src: &[u8], prefix: u8) -> Result<(u32, usize), IntError> {
    let max = (1u32 << prefix) - 1;
    let first = u32::from(*src.first().ok_or(IntError::Truncated)?) & max;
    if first < max {
        return Ok((first, 1));
    }
    let mut value = max;
    for i in 0..=MAX_CONTINUATIONS {
        let b = *src.get(1 + i).ok_or(IntError::Truncated)?;
        if i == MAX_CONTINUATIONS {
            return Err(IntError::TooLong);
        }
        value += u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, 2 + i));
        }
    }
    Err(IntError::TooLong)
}

/// Appends `value` with a `prefix`-bit prefix, `flags` in the first octet's high bits.
pub fn encode(value: u32, prefix: u8, flags: u8, out: &mut Vec<u8>) {
    let max = (1u32 << prefix) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7541_c1_examples() {
        // C.1.1: 10 in a 5-bit prefix; C.1.2: 1337 in a 5-bit prefix; C.1.3: 42 at an
        // octet boundary.
        for (value, prefix, bytes) in [
            (10, 5, &[0x0a][..]),
            (1337, 5, &[0x1f, 0x9a, 0x0a][..]),
            (42, 8, &[0x2a][..]),
        ] {
            let mut out = Vec::new();
            encode(value, prefix, 0, &mut out);
            assert_eq!(out, bytes);
            assert_eq!(decode(bytes, prefix), Ok((value, bytes.len())));
        }
    }

    #[test]
    fn flags_are_kept_out_of_the_value() {
        let mut out = Vec::new();
        encode(62, 6, 0x40, &mut out);
        assert_eq!(out, [0x7e]);
        assert_eq!(
            decode(&[0xfe], 6),
            Ok((62, 1)),
            "the 0x80 flag is not the value"
        );
    }

    #[test]
    fn truncated_and_overlong_integers_are_errors() {
        assert_eq!(decode(&[], 5), Err(IntError::Truncated));
        assert_eq!(decode(&[0x1f], 5), Err(IntError::Truncated));
        assert_eq!(decode(&[0x1f, 0x80], 5), Err(IntError::Truncated));
        assert_eq!(
            decode(&[0x3f], 6),
            Err(IntError::Truncated),
            "the 0x3f that crashed others"
        );
        assert_eq!(
            decode(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x0f], 5),
            Err(IntError::TooLong)
        );
        let big = decode(&[0x1f, 0xff, 0xff, 0xff, 0x7f], 5).unwrap();
        assert_eq!(big, (31 + (1 << 28) - 1, 5));
        for v in [0, 30, 31, 127, 128, 1 << 20, (1 << 28) + 30] {
            let mut out = Vec::new();
            encode(v, 5, 0, &mut out);
            assert_eq!(decode(&out, 5), Ok((v, out.len())), "{v}");
        }
    }
}
