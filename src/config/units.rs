//! Durations ("10s", "250ms", "2m", or plain seconds) and sizes ("64KiB", "1MiB", or bytes).

use std::time::Duration;

#[derive(Clone, Debug)]
pub enum DurationValue {
    Secs(u64),
    Text(String),
}

#[derive(Clone, Debug)]
pub enum SizeValue {
    Bytes(u64),
    Text(String),
}

pub fn parse_duration(v: &DurationValue) -> Result<Duration, String> {
    let s = match v {
        DurationValue::Secs(n) => return Ok(Duration::from_secs(*n)),
        DurationValue::Text(s) => s.trim(),
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("`{s}` is not a duration; write it like \"10s\", \"250ms\" or \"2m\"")
    })?;
    let secs = |mul: u64| {
        n.checked_mul(mul)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{s}` is too large"))
    };
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => secs(60),
        "h" => secs(3600),
        _ => Err(format!(
            "`{s}` has an unknown unit; use ms, s, m or h (e.g. \"10s\")"
        )),
    }
}

pub fn parse_size(v: &SizeValue) -> Result<u64, String> {
    let s = match v {
        SizeValue::Bytes(n) => return Ok(*n),
        SizeValue::Text(s) => s.trim(),
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size; write it like 65536, \"64KiB\" or \"1MiB\""))?;
    let mul = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "`{s}` has an unknown unit; use KiB, MiB or GiB (e.g. \"64KiB\")"
            ));
        }
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let t = |s: &str| parse_duration(&DurationValue::Text(s.into()));
        assert_eq!(t("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(t("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(t("2m"), Ok(Duration::from_secs(120)));
        assert!(t("ten").is_err());
        assert!(t("5d").is_err());
        // Found while writing the config_loader fuzz target: minutes and
        // hours were multiplied unchecked (a panic with overflow checks, a
        // silently wrapped timeout without).
        assert!(t("999999999999999999m").unwrap_err().contains("too large"));
        assert!(
            t("18446744073709551615h")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(
            t("5124095576030431h"),
            Ok(Duration::from_secs(5124095576030431 * 3600))
        );
        assert_eq!(
            parse_duration(&DurationValue::Secs(3)),
            Ok(Duration::from_secs(3))
        );
    }

    #[test]
    fn sizes() {
        let t = |s: &str| parse_size(&SizeValue::Text(s.into()));
        assert_eq!(t("64KiB"), Ok(65536));
        assert_eq!(t("1MiB"), Ok(1 << 20));
        assert_eq!(t("12"), Ok(12));
        assert!(t("1PB").is_err());
        assert!(t("99999999999999GiB").is_err());
    }
}
