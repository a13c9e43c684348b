//! HPACK encoding of our responses' header lists. Stateless on purpose: it uses the static
//! table (a full match is one octet, `:status: 200` is 0x88) and literals without indexing
//! (never indexed for fields a peer's intermediaries must not keep: Set-Cookie,
//! Authorization), and never inserts into the dynamic table. So the table the peer keeps
//! for us stays empty, no entry of one response can be used to guess another's (the
//! CRIME-style attacks on compression of secrets), and only a peer lowering
//! SETTINGS_HEADER_TABLE_SIZE needs the one size update this keeps track of. Strings are
//! Huffman-coded when that is shorter.

use super::{huffman, integer, table};

/// The dynamic table size every connection starts with (RFC 9113 section 6.5.2).
pub const DEFAULT_TABLE_SIZE: u32 = 4096;

pub struct Encoder {
    /// The table size the peer's decoder believes in.
    size: u32,
    /// A size update owed at the start of the next block.
    pending: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder {
            size: DEFAULT_TABLE_SIZE,
            pending: false,
        }
    }
}

/// Fields whose values must never be indexed by anyone on the way (RFC 7541 section 7.1.3).
fn sensitive(name: &[u8]) -> bool {
    matches!(
        name,
        b"set-cookie" | b"authorization" | b"proxy-authorization" | b"cookie"
    )
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    let coded = huffman::encoded_len(s);
    if coded < s.len() {
        integer::encode(coded as u32, 7, 0x80, out);
        huffman::encode(s, out);
    } else {
        integer::encode(s.len() as u32, 7, 0, out);
        out.extend_from_slice(s);
    }
}

impl Encoder {
    /// The peer's SETTINGS_HEADER_TABLE_SIZE: a smaller one must be acknowledged by a size
    /// update before the next field we send.
    pub fn set_peer_max(&mut self, max: u32) {
        if max < self.size {
            self.size = max;
            self.pending = true;
        }
    }

    /// Starts a header block: the size update owed, if any.
    pub fn begin(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending) {
            integer::encode(self.size, 5, 0x20, out);
        }
    }

    /// Appends one field. `name` must already be lowercase (HTTP/2 field names are).
    pub fn field(&mut self, name: &[u8], value: &[u8], out: &mut Vec<u8>) {
        let secret = sensitive(name);
        match table::find_static(name, value) {
            Some((i, true)) if !secret => integer::encode(i as u32, 7, 0x80, out),
            Some((i, _)) => {
                integer::encode(i as u32, 4, if secret { 0x10 } else { 0 }, out);
                string(value, out);
            }
            None => {
                out.push(if secret { 0x10 } else { 0 });
                string(name, out);
                string(value, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::decoder::{Decoder, Limits};
    use super::*;

    fn round_trip(e: &mut Encoder, d: &mut Decoder, list: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        e.begin(&mut out);
        for (n, v) in list {
            e.field(n.as_bytes(), v.as_bytes(), &mut out);
        }
        let mut got = Vec::new();
        let limits = Limits {
            list_size: 1 << 20,
            fields: 100,
        };
        d.decode(&out, limits, &mut |n, v| got.push((n.to_vec(), v.to_vec())))
            .unwrap();
        let want: Vec<_> = list
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(got, want);
        out
    }

    #[test]
    fn static_matches_indexed_names_and_literals() {
        let (mut e, mut d) = (Encoder::default(), Decoder::new(4096));
        let out = round_trip(&mut e, &mut d, &[(":status", "200")]);
        assert_eq!(out, [0x88]);
        // content-type (31) with a literal value: 0x0f 0x10 (31 - 15) then the string.
        let out = round_trip(&mut e, &mut d, &[("content-type", "text/html")]);
        assert_eq!(&out[..2], [0x0f, 0x10]);
        round_trip(
            &mut e,
            &mut d,
            &[
                (":status", "404"),
                ("x-request-id", "6f1c2a"),
                ("server", "uringd"),
                ("content-length", "0"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
            ],
        );
        assert_eq!(d.table_size(), 0, "nothing is ever indexed");
    }

    #[test]
    fn secrets_are_never_indexed() {
        let (mut e, mut d) = (Encoder::default(), Decoder::new(4096));
        let out = round_trip(&mut e, &mut d, &[("set-cookie", "a=1")]);
        assert_eq!(out[0], 0x1f, "never indexed, name 55 (15 + 40)");
        let out = round_trip(&mut e, &mut d, &[("authorization", "")]);
        assert_eq!(out[0] & 0xf0, 0x10, "not even the full static match");
    }

    #[test]
    fn a_lowered_table_size_is_announced_once() {
        let (mut e, mut d) = (Encoder::default(), Decoder::new(4096));
        e.set_peer_max(8192);
        let out = round_trip(&mut e, &mut d, &[(":status", "200")]);
        assert_eq!(out, [0x88], "larger: nothing to say");
        e.set_peer_max(0);
        let out = round_trip(&mut e, &mut d, &[(":status", "200")]);
        assert_eq!(out, [0x20, 0x88]);
        let out = round_trip(&mut e, &mut d, &[(":status", "200")]);
        assert_eq!(out, [0x88]);
    }
}
