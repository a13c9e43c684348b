//! IMF-fixdate formatting (RFC 9110 5.6.7) without any date library.

const DAY_NAMES: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const MONTH_NAMES: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// 9999-12-31T23:59:59Z: IMF-fixdate has a four-digit year, so later times clamp.
const MAX_SECS: u64 = 253_402_300_799;

/// Write `unix_secs` as e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn format_http_date(unix_secs: u64, out: &mut [u8; 29]) {
    let secs = unix_secs.min(MAX_SECS);
    let days = secs / 86_400;
    let sod = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 4 with Sunday = 0).
    let weekday = ((days + 4) % 7) as usize;

    *out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAY_NAMES[weekday]);
    put2(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTH_NAMES[(month - 1) as usize]);
    put2(&mut out[12..14], year / 100);
    put2(&mut out[14..16], year % 100);
    put2(&mut out[17..19], sod / 3600);
    put2(&mut out[20..22], sod / 60 % 60);
    put2(&mut out[23..25], sod % 60);
}

/// Write `unix_secs` as nginx's `$time_local` in UTC, e.g. `06/Nov/1994:08:49:37 +0000`.
pub fn format_log_time(unix_secs: u64, out: &mut [u8; 26]) {
    let secs = unix_secs.min(MAX_SECS);
    let (year, month, day) = civil_from_days(secs / 86_400);
    let sod = secs % 86_400;
    *out = *b"01/Jan/1970:00:00:00 +0000";
    put2(&mut out[0..2], day);
    out[3..6].copy_from_slice(MONTH_NAMES[(month - 1) as usize]);
    put2(&mut out[7..9], year / 100);
    put2(&mut out[9..11], year % 100);
    put2(&mut out[12..14], sod / 3600);
    put2(&mut out[15..17], sod / 60 % 60);
    put2(&mut out[18..20], sod % 60);
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to Unix seconds. The obsolete
/// RFC 850 and asctime forms are not accepted (None: the caller ignores the header).
pub fn parse_http_date(s: &[u8]) -> Option<u64> {
    if s.len() != 29 || &s[25..] != b" GMT" || s[3] != b',' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let t = std::str::from_utf8(s.get(r)?).ok()?;
        if !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let day = num(5..7)?;
    let month = MONTH_NAMES.iter().position(|m| &s[8..11] == *m)? as u64 + 1;
    let year = num(12..16)?;
    let (h, mi, sec) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 || year < 1970 {
        return None;
    }
    unix_from_civil(year, month, day, h, mi, sec)
}

/// Unix seconds of a UTC date and time (None before 1970). The inverse of
/// `civil_from_days`, on March-based years.
pub fn unix_from_civil(year: u64, month: u64, day: u64, h: u64, mi: u64, sec: u64) -> Option<u64> {
    let (y, m) = if month <= 2 {
        (year.checked_sub(1)?, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec)
}

fn put2(dst: &mut [u8], v: u64) {
    if let [hi, lo] = dst {
        *hi = b'0' + (v / 10 % 10) as u8;
        *lo = b'0' + (v % 10) as u8;
    }
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31) in the
/// proleptic Gregorian calendar. Works in 400-year eras (146097 days) that
/// start on March 1st, so the leap day is the last day of each era-year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of March-based year
    let mp = (5 * doy + 2) / 153; // month index with March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(t: u64) -> String {
        let mut out = [0u8; 29];
        format_http_date(t, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn parse_round_trips() {
        for t in [0u64, 784_111_777, 951_782_400, 1_700_000_000, 4_102_444_800] {
            let mut b = [0u8; 29];
            format_http_date(t, &mut b);
            assert_eq!(
                parse_http_date(&b),
                Some(t),
                "{}",
                String::from_utf8_lossy(&b)
            );
        }
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_http_date(b"Sun, 06 Xyz 1994 08:49:37 GMT"), None);
    }

    #[test]
    fn log_time() {
        let mut b = [0u8; 26];
        format_log_time(784_111_777, &mut b);
        assert_eq!(&b, b"06/Nov/1994:08:49:37 +0000");
    }

    #[test]
    fn known_values() {
        assert_eq!(fmt(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(fmt(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(fmt(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(fmt(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(fmt(1_709_164_800), "Thu, 29 Feb 2024 00:00:00 GMT");
        assert_eq!(fmt(4_102_444_800), "Fri, 01 Jan 2100 00:00:00 GMT");
        // 2100 is not a leap year: Feb 28 is followed by Mar 1.
        assert_eq!(fmt(4_107_455_999), "Sat, 27 Feb 2100 23:59:59 GMT");
        assert_eq!(fmt(4_107_456_000), "Sun, 28 Feb 2100 00:00:00 GMT");
        assert_eq!(fmt(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
        assert_eq!(fmt(253_402_300_799), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(fmt(u64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn consecutive_days_are_consistent() {
        // Walk ~130 years day by day: day-of-month increments or resets to 1,
        // weekday always advances by one.
        let mut prev = civil_from_days(0);
        for d in 1..48_000u64 {
            let cur = civil_from_days(d);
            if cur.2 == 1 {
                assert!(cur.1 == prev.1 % 12 + 1, "day {d}: {prev:?} -> {cur:?}");
                let y = prev.0;
                let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
                let len = match prev.1 {
                    2 if leap => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                assert_eq!(prev.2, len, "day {d}");
            } else {
                assert_eq!((cur.0, cur.1, cur.2), (prev.0, prev.1, prev.2 + 1));
            }
            prev = cur;
        }
    }
}
