//! JSON pages: latency summaries (`/latency?format=json`) and per-worker facts (`/workers`).
//! Latencies are integers in microseconds, except the mean (a float, one decimal).

use crate::stats::counters::TlsCounters;
use crate::transport::tls::Failure;
use serde_json::{Map, Value, json};

use super::summary::{self, Latency};
use crate::stats::{Snapshot, View};

/// The latency numbers of one view as JSON object entries.
fn latency_entries(v: &View) -> Map<String, Value> {
    let Latency {
        count,
        p50,
        p90,
        p99,
        p999,
        max,
        mean,
    } = summary::latency(v);
    let mean = (mean * 10.0).round() / 10.0;
    let mut m = Map::new();
    m.insert("count".into(), count.into());
    m.insert("p50".into(), p50.into());
    m.insert("p90".into(), p90.into());
    m.insert("p99".into(), p99.into());
    m.insert("p999".into(), p999.into());
    m.insert("max".into(), max.into());
    // A finite f64 always converts; fall back to 0 rather than `null` just in case.
    m.insert(
        "mean".into(),
        serde_json::Number::from_f64(mean).map_or(0.into(), Value::Number),
    );
    m
}

/// Latency summary of the snapshot, or of one route when `route` names one; None when it
/// names no route (the caller answers 404).
pub fn latency_json(s: &Snapshot, route: Option<&str>) -> Option<String> {
    let (top, names) = match route {
        Some(name) => (summary::merged_route(s, name)?, vec![name.to_string()]),
        None => (summary::merged_total(s), summary::route_names(s)),
    };

    let mut routes = Map::new();
    for name in &names {
        let v = summary::merged_route(s, name).unwrap_or_else(View::empty);
        let mut entry = latency_entries(&v);
        // Proxied routes: where the time went upstream (each from the attempt's start).
        if let Some([connect, first, whole]) = summary::merged_upstream(s, name) {
            let mut up = Map::new();
            up.insert("connect".into(), Value::Object(latency_entries(&connect)));
            up.insert("first_byte".into(), Value::Object(latency_entries(&first)));
            up.insert("whole".into(), Value::Object(latency_entries(&whole)));
            entry.insert("upstream".into(), Value::Object(up));
        }
        routes.insert(name.clone(), Value::Object(entry));
    }

    let workers: Vec<Value> = s
        .workers
        .iter()
        .map(|w| {
            let mut m = Map::new();
            m.insert("id".into(), w.id.into());
            m.insert("cpu".into(), w.cpu.into());
            let entries = match route {
                Some(name) => latency_entries(&summary::worker_route(w, name)),
                None => latency_entries(&w.total),
            };
            m.extend(entries);
            Value::Object(m)
        })
        .collect();

    // The whole curve, for the dashboard's spectrum: [percentile, value in us].
    let spectrum: Vec<Value> = summary::spectrum(&top)
        .into_iter()
        .map(|(q, us)| {
            let pct = serde_json::Number::from_f64((q * 1e7).round() / 1e5)
                .map_or(Value::Null, Value::Number);
            json!([pct, us])
        })
        .collect();
    let mut obj = Map::new();
    obj.insert("window".into(), s.window.name().into());
    obj.extend(latency_entries(&top));
    obj.insert("spectrum".into(), Value::Array(spectrum));
    obj.insert("routes".into(), Value::Object(routes));
    obj.insert("workers".into(), Value::Array(workers));
    Some(Value::Object(obj).to_string())
}

/// A worker's TLS counters and handshake latency.
fn tls_json(t: &TlsCounters, handshakes: &View) -> Value {
    let failures: Map<String, Value> = Failure::ALL
        .iter()
        .zip(t.failures)
        .map(|(f, n)| (f.name().to_string(), n.into()))
        .collect();
    let l = summary::latency(handshakes);
    json!({
        "handshakes": { "full": t.full, "resumed": t.resumed },
        "versions": { "1.3": t.tls13, "1.2": t.tls12 },
        "alpn": { "http/1.1": t.alpn_http11, "none": t.alpn_none },
        "failures": failures,
        "failed": t.failed(),
        "peer_close_notify": t.peer_close_notify,
        "deferred": t.deferred,
        "handshake_us": { "count": l.count, "p50": l.p50, "p99": l.p99, "max": l.max },
    })
}

/// One object per worker: counters, connections, latency of all requests, ring facts.
pub fn workers_json(s: &Snapshot) -> String {
    let workers: Vec<Value> = s
        .workers
        .iter()
        .map(|w| {
            let c = &w.counters;
            let l = summary::latency(&w.total);
            json!({
                "id": w.id,
                "cpu": w.cpu,
                "requests": c.requests,
                "active_connections": w.active,
                "accepts": c.accepts,
                "bytes_in": c.bytes_in,
                "bytes_out": c.bytes_out,
                "rejected": c.rejected,
                "timeouts": {
                    "header": c.timeouts.header,
                    "body": c.timeouts.body,
                    "send": c.timeouts.send,
                    "upstream": c.timeouts.upstream,
                    "queue": c.timeouts.queue,
                    "total": c.timeouts.total(),
                },
                "idle_closes": c.idle_closes,
                "upstream_errors": c.upstream_errors,
                "access_log": {
                    "dropped_lines": c.log_dropped_lines,
                    "write_errors": c.log_write_errors,
                },
                "spliced_bodies": c.spliced_bodies,
                "tls": tls_json(&c.tls, &w.handshakes),
                "limited": c.limited,
                "limited_by_route": w
                    .routes
                    .iter()
                    .zip(&c.limited_by_route)
                    .map(|((name, _), &n)| (name.clone(), Value::from(n)))
                    .collect::<Map<String, Value>>(),
                "ip_refused": c.ip_refused,
                "queued": c.queued,
                "spilled_responses": c.spilled_responses,
                "spooled_bodies": c.spooled_bodies,
                "misdirected": c.misdirected,
                "forbidden": c.forbidden,
                "proxy_header_errors": c.proxy_header_errors,
                "compressed": crate::compress::Codec::ALL
                    .iter()
                    .map(|k| (k.token().to_string(), Value::from(c.compressed[*k as usize])))
                    .collect::<Map<String, Value>>(),
                "queues": w
                    .queues
                    .iter()
                    .map(|q| {
                        let l = summary::latency(&q.wait);
                        (
                            q.pool.clone(),
                            json!({
                                "waiting": q.waiting,
                                "wait_us": { "count": l.count, "p50": l.p50, "p99": l.p99, "max": l.max },
                            }),
                        )
                    })
                    .collect::<Map<String, Value>>(),
                "accept_errors": c.accept_errors,
                "status": {
                    "2xx": c.status_2xx,
                    "3xx": c.status_3xx,
                    "4xx": c.status_4xx,
                    "5xx": c.status_5xx,
                },
                "latency_us": {
                    "count": l.count,
                    "p50": l.p50,
                    "p99": l.p99,
                    "max": l.max,
                },
                "ring": {
                    "backend": w.ring.backend,
                    "sq_entries": w.ring.sq_entries,
                    "cq_entries": w.ring.cq_entries,
                    "cq_overflow": w.ring.cq_overflow,
                    "buffers": w.ring.buffers,
                    "buffer_size": w.ring.buffer_size,
                    "enobufs": c.enobufs,
                    "features": w.ring.features,
                },
            })
        })
        .collect();
    Value::Array(workers).to_string()
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{empty, huge, sample, snapshot, worker};
    use super::*;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).expect("valid JSON")
    }

    const KEYS: [&str; 7] = ["count", "p50", "p90", "p99", "p999", "max", "mean"];

    fn check_against(obj: &Value, v: &View) {
        let l = summary::latency(v);
        assert_eq!(obj["count"], l.count);
        assert_eq!(obj["p50"], v.hist.value_at_quantile(0.5));
        assert_eq!(obj["p90"], v.hist.value_at_quantile(0.9));
        assert_eq!(obj["p99"], v.hist.value_at_quantile(0.99));
        assert_eq!(obj["p999"], v.hist.value_at_quantile(0.999));
        assert_eq!(obj["max"], v.hist.max());
        let mean = obj["mean"].as_f64().unwrap();
        assert!((mean - v.hist.mean()).abs() <= 0.05 + 1e-9, "{mean}");
        assert_eq!(mean, (mean * 10.0).round() / 10.0);
    }

    #[test]
    fn latency_of_everything() {
        let s = sample();
        let j = parse(&latency_json(&s, None).unwrap());
        assert_eq!(j["window"], "all");
        check_against(&j, &crate::stats::render::merged_total(&s));
        assert_eq!(j["count"], 1500);
        let routes = j["routes"].as_object().unwrap();
        assert_eq!(routes.len(), 3);
        for name in ["api", "static", "idle"] {
            check_against(
                &routes[name],
                &crate::stats::render::merged_route(&s, name).unwrap(),
            );
        }
        for k in KEYS {
            assert_eq!(routes["idle"][k].as_f64(), Some(0.0), "{k}");
        }
        let workers = j["workers"].as_array().unwrap();
        assert_eq!(workers.len(), 2);
        for (wj, w) in workers.iter().zip(&s.workers) {
            assert_eq!(wj["id"], w.id);
            assert_eq!(wj["cpu"], w.cpu);
            check_against(wj, &w.total);
        }
    }

    #[test]
    fn latency_of_one_route() {
        let s = sample();
        let j = parse(&latency_json(&s, Some("api")).unwrap());
        let api = crate::stats::render::merged_route(&s, "api").unwrap();
        check_against(&j, &api);
        assert_eq!(j["count"], 1000);
        let routes = j["routes"].as_object().unwrap();
        assert_eq!(routes.keys().collect::<Vec<_>>(), vec!["api"]);
        check_against(&routes["api"], &api);
        for (wj, w) in j["workers"].as_array().unwrap().iter().zip(&s.workers) {
            check_against(wj, &w.routes[0].1);
        }
        assert_eq!(j["workers"][0]["count"], 600);

        assert_eq!(latency_json(&s, Some("nope")), None);
        assert_eq!(latency_json(&empty(), Some("api")), None);
    }

    #[test]
    fn empty_snapshots_are_all_zero() {
        let j = parse(&latency_json(&empty(), None).unwrap());
        assert_eq!(j["window"], "10s");
        for k in KEYS {
            assert_eq!(j[k].as_f64(), Some(0.0), "{k}");
        }
        assert_eq!(j["routes"], json!({}));
        assert_eq!(j["workers"], json!([]));
        assert_eq!(parse(&workers_json(&empty())), json!([]));

        let s = snapshot(vec![worker(3, &[("a", &[])])]);
        let j = parse(&latency_json(&s, Some("a")).unwrap());
        assert_eq!(j["workers"][0]["id"], 3);
        for k in KEYS {
            assert_eq!(j["workers"][0][k].as_f64(), Some(0.0), "{k}");
        }
    }

    #[test]
    fn mean_has_one_decimal() {
        let s = snapshot(vec![worker(0, &[("a", &[1, 2, 2])])]);
        let j = parse(&latency_json(&s, None).unwrap());
        assert_eq!(j["mean"].as_f64(), Some(1.7));
        assert!(j["p50"].is_u64());
    }

    #[test]
    fn workers_have_counters_and_ring_facts() {
        let mut s = sample();
        s.workers[1].ring.features = "a \"quoted\" \\ name".to_string();
        let j = parse(&workers_json(&s));
        let arr = j.as_array().unwrap();
        assert_eq!(arr.len(), 2);
        for (wj, w) in arr.iter().zip(&s.workers) {
            let c = &w.counters;
            assert_eq!(wj["id"], w.id);
            assert_eq!(wj["cpu"], w.cpu);
            assert_eq!(wj["requests"], c.requests);
            assert_eq!(wj["active_connections"], w.active);
            assert_eq!(wj["accepts"], c.accepts);
            assert_eq!(wj["bytes_in"], c.bytes_in);
            assert_eq!(wj["bytes_out"], c.bytes_out);
            assert_eq!(wj["rejected"], c.rejected);
            assert_eq!(wj["timeouts"]["header"], c.timeouts.header);
            assert_eq!(wj["timeouts"]["total"], c.timeouts.total());
            assert_eq!(wj["idle_closes"], c.idle_closes);
            assert_eq!(wj["accept_errors"], c.accept_errors);
            assert_eq!(
                wj["status"],
                json!({"2xx": c.status_2xx, "3xx": c.status_3xx, "4xx": c.status_4xx, "5xx": c.status_5xx})
            );
            assert_eq!(wj["latency_us"]["count"], w.total.hist.len());
            assert_eq!(wj["latency_us"]["p50"], w.total.hist.value_at_quantile(0.5));
            assert_eq!(
                wj["latency_us"]["p99"],
                w.total.hist.value_at_quantile(0.99)
            );
            assert_eq!(wj["latency_us"]["max"], w.total.hist.max());
            let r = &wj["ring"];
            assert_eq!(r["sq_entries"], w.ring.sq_entries);
            assert_eq!(r["cq_entries"], w.ring.cq_entries);
            assert_eq!(r["cq_overflow"], w.ring.cq_overflow);
            assert_eq!(r["buffers"], w.ring.buffers);
            assert_eq!(r["buffer_size"], w.ring.buffer_size);
            assert_eq!(r["enobufs"], c.enobufs);
            assert_eq!(r["features"], w.ring.features.as_str());
        }
        assert_eq!(arr[0]["requests"], 900);
        assert_eq!(arr[1]["requests"], 600);
    }

    #[test]
    fn huge_values_survive() {
        let s = huge();
        let j = parse(&latency_json(&s, None).unwrap());
        assert_eq!(j["count"], u64::MAX);
        assert_eq!(j["p50"], 1);
        let j = parse(&latency_json(&s, Some("r")).unwrap());
        assert_eq!(j["count"], u64::MAX);
        assert!(j["max"].as_u64().unwrap() >= crate::stats::series::MAX_US);
        let w = parse(&workers_json(&s));
        assert_eq!(w[0]["requests"], u64::MAX);
        assert_eq!(w[0]["id"], usize::MAX);
        assert_eq!(w[0]["ring"]["cq_overflow"], u32::MAX);
    }
}
