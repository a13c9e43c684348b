//! The doctor's two outputs: a readable report, and stable JSON with the same facts.

use std::fmt::Write;

use serde_json::{Map, Value, json};

use super::facts::{Facts, SYSCTLS};
use super::findings::{Finding, Grade};
use super::sys::Limit;

const SECTIONS: &[&str] = &["io_uring", "limits", "network", "cpus and memory", "nics"];

pub fn text(x: &Facts, findings: &[Finding]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "uringd doctor: Linux {} on {} CPU(s)",
        x.kernel.as_deref().unwrap_or("?"),
        x.cpus_online
            .as_deref()
            .map_or(0, super::sys::count_cpu_list)
    );
    for s in SECTIONS {
        let _ = writeln!(o, "\n{s}");
        for fd in findings.iter().filter(|f| f.section == *s) {
            let tag = format!("[{}]", fd.grade.name());
            let _ = writeln!(o, "  {tag:<10}{} = {}: {}", fd.key, fd.value, fd.meaning);
            if let Some(fix) = &fd.fix {
                let _ = writeln!(o, "  {:<10}fix: {fix}", "");
            }
        }
    }
    let (ok, adv, prob) = counts(findings);
    let _ = writeln!(o, "\n{ok} ok, {adv} advice, {prob} problem(s)");
    o
}

fn counts(findings: &[Finding]) -> (usize, usize, usize) {
    let n = |g| findings.iter().filter(|f| f.grade == g).count();
    (n(Grade::Ok), n(Grade::Advice), n(Grade::Problem))
}

/// A sysctl as JSON: a number, an array of numbers ("32768 60999"), or the raw string.
fn sysctl_value(raw: Option<&str>) -> Value {
    let Some(raw) = raw else { return Value::Null };
    let parts: Vec<&str> = raw.split_whitespace().collect();
    let nums: Option<Vec<u64>> = parts.iter().map(|p| p.parse().ok()).collect();
    match nums {
        Some(v) if v.len() == 1 => json!(v[0]),
        Some(v) if !v.is_empty() => json!(v),
        _ => json!(raw),
    }
}

fn limit_json(l: Option<Limit>) -> Value {
    let v = |n: Option<u64>| n.map_or(json!("unlimited"), |n| json!(n));
    match l {
        Some(l) => json!({"soft": v(l.soft), "hard": v(l.hard)}),
        None => Value::Null,
    }
}

pub fn json(x: &Facts, findings: &[Finding]) -> Value {
    let mut sysctls = Map::new();
    for (i, (key, _)) in SYSCTLS.iter().enumerate() {
        sysctls.insert(
            key.to_string(),
            sysctl_value(x.sysctls.get(i).and_then(|s| s.as_deref())),
        );
    }
    let features = match &x.probe {
        Ok(p) => json!({
            "recv_multishot": p.recv_multishot,
            "accept_multishot": p.accept_multishot,
            "provided_buffer_rings": p.provided_buffer_rings,
            "incremental_buffers": p.incremental_buffers,
            "bundles": p.bundles,
            "send_zc": p.send_zc,
            "splice": p.splice,
            "single_issuer": p.single_issuer,
            "defer_taskrun": p.defer_taskrun,
            "coop_taskrun": p.coop_taskrun,
            "sqpoll": p.sqpoll,
            "ext_arg": p.ext_arg,
            "fixed_files": p.fixed_files,
            "napi": p.napi,
            "zero_copy_receive": p.zero_copy_receive,
        }),
        Err(_) => Value::Null,
    };
    let (ok, adv, prob) = counts(findings);
    json!({
        "kernel": x.kernel,
        "io_uring": {
            "available": x.probe.is_ok(),
            "reason": x.probe.as_ref().err(),
            "io_uring_disabled": x.sysctl_u64("io_uring_disabled"),
        },
        "backend": x.backend.as_ref().map(|c| json!({
            "auto": c.kind.name(),
            "reason": c.reason,
        })),
        "features": features,
        "limits": {"nofile": limit_json(x.nofile), "memlock": limit_json(x.memlock)},
        "sysctls": sysctls,
        "cpus": {
            "online": x.cpus_online,
            "count": x.cpus_online.as_deref().map_or(0, super::sys::count_cpu_list),
            "isolated": x.isolated,
            "nohz_full": x.nohz_full,
            "transparent_hugepages": x.thp.as_deref().and_then(super::sys::bracketed),
        },
        "nics": x.nics.iter().map(|n| json!({
            "name": n.name,
            "rx_queues": n.rx_queues,
            "tx_queues": n.tx_queues,
            "irqs": n.irqs.iter().map(|(i, a)| json!({"irq": i, "cpus": a})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "findings": findings.iter().map(|f| json!({
            "section": f.section,
            "key": f.key,
            "grade": f.grade.name(),
            "value": f.value,
            "meaning": f.meaning,
            "fix": f.fix,
        })).collect::<Vec<_>>(),
        "summary": {"ok": ok, "advice": adv, "problem": prob},
    })
}
