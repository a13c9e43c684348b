//! Accept-Encoding (RFC 9110 12.5.3): the coding a client gets among those a route
//! offers. The highest q-value wins, a tie goes to the route's order, `*` stands for
//! codings the client did not name, `q=0` refuses, `x-gzip` is gzip. Nothing acceptable
//! means identity (uringd never answers 406 for it). Fuzzed (`fuzz_targets/edge_rules.rs`).

use super::Codec;

/// A q-value in thousandths: `1`, `0.5`, `0.125`; None if malformed.
fn qvalue(v: &[u8]) -> Option<u16> {
    match v {
        [b'1'] => Some(1000),
        [b'1', b'.', rest @ ..] if rest.len() <= 3 && rest.iter().all(|&b| b == b'0') => Some(1000),
        [b'0'] => Some(0),
        [b'0', b'.', rest @ ..] if rest.len() <= 3 && rest.iter().all(u8::is_ascii_digit) => {
            let mut q = 0u16;
            for i in 0..3 {
                q = q * 10 + rest.get(i).map_or(0, |d| u16::from(d - b'0'));
            }
            Some(q)
        }
        _ => None,
    }
}

/// Each element's coding and weight, in order; malformed elements are skipped.
fn elements(header: &[u8]) -> impl Iterator<Item = (&[u8], u16)> {
    header.split(|&b| b == b',').filter_map(|e| {
        let mut parts = e.split(|&b| b == b';');
        let coding = parts.next()?.trim_ascii();
        if coding.is_empty() {
            return None;
        }
        let mut q = 1000;
        for p in parts {
            let p = p.trim_ascii();
            let (name, value) = match memchr::memchr(b'=', p) {
                Some(i) => (p[..i].trim_ascii(), p[i + 1..].trim_ascii()),
                None => (p, &b""[..]),
            };
            if name.eq_ignore_ascii_case(b"q") {
                q = qvalue(value)?;
            }
        }
        Some((coding, q))
    })
}

fn names(coding: &[u8], c: Codec) -> bool {
    coding.eq_ignore_ascii_case(c.token().as_bytes())
        || (c == Codec::Gzip && coding.eq_ignore_ascii_case(b"x-gzip"))
}

/// The coding to answer with, among `offered` (the route's order is its preference).
pub fn choose(accept_encoding: Option<&[u8]>, offered: &[Codec]) -> Option<Codec> {
    let header = accept_encoding?;
    let mut best: Option<(Codec, u16)> = None;
    for &c in offered {
        let mut named = None;
        let mut star = None;
        for (coding, q) in elements(header) {
            if names(coding, c) {
                // Repeated: the most favourable reading; it is the client's own list.
                named = Some(named.map_or(q, |n: u16| n.max(q)));
            } else if coding == b"*" {
                star = Some(q);
            }
        }
        let q = named.or(star).unwrap_or(0);
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((c, q));
        }
    }
    best.map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Codec::*;

    const ALL: [Codec; 3] = [Zstd, Br, Gzip];

    fn pick(h: &str) -> Option<Codec> {
        choose(Some(h.as_bytes()), &ALL)
    }

    #[test]
    fn the_route_order_breaks_ties_and_q_values_win() {
        assert_eq!(pick("gzip, deflate, br, zstd"), Some(Zstd));
        assert_eq!(pick("gzip, deflate, br"), Some(Br));
        assert_eq!(pick("gzip"), Some(Gzip));
        assert_eq!(pick("x-gzip"), Some(Gzip));
        assert_eq!(pick("br;q=0.5, gzip;q=0.8"), Some(Gzip));
        assert_eq!(pick("zstd;q=0.1, br;q=1.0, gzip"), Some(Br));
        assert_eq!(pick("ZSTD ; Q = 0.9 , GZIP;q=0.2"), Some(Zstd));
        assert_eq!(choose(Some(b"gzip, br"), &[Gzip, Br]), Some(Gzip));
    }

    #[test]
    fn refusals_stars_and_nothing_acceptable() {
        assert_eq!(pick("zstd;q=0, br;q=0, gzip;q=0"), None);
        assert_eq!(pick("identity"), None);
        assert_eq!(pick("*"), Some(Zstd));
        assert_eq!(pick("*;q=0.5, zstd;q=0"), Some(Br));
        assert_eq!(pick("*;q=0"), None);
        assert_eq!(pick(""), None);
        assert_eq!(choose(None, &ALL), None);
        assert_eq!(pick("deflate, compress"), None);
        assert_eq!(choose(Some(b"gzip"), &[]), None);
    }

    #[test]
    fn malformed_elements_are_skipped() {
        assert_eq!(pick("zstd;q=2, gzip"), Some(Gzip));
        assert_eq!(pick("zstd;q=0.1234, br;q=x, gzip;q=0.001"), Some(Gzip));
        assert_eq!(pick(",,; ,gzip;level=9"), Some(Gzip));
        assert_eq!(qvalue(b"0.5"), Some(500));
        assert_eq!(qvalue(b"0.05"), Some(50));
        assert_eq!(qvalue(b"1.000"), Some(1000));
        assert_eq!(qvalue(b"1.001"), None);
        assert_eq!(qvalue(b".5"), None);
    }
}
