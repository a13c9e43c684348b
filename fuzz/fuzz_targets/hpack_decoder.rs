//! The HPACK decoder (`h2::hpack`): never panics on any block; what it hands out stays
//! within the header list limits (name + value + 32 per field, and the field count); the
//! table never outgrows what we allow; and what it decoded, encoded again by our encoder,
//! decodes to the same fields. The input is cut in two blocks on one connection, so the
//! second sees the table the first left.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uringd::h2::hpack::{Decoder, Encoder, Limits};

const LIMITS: Limits = Limits {
    list_size: 4096,
    fields: 64,
};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let cut = (cut as usize).min(rest.len());
    let mut d = Decoder::new(1024);
    for block in [&rest[..cut], &rest[cut..]] {
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let r = d.decode(block, LIMITS, &mut |n, v| fields.push((n.to_vec(), v.to_vec())));
        let charged: usize = fields.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
        assert!(charged <= LIMITS.list_size && fields.len() <= LIMITS.fields);
        assert!(d.table_size() <= 1024);
        if r.is_err() {
            return;
        }
        let mut e = Encoder::default();
        let mut out = Vec::new();
        e.begin(&mut out);
        for (n, v) in &fields {
            e.field(n, v, &mut out);
        }
        let mut again = Vec::new();
        Decoder::new(4096)
            .decode(&out, LIMITS, &mut |n, v| again.push((n.to_vec(), v.to_vec())))
            .expect("our own encoding decodes");
        assert_eq!(again, fields);
    }
});
