//! The client's real address behind trusted proxies, from X-Forwarded-For: the rightmost
//! address no trusted proxy accounts for (nginx's `real_ip_recursive on`). Whatever a
//! client writes to the left of that is its own claim and is never believed.

use std::net::IpAddr;

use super::cidr::CidrSet;

/// One X-Forwarded-For element as an address: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]`,
/// and with a port (`1.2.3.4:5678`, `[::1]:80`) as some balancers write it.
fn element(e: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(e.trim_ascii()).ok()?;
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (a, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    a.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The client address for a request from `peer` whose X-Forwarded-For fields (in order)
/// are `fields`. An untrusted peer is the client, whatever it sent. From a trusted peer,
/// the list is read right to left past trusted addresses; the first untrusted one is the
/// client. A malformed element ends the walk at the last address that was vouched for.
pub fn from_forwarded_for<'a, I>(fields: I, peer: IpAddr, trusted: &CidrSet) -> IpAddr
where
    I: DoubleEndedIterator<Item = &'a [u8]>,
{
    if !trusted.contains(peer) {
        return peer;
    }
    let mut client = peer;
    for field in fields.rev() {
        for e in field.rsplit(|&b| b == b',') {
            if e.trim_ascii().is_empty() {
                continue;
            }
            let Some(ip) = element(e) else {
                return client;
            };
            client = ip;
            if !trusted.contains(ip) {
                return ip;
            }
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn walk(fields: &[&str], peer: &str) -> IpAddr {
        let trusted = CidrSet::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        from_forwarded_for(fields.iter().map(|f| f.as_bytes()), ip(peer), &trusted)
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        assert_eq!(walk(&["1.1.1.1"], "203.0.113.9"), ip("203.0.113.9"));
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_client() {
        assert_eq!(walk(&["6.6.6.6, 1.1.1.1"], "10.0.0.1"), ip("1.1.1.1"));
        assert_eq!(
            walk(&["6.6.6.6, 1.1.1.1, 10.0.0.7"], "10.0.0.1"),
            ip("1.1.1.1"),
            "a trusted hop in the list is passed over"
        );
        assert_eq!(
            walk(&["6.6.6.6", "1.1.1.1,10.0.0.2"], "10.0.0.1"),
            ip("1.1.1.1"),
            "fields are one list"
        );
        assert_eq!(walk(&["10.0.0.3, 10.0.0.2"], "::1"), ip("10.0.0.3"));
        assert_eq!(walk(&[], "10.0.0.1"), ip("10.0.0.1"));
        assert_eq!(walk(&["[2001:db8::1]:443"], "10.0.0.1"), ip("2001:db8::1"));
        assert_eq!(walk(&["1.2.3.4:5678"], "10.0.0.1"), ip("1.2.3.4"));
        assert_eq!(walk(&[" 1.1.1.1 ,, "], "10.0.0.1"), ip("1.1.1.1"));
    }

    #[test]
    fn garbage_stops_at_the_last_vouched_address() {
        assert_eq!(walk(&["1.1.1.1, junk"], "10.0.0.1"), ip("10.0.0.1"));
        assert_eq!(walk(&["junk, 10.0.0.9"], "10.0.0.1"), ip("10.0.0.9"));
        assert_eq!(walk(&["unknown"], "10.0.0.1"), ip("10.0.0.1"));
    }
}
