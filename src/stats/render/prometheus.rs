//! `/metrics`: the Prometheus text exposition format 0.0.4, one series per worker so that
//! imbalance between workers (SO_REUSEPORT accept spread, ring exhaustion) stays visible.
//!
//! The latency histogram is cumulative, as Prometheus expects, only for a snapshot of the
//! `all` window; a sliding-window snapshot would make its counters go up and down.

use std::fmt::Write;

use crate::stats::counters::TlsCounters;
use crate::stats::{Counters, Hist, Snapshot, WorkerSnapshot};
use crate::transport::tls::Failure;

/// Upper bounds of the latency buckets: (`le` label as written, same bound in microseconds).
const BUCKETS: [(&str, u64); 22] = [
    // From 1 us: uringd answers in microseconds, and buckets starting at 100 us put
    // nearly every request in the first one.
    ("0.000001", 1),
    ("0.000002", 2),
    ("0.000005", 5),
    ("0.00001", 10),
    ("0.000025", 25),
    ("0.00005", 50),
    ("0.0001", 100),
    ("0.00025", 250),
    ("0.0005", 500),
    ("0.001", 1_000),
    ("0.0025", 2_500),
    ("0.005", 5_000),
    ("0.01", 10_000),
    ("0.025", 25_000),
    ("0.05", 50_000),
    ("0.1", 100_000),
    ("0.25", 250_000),
    ("0.5", 500_000),
    ("1", 1_000_000),
    ("2.5", 2_500_000),
    ("5", 5_000_000),
    ("10", 10_000_000),
];

/// Escapes a label value: backslash, double quote and newline.
fn escape_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    // HELP texts are constants without backslashes or newlines, so need no escaping.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Cumulative counts for each bound in `BUCKETS`, in one pass over the recorded values.
///
/// HdrHistogram keeps 3 significant digits: a recorded value stands for its whole
/// equivalence range (for example 2500 and 2501 µs share one counter). A range is counted as
/// `<= le` when its lowest value is `<= le`, exactly what `count_between(0, le_us)` counts.
/// So a value up to 0.1% above a bound may be counted below it. The bounds up to 2.5 ms fall
/// on exact single-value ranges or range starts, and the error elsewhere is under 0.1% of the
/// bound: far below what the buckets resolve anyway.
fn bucket_counts(h: &Hist) -> [u64; BUCKETS.len()] {
    // Counts per bucket; values above the last bound are counted only by +Inf (the total).
    let mut per = [0u64; BUCKETS.len()];
    for v in h.iter_recorded() {
        let low = h.lowest_equivalent(v.value_iterated_to());
        if let Some(i) = BUCKETS.iter().position(|&(_, le_us)| low <= le_us) {
            per[i] = per[i].saturating_add(v.count_at_value());
        }
    }
    let mut running: u64 = 0;
    per.map(|c| {
        running = running.saturating_add(c);
        running
    })
}

fn latency_family(out: &mut String, s: &Snapshot) {
    let name = "uringd_request_duration_seconds";
    header(
        out,
        name,
        "histogram",
        "Request latency, from the start of the request until the kernel took the last byte of its response.",
    );
    for w in &s.workers {
        for (route, v) in &w.routes {
            let labels = format!("worker=\"{}\",route=\"{}\"", w.id, escape_label(route));
            histogram(out, name, &labels, v);
        }
    }
}

/// One histogram series: its buckets, sum and count.
fn histogram(out: &mut String, name: &str, labels: &str, v: &crate::stats::View) {
    for ((le, _), count) in BUCKETS.iter().zip(bucket_counts(&v.hist)) {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {count}");
    }
    let count = v.hist.len();
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", v.sum_us as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
}

/// One labelled TLS counter family's values, by label value.
type TlsValues = fn(&TlsCounters) -> Vec<(&'static str, u64)>;

/// TLS handshakes: outcomes, versions, ALPN, failures by reason, and their latency.
fn tls_families(out: &mut String, s: &Snapshot) {
    let name = "uringd_tls_handshake_duration_seconds";
    header(
        out,
        name,
        "histogram",
        "TLS handshakes, from the accept to the client's Finished.",
    );
    for w in &s.workers {
        histogram(out, name, &format!("worker=\"{}\"", w.id), &w.handshakes);
    }
    let families: [(&str, &str, &str, TlsValues); 4] = [
        (
            "uringd_tls_handshakes_total",
            "TLS handshakes completed, full or resumed (a session ticket).",
            "kind",
            |t| vec![("full", t.full), ("resumed", t.resumed)],
        ),
        (
            "uringd_tls_versions_total",
            "TLS handshakes completed, by protocol version.",
            "version",
            |t| vec![("1.3", t.tls13), ("1.2", t.tls12)],
        ),
        (
            "uringd_tls_alpn_total",
            "TLS handshakes completed, by the ALPN protocol chosen (none: the client offered none).",
            "protocol",
            |t| vec![("http/1.1", t.alpn_http11), ("none", t.alpn_none)],
        ),
        (
            "uringd_tls_failures_total",
            "TLS sessions that failed, by reason (plain_http: an HTTP request on the TLS port).",
            "reason",
            |t| {
                Failure::ALL
                    .iter()
                    .zip(t.failures)
                    .map(|(f, n)| (f.name(), n))
                    .collect()
            },
        ),
    ];
    for (name, help, label, values) in families {
        header(out, name, "counter", help);
        for w in &s.workers {
            for (l, n) in values(&w.counters.tls) {
                let _ = writeln!(out, "{name}{{worker=\"{}\",{label}=\"{l}\"}} {n}", w.id);
            }
        }
    }
}

/// Upstream time of proxied routes, per phase (connect, first byte, whole exchange).
fn upstream_family(out: &mut String, s: &Snapshot) {
    let name = "uringd_upstream_duration_seconds";
    if s.workers.iter().all(|w| w.upstream.is_empty()) {
        return;
    }
    header(
        out,
        name,
        "histogram",
        "Upstream time of proxied requests from the start of the attempt: to connected, to the first response byte, to the end of the response.",
    );
    for w in &s.workers {
        for (route, views) in &w.upstream {
            for (phase, v) in ["connect", "first_byte", "whole"].iter().zip(views) {
                let labels = format!(
                    "worker=\"{}\",route=\"{}\",phase=\"{phase}\"",
                    w.id,
                    escape_label(route)
                );
                histogram(out, name, &labels, v);
            }
        }
    }
}

/// Pools with max_conns: requests waiting now (summed over workers), and how long they
/// waited.
fn queue_families(out: &mut String, s: &Snapshot) {
    if s.workers.iter().all(|w| w.queues.is_empty()) {
        return;
    }
    let name = "uringd_upstream_queue_length";
    header(
        out,
        name,
        "gauge",
        "Requests waiting for a max_conns slot of the pool's servers, now.",
    );
    let mut pools: Vec<(&str, u64)> = Vec::new();
    for q in s.workers.iter().flat_map(|w| &w.queues) {
        match pools.iter_mut().find(|(p, _)| *p == q.pool) {
            Some((_, n)) => *n += q.waiting,
            None => pools.push((&q.pool, q.waiting)),
        }
    }
    for (pool, n) in pools {
        let _ = writeln!(out, "{name}{{pool=\"{}\"}} {n}", escape_label(pool));
    }
    let name = "uringd_upstream_queue_wait_seconds";
    header(
        out,
        name,
        "histogram",
        "Time requests waited for a max_conns slot (admitted or timed out).",
    );
    for w in &s.workers {
        for q in &w.queues {
            let labels = format!("pool=\"{}\",worker=\"{}\"", escape_label(&q.pool), w.id);
            histogram(out, name, &labels, &q.wait);
        }
    }
}

/// A family with one sample per worker.
fn per_worker(
    out: &mut String,
    s: &Snapshot,
    name: &str,
    kind: &str,
    help: &str,
    value: fn(&WorkerSnapshot) -> u64,
) {
    header(out, name, kind, help);
    for w in &s.workers {
        let _ = writeln!(out, "{name}{{worker=\"{}\"}} {}", w.id, value(w));
    }
}

fn counter(out: &mut String, s: &Snapshot, name: &str, help: &str, value: fn(&Counters) -> u64) {
    header(out, name, "counter", help);
    for w in &s.workers {
        let _ = writeln!(out, "{name}{{worker=\"{}\"}} {}", w.id, value(&w.counters));
    }
}

pub fn prometheus(s: &Snapshot) -> String {
    let mut out = String::new();
    latency_family(&mut out, s);
    upstream_family(&mut out, s);
    queue_families(&mut out, s);
    tls_families(&mut out, s);
    let name = "uringd_limited_requests_total";
    header(
        &mut out,
        name,
        "counter",
        "Requests refused with 429 by a route's limit.",
    );
    for w in &s.workers {
        for ((route, _), n) in w.routes.iter().zip(&w.counters.limited_by_route) {
            let _ = writeln!(
                out,
                "{name}{{worker=\"{}\",route=\"{}\"}} {n}",
                w.id,
                escape_label(route)
            );
        }
    }
    counter(
        &mut out,
        s,
        "uringd_ip_refused_connections_total",
        "Connections refused by max_connections_per_ip.",
        |c| c.ip_refused,
    );
    counter(
        &mut out,
        s,
        "uringd_queued_requests_total",
        "Requests that waited for a max_conns slot.",
        |c| c.queued,
    );
    counter(
        &mut out,
        s,
        "uringd_spilled_responses_total",
        "Buffered responses that went past response_buffer into a temporary file.",
        |c| c.spilled_responses,
    );
    counter(
        &mut out,
        s,
        "uringd_spooled_bodies_total",
        "Request bodies held in a temporary file (past body_buffer).",
        |c| c.spooled_bodies,
    );
    counter(
        &mut out,
        s,
        "uringd_misdirected_requests_total",
        "Requests answered 421: no site serves their Host, or it is another than the TLS server name's.",
        |c| c.misdirected,
    );
    counter(
        &mut out,
        s,
        "uringd_forbidden_requests_total",
        "Requests answered 403 by a route's allow/deny.",
        |c| c.forbidden,
    );
    counter(
        &mut out,
        s,
        "uringd_proxy_header_errors_total",
        "Connections closed on a proxy_protocol listener for a missing or malformed PROXY header.",
        |c| c.proxy_header_errors,
    );

    counter(
        &mut out,
        s,
        "uringd_requests_total",
        "Requests answered.",
        |c| c.requests,
    );

    let name = "uringd_responses_total";
    header(&mut out, name, "counter", "Responses by status class.");
    for w in &s.workers {
        let c = &w.counters;
        for (class, n) in [
            ("2xx", c.status_2xx),
            ("3xx", c.status_3xx),
            ("4xx", c.status_4xx),
            ("5xx", c.status_5xx),
        ] {
            let _ = writeln!(out, "{name}{{worker=\"{}\",class=\"{class}\"}} {n}", w.id);
        }
    }

    counter(
        &mut out,
        s,
        "uringd_rejected_requests_total",
        "Requests answered with an error status and a close (malformed, too large, timed out).",
        |c| c.rejected,
    );
    let name = "uringd_compressed_responses_total";
    header(
        &mut out,
        name,
        "counter",
        "Responses sent with a content coding (compressed by uringd, or a precompressed file), by coding.",
    );
    for w in &s.workers {
        for c in crate::compress::Codec::ALL {
            let n = w.counters.compressed[c as usize];
            let _ = writeln!(
                out,
                "{name}{{worker=\"{}\",coding=\"{}\"}} {n}",
                w.id,
                c.token()
            );
        }
    }
    let name = "uringd_timeouts_total";
    header(
        &mut out,
        name,
        "counter",
        "Connections given up on when a timeout ran out, by what was awaited (idle keep-alive closes are not timeouts).",
    );
    for w in &s.workers {
        let t = &w.counters.timeouts;
        for (kind, n) in [
            ("header", t.header),
            ("body", t.body),
            ("send", t.send),
            ("upstream", t.upstream),
            ("queue", t.queue),
        ] {
            let _ = writeln!(out, "{name}{{worker=\"{}\",kind=\"{kind}\"}} {n}", w.id);
        }
    }
    counter(
        &mut out,
        s,
        "uringd_idle_closes_total",
        "Idle keep-alive connections closed at keepalive_timeout.",
        |c| c.idle_closes,
    );
    counter(
        &mut out,
        s,
        "uringd_access_log_dropped_lines_total",
        "Access-log lines dropped because writing could not keep up.",
        |c| c.log_dropped_lines,
    );
    counter(
        &mut out,
        s,
        "uringd_access_log_write_errors_total",
        "Failed access-log writes.",
        |c| c.log_write_errors,
    );
    let name = "uringd_log_lines_dropped_total";
    header(
        &mut out,
        name,
        "counter",
        "Lines to stderr or stdout that could not be written (the reader went away).",
    );
    let _ = writeln!(out, "{name} {}", crate::log::dropped());
    per_worker(
        &mut out,
        s,
        "uringd_active_connections",
        "gauge",
        "Connections open now.",
        |w| w.active,
    );
    counter(
        &mut out,
        s,
        "uringd_accepts_total",
        "Connections accepted (the spread across workers shows SO_REUSEPORT balance).",
        |c| c.accepts,
    );
    counter(
        &mut out,
        s,
        "uringd_accept_errors_total",
        "Failed accepts.",
        |c| c.accept_errors,
    );
    counter(
        &mut out,
        s,
        "uringd_buffer_ring_exhausted_total",
        "Receives that found the provided-buffer ring empty (ENOBUFS).",
        |c| c.enobufs,
    );
    counter(
        &mut out,
        s,
        "uringd_upstream_errors_total",
        "Requests that failed on the upstream side.",
        |c| c.upstream_errors,
    );
    counter(
        &mut out,
        s,
        "uringd_received_bytes_total",
        "Bytes read from clients.",
        |c| c.bytes_in,
    );
    counter(
        &mut out,
        s,
        "uringd_sent_bytes_total",
        "Bytes written to clients.",
        |c| c.bytes_out,
    );
    per_worker(
        &mut out,
        s,
        "uringd_cq_overflow_total",
        "counter",
        "Completions the kernel dropped or deferred because the completion queue was full.",
        |w| u64::from(w.ring.cq_overflow),
    );

    let name = "uringd_uptime_seconds";
    header(&mut out, name, "gauge", "Seconds since the server started.");
    let _ = writeln!(out, "{name} {}", s.uptime_s);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::super::fixtures::{empty, huge, sample, snapshot, view, worker};
    use super::super::promparse::{Sample, parse_exposition};
    use super::*;

    #[test]
    fn tls_families() {
        let samples = parse(&sample());
        let get = |family: &str, worker: &str, label: (&str, &str)| {
            samples
                .iter()
                .find(|s| {
                    s.family == family
                        && s.label("worker") == Some(worker)
                        && s.label(label.0) == Some(label.1)
                })
                .map(|s| s.value)
        };
        assert_eq!(
            get("uringd_tls_handshakes_total", "1", ("kind", "full")),
            Some(4.0)
        );
        assert_eq!(
            get("uringd_tls_versions_total", "1", ("version", "1.2")),
            Some(2.0)
        );
        assert_eq!(
            get("uringd_tls_alpn_total", "0", ("protocol", "http/1.1")),
            Some(5.0)
        );
        assert_eq!(
            get("uringd_tls_failures_total", "0", ("reason", "incompatible")),
            Some(2.0)
        );
        assert_eq!(
            get("uringd_tls_failures_total", "0", ("reason", "plain_http")),
            Some(1.0)
        );
        let count = samples
            .iter()
            .find(|s| s.name == "uringd_tls_handshake_duration_seconds_count")
            .map(|s| s.value);
        assert_eq!(count, Some(3.0));
    }

    fn parse(s: &Snapshot) -> Vec<Sample> {
        let text = prometheus(s);
        parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    /// Checks every histogram series: buckets in increasing `le`, non-decreasing counts, the
    /// last bucket `+Inf` equal to `_count`. Returns `_count` per (worker, route).
    fn check_histograms(samples: &[Sample]) -> BTreeMap<(String, String), u64> {
        let key = |s: &Sample| {
            (
                s.label("worker").unwrap().to_string(),
                s.label("route").unwrap().to_string(),
            )
        };
        let mut buckets: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
        let mut counts = BTreeMap::new();
        let mut sums = BTreeMap::new();
        let requests = |s: &&Sample| s.family == "uringd_request_duration_seconds";
        for s in samples
            .iter()
            .filter(|s| s.kind == "histogram")
            .filter(requests)
        {
            if s.name.ends_with("_bucket") {
                let le = s.label("le").unwrap();
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                buckets.entry(key(s)).or_default().push((le, s.value));
            } else if s.name.ends_with("_count") {
                assert!(counts.insert(key(s), s.value as u64).is_none());
            } else {
                assert!(sums.insert(key(s), s.value).is_none());
            }
        }
        assert_eq!(buckets.len(), counts.len());
        assert_eq!(sums.len(), counts.len());
        for (k, b) in &buckets {
            assert_eq!(b.len(), BUCKETS.len() + 1, "{k:?}");
            for pair in b.windows(2) {
                assert!(pair[0].0 < pair[1].0, "{k:?} le order");
                assert!(pair[0].1 <= pair[1].1, "{k:?} counts go down");
            }
            let last = b.last().unwrap();
            assert_eq!(last.0, f64::INFINITY);
            assert_eq!(last.1 as u64, counts[k], "{k:?}");
        }
        counts
    }

    fn by_name<'a>(samples: &'a [Sample], name: &str) -> Vec<&'a Sample> {
        samples.iter().filter(|s| s.name == name).collect()
    }

    #[test]
    fn parses_strictly_and_histograms_hold() {
        let s = sample();
        let samples = parse(&s);
        let counts = check_histograms(&samples);
        assert_eq!(counts.len(), 6);
        for w in &s.workers {
            for (route, v) in &w.routes {
                assert_eq!(counts[&(w.id.to_string(), route.clone())], v.hist.len());
            }
        }
        assert_eq!(counts[&("0".to_string(), "api".to_string())], 600);
        assert_eq!(counts[&("1".to_string(), "idle".to_string())], 0);

        let sum = samples
            .iter()
            .find(|x| {
                x.name == "uringd_request_duration_seconds_sum"
                    && x.label("worker") == Some("1")
                    && x.label("route") == Some("static")
            })
            .unwrap();
        assert!((sum.value - s.workers[1].routes[1].1.sum_us as f64 / 1e6).abs() < 1e-9);

        // Every family is there, each TYPE once.
        let text = prometheus(&s);
        let mut types: HashMap<&str, usize> = HashMap::new();
        for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            *types.entry(l.split(' ').nth(2).unwrap()).or_default() += 1;
        }
        assert!(types.values().all(|&n| n == 1));
        assert_eq!(types.len(), 34);
        for f in [
            "uringd_request_duration_seconds",
            "uringd_requests_total",
            "uringd_responses_total",
            "uringd_rejected_requests_total",
            "uringd_timeouts_total",
            "uringd_idle_closes_total",
            "uringd_access_log_dropped_lines_total",
            "uringd_access_log_write_errors_total",
            "uringd_log_lines_dropped_total",
            "uringd_active_connections",
            "uringd_accepts_total",
            "uringd_accept_errors_total",
            "uringd_buffer_ring_exhausted_total",
            "uringd_upstream_errors_total",
            "uringd_received_bytes_total",
            "uringd_sent_bytes_total",
            "uringd_cq_overflow_total",
            "uringd_uptime_seconds",
        ] {
            assert!(types.contains_key(f), "{f}");
        }
    }

    #[test]
    fn worker_counters() {
        let s = sample();
        let samples = parse(&s);
        let value = |name: &str, worker: &str| {
            by_name(&samples, name)
                .into_iter()
                .find(|x| x.label("worker") == Some(worker))
                .map(|x| x.value)
        };
        let c = &s.workers[1].counters;
        assert_eq!(value("uringd_requests_total", "1"), Some(c.requests as f64));
        assert_eq!(value("uringd_accepts_total", "0"), Some(10.0));
        assert_eq!(value("uringd_accepts_total", "1"), Some(11.0));
        assert_eq!(value("uringd_buffer_ring_exhausted_total", "1"), Some(7.0));
        assert_eq!(value("uringd_upstream_errors_total", "1"), Some(4.0));
        assert_eq!(value("uringd_queued_requests_total", "1"), Some(2.0));
        let q = samples
            .iter()
            .find(|x| x.name == "uringd_upstream_queue_length")
            .unwrap();
        assert_eq!(
            (q.label("pool"), q.value),
            (Some("app"), 2.0),
            "summed over workers"
        );
        let kinds: Vec<(&str, f64)> = by_name(&samples, "uringd_timeouts_total")
            .into_iter()
            .filter(|x| x.label("worker") == Some("1"))
            .map(|x| (x.label("kind").unwrap(), x.value))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("header", 1.0),
                ("body", 0.0),
                ("send", 1.0),
                ("upstream", 1.0),
                ("queue", 1.0)
            ]
        );
        assert_eq!(value("uringd_idle_closes_total", "1"), Some(6.0));
        assert_eq!(value("uringd_rejected_requests_total", "1"), Some(1.0));
        assert_eq!(value("uringd_accept_errors_total", "1"), Some(2.0));
        assert_eq!(value("uringd_active_connections", "1"), Some(5.0));
        assert_eq!(value("uringd_cq_overflow_total", "1"), Some(9.0));
        assert_eq!(
            value("uringd_received_bytes_total", "1"),
            Some(c.bytes_in as f64)
        );
        assert_eq!(
            value("uringd_sent_bytes_total", "1"),
            Some(c.bytes_out as f64)
        );
        let classes: Vec<(&str, f64)> = by_name(&samples, "uringd_responses_total")
            .into_iter()
            .filter(|x| x.label("worker") == Some("1"))
            .map(|x| (x.label("class").unwrap(), x.value))
            .collect();
        assert_eq!(
            classes,
            vec![
                ("2xx", c.status_2xx as f64),
                ("3xx", 1.0),
                ("4xx", 1.0),
                ("5xx", 1.0)
            ]
        );
        let up = by_name(&samples, "uringd_uptime_seconds");
        assert_eq!(up.len(), 1);
        assert!(up[0].labels.is_empty());
        assert_eq!(up[0].value, 3725.0);
    }

    #[test]
    fn buckets_match_count_between() {
        let v = view(
            &[
                1,
                99,
                100,
                101,
                250,
                251,
                2_499,
                2_500,
                2_501,
                2_502,
                9_999,
                10_000,
                10_005,
                99_950,
                100_000,
                1_000_000,
                10_000_000,
                10_010_000,
                600_000_000,
            ][..],
        );
        let got = bucket_counts(&v.hist);
        for (i, &(_, le_us)) in BUCKETS.iter().enumerate() {
            assert_eq!(got[i], v.hist.count_between(0, le_us), "le {le_us}");
        }
        assert_eq!(got[0], 1); // 1 us: the first bucket is 1 us, not 100
        assert_eq!(got[6], 3); // <= 100 us: 1, 99, 100
        assert_eq!(got[7], 5); // + 101, 250
        assert_eq!(got[BUCKETS.len() - 1], 17);
    }

    #[test]
    fn label_values_are_escaped() {
        let s = snapshot(vec![worker(0, &[("a\"b\\c\nd", &[5, 6])])]);
        let text = prometheus(&s);
        assert!(text.contains(r#"route="a\"b\\c\nd""#), "{text}");
        let samples = parse(&s);
        let c = by_name(&samples, "uringd_request_duration_seconds_count");
        assert_eq!(c[0].label("route"), Some("a\"b\\c\nd"));
        assert_eq!(c[0].value, 2.0);
    }

    #[test]
    fn empty_and_huge_snapshots() {
        let samples = parse(&empty());
        // Only the process-wide ones: dropped log lines and the uptime.
        assert_eq!(samples.len(), 2);
        assert_eq!(by_name(&samples, "uringd_uptime_seconds")[0].value, 0.0);

        let s = huge();
        let samples = parse(&s);
        let counts = check_histograms(&samples);
        assert!(counts.values().all(|&c| c == u64::MAX));
        let req = by_name(&samples, "uringd_requests_total");
        assert_eq!(req[0].value, u64::MAX as f64);
        assert!(prometheus(&s).contains(&format!(
            "uringd_requests_total{{worker=\"{}\"}} {}",
            usize::MAX,
            u64::MAX
        )));
    }
}
