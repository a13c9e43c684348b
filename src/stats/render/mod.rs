//! The admin endpoint's pages, rendered from an already gathered snapshot: pure functions,
//! no I/O, and no panics whatever the snapshot holds (no workers, empty histograms, counters
//! at `u64::MAX`).

pub mod dashboard;
pub mod hgrm;
pub mod json;
pub mod prometheus;
pub mod promparse;
pub mod summary;
pub mod timeseries;

pub use dashboard::dashboard_html;
pub use hgrm::hgrm;
pub use json::{latency_json, workers_json};
pub use prometheus::prometheus;
pub use promparse::{Sample, parse_exposition};
pub use summary::{merged_route, merged_total};
pub use timeseries::series_json;

/// Snapshots for the renderers' tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::stats::series::MAX_US;
    use crate::stats::{Counters, RingInfo, Snapshot, View, Window, WorkerSnapshot};

    /// A view holding `values` (µs), clamped the way `Series::record` clamps them.
    pub fn view(values: &[u64]) -> View {
        let mut v = View::empty();
        for &us in values {
            let us = us.clamp(1, MAX_US);
            v.hist.saturating_record(us);
            v.sum_us = v.sum_us.saturating_add(us);
        }
        v
    }

    /// `n` deterministic values from `lo` to `hi`, spread geometrically (like latencies).
    pub fn spread(n: usize, lo: u64, hi: u64) -> Vec<u64> {
        let (lo, hi) = (lo.max(1) as f64, hi.max(lo.max(1)) as f64);
        (0..n)
            .map(|i| {
                let t = if n > 1 {
                    i as f64 / (n - 1) as f64
                } else {
                    0.0
                };
                (lo * (hi / lo).powf(t)).round() as u64
            })
            .collect()
    }

    /// A worker whose total holds exactly the values of its routes.
    pub fn worker(id: usize, routes: &[(&str, &[u64])]) -> WorkerSnapshot {
        let all: Vec<u64> = routes.iter().flat_map(|(_, v)| v.iter().copied()).collect();
        let n = all.len() as u64;
        WorkerSnapshot {
            id,
            cpu: id + 2,
            counters: Counters {
                accepts: 10 + id as u64,
                requests: n,
                rejected: 1,
                status_2xx: n.saturating_sub(3),
                status_3xx: 1,
                status_4xx: 1,
                status_5xx: 1,
                bytes_in: 100 * n,
                enobufs: 7,
                accept_errors: 2,
                timeouts: crate::stats::Timeouts {
                    header: 1,
                    body: 0,
                    send: 1,
                    upstream: 1,
                    queue: 1,
                },
                idle_closes: 6,
                bytes_out: 1000 * n,
                upstream_errors: 4,
                spliced_bodies: 0,
                log_dropped_lines: 0,
                log_write_errors: 0,
                tls: crate::stats::counters::TlsCounters {
                    full: 3 + id as u64,
                    resumed: 2,
                    tls13: 4,
                    tls12: 1 + id as u64,
                    alpn_http11: 5,
                    alpn_none: id as u64,
                    failures: [1, 0, 2, 0, 0, 1],
                    peer_close_notify: 1,
                    deferred: 0,
                },
                limited: 3,
                limited_by_route: routes.iter().map(|_| 1).collect(),
                ip_refused: 1,
                queued: 2,
                spilled_responses: 1,
                spooled_bodies: 1,
                misdirected: 1,
                forbidden: 1,
                proxy_header_errors: 1,
                compressed: [1, 2, 3],
            },
            active: 5,
            ring: RingInfo {
                backend: "io_uring",
                sq_entries: 256,
                cq_entries: 512,
                cq_overflow: 9,
                buffers: 64,
                buffer_size: 4096,
                features: "NODROP FAST_POLL".to_string(),
            },
            total: view(&all),
            routes: routes
                .iter()
                .map(|(name, v)| (name.to_string(), view(v)))
                .collect(),
            upstream: Vec::new(),
            handshakes: view(&[900, 1200, 4000]),
            queues: vec![crate::stats::PoolQueue {
                pool: "app".into(),
                waiting: 1,
                wait: view(&[300, 5000]),
            }],
            history: Vec::new(),
        }
    }

    pub fn snapshot(workers: Vec<WorkerSnapshot>) -> Snapshot {
        Snapshot {
            window: Window::All,
            uptime_s: 3725,
            now_unix: 1_800_000_000,
            workers,
        }
    }

    /// Two workers, two routes ("api" slow and spread, "static" fast), plus an empty route.
    pub fn sample() -> Snapshot {
        let api0 = spread(600, 200, 80_000);
        let api1 = spread(400, 300, 120_000);
        let st0 = spread(300, 20, 900);
        let st1 = spread(200, 25, 1500);
        snapshot(vec![
            worker(0, &[("api", &api0), ("static", &st0), ("idle", &[])]),
            worker(1, &[("api", &api1), ("static", &st1), ("idle", &[])]),
        ])
    }

    /// Everything as large as the types allow.
    pub fn huge() -> Snapshot {
        let mut w = worker(0, &[("r", &[MAX_US, u64::MAX])]);
        w.counters = Counters {
            accepts: u64::MAX,
            requests: u64::MAX,
            rejected: u64::MAX,
            status_2xx: u64::MAX,
            status_3xx: u64::MAX,
            status_4xx: u64::MAX,
            status_5xx: u64::MAX,
            bytes_in: u64::MAX,
            enobufs: u64::MAX,
            accept_errors: u64::MAX,
            timeouts: crate::stats::Timeouts {
                header: u64::MAX,
                body: u64::MAX,
                send: u64::MAX,
                upstream: u64::MAX,
                queue: u64::MAX,
            },
            idle_closes: u64::MAX,
            bytes_out: u64::MAX,
            upstream_errors: u64::MAX,
            spliced_bodies: u64::MAX,
            log_dropped_lines: u64::MAX,
            log_write_errors: u64::MAX,
            tls: crate::stats::counters::TlsCounters {
                full: u64::MAX,
                resumed: u64::MAX,
                tls13: u64::MAX,
                tls12: u64::MAX,
                alpn_http11: u64::MAX,
                alpn_none: u64::MAX,
                failures: [u64::MAX; 6],
                peer_close_notify: u64::MAX,
                deferred: u64::MAX,
            },
            limited: u64::MAX,
            limited_by_route: vec![u64::MAX],
            ip_refused: u64::MAX,
            queued: u64::MAX,
            spilled_responses: u64::MAX,
            spooled_bodies: u64::MAX,
            misdirected: u64::MAX,
            forbidden: u64::MAX,
            proxy_header_errors: u64::MAX,
            compressed: [u64::MAX; 3],
        };
        w.active = u64::MAX;
        w.id = usize::MAX;
        w.cpu = usize::MAX;
        w.ring.cq_overflow = u32::MAX;
        w.ring.sq_entries = u32::MAX;
        w.total.hist.saturating_record_n(1, u64::MAX);
        w.total.sum_us = u64::MAX;
        for (_, v) in &mut w.routes {
            v.hist.saturating_record_n(MAX_US, u64::MAX);
            v.sum_us = u64::MAX;
        }
        let mut w2 = w.clone();
        w2.id = 1;
        Snapshot {
            window: Window::Last60s,
            uptime_s: u64::MAX,
            now_unix: 1_800_000_000,
            workers: vec![w, w2],
        }
    }

    pub fn empty() -> Snapshot {
        Snapshot {
            window: Window::Last10s,
            uptime_s: 0,
            now_unix: 1_800_000_000,
            workers: Vec::new(),
        }
    }
}
