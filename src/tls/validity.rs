//! A certificate's validity period, read from its DER: webpki checks validity but does not
//! expose it, and a loud warning before a certificate expires needs the date. Reads only the
//! few TLVs in front of `validity`; anything unexpected is None (no warning), never a panic.

use crate::http::date::unix_from_civil;

/// One DER TLV at the front of `d`: (tag, contents, rest).
fn tlv(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, d) = d.split_first()?;
    let (&first, mut d) = d.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || d.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &d[..n] {
            len = (len << 8) | usize::from(b);
        }
        d = &d[n..];
        len
    };
    (d.len() >= len).then(|| (tag, &d[..len], &d[len..]))
}

const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT Version` in front of the serial number (absent in v1 certificates).
const VERSION: u8 = 0xa0;

/// (not_before, not_after) in Unix seconds.
pub fn validity(cert_der: &[u8]) -> Option<(u64, u64)> {
    let (SEQUENCE, cert, _) = tlv(cert_der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = tlv(rest)?.2;
    }
    // serialNumber, signature, issuer: skipped whatever they hold.
    for _ in 0..3 {
        rest = tlv(rest)?.2;
    }
    let (SEQUENCE, period, _) = tlv(rest)? else {
        return None;
    };
    let (t1, v1, period) = tlv(period)?;
    let (t2, v2, _) = tlv(period)?;
    Some((time(t1, v1)?, time(t2, v2)?))
}

/// UTCTime `YYMMDDHHMMSSZ` (years 1950-2049, RFC 5280) or GeneralizedTime
/// `YYYYMMDDHHMMSSZ`.
fn time(tag: u8, v: &[u8]) -> Option<u64> {
    let (year, rest) = match tag {
        UTC_TIME if v.len() == 13 => {
            let yy = digits(&v[..2])?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &v[2..])
        }
        GENERALIZED_TIME if v.len() == 15 => (digits(&v[..4])?, &v[4..]),
        _ => return None,
    };
    if rest[10] != b'Z' {
        return None;
    }
    let f = |i: usize| digits(&rest[i..i + 2]);
    let (mo, d, h, mi, s) = (f(0)?, f(2)?, f(4)?, f(6)?, f(8)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    unix_from_civil(year, mo, d, h, mi, s)
}

fn digits(b: &[u8]) -> Option<u64> {
    b.iter().try_fold(0u64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DER TLV with a short or long length.
    fn enc(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if body.len() < 0x80 {
            v.push(body.len() as u8);
        } else {
            v.extend_from_slice(&[0x82, (body.len() >> 8) as u8, body.len() as u8]);
        }
        v.extend_from_slice(body);
        v
    }

    fn cert(version: bool, not_before: (u8, &[u8]), not_after: (u8, &[u8])) -> Vec<u8> {
        let mut tbs = Vec::new();
        if version {
            tbs.extend(enc(VERSION, &enc(0x02, &[2])));
        }
        tbs.extend(enc(0x02, &[1, 2, 3])); // serial
        tbs.extend(enc(SEQUENCE, &enc(0x06, &[1, 2]))); // signature algorithm
        tbs.extend(enc(SEQUENCE, &[0u8; 200])); // issuer, long enough for a long length
        let mut period = enc(not_before.0, not_before.1);
        period.extend(enc(not_after.0, not_after.1));
        tbs.extend(enc(SEQUENCE, &period));
        tbs.extend(enc(SEQUENCE, b"subject..."));
        let mut c = enc(SEQUENCE, &tbs);
        c.extend(enc(SEQUENCE, b"sigalg"));
        enc(SEQUENCE, &c)
    }

    #[test]
    fn reads_both_time_forms() {
        let c = cert(
            true,
            (UTC_TIME, b"260101000000Z"),
            (GENERALIZED_TIME, b"20270615123000Z"),
        );
        let (nb, na) = validity(&c).unwrap();
        assert_eq!(nb, 1_767_225_600); // 2026-01-01T00:00:00Z
        assert_eq!(na, 1_813_062_600); // 2027-06-15T12:30:00Z
        // A v1 certificate has no version field; a 19xx UTCTime.
        let c = cert(
            false,
            (UTC_TIME, b"991231235959Z"),
            (UTC_TIME, b"490101000000Z"),
        );
        let (nb, na) = validity(&c).unwrap();
        assert_eq!(nb, 946_684_799);
        assert_eq!(na, 2_493_072_000);
    }

    #[test]
    fn malformed_is_none() {
        let good = cert(
            true,
            (UTC_TIME, b"260101000000Z"),
            (UTC_TIME, b"270101000000Z"),
        );
        for cut in 0..good.len() {
            assert!(validity(&good[..cut]).is_none() || cut == good.len());
        }
        assert!(
            validity(&cert(
                true,
                (UTC_TIME, b"261301000000Z"),
                (UTC_TIME, b"270101000000Z")
            ))
            .is_none()
        );
        assert!(
            validity(&cert(
                true,
                (UTC_TIME, b"2601010000000"),
                (UTC_TIME, b"270101000000Z")
            ))
            .is_none()
        );
        assert!(
            validity(&cert(
                true,
                (0x04, b"260101000000Z"),
                (UTC_TIME, b"270101000000Z")
            ))
            .is_none()
        );
        assert!(validity(b"").is_none() && validity(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
    }
}
