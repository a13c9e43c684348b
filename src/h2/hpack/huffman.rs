//! HPACK's static Huffman code (RFC 7541 section 5.2, Appendix B). The code is canonical, so
//! the bit length of each symbol's code is all the appendix says: the codes follow from the
//! lengths (shortest first, then by symbol), which the tests check against the appendix's
//! own codes and its Appendix C strings. Decoding walks the code a bit at a time with a
//! first-code and count per length: no tree, no generated state machine, and nothing to
//! disagree with the table.

/// Code lengths in bits, symbols 0..=255, then EOS (256).
#[rustfmt::skip]
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0..15
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16..31
     6, 10, 10, 12, 13,  6,  8, 11, 10, 10,  8, 11,  8,  6,  6,  6, // 32..47
     5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8, 15,  6, 12, 10, // 48..63
    13,  6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7, // 64..79
     7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8, 13, 19, 13, 14,  6, // 80..95
    15,  5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5, // 96..111
     6,  7,  6,  5,  5,  6,  7,  7,  7,  7,  7, 15, 11, 14, 13, 28, // 112..127
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128..143
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144..159
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160..175
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176..191
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192..207
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208..223
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224..239
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240..255
    30, // EOS
];

const EOS: usize = 256;
const MAX_LEN: usize = 30;

struct Code {
    /// Each symbol's code, right-aligned.
    codes: [u32; 257],
    /// Per length: the first code of that length, how many there are, and where their
    /// symbols start in `by_code`.
    first: [u32; MAX_LEN + 1],
    count: [u16; MAX_LEN + 1],
    start: [u16; MAX_LEN + 1],
    /// Symbols in code order (length, then symbol).
    by_code: [u16; 257],
}

/// The canonical assignment: codes of one length are consecutive, each length's first
/// code is the last one's successor shifted left by the length difference.
const fn build() -> Code {
    let mut c = Code {
        codes: [0; 257],
        first: [0; MAX_LEN + 1],
        count: [0; MAX_LEN + 1],
        start: [0; MAX_LEN + 1],
        by_code: [0; 257],
    };
    let mut code: u32 = 0;
    let mut n: usize = 0;
    let mut len = 1;
    while len <= MAX_LEN {
        c.first[len] = code;
        c.start[len] = n as u16;
        let mut sym = 0;
        while sym < 257 {
            if LENGTHS[sym] as usize == len {
                c.codes[sym] = code;
                c.by_code[n] = sym as u16;
                code += 1;
                n += 1;
                c.count[len] += 1;
            }
            sym += 1;
        }
        code <<= 1;
        len += 1;
    }
    assert!(n == 257, "every symbol has a code");
    c
}

static CODE: Code = build();

/// The length of `s` Huffman-coded, padding included.
pub fn encoded_len(s: &[u8]) -> usize {
    let bits: usize = s.iter().map(|&b| LENGTHS[b as usize] as usize).sum();
    bits.div_ceil(8)
}

/// Appends `s` Huffman-coded, padded to an octet with the most significant bits of EOS
/// (all ones).
pub fn encode(s: &[u8], out: &mut Vec<u8>) {
    let (mut acc, mut bits): (u64, u32) = (0, 0);
    for &b in s {
        let len = u32::from(LENGTHS[b as usize]);
        acc = (acc << len) | u64::from(CODE.codes[b as usize]);
        bits += len;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) | ((1 << pad) - 1)) as u8);
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum HuffmanError {
    /// The EOS symbol appeared in the string.
    Eos,
    /// The string ended in more than 7 bits, or in bits that are not EOS's prefix.
    Padding,
    /// The decoded string would pass the caller's cap.
    TooLong,
}

/// Appends the decoding of `src` to `out`, producing at most `cap` octets.
pub fn decode(src: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<(), HuffmanError> {
    let (mut code, mut len): (u32, usize) = (0, 0);
    let mut produced = 0;
    for &byte in src {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            let offset = code.wrapping_sub(CODE.first[len]);
            if offset < u32::from(CODE.count[len]) {
                let sym = CODE.by_code[CODE.start[len] as usize + offset as usize] as usize;
                if sym == EOS {
                    return Err(HuffmanError::Eos);
                }
                if produced == cap {
                    return Err(HuffmanError::TooLong);
                }
                out.push(sym as u8);
                produced += 1;
                code = 0;
                len = 0;
            } else if len == MAX_LEN {
                // Every 30-bit pattern past the last symbol is EOS's: unreachable unless
                // the table is wrong, and then an error, not a panic.
                return Err(HuffmanError::Eos);
            }
        }
    }
    // What is left must be a strict prefix of EOS: at most 7 bits, all ones.
    if len > 7 || code != (1 << len) - 1 {
        return Err(HuffmanError::Padding);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_codes_are_the_appendix_codes() {
        // (symbol, code) rows of RFC 7541 Appendix B, from every length band.
        for (sym, code) in [
            (0, 0x1ff8),
            (1, 0x7f_ffd8),
            (9, 0xff_ffea),
            (10, 0x3fff_fffc),
            (22, 0x3fff_fffe),
            (32, 0x14),
            (48, 0x0),
            (60, 0x7ffc),
            (92, 0x7_fff0),
            (97, 0x3),
            (116, 0x9),
            (127, 0xfff_fffc),
            (128, 0xf_ffe6),
            (153, 0x1f_ffdc),
            (192, 0x3ff_ffe0),
            (199, 0x1ff_ffec),
            (203, 0x7ff_ffde),
            (220, 0xfff_fffd),
            (254, 0x7ff_fff0),
            (255, 0x3ff_ffee),
            (256, 0x3fff_ffff),
        ] {
            assert_eq!(CODE.codes[sym], code, "symbol {sym}");
        }
    }

    #[test]
    fn appendix_c_strings_both_ways() {
        for (text, coded) in [
            ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
            ("no-cache", "a8eb 1064 9cbf"),
            ("custom-key", "25a8 49e9 5ba9 7d7f"),
            ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
            ("302", "6402"),
            ("private", "aec3 771a 4b"),
            (
                "Mon, 21 Oct 2013 20:13:21 GMT",
                "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
            ),
            (
                "https://www.example.com",
                "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
            ),
            ("gzip", "9bd9 ab"),
            (
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
                "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
            ),
        ] {
            let mut out = Vec::new();
            encode(text.as_bytes(), &mut out);
            assert_eq!(out, hex(coded), "{text}");
            assert_eq!(encoded_len(text.as_bytes()), out.len());
            let mut back = Vec::new();
            decode(&out, &mut back, 1 << 20).unwrap();
            assert_eq!(back, text.as_bytes());
        }
    }

    #[test]
    fn every_octet_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        encode(&all, &mut out);
        let mut back = Vec::new();
        decode(&out, &mut back, 256).unwrap();
        assert_eq!(back, all);
        assert_eq!(
            decode(&out, &mut Vec::new(), 255),
            Err(HuffmanError::TooLong)
        );
    }

    #[test]
    fn bad_padding_and_eos_are_errors() {
        // "a" is 00011: padded with ones it is 0x1f; with zeros, or a whole octet of
        // ones more, it is not.
        assert_eq!(decode(&[0x1f], &mut Vec::new(), 8), Ok(()));
        assert_eq!(
            decode(&[0x18], &mut Vec::new(), 8),
            Err(HuffmanError::Padding)
        );
        assert_eq!(
            decode(&[0x1f, 0xff], &mut Vec::new(), 8),
            Err(HuffmanError::Padding)
        );
        // EOS itself (30 ones), padded.
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut Vec::new(), 8),
            Err(HuffmanError::Eos)
        );
        assert_eq!(decode(&[], &mut Vec::new(), 8), Ok(()));
    }
}
