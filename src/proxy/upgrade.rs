//! Which `Upgrade` requests are tunnelled (RFC 9110 7.8).
//!
//! A tunnel hands the connection to the backend for good: whatever the client sends next is
//! never parsed or routed by uringd again. So only protocols a route allows are offered to
//! the backend (websocket by default; h2c never, see config), and a 101 is followed only
//! when it switches to one of them.

use super::hop::{Field, classify, list_elements};
use crate::http::parser::HeaderSpan;

/// `token` names `allowed` (both as `name` or `name/version`, compared case-insensitively):
/// an allowed entry without a version admits every version of its protocol.
fn matches(token: &[u8], allowed: &[u8]) -> bool {
    if token.eq_ignore_ascii_case(allowed) {
        return true;
    }
    let name = token.split(|&b| b == b'/').next().unwrap_or(token);
    !allowed.contains(&b'/') && name.eq_ignore_ascii_case(allowed)
}

fn allowed(token: &[u8], list: &[Vec<u8>]) -> bool {
    list.iter().any(|a| matches(token, a))
}

/// The client's `Upgrade` fields offer at least one protocol and only allowed ones.
/// Anything else is forwarded as a plain request, its Upgrade dropped.
pub fn offered_allowed(buf: &[u8], headers: &[HeaderSpan], list: &[Vec<u8>]) -> bool {
    let mut any = false;
    for h in headers
        .iter()
        .filter(|h| classify(h.name.get(buf)) == Field::Upgrade)
    {
        for token in list_elements(h.value.get(buf)) {
            if !allowed(token, list) {
                return false;
            }
            any = true;
        }
    }
    any
}

/// A 101's `Upgrade` value switches to exactly one allowed protocol.
pub fn switch_allowed(value: Option<&[u8]>, list: &[Vec<u8>]) -> bool {
    let Some(v) = value else { return false };
    let mut tokens = list_elements(v);
    matches!((tokens.next(), tokens.next()), (Some(t), None) if allowed(t, list))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parser::{Limits, parse_head};

    fn offered(upgrade_lines: &str, list: &[&str]) -> bool {
        let req = format!("GET / HTTP/1.1\r\nHost: a\r\n{upgrade_lines}\r\n");
        let mut hs = Vec::new();
        parse_head(req.as_bytes(), &Limits::default(), &mut hs).unwrap();
        let list: Vec<Vec<u8>> = list.iter().map(|s| s.as_bytes().to_vec()).collect();
        offered_allowed(req.as_bytes(), &hs, &list)
    }

    #[test]
    fn only_allowed_protocols_are_offered() {
        let ws = ["websocket"];
        assert!(offered("Upgrade: websocket\r\n", &ws));
        assert!(offered("Upgrade: WebSocket\r\n", &ws));
        assert!(offered("upgrade: websocket/13\r\n", &ws));
        assert!(!offered("Upgrade: h2c\r\n", &ws));
        assert!(!offered("Upgrade: websocket, h2c\r\n", &ws));
        assert!(!offered("Upgrade: websocket\r\nUpgrade: h2c\r\n", &ws));
        assert!(!offered("Upgrade: \r\n", &ws));
        assert!(!offered("", &ws));
        assert!(!offered("Upgrade: websocket\r\n", &[]));
        assert!(offered("Upgrade: foo/2\r\n", &["foo/2"]));
        assert!(!offered("Upgrade: foo/3\r\n", &["foo/2"]));
    }

    #[test]
    fn a_101_must_switch_to_one_allowed_protocol() {
        let ws = [b"websocket".to_vec()];
        assert!(switch_allowed(Some(b"websocket"), &ws));
        assert!(switch_allowed(Some(b" WebSocket "), &ws));
        assert!(!switch_allowed(Some(b"h2c"), &ws));
        assert!(!switch_allowed(Some(b"websocket, h2c"), &ws));
        assert!(!switch_allowed(Some(b""), &ws));
        assert!(!switch_allowed(None, &ws));
    }
}
