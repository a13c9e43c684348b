//! The edge's decisions on client input: which site a Host names (`edge::host`), the
//! client address from X-Forwarded-For (`edge::realip`), and the coding Accept-Encoding
//! chooses (`compress::negotiate`). Never a panic; a Host names the same site in any
//! letter case; the real address is the peer unless the peer is trusted, and otherwise
//! the peer or one written in the header; a chosen coding is one offered, and the same
//! whatever the letter case, and offering fewer never makes a refused coding chosen.
//!
//! Input: the Host value up to the first 0xff byte, then X-Forwarded-For fields split on
//! '\n'; the first byte picks the peer (trusted or not).

#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use uringd::compress::{Codec, negotiate::choose};
use uringd::edge::cidr::CidrSet;
use uringd::edge::host::{HostTable, config_name};
use uringd::edge::realip::from_forwarded_for;

fuzz_target!(|data: &[u8]| {
    let mut t = HostTable::default();
    for (i, n) in ["a.test", "*.a.test", "*.x.a.test", "[::1]", "127.0.0.1"].iter().enumerate() {
        assert!(t.add(&config_name(n).unwrap(), i as u16));
    }
    let (host, rest) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let site = t.lookup(Some(host));
    assert_eq!(t.lookup(Some(&host.to_ascii_uppercase())), site);
    assert_eq!(t.lookup(Some(&host.to_ascii_lowercase())), site);
    t.set_default(9);
    if site.is_some() {
        assert_eq!(t.lookup(Some(host)), site, "a default changes no match");
    }

    let trusted = CidrSet::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
    let peer: IpAddr = if rest.first().is_some_and(|b| b & 1 == 1) {
        "10.0.0.1".parse().unwrap()
    } else {
        "192.0.2.1".parse().unwrap()
    };
    let fields: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();
    let ip = from_forwarded_for(fields.iter().copied(), peer, &trusted);
    if !trusted.contains(peer) {
        assert_eq!(ip, peer);
    } else if ip != peer {
        let text = String::from_utf8_lossy(rest).to_ascii_lowercase();
        let shown = ip.to_string();
        assert!(text.contains(&shown) || matches!(ip, IpAddr::V6(_)), "{ip} from {text}");
    }

    let offered = [Codec::Zstd, Codec::Br, Codec::Gzip];
    let c = choose(Some(host), &offered);
    assert_eq!(choose(Some(&host.to_ascii_uppercase()), &offered), c);
    if let Some(c) = c {
        assert_eq!(choose(Some(host), &[c]), Some(c), "alone it is still acceptable");
    }
    for one in offered {
        if choose(Some(host), &[one]).is_none() {
            assert_ne!(c, Some(one));
        }
    }
});
