//! `/_uringd/series`: the last minutes second by second (requests, 4xx, 5xx, p50, p99,
//! p99.9) for one route or all, one worker or all, merged from the workers' histories
//! (`stats::history`). The dashboard polls it with `since` = the newest second it has.

use serde_json::{Value, json};

use super::summary;
use crate::stats::Snapshot;
use crate::stats::history::{self, Second};

/// The time series JSON; None when `route` or `worker` names nothing (404).
pub fn series_json(s: &Snapshot, route: Option<&str>, worker: Option<usize>) -> Option<String> {
    let names = summary::route_names(s);
    if route.is_some_and(|r| !names.iter().any(|n| n == r)) {
        return None;
    }
    if worker.is_some_and(|id| !s.workers.iter().any(|w| w.id == id)) {
        return None;
    }
    let seconds: Vec<&Second> = s
        .workers
        .iter()
        .filter(|w| worker.is_none_or(|id| w.id == id))
        .flat_map(|w| &w.history)
        // All routes: every series, the unrouted one (404s, refusals) included.
        .filter(|(name, _)| route.is_none_or(|r| name.as_deref() == Some(r)))
        .flat_map(|(_, secs)| secs)
        .collect();
    let points: Vec<Value> = history::merge(seconds)
        .iter()
        .map(|p| json!([p.t, p.count, p.e4, p.e5, p.p50, p.p99, p.p999]))
        .collect();
    let workers: Vec<usize> = s.workers.iter().map(|w| w.id).collect();
    Some(
        json!({
            "now": s.now_unix,
            "uptime_s": s.uptime_s,
            "step_s": 1,
            "history_s": history::HISTORY_SECS,
            "route": route,
            "worker": worker,
            "routes": names,
            "workers": workers,
            "columns": ["t", "requests", "4xx", "5xx", "p50_us", "p99_us", "p999_us"],
            "points": points,
        })
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{sample, snapshot, worker};
    use super::*;
    use crate::stats::history::Timeline;

    fn seconds(t: u64, us: u64, n: u32, class: u8) -> Vec<Second> {
        let mut tl = Timeline::default();
        tl.record(us, n, t, class);
        tl.seconds(0, t + 1)
    }

    #[test]
    fn merges_the_selection() {
        let mut s = sample();
        s.workers[0].history = vec![
            (Some("api".into()), seconds(100, 1000, 10, 2)),
            (Some("static".into()), seconds(100, 50, 30, 2)),
            (None, seconds(101, 20, 5, 4)),
        ];
        s.workers[1].history = vec![(Some("api".into()), seconds(100, 1000, 10, 5))];
        let all: Value = serde_json::from_str(&series_json(&s, None, None).unwrap()).unwrap();
        let p = all["points"].as_array().unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0], json!([100, 50, 0, 10, 50, 1000, 1000]));
        assert_eq!(
            (p[1][0].clone(), p[1][1].clone(), p[1][2].clone()),
            (json!(101), json!(5), json!(5))
        );
        assert_eq!(all["workers"], json!([0, 1]));
        let api: Value =
            serde_json::from_str(&series_json(&s, Some("api"), Some(1)).unwrap()).unwrap();
        assert_eq!(api["points"], json!([[100, 10, 0, 10, 1000, 1000, 1000]]));
        assert!(series_json(&s, Some("nope"), None).is_none());
        assert!(series_json(&s, None, Some(7)).is_none());
        let empty = snapshot(vec![worker(0, &[])]);
        let e: Value = serde_json::from_str(&series_json(&empty, None, None).unwrap()).unwrap();
        assert_eq!(e["points"], json!([]));
    }
}
