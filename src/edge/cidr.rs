//! Address ranges (`127.0.0.0/8`, `::1`, `10.0.0.5`) and a route's `allow`/`deny`.
//! IPv4 is kept IPv4-mapped in 128 bits, so `127.0.0.0/8` also matches `::ffff:127.0.0.1`
//! (a dual-stack listener's view of an IPv4 client).

use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: u128,
    /// Prefix length over the 128-bit (mapped) form.
    bits: u8,
}

fn mapped(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from_be_bytes(a.to_ipv6_mapped().octets()),
        IpAddr::V6(a) => u128::from_be_bytes(a.octets()),
    }
}

fn mask(bits: u8) -> u128 {
    if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    }
}

impl Cidr {
    /// `ADDR` or `ADDR/LEN`; `all` is every address (nginx's spelling).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        if s == "all" {
            return Ok(Cidr { net: 0, bits: 0 });
        }
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| {
            format!(
                "`{s}` is not an address or range (write e.g. \"10.0.0.0/8\", \"::1\" or \"all\")"
            )
        })?;
        let (max, base) = match ip {
            IpAddr::V4(_) => (32u8, 96u8),
            IpAddr::V6(_) => (128, 0),
        };
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("`{s}`: the prefix length must be 0 to {max}")),
            },
        };
        let bits = base + len;
        let net = mapped(ip);
        if net & !mask(bits) != 0 {
            return Err(format!(
                "`{s}` has bits set past its prefix length; write the network address"
            ));
        }
        Ok(Cidr { net, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        mapped(ip) & mask(self.bits) == self.net
    }
}

/// A list of ranges; an address is in it if any range holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CidrSet(pub Vec<Cidr>);

impl CidrSet {
    pub fn parse(list: &[String]) -> Result<CidrSet, String> {
        list.iter()
            .map(|s| Cidr::parse(s))
            .collect::<Result<_, _>>()
            .map(CidrSet)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A route's `deny` and `allow`, read as nginx's rules in that order, the first match
/// winning: a denied address is refused, an allowed one let in, and an address neither
/// names is let in only when there is no `allow` list (a list of who may come in means
/// no one else).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    pub deny: CidrSet,
    pub allow: CidrSet,
}

impl Access {
    pub fn permits(&self, ip: IpAddr) -> bool {
        if self.deny.contains(ip) {
            return false;
        }
        self.allow.is_empty() || self.allow.contains(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_hold_their_addresses_in_both_families() {
        let c = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(c.contains(ip("127.9.9.9")));
        assert!(c.contains(ip("::ffff:127.0.0.1")));
        assert!(!c.contains(ip("128.0.0.1")));
        assert!(!c.contains(ip("::1")));
        let one = Cidr::parse("::1").unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        let host = Cidr::parse("10.0.0.5").unwrap();
        assert!(host.contains(ip("10.0.0.5")) && !host.contains(ip("10.0.0.6")));
        let all = Cidr::parse("all").unwrap();
        assert!(all.contains(ip("1.2.3.4")) && all.contains(ip("2001:db8::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("fe80::/10").unwrap().contains(ip("fe80::1")));
    }

    #[test]
    fn bad_ranges_say_why() {
        for bad in ["10.0.0.1/8", "10.0.0.0/33", "::/129", "x", "10.0.0.0/", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deny_then_allow_then_only_the_allowed() {
        let a = Access {
            deny: CidrSet::parse(&["10.0.0.5".into()]).unwrap(),
            allow: CidrSet::parse(&["10.0.0.0/8".into()]).unwrap(),
        };
        assert!(!a.permits(ip("10.0.0.5")));
        assert!(a.permits(ip("10.1.2.3")));
        assert!(
            !a.permits(ip("192.168.0.1")),
            "an allow list lets in no one else"
        );
        let deny_only = Access {
            deny: CidrSet::parse(&["192.168.0.0/16".into()]).unwrap(),
            allow: CidrSet::default(),
        };
        assert!(!deny_only.permits(ip("192.168.1.1")));
        assert!(deny_only.permits(ip("10.0.0.1")));
        assert!(Access::default().permits(ip("1.1.1.1")));
    }
}
