//! Which site (`[[vhost]]`) a Host names: case-insensitive, port stripped, one trailing dot
//! ignored, exact names before wildcards (`*.a.test`, the longest suffix first), then the
//! default site. Pure: no sockets, fuzzed (`fuzz/fuzz_targets/host_match.rs`).

use std::collections::HashMap;

/// The longest host name looked up (DNS names are at most 253 bytes; a longer Host names
/// no site).
pub const MAX_HOST: usize = 255;

/// A site's number (its place in the config's `[[vhost]]` list).
pub type SiteId = u16;

#[derive(Clone, Debug, Default)]
pub struct HostTable {
    /// Exact names, lowercase, without a trailing dot.
    exact: HashMap<Box<[u8]>, SiteId>,
    /// Wildcard suffixes with their leading dot (`*.a.test` is kept as `.a.test`).
    wild: HashMap<Box<[u8]>, SiteId>,
    default: Option<SiteId>,
}

/// Why a name cannot be a site's name (the config error says which).
#[derive(Debug, PartialEq, Eq)]
pub enum NameError {
    Empty,
    /// Characters outside letters, digits, '-', '.', or a '*' anywhere but a leading `*.`.
    Invalid,
    TooLong,
}

/// A configured name as the table keeps it: lowercase, no trailing dot. `*.a.test` stays
/// a wildcard; IP literals (`127.0.0.1`, `[::1]`) are names like any other.
pub fn config_name(name: &str) -> Result<String, NameError> {
    let n = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let body = n.strip_prefix("*.").unwrap_or(&n);
    if body.is_empty() {
        return Err(NameError::Empty);
    }
    if n.len() > MAX_HOST {
        return Err(NameError::TooLong);
    }
    let ip6 = body.starts_with('[') && body.ends_with(']');
    let ok = body.bytes().all(|b| {
        b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || (ip6 && b"[]:".contains(&b))
    });
    if !ok || body.starts_with('.') || body.ends_with('.') || body.contains("..") {
        return Err(NameError::Invalid);
    }
    Ok(n)
}

/// The host part of a Host value or authority: the port cut off, one trailing dot
/// dropped, and any userinfo refused (`a@b` names no site). Not lowercased.
pub fn host_part(value: &[u8]) -> Option<&[u8]> {
    if value.contains(&b'@') {
        return None;
    }
    let host = if value.first() == Some(&b'[') {
        let end = memchr::memchr(b']', value)?;
        match &value[end + 1..] {
            [] => &value[..=end],
            [b':', port @ ..] if port.iter().all(u8::is_ascii_digit) => &value[..=end],
            _ => return None,
        }
    } else {
        match memchr::memchr(b':', value) {
            Some(i) if value[i + 1..].iter().all(u8::is_ascii_digit) => &value[..i],
            Some(_) => return None,
            None => value,
        }
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    (!host.is_empty() && host.len() <= MAX_HOST).then_some(host)
}

impl HostTable {
    /// Adds a name (from `config_name`); false if another site has it already.
    pub fn add(&mut self, name: &str, site: SiteId) -> bool {
        let (map, key) = match name.strip_prefix('*') {
            Some(suffix) => (&mut self.wild, suffix),
            None => (&mut self.exact, name),
        };
        map.insert(key.as_bytes().into(), site).is_none()
    }

    pub fn set_default(&mut self, site: SiteId) {
        self.default = Some(site);
    }

    pub fn default_site(&self) -> Option<SiteId> {
        self.default
    }

    /// The site for a request's Host (or absolute-form authority); None: no site serves
    /// it (421). A request without any falls to the default site.
    pub fn lookup(&self, host: Option<&[u8]>) -> Option<SiteId> {
        let Some(host) = host.filter(|h| !h.is_empty()) else {
            return self.default;
        };
        let Some(host) = host_part(host) else {
            return self.default;
        };
        let mut lower = [0u8; MAX_HOST];
        let lower = &mut lower[..host.len()];
        lower.copy_from_slice(host);
        lower.make_ascii_lowercase();
        if let Some(&s) = self.exact.get(&*lower) {
            return Some(s);
        }
        if !self.wild.is_empty() {
            // Each dot starts a suffix, the longest first: `*.b.a.test` before `*.a.test`.
            for i in memchr::memchr_iter(b'.', lower) {
                if let Some(&s) = self.wild.get(&lower[i..]) {
                    return Some(s);
                }
            }
        }
        self.default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> HostTable {
        let mut t = HostTable::default();
        for (n, s) in [
            ("a.test", 0),
            ("*.a.test", 1),
            ("*.x.a.test", 2),
            ("b.test", 3),
            ("127.0.0.1", 4),
            ("[::1]", 5),
        ] {
            assert!(t.add(&config_name(n).unwrap(), s));
        }
        t
    }

    #[test]
    fn exact_before_wildcard_and_the_longest_wildcard_first() {
        let t = table();
        let l = |h: &str| t.lookup(Some(h.as_bytes()));
        assert_eq!(l("a.test"), Some(0));
        assert_eq!(l("A.TeSt:8080"), Some(0));
        assert_eq!(l("a.test."), Some(0), "one trailing dot is the same name");
        assert_eq!(l("a.test.:443"), Some(0));
        assert_eq!(l("www.a.test"), Some(1));
        assert_eq!(l("deep.www.a.test"), Some(1));
        assert_eq!(l("y.x.a.test"), Some(2));
        assert_eq!(l("x.a.test"), Some(1), "*.x.a.test does not match x.a.test");
        assert_eq!(l("b.test"), Some(3));
        assert_eq!(l("127.0.0.1:80"), Some(4));
        assert_eq!(l("[::1]:8080"), Some(5));
        assert_eq!(l("nota.test"), None);
        assert_eq!(l("a.test.."), None);
        assert_eq!(l(".a.test"), Some(1), "an empty label under a wildcard");
        assert_eq!(t.lookup(None), None);
    }

    #[test]
    fn the_default_takes_what_matches_nothing_and_requests_without_a_host() {
        let mut t = table();
        t.set_default(3);
        assert_eq!(t.lookup(Some(b"c.test")), Some(3));
        assert_eq!(t.lookup(None), Some(3));
        assert_eq!(t.lookup(Some(b"")), Some(3));
        assert_eq!(
            t.lookup(Some(b"a.test:x")),
            Some(3),
            "a bad port names no site"
        );
    }

    #[test]
    fn host_parts() {
        assert_eq!(host_part(b"a.test:80"), Some(&b"a.test"[..]));
        assert_eq!(host_part(b"a.test:"), Some(&b"a.test"[..]));
        assert_eq!(host_part(b"[::1]"), Some(&b"[::1]"[..]));
        assert_eq!(host_part(b"[::1]x"), None);
        assert_eq!(host_part(b"u@a.test"), None);
        assert_eq!(host_part(b":80"), None);
        assert_eq!(host_part(b"."), None);
        assert_eq!(host_part(&[b'a'; 300]), None);
    }

    #[test]
    fn config_names() {
        assert_eq!(config_name("A.Test.").unwrap(), "a.test");
        assert_eq!(config_name("*.A.test").unwrap(), "*.a.test");
        assert_eq!(config_name("*."), Err(NameError::Invalid));
        assert_eq!(config_name("a.test.."), Err(NameError::Invalid));
        assert_eq!(config_name(""), Err(NameError::Empty));
        assert_eq!(config_name("a.*.test"), Err(NameError::Invalid));
        assert_eq!(config_name("a b"), Err(NameError::Invalid));
        assert_eq!(config_name("a..b"), Err(NameError::Invalid));
        assert_eq!(config_name("a:80"), Err(NameError::Invalid));
        assert!(config_name("[::1]").is_ok());
        let mut t = HostTable::default();
        assert!(t.add("a.test", 0));
        assert!(!t.add("a.test", 1), "a name is one site's");
    }
}
