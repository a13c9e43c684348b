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

/// The generator's verdict on itself, from what it measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Requests went out on schedule and no thread was near its CPU limit.
    KeptUp,
    /// Requests that had a free connection went out late (schedule lag p99 over the limit),
    /// though no thread was CPU-bound: the machine (other processes, contention) delayed it.
    BehindSchedule,
    /// A thread was busy nearly all the time: the generator may be the limit.
    CpuBound,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::KeptUp => "kept up",
            Verdict::BehindSchedule => "behind schedule",
            Verdict::CpuBound => "cpu limit",
        }
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
    pub verdict: Verdict,
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
    let mut cpu_bound = false;
    for (t, c) in cpu.iter().enumerate() {
        if *c >= CPU_SATURATED {
            cpu_bound = true;
            reasons.push(format!(
                "thread {t} was busy {:.0}% of the time (limit {:.0}%): the generator, not the server, may be the limit; add -t, or give it its own CPUs",
                c * 100.0,
                CPU_SATURATED * 100.0
            ));
        }
    }
    let lag = plan.rate.map(|_| latency_of(&lag));
    let mut behind = false;
    if let Some(l) = &lag
        && l.p99 > LAG_SATURATED_US
    {
        behind = true;
        let busiest = cpu.iter().cloned().fold(0.0, f64::max);
        let why = if cpu_bound {
            "it ran out of CPU".to_string()
        } else {
            format!(
                "with its busiest thread at only {:.0}% CPU, the machine kept it waiting (other processes, CPU contention), not its own work",
                busiest * 100.0
            )
        };
        reasons.push(format!(
            "requests that had a free connection went out late: the lag p99 is over the {} limit; {why}; each request's lag is part of its corrected latency",
            ms(LAG_SATURATED_US as f64),
        ));
    }
    let verdict = match (cpu_bound, behind) {
        (true, _) => Verdict::CpuBound,
        (false, true) => Verdict::BehindSchedule,
        (false, false) => Verdict::KeptUp,
    };
    Summary {
        duration_s,
        rps: o.total.completed as f64 / duration_s,
        corrected: latency_of(&o.total.corrected),
        uncorrected: latency_of(&o.total.uncorrected),
        lag,
        waited: o.gens.iter().map(|g| g.waited).sum(),
        max_wait_us: o.gens.iter().map(|g| g.max_wait_ns).max().unwrap_or(0) / 1000,
        unsent: o.gens.iter().map(|g| g.unsent).sum(),
        saturated: verdict != Verdict::KeptUp,
        verdict,
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
    let _ = writeln!(out, "  Generator  {}", generator_line(s));
    for r in &s.reasons {
        let _ = writeln!(out, "             {r}");
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
        "  Errors     connect {}, read {}, write {}, timeout {}, parse {}, tls {}",
        e.connect, e.read, e.write, e.timeout, e.parse, e.tls
    );
    if plan.tls.is_some() {
        let [full, resumed] = t.handshakes;
        let _ = writeln!(
            out,
            "  TLS        {} handshakes ({full} full, {resumed} resumed), {:.0}/s",
            full + resumed,
            (full + resumed) as f64 / s.duration_s
        );
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

/// The generator's verdict and what it rests on.
fn generator_line(s: &Summary) -> String {
    let cpu_max = s.cpu.iter().cloned().fold(0.0, f64::max);
    let measured = match &s.lag {
        Some(l) => format!(
            "schedule lag p99 {} (max {}), busiest thread {:.0}% CPU",
            ms(l.p99 as f64),
            ms(l.max as f64),
            cpu_max * 100.0
        ),
        None => format!("busiest thread {:.0}% CPU", cpu_max * 100.0),
    };
    match s.verdict {
        Verdict::KeptUp => format!("kept up: {measured}"),
        Verdict::BehindSchedule => format!("fell behind its schedule: {measured}"),
        Verdict::CpuBound => format!("at its CPU limit: {measured}"),
    }
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
            "timeout": e.timeout, "parse": e.parse, "tls": e.tls, "total": e.total(),
        },
        "tls_handshakes": { "full": t.handshakes[0], "resumed": t.handshakes[1] },
        "status": {
            "1xx": t.status[0], "2xx": t.status[1], "3xx": t.status[2],
            "4xx": t.status[3], "5xx": t.status[4],
        },
        "generator_saturated": s.saturated,
        "generator": {
            "verdict": s.verdict.name(),
            "limits": { "schedule_lag_p99_us": LAG_SATURATED_US, "cpu_utilization": CPU_SATURATED },
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
