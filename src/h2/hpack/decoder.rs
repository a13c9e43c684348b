//! HPACK decoding of one header block (RFC 7541 sections 3 and 6), into a callback with
//! borrowed name and value, through two scratch buffers kept across blocks: no allocation
//! per field once they have grown (an insert into the dynamic table allocates its entry).
//!
//! What a peer can make it do is bounded before any work: every string's length is checked
//! against what is left of the block, integers stop at four continuation octets, Huffman
//! output is capped, and table size updates are accepted only at the start of a block and
//! only up to the size our SETTINGS allow (and required after we lowered it). The header
//! list is charged as RFC 9113 counts it (name + value + 32 per field) and its field count
//! capped; past either, decoding goes on to keep the table in step with the peer's, but
//! nothing more is handed out and the block ends in `TooLarge` (a 431 for that stream, not
//! a broken connection). Any other error leaves the table out of step: the connection ends
//! with COMPRESSION_ERROR.

use super::table::{self, Dynamic, ENTRY_OVERHEAD};
use super::{huffman, integer};

#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The block is malformed: a connection error (COMPRESSION_ERROR).
    Compression(&'static str),
    /// Decoded, but the list passes the limits: refuse the stream, keep the connection.
    TooLarge,
}

impl From<integer::IntError> for DecodeError {
    fn from(e: integer::IntError) -> DecodeError {
        DecodeError::Compression(match e {
            integer::IntError::Truncated => "an integer cut short",
            integer::IntError::TooLong => "an integer of more than four continuation octets",
        })
    }
}

impl From<huffman::HuffmanError> for DecodeError {
    fn from(e: huffman::HuffmanError) -> DecodeError {
        DecodeError::Compression(match e {
            huffman::HuffmanError::Eos => "EOS inside a Huffman string",
            huffman::HuffmanError::Padding => "a Huffman string badly padded",
            huffman::HuffmanError::TooLong => "a Huffman string longer than it can be",
        })
    }
}

/// What one header list may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// SETTINGS_MAX_HEADER_LIST_SIZE: name + value + 32 per field, summed.
    pub list_size: usize,
    pub fields: usize,
}

pub struct Decoder {
    table: Dynamic,
    /// Our SETTINGS_HEADER_TABLE_SIZE: the most a size update may ask for.
    allowed: usize,
    /// We lowered `allowed` below the table's size: the next block must say so first.
    must_update: bool,
    name: Vec<u8>,
    value: Vec<u8>,
}

/// One field's representation (RFC 7541 section 6), from its first octet.
enum Kind {
    Indexed,
    /// A literal: its index prefix in bits, and whether it is added to the table.
    Literal(u8, bool),
    SizeUpdate,
}

fn kind(b: u8) -> Kind {
    match b {
        _ if b & 0x80 != 0 => Kind::Indexed,
        _ if b & 0xc0 == 0x40 => Kind::Literal(6, true),
        _ if b & 0xe0 == 0x20 => Kind::SizeUpdate,
        // 0000xxxx without indexing, 0001xxxx never indexed: the same to a decoder.
        _ => Kind::Literal(4, false),
    }
}

/// Reads a string literal at `pos` into `out` (cleared first).
fn string(block: &[u8], pos: &mut usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let rest = &block[*pos..];
    let huffman = rest.first().is_some_and(|b| b & 0x80 != 0);
    let (len, used) = integer::decode(rest, 7)?;
    let s = rest
        .get(used..used + len as usize)
        .ok_or(DecodeError::Compression(
            "a string past the end of the block",
        ))?;
    *pos += used + s.len();
    out.clear();
    if huffman {
        // The shortest code is 5 bits: no string decodes longer than this.
        huffman::decode(s, out, s.len() * 8 / 5 + 1)?;
    } else {
        out.extend_from_slice(s);
    }
    Ok(())
}

impl Decoder {
    /// A decoder whose table may grow to `allowed` octets (our SETTINGS_HEADER_TABLE_SIZE;
    /// 4096 until we say otherwise).
    pub fn new(allowed: usize) -> Decoder {
        Decoder {
            table: Dynamic::new(allowed),
            allowed,
            must_update: false,
            name: Vec::new(),
            value: Vec::new(),
        }
    }

    /// Our SETTINGS_HEADER_TABLE_SIZE changed (once the peer acknowledged it).
    pub fn set_allowed(&mut self, allowed: usize) {
        if allowed < self.table.max() {
            self.must_update = true;
        }
        self.allowed = allowed;
    }

    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Decodes `block` (a whole HEADERS + CONTINUATION block), handing each field to
    /// `emit` while the list stays within `limits`.
    pub fn decode(
        &mut self,
        block: &[u8],
        limits: Limits,
        emit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), DecodeError> {
        let (mut pos, mut fields, mut size, mut first) = (0, 0usize, 0usize, true);
        while pos < block.len() {
            let b = block[pos];
            let k = kind(b);
            if let Kind::SizeUpdate = k {
                if !first {
                    return Err(DecodeError::Compression(
                        "a table size update after the first field",
                    ));
                }
                let (n, used) = integer::decode(&block[pos..], 5)?;
                pos += used;
                if n as usize > self.allowed {
                    return Err(DecodeError::Compression(
                        "a table size update past SETTINGS_HEADER_TABLE_SIZE",
                    ));
                }
                self.table.resize(n as usize);
                self.must_update = false;
                continue;
            }
            if self.must_update {
                return Err(DecodeError::Compression(
                    "no table size update after SETTINGS_HEADER_TABLE_SIZE was lowered",
                ));
            }
            first = false;
            let (index, insert) = match k {
                Kind::Indexed => {
                    let (i, used) = integer::decode(&block[pos..], 7)?;
                    pos += used;
                    let (n, v) = table::lookup(&self.table, i as usize)
                        .ok_or(DecodeError::Compression("an index past the tables"))?;
                    fields += 1;
                    size += n.len() + v.len() + ENTRY_OVERHEAD;
                    if fields <= limits.fields && size <= limits.list_size {
                        emit(n, v);
                    }
                    continue;
                }
                Kind::Literal(prefix, insert) => {
                    let (i, used) = integer::decode(&block[pos..], prefix)?;
                    pos += used;
                    (i as usize, insert)
                }
                Kind::SizeUpdate => unreachable!("handled above"),
            };
            if index == 0 {
                string(block, &mut pos, &mut self.name)?;
            } else {
                // Copied: the entry the name comes from may be evicted by this insert.
                let (n, _) = table::lookup(&self.table, index)
                    .ok_or(DecodeError::Compression("an index past the tables"))?;
                self.name.clear();
                self.name.extend_from_slice(n);
            }
            string(block, &mut pos, &mut self.value)?;
            fields += 1;
            size += self.name.len() + self.value.len() + ENTRY_OVERHEAD;
            if fields <= limits.fields && size <= limits.list_size {
                emit(&self.name, &self.value);
            }
            if insert {
                self.table.insert(&self.name, &self.value);
            }
        }
        if fields > limits.fields || size > limits.list_size {
            return Err(DecodeError::TooLarge);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Limits = Limits {
        list_size: 1 << 20,
        fields: 1000,
    };

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn decode(d: &mut Decoder, block: &str) -> Result<Vec<(String, String)>, DecodeError> {
        let mut got = Vec::new();
        d.decode(&hex(block), OPEN, &mut |n, v| {
            got.push((
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ))
        })?;
        Ok(got)
    }

    fn fields(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn appendix_c2_single_representations() {
        let mut d = Decoder::new(4096);
        let got = decode(
            &mut d,
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
        );
        assert_eq!(got.unwrap(), fields(&[("custom-key", "custom-header")]));
        assert_eq!(d.table_size(), 55);
        let mut d = Decoder::new(4096);
        let got = decode(&mut d, "040c 2f73 616d 706c 652f 7061 7468");
        assert_eq!(got.unwrap(), fields(&[(":path", "/sample/path")]));
        assert_eq!(d.table_size(), 0, "without indexing");
        let got = decode(&mut d, "1008 7061 7373 776f 7264 0673 6563 7265 74");
        assert_eq!(got.unwrap(), fields(&[("password", "secret")]));
        assert_eq!(d.table_size(), 0, "never indexed");
        assert_eq!(decode(&mut d, "82").unwrap(), fields(&[(":method", "GET")]));
    }

    /// C.3 and C.4: three requests on one connection, plain and Huffman-coded.
    #[test]
    fn appendix_c3_c4_requests() {
        for blocks in [
            [
                "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                "8286 84be 5808 6e6f 2d63 6163 6865",
                "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
            ],
            [
                "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                "8286 84be 5886 a8eb 1064 9cbf",
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            ],
        ] {
            let mut d = Decoder::new(4096);
            let base = [
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ];
            assert_eq!(decode(&mut d, blocks[0]).unwrap(), fields(&base));
            assert_eq!(d.table_size(), 57);
            let mut second = base.to_vec();
            second.push(("cache-control", "no-cache"));
            assert_eq!(decode(&mut d, blocks[1]).unwrap(), fields(&second));
            assert_eq!(d.table_size(), 110);
            let third = [
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ];
            assert_eq!(decode(&mut d, blocks[2]).unwrap(), fields(&third));
            assert_eq!(d.table_size(), 164);
        }
    }

    /// C.5 and C.6: three responses with a 256-octet table, so entries are evicted.
    #[test]
    fn appendix_c5_c6_responses_with_evictions() {
        for blocks in [
            [
                "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
                 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
                 6c65 2e63 6f6d",
                "4803 3330 37c1 c0bf",
                "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
                 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
                 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
                 3d31",
            ],
            [
                "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
                 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
                "4883 640e ffc1 c0bf",
                "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
                 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
                 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
            ],
        ] {
            let mut d = Decoder::new(256);
            let first = [
                (":status", "302"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("location", "https://www.example.com"),
            ];
            assert_eq!(decode(&mut d, blocks[0]).unwrap(), fields(&first));
            assert_eq!(d.table_size(), 222);
            let mut second = first;
            second[0] = (":status", "307");
            assert_eq!(decode(&mut d, blocks[1]).unwrap(), fields(&second));
            assert_eq!(d.table_size(), 222);
            let third = [
                (":status", "200"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                ("location", "https://www.example.com"),
                ("content-encoding", "gzip"),
                (
                    "set-cookie",
                    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
                ),
            ];
            assert_eq!(decode(&mut d, blocks[2]).unwrap(), fields(&third));
            assert_eq!(d.table_size(), 215);
        }
    }

    #[test]
    fn malformed_blocks_are_compression_errors() {
        let bad = |block: &str| {
            let e = decode(&mut Decoder::new(4096), block).unwrap_err();
            assert!(matches!(e, DecodeError::Compression(_)), "{block}: {e:?}");
        };
        bad("80"); // index 0
        bad("be"); // index 62, the dynamic table empty
        bad("3f"); // a size update cut short
        bad("3fe2 1f"); // a size update to 4097, past SETTINGS_HEADER_TABLE_SIZE
        bad("82 20"); // a size update after a field
        bad("400a 6375"); // a name longer than the block
        bad("0085 ffff ffff ff 00"); // a Huffman name that is EOS
        bad("7f ffff ffff 0f"); // an index of five continuation octets
    }

    #[test]
    fn size_updates_start_a_block_and_are_required_after_settings_shrink() {
        let mut d = Decoder::new(4096);
        decode(&mut d, "4003 6162 6303 6465 66").unwrap(); // abc: def, indexed
        assert_eq!(d.table_size(), 38);
        d.set_allowed(0);
        assert!(matches!(
            decode(&mut d, "82"),
            Err(DecodeError::Compression(_))
        ));
        assert_eq!(
            decode(&mut d, "20 82").unwrap(),
            fields(&[(":method", "GET")])
        );
        assert_eq!(d.table_size(), 0);
        assert!(
            matches!(decode(&mut d, "21"), Err(DecodeError::Compression(_))),
            "past 0"
        );
    }

    #[test]
    fn lists_past_the_limits_are_refused_but_keep_the_table_in_step() {
        // An HPACK bomb: one 4000-octet entry referenced 100 times in a 110-octet block.
        let mut block = hex("4001 617f a11e"); // a: 4000 octets, indexed
        block.extend(std::iter::repeat_n(b'x', 4000));
        let mut d = Decoder::new(4096);
        let limits = Limits {
            list_size: 16 << 10,
            fields: 100,
        };
        let mut seen = 0;
        assert_eq!(d.decode(&block, limits, &mut |_, _| seen += 1), Ok(()));
        let bomb = vec![0xbe; 100];
        let mut emitted = 0;
        let r = d.decode(&bomb, limits, &mut |_, _| emitted += 1);
        assert_eq!(r, Err(DecodeError::TooLarge));
        assert!(emitted * 4033 <= 16 << 10, "{emitted} fields handed out");
        // The connection's table is intact: the next block decodes.
        assert_eq!(d.decode(&hex("be"), limits, &mut |_, _| {}), Ok(()));
        let many = vec![0x82; 101];
        assert_eq!(
            d.decode(&many, limits, &mut |_, _| {}),
            Err(DecodeError::TooLarge)
        );
    }
}
