//! The rate decision of a `limit`: GCRA (the generic cell rate algorithm), the token bucket
//! written as one timestamp per key, so a shared table can update it with one
//! compare-and-swap. Pure: no clock, no table.
//!
//! `rate` requests per period with `burst` more at once is an emission interval
//! `T = period / rate` and a tolerance `tau = burst * T`. A key's state is its theoretical
//! arrival time `tat`: a request at `now` is allowed when `max(tat, now) - now <= tau`,
//! and moves `tat` to `max(tat, now) + T`. That admits `burst + 1` requests at once and
//! then one per `T`, as nginx's `limit_req ... burst=B nodelay`.

/// A limit in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Emission interval: time per request at the steady rate.
    pub interval_us: u64,
    /// How far ahead of now a key's arrival time may run.
    pub tolerance_us: u64,
}

impl Rate {
    /// `n` requests per `per_us` microseconds, `burst` more at once. None if `n` is 0.
    pub fn new(n: u64, per_us: u64, burst: u64) -> Option<Rate> {
        if n == 0 {
            return None;
        }
        let interval_us = (per_us / n).max(1);
        Some(Rate {
            interval_us,
            tolerance_us: interval_us.saturating_mul(burst),
        })
    }
}

/// Allowed: the key's new arrival time. Refused: microseconds until a request would be
/// allowed (for Retry-After).
pub fn decide(tat: u64, now: u64, r: Rate) -> Result<u64, u64> {
    let start = tat.max(now);
    let ahead = start - now;
    if ahead <= r.tolerance_us {
        Ok(start.saturating_add(r.interval_us))
    } else {
        Err(ahead - r.tolerance_us)
    }
}

/// A key's arrival time at or before `now` means its bucket is full: nothing is
/// remembered of it that matters, and its slot may go to another key.
pub fn expired(tat: u64, now: u64) -> bool {
    tat <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        // 10/s, burst 20: 21 at once, then one per 100 ms.
        let r = Rate::new(10, 1_000_000, 20).unwrap();
        let mut tat = 0;
        let now = 5_000_000;
        for i in 0..21 {
            tat = decide(tat, now, r).unwrap_or_else(|_| panic!("request {i} refused"));
        }
        let wait = decide(tat, now, r).unwrap_err();
        assert_eq!(wait, 100_000, "the 22nd waits one interval");
        assert!(decide(tat, now + 99_999, r).is_err());
        tat = decide(tat, now + 100_000, r).unwrap();
        assert!(
            decide(tat, now + 100_000, r).is_err(),
            "one per interval after the burst"
        );
        // After a long pause the bucket is full again.
        assert!(expired(tat, now + 3_000_000));
        let mut t = tat;
        for _ in 0..21 {
            t = decide(t, now + 10_000_000, r).unwrap();
        }
    }

    #[test]
    fn no_burst_and_per_minute() {
        let r = Rate::new(600, 60_000_000, 0).unwrap();
        assert_eq!(r.interval_us, 100_000);
        let tat = decide(0, 1_000, r).unwrap();
        assert_eq!(decide(tat, 1_000, r), Err(100_000));
        assert!(Rate::new(0, 1, 1).is_none());
        // Rates faster than a microsecond still have an interval.
        assert_eq!(Rate::new(10_000_000, 1_000_000, 0).unwrap().interval_us, 1);
    }
}
