//! `--sweep START:END:STEP --slo D`: a series of fixed-rate runs, and the highest rate whose
//! p99 (corrected) stays within the objective: the knee of the latency curve.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::cli::{BenchArgs, parse_sweep};
use super::coord;
use super::report::{self, Latency, ms};
use super::svg::{Plot, Series, render};
use super::worker::RunPlan;
use crate::config::units::{DurationValue, parse_duration};

/// A rate passes when it got this share of its target throughput...
const RATE_ACCURACY: f64 = 0.97;
/// ...and the sweep stops after this many rates in a row missed the objective.
const MISSES_TO_STOP: usize = 2;

struct Step {
    rate: f64,
    rps: f64,
    lat: Latency,
    errors: u64,
    saturated: bool,
    generator: &'static str,
    ok: bool,
}

/// Checks the sweep's arguments; returns the rates and the objective in microseconds.
pub fn check(a: &BenchArgs, spec: &str) -> Result<(Vec<f64>, u64), String> {
    let rates = parse_sweep(spec)?;
    let slo = a
        .slo
        .as_deref()
        .ok_or("--sweep needs --slo, the p99 objective, e.g. --slo 10ms")?;
    let slo_us = parse_duration(&DurationValue::Text(slo.to_string()))
        .map_err(|e| format!("--slo: {e}"))?
        .as_micros() as u64;
    if a.hlog.is_some() || a.hgrm.is_some() {
        return Err("--hlog and --hgrm describe one run; use them without --sweep".into());
    }
    if a.rate.is_some() {
        return Err("--sweep sets the rate itself; drop -R".into());
    }
    Ok((rates, slo_us))
}

pub fn run(a: &BenchArgs, base: &RunPlan, spec: &str) -> Result<i32, String> {
    let (rates, slo_us) = check(a, spec)?;
    let mut steps: Vec<Step> = Vec::new();
    let mut misses = 0;
    if !a.json {
        crate::outln!(
            "uringd bench sweep: {} rate(s), {:.1}s each, objective p99 <= {}",
            rates.len(),
            base.duration_ns as f64 / 1e9,
            ms(slo_us as f64)
        );
        crate::outln!(
            "{:>12} {:>12} {:>10} {:>10} {:>10} {:>8}  {:<20} generator",
            "rate",
            "achieved",
            "p50",
            "p99",
            "p99.9",
            "errors",
            "verdict (SLO)"
        );
    }
    for r in rates {
        let mut p = base.clone();
        p.rate = Some(r);
        let p = Arc::new(p);
        let o = coord::run(p.clone(), None, true)?;
        let s = report::summarize(&p, &o);
        let errors = o.total.errors.total();
        // Judged against the objective alone; the generator's health is reported beside it.
        let ok = s.corrected.p99 <= slo_us && s.rps >= r * RATE_ACCURACY && errors == 0;
        let verdict = if ok {
            "ok".to_string()
        } else if s.corrected.p99 > slo_us {
            "p99 over objective".into()
        } else if errors > 0 {
            "errors".into()
        } else {
            "rate not reached".into()
        };
        if !a.json {
            crate::outln!(
                "{:>12.0} {:>12.1} {:>10} {:>10} {:>10} {:>8}  {verdict:<20} {}",
                r,
                s.rps,
                ms(s.corrected.p50 as f64),
                ms(s.corrected.p99 as f64),
                ms(s.corrected.p999 as f64),
                errors,
                s.verdict.name()
            );
        }
        steps.push(Step {
            rate: r,
            rps: s.rps,
            lat: s.corrected,
            errors,
            saturated: s.saturated,
            generator: s.verdict.name(),
            ok,
        });
        misses = if ok { 0 } else { misses + 1 };
        if misses >= MISSES_TO_STOP || o.interrupted {
            break;
        }
        // Let the server settle between rates.
        std::thread::sleep(Duration::from_millis(300));
    }
    let knee = steps
        .iter()
        .filter(|s| s.ok)
        .map(|s| s.rate)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    if let Some(path) = &a.svg {
        std::fs::write(path, plot(&steps, slo_us))
            .map_err(|e| format!("--svg {}: {e}", path.display()))?;
    }
    if a.json {
        let v = json!({
            "slo_us": slo_us,
            "max_rate_within_slo": knee,
            "steps": steps.iter().map(|s| json!({
                "rate": s.rate,
                "requests_per_sec": (s.rps * 1000.0).round() / 1000.0,
                "latency_us": {"p50": s.lat.p50, "p90": s.lat.p90, "p99": s.lat.p99, "p999": s.lat.p999, "max": s.lat.max},
                "errors": s.errors,
                "generator_saturated": s.saturated,
                "generator": s.generator,
                "ok": s.ok,
            })).collect::<Vec<_>>(),
        });
        crate::outln!("{v}");
    } else {
        let mut out = String::new();
        match knee {
            Some(k) => {
                let _ = writeln!(
                    out,
                    "highest rate within p99 <= {}: {k} req/s",
                    ms(slo_us as f64)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "no rate met p99 <= {}; start the sweep lower",
                    ms(slo_us as f64)
                );
            }
        }
        let unhealthy: Vec<String> = steps
            .iter()
            .filter(|s| s.saturated)
            .map(|s| format!("{:.0}", s.rate))
            .collect();
        if !unhealthy.is_empty() {
            let _ = writeln!(
                out,
                "note: the generator did not keep up at {} req/s (see its column): those steps' latencies include its own delay; run the sweep with more -t or on its own CPUs to tell",
                unhealthy.join(", ")
            );
        }
        crate::out!("{out}");
    }
    Ok(0)
}

fn plot(steps: &[Step], slo_us: u64) -> String {
    let pts = |f: fn(&Latency) -> u64| {
        steps
            .iter()
            .map(|s| (s.rate, f(&s.lat) as f64 / 1000.0))
            .collect::<Vec<_>>()
    };
    let first = steps.first().map_or(0.0, |s| s.rate);
    let last = steps.last().map_or(1.0, |s| s.rate);
    let ticks = (0..=5)
        .map(|k| {
            let x = first + (last - first) * k as f64 / 5.0;
            (x, format!("{x:.0}"))
        })
        .collect();
    render(&Plot {
        title: "Latency against request rate".into(),
        x_label: "requests per second (target)".into(),
        y_label: "latency (ms, corrected)".into(),
        x_ticks: ticks,
        series: vec![
            Series {
                name: "p99".into(),
                color: "#d62728",
                dashed: false,
                points: pts(|l| l.p99),
            },
            Series {
                name: "p50".into(),
                color: "#1f77b4",
                dashed: true,
                points: pts(|l| l.p50),
            },
        ],
        hline: Some((
            slo_us as f64 / 1000.0,
            format!("objective {}", ms(slo_us as f64)),
        )),
    })
}
