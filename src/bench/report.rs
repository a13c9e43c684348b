//! The run's result: figures, the generator's self-check, the text report and the JSON.

use std::fmt::Write;

use serde_json::{Value, json};

use super::coord::Outcome;
use super::worker::RunPlan;
use crate::stats::series::{MAX_US, new_hist};

/// The generator is called saturated when a thread was this busy...
const CPU_SATURATED: f64 = 0.90;
/// ...or when requests that had a free connection went out this late (p99, microseconds).
const LAG_SATURATED_US: u64 = 1000;

/// The same summary numbers the admin pages use.
pub use crate::stats::render::summary::{Latency, latency_of};

fn latency_json(l: &Latency) -> Value {
    json!({
        "p50": l.p50, "p90": l.p90, "p99": l.p99, "p999": l.p999,
        "max": l.max, "mean": (l.mean * 10.0).round() / 10.0,
    })
}

fn latency_text(l: &Latency) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}",
        ms(l.p50 as f64),
        ms(l.p90 as f64),
        ms(l.p99 as f64),
        ms(l.p999 as f64),
        ms(l.max as f64),
        ms(l.mean)
    )
}

/// Microseconds as a short human figure.
pub fn ms(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.2}s", us / 1e6)
    } else if us >= 1000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{us:.0}us")
    }
}

fn bytes(n: f64) -> String {
    if n >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", n / (1024.0 * 1024.0 * 1024.0))
    } else if n >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", n / (1024.0 * 1024.0))
    } else if n >= 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else {
        format!("{n:.0} B")
    }
}

pub struct Summary {
    pub duration_s: f64,
    pub rps: f64,
    pub corrected: Latency,
    pub uncorrected: Latency,
    pub cpu: Vec<f64>,
    pub lag: Option<Latency>,
    pub waited: u64,
    pub max_wait_us: u64,
    pub unsent: u64,
    pub saturated: bool,
    pub reasons: Vec<String>,
}

pub fn summarize(plan: &RunPlan, o: &Outcome) -> Summary {
    let duration_s = o.duration_ns as f64 / 1e9;
    let mut lag = new_hist();
    for g in &o.gens {
        let _ = lag.add(&g.lag);
    }
    let cpu: Vec<f64> = o
        .gens
        .iter()
        .map(|g| g.cpu_ns as f64 / g.wall_ns.max(1) as f64)
        .collect();
    let mut reasons = Vec::new();
    for (t, c) in cpu.iter().enumerate() {
        if *c >= CPU_SATURATED {
            reasons.push(format!(
                "thread {t} was busy {:.0}% of the time: the generator, not the server, may be the limit (add -t, or give it its own CPUs)",
                c * 100.0
            ));
        }
    }
    let lag = plan.rate.map(|_| latency_of(&lag));
    if let Some(l) = &lag
        && l.p99 > LAG_SATURATED_US
    {
        reasons.push(format!(
            "requests went out late: schedule lag p99 {} (the generator fell behind its schedule)",
            ms(l.p99 as f64)
        ));
    }
    Summary {
        duration_s,
        rps: o.total.completed as f64 / duration_s,
        corrected: latency_of(&o.total.corrected),
        uncorrected: latency_of(&o.total.uncorrected),
        lag,
        waited: o.gens.iter().map(|g| g.waited).sum(),
        max_wait_us: o.gens.iter().map(|g| g.max_wait_ns).max().unwrap_or(0) / 1000,
        unsent: o.gens.iter().map(|g| g.unsent).sum(),
        saturated: !reasons.is_empty(),
        cpu,
        reasons,
    }
}

fn mode(plan: &RunPlan) -> String {
    match plan.rate {
        Some(r) => format!(
            "open loop at {r} req/s ({})",
            match plan.arrival {
                super::schedule::Arrival::Constant => "constant",
                super::schedule::Arrival::Poisson => "poisson",
            }
        ),
        None => "closed loop".into(),
    }
}

pub fn text(plan: &RunPlan, o: &Outcome, s: &Summary) -> String {
    let t = &o.total;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "uringd bench: {:.2}s, {} thread(s) on {}, {} connection(s), pipeline {}, {}{}",
        s.duration_s,
        plan.threads,
        plan.backend.kind.name(),
        plan.conns,
        plan.pipeline,
        mode(plan),
        if o.interrupted { " (interrupted)" } else { "" }
    );
    for tg in &plan.targets {
        let _ = writeln!(out, "  {}", tg.url);
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  Requests   {} in {:.2}s = {:.1} req/s, {} error(s)",
        t.completed,
        s.duration_s,
        s.rps,
        t.errors.total()
    );
    let _ = writeln!(
        out,
        "  Transfer   {} read ({}/s)",
        bytes(t.bytes as f64),
        bytes(t.bytes as f64 / s.duration_s)
    );
    if plan.rate.is_some() {
        let _ = writeln!(
            out,
            "  Latency    corrected (from each request's intended send time):"
        );
        let _ = writeln!(out, "             {}", latency_text(&s.corrected));
        let _ = writeln!(
            out,
            "             uncorrected (from the actual send, as wrk reports):"
        );
        let _ = writeln!(out, "             {}", latency_text(&s.uncorrected));
    } else {
        let _ = writeln!(out, "  Latency    {}", latency_text(&s.corrected));
        let _ = writeln!(
            out,
            "             closed loop: a slow response also delays the requests behind it, which are then never measured (use -R RATE for corrected latency)"
        );
    }
    let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    let status: Vec<String> = classes
        .iter()
        .zip(t.status)
        .filter(|(_, n)| *n > 0)
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "  Status     {}",
        if status.is_empty() {
            "-".into()
        } else {
            status.join(", ")
        }
    );
    let e = &t.errors;
    let _ = writeln!(
        out,
        "  Errors     connect {}, read {}, write {}, timeout {}, parse {}",
        e.connect, e.read, e.write, e.timeout, e.parse
    );
    let cpu_max = s.cpu.iter().cloned().fold(0.0, f64::max);
    let mut gen_line = format!("busiest thread {:.0}% CPU", cpu_max * 100.0);
    if let Some(l) = &s.lag {
        let _ = write!(
            gen_line,
            ", schedule lag p99 {} max {}",
            ms(l.p99 as f64),
            ms(l.max as f64)
        );
    }
    let _ = writeln!(
        out,
        "  Generator  {}: {gen_line}",
        if s.saturated { "SATURATED" } else { "ok" }
    );
    for r in &s.reasons {
        let _ = writeln!(out, "             {r}");
    }
    if s.waited > 0 {
        let _ = writeln!(
            out,
            "  Note       {} request(s) found every connection busy when due (longest wait {}); the corrected latency includes that wait",
            s.waited,
            ms(s.max_wait_us as f64)
        );
    }
    if s.unsent > 0 {
        let _ = writeln!(
            out,
            "  Note       {} scheduled request(s) were never sent: the server did not keep up with -R (or add -c)",
            s.unsent
        );
    }
    out
}

pub fn json(plan: &RunPlan, o: &Outcome, s: &Summary) -> Value {
    let t = &o.total;
    let e = &t.errors;
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    json!({
        "urls": plan.targets.iter().map(|t| t.url.clone()).collect::<Vec<_>>(),
        "mode": if plan.rate.is_some() { "open" } else { "closed" },
        "target_rate": plan.rate,
        "threads": plan.threads,
        "backend": plan.backend.kind.name(),
        "connections": plan.conns,
        "pipeline": plan.pipeline,
        "requests": t.completed,
        "duration_s": round(s.duration_s),
        "requests_per_sec": round(s.rps),
        "bytes": t.bytes,
        "bytes_per_sec": round(t.bytes as f64 / s.duration_s),
        "latency_us": latency_json(&s.corrected),
        "uncorrected_latency_us": latency_json(&s.uncorrected),
        "errors": {
            "connect": e.connect, "read": e.read, "write": e.write,
            "timeout": e.timeout, "parse": e.parse, "total": e.total(),
        },
        "status": {
            "1xx": t.status[0], "2xx": t.status[1], "3xx": t.status[2],
            "4xx": t.status[3], "5xx": t.status[4],
        },
        "generator_saturated": s.saturated,
        "generator": {
            "reasons": s.reasons,
            "cpu_utilization": s.cpu.iter().map(|c| round(*c)).collect::<Vec<_>>(),
            "schedule_lag_us": s.lag.as_ref().map(latency_json),
            "waited_for_connection": s.waited,
            "max_connection_wait_us": s.max_wait_us,
            "unsent": s.unsent,
        },
        "interrupted": o.interrupted,
        "max_recordable_us": MAX_US,
    })
}
