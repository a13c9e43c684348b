//! Which certificate a connection gets: its SNI name against every certificate's subject
//! alternative names, exact names before wildcards, the first certificate when nothing
//! matches (or the client sent no name). Knows nothing of rustls or files.

use std::collections::HashMap;

/// Names to certificate indexes. Built once per config; a lookup allocates only for a name
/// with upper-case letters (SNI is case-insensitive, and clients send lower case).
#[derive(Debug, Default)]
pub struct SniTable {
    exact: HashMap<String, usize>,
    /// `*.a.test` is filed as `a.test`: it covers exactly one more label.
    wildcard: HashMap<String, usize>,
}

impl SniTable {
    /// `names[i]`: the DNS names certificate `i` covers. A name two certificates cover goes
    /// to the first.
    pub fn new(names: &[Vec<String>]) -> SniTable {
        let mut t = SniTable::default();
        for (i, list) in names.iter().enumerate() {
            for n in list {
                let n = n.to_ascii_lowercase();
                match n.strip_prefix("*.") {
                    Some(base) => t.wildcard.entry(base.to_string()).or_insert(i),
                    None => t.exact.entry(n).or_insert(i),
                };
            }
        }
        t
    }

    /// The certificate for `sni` (0, the default, when none covers it).
    pub fn pick(&self, sni: Option<&str>) -> usize {
        let Some(name) = sni else { return 0 };
        let lower;
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = name.to_ascii_lowercase();
            lower.as_str()
        } else {
            name
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if let Some(&i) = self.exact.get(name) {
            return i;
        }
        match name.split_once('.') {
            Some((label, base)) if !label.is_empty() => {
                self.wildcard.get(base).copied().unwrap_or(0)
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter()
            .map(|l| l.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn exact_then_wildcard_then_default() {
        let t = SniTable::new(&names(&[
            &["default.test"],
            &["a.test", "*.a.test"],
            &["www.a.test"],
            &["*.b.test", "A.test"],
        ]));
        assert_eq!(t.pick(None), 0);
        assert_eq!(t.pick(Some("default.test")), 0);
        assert_eq!(
            t.pick(Some("a.test")),
            1,
            "the first certificate naming it wins"
        );
        assert_eq!(
            t.pick(Some("www.a.test")),
            2,
            "an exact name beats a wildcard"
        );
        assert_eq!(t.pick(Some("img.a.test")), 1);
        assert_eq!(t.pick(Some("IMG.A.Test")), 1, "case-insensitive");
        assert_eq!(
            t.pick(Some("img.a.test.")),
            1,
            "a trailing dot is the same name"
        );
        assert_eq!(
            t.pick(Some("x.img.a.test")),
            0,
            "a wildcard covers one label only"
        );
        assert_eq!(t.pick(Some("b.test")), 0, "*.b.test does not cover b.test");
        assert_eq!(t.pick(Some("x.b.test")), 3);
        assert_eq!(t.pick(Some(".a.test")), 0, "an empty label matches nothing");
        assert_eq!(t.pick(Some("nowhere.test")), 0);
        assert_eq!(t.pick(Some("")), 0);
    }
}
