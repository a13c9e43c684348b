//! `uringd bench`: an io_uring load generator on the server's worker model, with
//! coordinated-omission correction, a self-check, and HdrHistogram output.

pub mod cli;
mod coord;
mod hlog;
mod reader;
mod report;
mod schedule;
mod svg;
mod sweep;
mod tally;
mod target;
mod tls;
mod usage;
mod worker;

use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

pub use cli::BenchArgs;

use crate::stats::View;
use crate::stats::render::hgrm;

/// Runs the command; returns the process exit code.
pub fn run(a: &BenchArgs) -> i32 {
    match run_inner(a) {
        Ok(code) => code,
        Err(e) => {
            crate::say!("uringd bench: {e}");
            1
        }
    }
}

/// Each server must answer a plain connect before the run, so a typo in a port is one
/// clear error rather than a storm of counted connect failures.
fn preflight(plan: &worker::RunPlan) -> Result<(), String> {
    let limit = Duration::from_nanos(plan.timeout_ns).min(Duration::from_secs(5));
    for g in &plan.groups {
        let t = &plan.targets[g[0]];
        TcpStream::connect_timeout(&t.addr, limit)
            .map_err(|e| format!("cannot connect to {} ({}): {e}", t.addr, t.url))?;
    }
    Ok(())
}

fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

fn run_inner(a: &BenchArgs) -> Result<i32, String> {
    let plan = cli::plan(a)?;
    // Argument errors first: no connection is needed to find them.
    match (&a.sweep, &a.slo) {
        (Some(spec), _) => {
            sweep::check(a, spec)?;
        }
        (None, Some(_)) => {
            return Err("--slo is the objective for --sweep; add --sweep START:END:STEP".into());
        }
        (None, None) => {}
    }
    preflight(&plan)?;
    crate::say!(
        "uringd bench: backend {}: {}",
        plan.backend.kind.name(),
        plan.backend.reason
    );
    if let Some(spec) = &a.sweep {
        return sweep::run(a, &plan, spec);
    }
    let hlog = match &a.hlog {
        Some(p) => Some(
            hlog::HlogWriter::create(p, &command_line(), Duration::from_nanos(plan.warmup_ns))
                .map_err(|e| format!("--hlog {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let plan = Arc::new(plan);
    let o = coord::run(plan.clone(), hlog, true)?;
    let s = report::summarize(&plan, &o);
    let spectrum = hgrm(&View {
        hist: o.total.corrected.clone(),
        sum_us: 0,
    });
    if let Some(p) = &a.hgrm {
        std::fs::write(p, &spectrum).map_err(|e| format!("--hgrm {}: {e}", p.display()))?;
    }
    if let Some(p) = &a.svg {
        let mut series = vec![svg::Series {
            name: if plan.rate.is_some() {
                "corrected"
            } else {
                "latency"
            }
            .into(),
            color: "#1f77b4",
            dashed: false,
            points: svg::spectrum(&o.total.corrected),
        }];
        if plan.rate.is_some() {
            series.push(svg::Series {
                name: "uncorrected".into(),
                color: "#ff7f0e",
                dashed: true,
                points: svg::spectrum(&o.total.uncorrected),
            });
        }
        let doc = svg::render(&svg::Plot {
            title: format!("Latency by percentile: {}", plan.targets[0].url),
            x_label: "percentile".into(),
            y_label: "latency (ms)".into(),
            x_ticks: svg::percentile_ticks(),
            series,
            hline: None,
        });
        std::fs::write(p, doc).map_err(|e| format!("--svg {}: {e}", p.display()))?;
    }
    if a.json {
        crate::outln!("{}", report::json(&plan, &o, &s));
    } else {
        // The summary first (what a person reads), the full spectrum after it.
        crate::out!("{}", report::text(&plan, &o, &s));
        crate::outln!();
        crate::outln!(
            "Percentile spectrum ({}), milliseconds:",
            if plan.rate.is_some() {
                "corrected"
            } else {
                "closed loop"
            }
        );
        crate::out!("{spectrum}");
    }
    Ok(0)
}
