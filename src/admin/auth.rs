//! Bearer-token check in constant time: how long it takes depends on the configured token's
//! length only, never on how much of a guess matched.

use subtle::{Choice, ConstantTimeEq};

/// True if `header` (the Authorization value) is exactly `Bearer <token>`.
pub fn bearer_ok(header: Option<&[u8]>, token: &[u8]) -> bool {
    let given = header.unwrap_or(b"");
    let given = given.strip_prefix(b"Bearer ").unwrap_or(b"");
    // Walk the whole expected token whatever was given; missing bytes compare as 0 and the
    // length comparison is folded in with the same constant-time AND.
    let mut ok: Choice = (given.len() as u64).ct_eq(&(token.len() as u64));
    for (i, t) in token.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(0);
        ok &= g.ct_eq(t);
    }
    bool::from(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_only() {
        let t = b"0123456789abcdef";
        assert!(bearer_ok(Some(b"Bearer 0123456789abcdef"), t));
        assert!(!bearer_ok(Some(b"Bearer 0123456789abcdeF"), t));
        assert!(!bearer_ok(Some(b"Bearer 0123456789abcde"), t));
        assert!(!bearer_ok(Some(b"Bearer 0123456789abcdef0"), t));
        assert!(!bearer_ok(Some(b"bearer 0123456789abcdef"), t));
        assert!(!bearer_ok(Some(b"0123456789abcdef"), t));
        assert!(!bearer_ok(None, t));
        assert!(!bearer_ok(Some(b"Bearer "), t));
    }
}
