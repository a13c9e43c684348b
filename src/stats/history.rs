//! The last minutes of one latency series, a point per second, for the dashboard's time
//! series (requests/s, errors/s, p50/p99/p99.9 over time).
//!
//! The sliding windows and "since start" keep HdrHistogram's 3 significant digits
//! (`series.rs`); a history of 300 such histograms per route per worker would cost
//! megabytes. Here a second is a coarse log-linear histogram, 32 buckets per power of two
//! (each spans under 3.2% of its value), kept sparse once the second is over: a few hundred
//! bytes. Merging seconds of several workers and routes stays exact at that resolution,
//! which averaging per-worker percentiles would not be.
//!
//! Seconds are wall-clock (Unix) seconds, so the workers' points line up when merged.

use std::collections::VecDeque;

/// Seconds of history kept per series.
pub const HISTORY_SECS: u64 = 300;

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Values up to 2^30 us (about 18 minutes); larger ones are clamped.
const MAX_OCTAVE: u32 = 29;
/// Number of distinct keys.
pub const KEYS: usize = ((MAX_OCTAVE - SUB_BITS + 2) as u64 * SUB) as usize;

/// The bucket of a latency in microseconds: values below 32 exact, then 32 per octave.
pub fn key(us: u64) -> u16 {
    let us = us.clamp(1, (1 << (MAX_OCTAVE + 1)) - 1);
    let octave = 63 - us.leading_zeros();
    if octave < SUB_BITS {
        return us as u16;
    }
    let sub = (us >> (octave - SUB_BITS)) & (SUB - 1);
    ((u64::from(octave - SUB_BITS + 1)) * SUB + sub) as u16
}

/// The middle of a bucket, in microseconds (what a percentile in that bucket reports).
pub fn value(key: u16) -> u64 {
    let k = u64::from(key);
    if k < SUB {
        return k;
    }
    let shift = (k / SUB - 1) as u32;
    let low = (SUB + k % SUB) << shift;
    low + (1u64 << shift) / 2
}

/// One finished second of a series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Second {
    /// Unix time of the second.
    pub t: u64,
    pub count: u64,
    /// Responses with a 4xx and a 5xx status.
    pub e4: u64,
    pub e5: u64,
    /// (key, count) of the non-empty buckets, by key.
    pub buckets: Box<[(u16, u32)]>,
}

/// The second being recorded.
struct Current {
    t: u64,
    count: u64,
    e4: u64,
    e5: u64,
    counts: Box<[u32; KEYS]>,
}

#[derive(Default)]
pub struct Timeline {
    cur: Option<Current>,
    past: VecDeque<Second>,
}

impl Timeline {
    /// `n` responses of latency `us`, with status class `class` (2..=5), at Unix second `t`.
    pub fn record(&mut self, us: u64, n: u32, t: u64, class: u8) {
        if self.cur.as_ref().is_some_and(|c| c.t != t) {
            self.roll();
        }
        let c = self.cur.get_or_insert_with(|| Current {
            t,
            count: 0,
            e4: 0,
            e5: 0,
            counts: Box::new([0; KEYS]),
        });
        if c.count == 0 {
            c.t = t;
        }
        let k = usize::from(key(us));
        c.counts[k] = c.counts[k].saturating_add(n);
        c.count += u64::from(n);
        match class {
            4 => c.e4 += u64::from(n),
            5 => c.e5 += u64::from(n),
            _ => {}
        }
    }

    /// Moves the current second into the past (kept allocated for the next second).
    fn roll(&mut self) {
        let Some(c) = self.cur.as_mut() else { return };
        if c.count > 0 {
            let buckets: Box<[(u16, u32)]> = c
                .counts
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| (k as u16, *n))
                .collect();
            self.past.push_back(Second {
                t: c.t,
                count: c.count,
                e4: c.e4,
                e5: c.e5,
                buckets,
            });
            c.counts.fill(0);
            (c.count, c.e4, c.e5) = (0, 0, 0);
        }
        while self.past.front().is_some_and(|s| s.t + HISTORY_SECS <= c.t) {
            self.past.pop_front();
        }
    }

    /// The finished seconds after `since` and before `now` (the current one is finished
    /// once `now` has moved past it).
    pub fn seconds(&mut self, since: u64, now: u64) -> Vec<Second> {
        if self.cur.as_ref().is_some_and(|c| c.t < now) {
            self.roll();
        }
        let oldest = now.saturating_sub(HISTORY_SECS);
        self.past
            .iter()
            .filter(|s| s.t > since && s.t >= oldest && s.t < now)
            .cloned()
            .collect()
    }

    pub fn reset(&mut self) {
        *self = Timeline::default();
    }
}

/// One merged point of the time series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Point {
    pub t: u64,
    pub count: u64,
    pub e4: u64,
    pub e5: u64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
}

/// Merges seconds from any number of series (workers, routes) into one point per second,
/// oldest first.
pub fn merge<'a>(seconds: impl IntoIterator<Item = &'a Second>) -> Vec<Point> {
    let mut by_t: std::collections::BTreeMap<u64, (Point, Vec<u64>)> = Default::default();
    for s in seconds {
        let (p, counts) = by_t.entry(s.t).or_insert_with(|| {
            (
                Point {
                    t: s.t,
                    ..Point::default()
                },
                vec![0; KEYS],
            )
        });
        p.count = p.count.saturating_add(s.count);
        p.e4 = p.e4.saturating_add(s.e4);
        p.e5 = p.e5.saturating_add(s.e5);
        for &(k, n) in s.buckets.iter() {
            if let Some(c) = counts.get_mut(usize::from(k)) {
                *c = c.saturating_add(u64::from(n));
            }
        }
    }
    by_t.into_values()
        .map(|(mut p, counts)| {
            [p.p50, p.p99, p.p999] = quantiles(&counts, [0.5, 0.99, 0.999]);
            p
        })
        .collect()
}

/// The bucket values at the given quantiles of dense bucket counts (0 when empty).
fn quantiles(counts: &[u64], qs: [f64; 3]) -> [u64; 3] {
    let total: u64 = counts.iter().sum();
    let mut out = [0; 3];
    if total == 0 {
        return out;
    }
    let mut seen = 0u64;
    let mut i = 0;
    for (k, &n) in counts.iter().enumerate() {
        seen += n;
        while i < qs.len() && seen as f64 >= (qs[i] * total as f64).ceil().max(1.0) {
            out[i] = value(k as u16);
            i += 1;
        }
        if i == qs.len() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_monotonic_and_values_fall_in_their_bucket() {
        let mut last = 0;
        for us in 1..200_000u64 {
            let k = key(us);
            assert!(k >= last, "{us}");
            last = k;
            let v = value(k);
            // Within 1/32 of the value (exact below 32).
            assert!(v.abs_diff(us) * 32 <= us.max(32), "{us} -> {k} -> {v}");
        }
        assert_eq!(key(0), key(1));
        assert!(usize::from(key(u64::MAX)) < KEYS);
        assert_eq!(key(31), 31);
        assert_eq!(value(key(32)), 32);
    }

    #[test]
    fn seconds_roll_and_age_out() {
        let mut t = Timeline::default();
        t.record(100, 3, 1000, 2);
        t.record(200, 1, 1000, 5);
        t.record(5_000, 1, 1001, 4);
        // 1001 is still current at now = 1001.
        let s = t.seconds(0, 1001);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].t, s[0].count, s[0].e4, s[0].e5), (1000, 4, 0, 1));
        let s = t.seconds(0, 1002);
        assert_eq!(s.len(), 2);
        assert_eq!((s[1].t, s[1].e4), (1001, 1));
        assert_eq!(t.seconds(1000, 1002).len(), 1, "only after `since`");
        // Far later: everything aged out.
        t.record(10, 1, 1000 + HISTORY_SECS + 5, 2);
        assert!(t.seconds(0, 1000 + HISTORY_SECS + 5).is_empty());
    }

    #[test]
    fn merging_workers_gives_the_percentiles_of_the_union() {
        let mut a = Timeline::default();
        let mut b = Timeline::default();
        for i in 1..=990u64 {
            a.record(100 + i % 10, 1, 50, 2);
        }
        for _ in 0..10 {
            b.record(10_000, 1, 50, 5);
        }
        let secs: Vec<Second> = a
            .seconds(0, 51)
            .into_iter()
            .chain(b.seconds(0, 51))
            .collect();
        let p = merge(&secs);
        assert_eq!(p.len(), 1);
        let p = p[0];
        assert_eq!((p.t, p.count, p.e5), (50, 1000, 10));
        assert!((100..=110).contains(&p.p50), "{p:?}");
        // The 1% slow requests are all on worker b: p99.9 is theirs, p99 is not.
        assert!((9_700..=10_300).contains(&p.p999), "{p:?}");
        assert!(p.p99 < 200, "{p:?}");
        assert!(merge(std::iter::empty()).is_empty());
    }
}
