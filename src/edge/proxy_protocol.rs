//! The PROXY protocol header (v1 text, v2 binary) a load balancer sends before a
//! connection's first byte, naming the client it accepted. Pure and strict: anything but a
//! well-formed header is refused, and the connection with it (a listener that expects the
//! header never reads a request without one). Fuzzed (`fuzz_targets/proxy_protocol.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// A v1 line is at most 107 bytes with its CRLF (the spec's bound).
const V1_MAX: usize = 107;
/// A v2 header's address block and TLVs: more than a balancer sends (HAProxy's own cap is
/// in this range); a longer one is refused rather than buffered.
pub const V2_MAX_LEN: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Bytes the header took; the connection's own bytes follow.
    pub len: usize,
    /// The client as the balancer saw it; None for a LOCAL command (a health check) or
    /// an unknown family: the connection's own peer stands.
    pub source: Option<SocketAddr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A prefix of a valid header: read more.
    Incomplete,
    Invalid(&'static str),
}

/// Parses the header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Header, Error> {
    let n = buf.len().min(V2_SIG.len());
    if buf[..n] == V2_SIG[..n] {
        return if n < V2_SIG.len() {
            Err(Error::Incomplete)
        } else {
            v2(buf)
        };
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        return if n < 6 {
            Err(Error::Incomplete)
        } else {
            v1(buf)
        };
    }
    Err(Error::Invalid("no PROXY protocol header"))
}

fn v1(buf: &[u8]) -> Result<Header, Error> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = memchr::memmem::find(window, b"\r\n") else {
        return Err(if buf.len() >= V1_MAX {
            Error::Invalid("PROXY v1 line too long")
        } else if window.contains(&b'\n') {
            Error::Invalid("PROXY v1 line without CRLF")
        } else {
            Error::Incomplete
        });
    };
    let line =
        std::str::from_utf8(&window[6..end]).map_err(|_| Error::Invalid("PROXY v1: not text"))?;
    let len = end + 2;
    let mut parts = line.split(' ');
    let proto = parts.next().unwrap_or("");
    if proto == "UNKNOWN" {
        // The rest of the line is to be ignored (the spec).
        return Ok(Header { len, source: None });
    }
    let bad = Error::Invalid("PROXY v1: malformed addresses");
    let (src, dst, sport, dport) = match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some(s), Some(d), Some(sp), Some(dp), None) => (s, d, sp, dp),
        _ => return Err(bad),
    };
    let port = |p: &str| -> Result<u16, Error> {
        // Decimal without a leading zero or sign, as the spec writes ports.
        if p.is_empty()
            || (p.len() > 1 && p.starts_with('0'))
            || !p.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad);
        }
        p.parse().map_err(|_| bad)
    };
    let (src, _dst): (IpAddr, IpAddr) = match proto {
        "TCP4" => (
            IpAddr::V4(src.parse::<Ipv4Addr>().map_err(|_| bad)?),
            IpAddr::V4(dst.parse::<Ipv4Addr>().map_err(|_| bad)?),
        ),
        "TCP6" => (
            IpAddr::V6(src.parse::<Ipv6Addr>().map_err(|_| bad)?),
            IpAddr::V6(dst.parse::<Ipv6Addr>().map_err(|_| bad)?),
        ),
        _ => {
            return Err(Error::Invalid(
                "PROXY v1: protocol must be TCP4, TCP6 or UNKNOWN",
            ));
        }
    };
    let sport = port(sport)?;
    port(dport)?;
    Ok(Header {
        len,
        source: Some(SocketAddr::new(src, sport)),
    })
}

fn v2(buf: &[u8]) -> Result<Header, Error> {
    let Some(&[ver_cmd, fam, hi, lo]) = buf.get(12..16) else {
        return Err(Error::Incomplete);
    };
    if ver_cmd >> 4 != 2 {
        return Err(Error::Invalid("PROXY v2: version is not 2"));
    }
    let body = usize::from(u16::from_be_bytes([hi, lo]));
    if body > V2_MAX_LEN {
        return Err(Error::Invalid("PROXY v2: header too long"));
    }
    let len = 16 + body;
    let Some(addrs) = buf.get(16..len) else {
        return Err(Error::Incomplete);
    };
    match ver_cmd & 0x0f {
        // LOCAL: the balancer's own connection (health checks); addresses are ignored.
        0 => return Ok(Header { len, source: None }),
        1 => {}
        _ => return Err(Error::Invalid("PROXY v2: unknown command")),
    }
    let short = Error::Invalid("PROXY v2: address block too short");
    let source = match fam {
        // TCP over IPv4 / IPv6 (UDP is no client of an HTTP listener).
        0x11 => {
            let a: [u8; 12] = addrs
                .get(..12)
                .ok_or(short)?
                .try_into()
                .map_err(|_| short)?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Some(SocketAddr::new(ip.into(), u16::from_be_bytes([a[8], a[9]])))
        }
        0x21 => {
            let a: [u8; 36] = addrs
                .get(..36)
                .ok_or(short)?
                .try_into()
                .map_err(|_| short)?;
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&a[..16]);
            let ip = Ipv6Addr::from(ip);
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([a[32], a[33]]),
            ))
        }
        // UNSPEC (and AF_UNIX): nothing to say about the client.
        0x00 | 0x31 | 0x32 => None,
        _ => {
            return Err(Error::Invalid(
                "PROXY v2: family must be TCP over IPv4 or IPv6",
            ));
        }
    };
    Ok(Header { len, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2_header(cmd: u8, fam: u8, addrs: &[u8]) -> Vec<u8> {
        let mut v = V2_SIG.to_vec();
        v.push(0x20 | cmd);
        v.push(fam);
        v.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
        v.extend_from_slice(addrs);
        v
    }

    #[test]
    fn v1_tcp4_tcp6_and_unknown() {
        let h = parse(b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nGET /").unwrap();
        assert_eq!(h.len, 45);
        assert_eq!(h.source, Some("192.0.2.7:56324".parse().unwrap()));
        let h = parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 80\r\n").unwrap();
        assert_eq!(h.source, Some("[2001:db8::1]:1".parse().unwrap()));
        let h = parse(b"PROXY UNKNOWN ffff::1 whatever\r\nX").unwrap();
        assert_eq!((h.len, h.source), (32, None));
    }

    #[test]
    fn v1_refuses_what_the_spec_does_not_allow() {
        for bad in [
            &b"PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n"[..],
            b"PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 080 443\r\n",
            b"PROXY TCP4  192.0.2.7 198.51.100.1 1 443\r\n",
            b"PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
        ] {
            assert!(
                matches!(parse(bad), Err(Error::Invalid(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = [b"PROXY ".as_slice(), &[b'A'; 120]].concat();
        assert!(matches!(parse(&long), Err(Error::Invalid(_))));
    }

    #[test]
    fn prefixes_ask_for_more() {
        let full = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n";
        for n in 0..full.len() {
            assert_eq!(parse(&full[..n]), Err(Error::Incomplete), "{n}");
        }
        let v2 = v2_header(
            1,
            0x11,
            &[192, 0, 2, 7, 198, 51, 100, 1, 0xdc, 0x04, 1, 187],
        );
        for n in 0..v2.len() {
            assert_eq!(parse(&v2[..n]), Err(Error::Incomplete), "{n}");
        }
    }

    #[test]
    fn v2_proxy_local_and_families() {
        let v4 = v2_header(
            1,
            0x11,
            &[192, 0, 2, 7, 198, 51, 100, 1, 0xdc, 0x04, 1, 187],
        );
        let h = parse(&[&v4[..], b"GET"].concat()).unwrap();
        assert_eq!(h.len, 28);
        assert_eq!(h.source, Some("192.0.2.7:56324".parse().unwrap()));
        let mut a6 = vec![0u8; 36];
        a6[0] = 0x20;
        a6[1] = 0x01;
        a6[15] = 9;
        a6[32] = 0;
        a6[33] = 80;
        let h = parse(&v2_header(1, 0x21, &a6)).unwrap();
        assert_eq!(h.source, Some("[2001::9]:80".parse().unwrap()));
        // TLVs after the addresses are skipped.
        let mut with_tlv = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2];
        with_tlv.extend_from_slice(&[0x04, 0, 2, b'h', b'i']);
        assert_eq!(parse(&v2_header(1, 0x11, &with_tlv)).unwrap().len, 16 + 17);
        let local = parse(&v2_header(0, 0x00, &[])).unwrap();
        assert_eq!((local.len, local.source), (16, None));
        assert_eq!(parse(&v2_header(1, 0x00, &[])).unwrap().source, None);
    }

    #[test]
    fn v2_refuses_bad_versions_commands_families_and_lengths() {
        let mut v = v2_header(1, 0x11, &[0; 12]);
        v[12] = 0x11;
        assert!(
            matches!(parse(&v), Err(Error::Invalid(_))),
            "version 1 in a v2 header"
        );
        assert!(matches!(
            parse(&v2_header(2, 0x11, &[0; 12])),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            parse(&v2_header(1, 0x11, &[0; 8])),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            parse(&v2_header(1, 0x12, &[0; 12])),
            Err(Error::Invalid(_))
        ));
        let mut big = V2_SIG.to_vec();
        big.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(matches!(parse(&big), Err(Error::Invalid(_))));
    }
}
