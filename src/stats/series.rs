//! One latency series (a route, or all requests): since-start histogram plus 5-second
//! buckets for the sliding windows. Owned by one worker; no locks, no atomics.

use hdrhistogram::Histogram;

pub type Hist = Histogram<u64>;

/// Highest latency tracked (10 minutes in microseconds); longer values are clamped to it.
pub const MAX_US: u64 = 600_000_000;
/// Seconds per window bucket; `last 10 s` means the buckets covering the last 10-15 s.
pub const BUCKET_SECS: u64 = 5;
const BUCKETS: usize = 12; // 60 s

pub fn new_hist() -> Hist {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds are valid")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    All,
    Last10s,
    Last60s,
}

impl Window {
    pub fn parse(s: &str) -> Option<Window> {
        match s {
            "all" => Some(Window::All),
            "10s" => Some(Window::Last10s),
            "60s" => Some(Window::Last60s),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Window::All => "all",
            Window::Last10s => "10s",
            Window::Last60s => "60s",
        }
    }

    fn buckets(self) -> u64 {
        match self {
            Window::All => 0,
            Window::Last10s => 10 / BUCKET_SECS,
            Window::Last60s => 60 / BUCKET_SECS,
        }
    }
}

/// A histogram with the exact sum of what it recorded (Prometheus wants `_sum`).
#[derive(Clone)]
pub struct View {
    pub hist: Hist,
    pub sum_us: u64,
}

impl View {
    pub fn empty() -> View {
        View {
            hist: new_hist(),
            sum_us: 0,
        }
    }

    pub fn merge(&mut self, other: &View) {
        // Same bounds everywhere, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }
}

struct Bucket {
    epoch: u64,
    view: View,
}

/// Recording touches one histogram: the current 5 s bucket. Buckets that fall out of the
/// 60 s ring are folded into `retired`, so "since start" = retired + live buckets and is
/// built only when someone asks (a scrape), not on every request.
pub struct Series {
    retired: View,
    buckets: Vec<Option<Bucket>>,
}

impl Default for Series {
    fn default() -> Self {
        Series {
            retired: View::empty(),
            buckets: (0..BUCKETS).map(|_| None).collect(),
        }
    }
}

impl Series {
    /// Records `n` requests of one latency. `now_s` is seconds since the worker started.
    pub fn record(&mut self, us: u64, n: u32, now_s: u64) {
        let us = us.clamp(1, MAX_US);
        let epoch = now_s / BUCKET_SECS;
        let slot = &mut self.buckets[(epoch % BUCKETS as u64) as usize];
        if slot.as_ref().is_none_or(|b| b.epoch != epoch) {
            // A fresh histogram rather than clear(): clearing writes every page of the counts
            // array, a new allocation leaves untouched pages unbacked.
            let fresh = Bucket {
                epoch,
                view: View::empty(),
            };
            if let Some(old) = slot.replace(fresh) {
                self.retired.merge(&old.view);
            }
        }
        if let Some(b) = slot {
            b.view.hist.saturating_record_n(us, u64::from(n));
            b.view.sum_us = b.view.sum_us.saturating_add(us * u64::from(n));
        }
    }

    /// Adds this series' view of window `w` into `into`.
    pub fn add_view(&self, w: Window, now_s: u64, into: &mut View) {
        let epoch = now_s / BUCKET_SECS;
        let oldest = match w {
            Window::All => {
                into.merge(&self.retired);
                0
            }
            _ => epoch.saturating_sub(w.buckets()),
        };
        for b in self.buckets.iter().flatten() {
            if b.epoch >= oldest && b.epoch <= epoch {
                into.merge(&b.view);
            }
        }
    }

    pub fn view(&self, w: Window, now_s: u64) -> View {
        let mut v = View::empty();
        self.add_view(w, now_s, &mut v);
        v
    }

    pub fn reset(&mut self) {
        *self = Series::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_forget_old_buckets() {
        let mut s = Series::default();
        s.record(100, 1, 0);
        s.record(200, 1, 30);
        s.record(300, 1, 61);
        assert_eq!(s.view(Window::All, 61).hist.len(), 3);
        assert_eq!(s.view(Window::Last60s, 61).hist.len(), 2);
        assert_eq!(s.view(Window::Last10s, 61).hist.len(), 1);
        assert_eq!(s.view(Window::Last10s, 61).sum_us, 300);
        // Much later, with no traffic, the windows are empty but "all" remembers.
        assert_eq!(s.view(Window::Last60s, 500).hist.len(), 0);
        assert_eq!(s.view(Window::All, 500).hist.len(), 3);
    }

    #[test]
    fn values_are_clamped_not_dropped() {
        let mut s = Series::default();
        s.record(0, 1, 0);
        s.record(u64::MAX / 4, 1, 0);
        let v = s.view(Window::All, 0);
        assert_eq!(v.hist.len(), 2);
        assert!(v.hist.max() >= MAX_US);
    }
}
