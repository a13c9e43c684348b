//! The numbers every renderer takes from a snapshot: merged views and percentiles, computed
//! so that no snapshot can make them panic.
//!
//! `View::merge` (and so `Snapshot::total` / `Snapshot::route`) and `Counters::add` add with
//! `+=`, which panics on overflow in debug builds, and `Histogram::value_at_quantile` sums
//! bucket counts unchecked. The renderers use the saturating versions below instead.

use crate::stats::{Counters, Hist, Snapshot, View, WorkerSnapshot};

/// Adds `v` into `into`, saturating instead of overflowing.
pub fn merge_into(into: &mut View, v: &View) {
    // All views share the bounds of `new_hist`, so `add` succeeds (and saturates its counts).
    // A histogram with other bounds is refused whole by `add`, never half-added.
    let _ = into.hist.add(&v.hist);
    into.sum_us = into.sum_us.saturating_add(v.sum_us);
}

/// All workers' totals merged (like `Snapshot::total`, but saturating).
pub fn merged_total(s: &Snapshot) -> View {
    let mut v = View::empty();
    for w in &s.workers {
        merge_into(&mut v, &w.total);
    }
    v
}

/// One route merged across workers (like `Snapshot::route`, but saturating); None if no
/// worker has a route of that name.
pub fn merged_route(s: &Snapshot, name: &str) -> Option<View> {
    let mut found = false;
    let mut v = View::empty();
    for w in &s.workers {
        for (n, rv) in &w.routes {
            if n == name {
                found = true;
                merge_into(&mut v, rv);
            }
        }
    }
    found.then_some(v)
}

/// One worker's view of a route; empty if that worker has no such route.
pub fn worker_route(w: &WorkerSnapshot, name: &str) -> View {
    let mut v = View::empty();
    for (n, rv) in &w.routes {
        if n == name {
            merge_into(&mut v, rv);
        }
    }
    v
}

/// A proxied route's upstream timings ([connect, first byte, whole]) merged across
/// workers; None if no worker has any for it.
pub fn merged_upstream(s: &Snapshot, name: &str) -> Option<[View; 3]> {
    let mut found = false;
    let mut out = [View::empty(), View::empty(), View::empty()];
    for w in &s.workers {
        for (n, vs) in &w.upstream {
            if n == name {
                found = true;
                for (o, v) in out.iter_mut().zip(vs) {
                    merge_into(o, v);
                }
            }
        }
    }
    found.then_some(out)
}

/// The percentile spectrum of a view: (quantile 0..=1, value in us) at HdrHistogram's
/// quantile iteration points (5 per halving of the distance to 100%), as `.hgrm` files
/// list them. Empty for an empty view.
pub fn spectrum(v: &View) -> Vec<(f64, u64)> {
    if v.hist.is_empty() {
        return Vec::new();
    }
    v.hist
        .iter_quantiles(5)
        .map(|it| (it.quantile_iterated_to(), it.value_iterated_to()))
        .collect()
}

/// Route names in config order, each once. Unlike `Snapshot::route_names` this looks at every
/// worker, not only the first, so a route is never hidden by a worker that lacks it.
pub fn route_names(s: &Snapshot) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for w in &s.workers {
        for (n, _) in &w.routes {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    names
}

/// All workers' counters added up, saturating.
pub fn merged_counters(s: &Snapshot) -> Counters {
    let mut c = Counters::default();
    for w in &s.workers {
        c.add(&w.counters);
    }
    c
}

/// The values at the given quantiles (0..=1), in one pass, with the same answers as
/// `Histogram::value_at_quantile` (the highest value equivalent to the bucket reached; the
/// lowest for quantile 0). An empty histogram gives 0 for every quantile.
pub fn quantiles(h: &Hist, qs: &[f64]) -> Vec<u64> {
    let total = h.len();
    if total == 0 {
        return vec![0; qs.len()];
    }
    let qs: Vec<f64> = qs
        .iter()
        .map(|&q| if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) })
        .collect();
    // `as u64` saturates; at least the first recorded value is always reached.
    let targets: Vec<u64> = qs
        .iter()
        .map(|&q| ((q * total as f64).ceil() as u64).clamp(1, total))
        .collect();
    let mut order: Vec<usize> = (0..qs.len()).collect();
    order.sort_by_key(|&i| targets[i]);

    let mut out = vec![h.max(); qs.len()];
    let mut next = 0;
    let mut seen: u64 = 0;
    for v in h.iter_recorded() {
        if next == order.len() {
            break;
        }
        seen = seen.saturating_add(v.count_at_value());
        while let Some(&i) = order.get(next) {
            if targets[i] > seen {
                break;
            }
            out[i] = if qs[i] == 0.0 {
                h.lowest_equivalent(v.value_iterated_to())
            } else {
                v.value_iterated_to()
            };
            next += 1;
        }
    }
    out
}

/// The summary numbers of one view, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    /// From the histogram (like HdrHistogram's mean), so it agrees with the percentiles.
    pub mean: f64,
}

pub fn latency(v: &View) -> Latency {
    latency_of(&v.hist)
}

/// The summary numbers of a bare histogram (microseconds).
pub fn latency_of(h: &Hist) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    let q = quantiles(h, &[0.5, 0.9, 0.99, 0.999]);
    Latency {
        count: h.len(),
        p50: q[0],
        p90: q[1],
        p99: q[2],
        p999: q[3],
        max: h.max(),
        mean: h.mean(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{spread, view, worker};
    use super::*;
    use crate::stats::Window;

    #[test]
    fn quantiles_agree_with_hdrhistogram() {
        let v = view(&spread(5000, 3, 2_000_000));
        let qs = [0.0, 0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0];
        let got = quantiles(&v.hist, &qs);
        for (q, g) in qs.iter().zip(&got) {
            assert_eq!(*g, v.hist.value_at_quantile(*q), "q={q}");
        }
        // Order of the request does not matter.
        let rev: Vec<f64> = qs.iter().rev().copied().collect();
        let mut got_rev = quantiles(&v.hist, &rev);
        got_rev.reverse();
        assert_eq!(got, got_rev);
    }

    #[test]
    fn empty_and_saturated_histograms_do_not_panic() {
        let e = View::empty();
        assert_eq!(quantiles(&e.hist, &[0.0, 0.5, 1.0]), vec![0, 0, 0]);
        assert_eq!(latency(&e), Latency::default());

        // Counts so large that the total saturates: value_at_quantile would overflow here.
        let mut big = View::empty();
        big.hist.saturating_record_n(10, u64::MAX);
        big.hist.saturating_record_n(u64::MAX, u64::MAX);
        big.sum_us = u64::MAX;
        let mut merged = big.clone();
        merge_into(&mut merged, &big);
        assert_eq!(merged.hist.len(), u64::MAX);
        assert_eq!(merged.sum_us, u64::MAX);
        let l = latency(&merged);
        assert_eq!(l.p50, 10);
        assert!(l.max >= crate::stats::series::MAX_US);
    }

    #[test]
    fn merges_saturate_and_see_every_worker() {
        let mut a = worker(0, &[("api", &[100, 200])]);
        let mut b = worker(1, &[("static", &[300]), ("api", &[400])]);
        a.counters.requests = u64::MAX;
        b.counters.requests = 5;
        a.total.sum_us = u64::MAX;
        let s = Snapshot {
            window: Window::All,
            uptime_s: 1,
            now_unix: 1_800_000_000,
            workers: vec![a, b],
        };
        assert_eq!(merged_counters(&s).requests, u64::MAX);
        assert_eq!(merged_total(&s).sum_us, u64::MAX);
        assert_eq!(merged_total(&s).hist.len(), 4);
        assert_eq!(
            route_names(&s),
            vec!["api".to_string(), "static".to_string()]
        );
        assert_eq!(merged_route(&s, "api").map(|v| v.hist.len()), Some(3));
        assert_eq!(merged_route(&s, "static").map(|v| v.hist.len()), Some(1));
        assert!(merged_route(&s, "nope").is_none());
        assert_eq!(worker_route(&s.workers[0], "static").hist.len(), 0);
    }
}
