//! What `/_uringd/apps` shows: each app's instances as the supervisor last saw them (pid,
//! state, uptime, respawns, harakiri kills), with what the workers count in the pool's
//! slots (requests finished, in flight) and the memory of each instance's process group,
//! read when the page is asked for. The supervisor writes the list every loop turn under a
//! lock only the admin page also takes: nothing on the request path reads it.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};

use crate::shield::slots::Slots;

#[derive(Clone, Debug)]
pub struct InstanceReport {
    pub n: usize,
    /// The shim's pid (its process group holds the app's).
    pub pid: u32,
    /// "starting", "ready", "recycling", "dead" (waiting to be started again) or
    /// "stopped" (cheaper mode's spare slot); the page says "busy" for a ready one with
    /// every slot taken.
    pub state: &'static str,
    pub started: Instant,
    pub respawns: u64,
    pub harakiri_kills: u64,
}

#[derive(Clone, Debug)]
pub struct AppReport {
    pub name: String,
    pub concurrency: u32,
    pub min_processes: usize,
    pub max_processes: usize,
    pub instances: Vec<InstanceReport>,
}

/// The list the supervisor keeps current, shared with every generation's workers.
pub type Shared = Arc<Mutex<Vec<AppReport>>>;

/// Resident memory in KiB of every process, by process group (one pass over /proc).
pub fn rss_by_group() -> std::collections::HashMap<u32, u64> {
    let mut by = std::collections::HashMap::new();
    let page_kib = 4; // x86_64 and aarch64 with 4 KiB pages, as uringd is built for
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return by;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command's closing parenthesis: state, ppid, pgrp, ...
        let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) else {
            continue;
        };
        let Some(pgrp) = after
            .split_whitespace()
            .nth(2)
            .and_then(|g| g.parse::<u32>().ok())
        else {
            continue;
        };
        let rss = std::fs::read_to_string(format!("/proc/{pid}/statm"))
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0);
        *by.entry(pgrp).or_insert(0) += rss * page_kib;
    }
    by
}

/// One instance as the pages show it: the supervisor's view with the workers' counts.
#[derive(Clone, Debug)]
pub struct Row {
    pub n: usize,
    pub pid: u32,
    pub app_pid: Option<u32>,
    /// The supervisor's state, or "busy" for a ready one with every slot taken.
    pub state: &'static str,
    pub requests: u64,
    pub in_flight: u32,
    pub rss_kib: u64,
    pub uptime_s: f64,
    pub respawns: u64,
    pub harakiri_kills: u64,
}

#[derive(Clone, Debug)]
pub struct AppRows {
    pub name: String,
    pub concurrency: u32,
    pub min_processes: usize,
    pub max_processes: usize,
    pub rows: Vec<Row>,
}

/// What every apps page renders: the supervisor's list (`shield.apps`) with each app's
/// pool slots from `pools` (the generation's pool names, by index), and one pass over
/// /proc for the process groups' memory.
pub fn view(shield: &crate::shield::Shield, pools: &[String]) -> Vec<AppRows> {
    let apps = shield.apps.lock().map(|l| l.clone()).unwrap_or_default();
    if apps.is_empty() {
        return Vec::new();
    }
    let rss = rss_by_group();
    let now = Instant::now();
    apps.iter()
        .map(|a| {
            let slots: Option<Arc<Slots>> = pools
                .iter()
                .position(|p| p.strip_prefix("app:") == Some(a.name.as_str()))
                .and_then(|i| shield.slots.get(i).cloned().flatten());
            let rows = a
                .instances
                .iter()
                .map(|i| {
                    let (requests, in_flight) = slots
                        .as_ref()
                        .map_or((0, 0), |s| (s.served(i.n), s.in_flight(i.n)));
                    // The app runs in the group its shim's child leads; the shim's own
                    // group holds the shim alone.
                    let app_pid = (i.pid != 0).then(|| child_pid(i.pid)).flatten();
                    Row {
                        n: i.n,
                        pid: i.pid,
                        app_pid,
                        state: if i.state == "ready" && in_flight >= a.concurrency {
                            "busy"
                        } else {
                            i.state
                        },
                        requests,
                        in_flight,
                        rss_kib: app_pid.and_then(|c| rss.get(&c).copied()).unwrap_or(0),
                        uptime_s: if i.pid == 0 {
                            0.0
                        } else {
                            now.duration_since(i.started).as_secs_f64()
                        },
                        respawns: i.respawns,
                        harakiri_kills: i.harakiri_kills,
                    }
                })
                .collect();
            AppRows {
                name: a.name.clone(),
                concurrency: a.concurrency,
                min_processes: a.min_processes,
                max_processes: a.max_processes,
                rows,
            }
        })
        .collect()
}

/// `/_uringd/apps`: one object per app.
pub fn json(apps: &[AppRows]) -> Value {
    let list: Vec<Value> = apps
        .iter()
        .map(|a| {
            let instances: Vec<Value> = a
                .rows
                .iter()
                .map(|i| {
                    json!({
                        "instance": i.n,
                        "pid": i.pid,
                        "app_pid": i.app_pid,
                        "state": i.state,
                        "requests": i.requests,
                        "in_flight": i.in_flight,
                        "rss_kib": i.rss_kib,
                        "uptime_s": i.uptime_s,
                        "respawns": i.respawns,
                        "harakiri_kills": i.harakiri_kills,
                    })
                })
                .collect();
            json!({
                "name": a.name,
                "concurrency": a.concurrency,
                "min_processes": a.min_processes,
                "max_processes": a.max_processes,
                "instances": instances,
            })
        })
        .collect();
    json!({ "apps": list })
}

/// The shim's one child: the app's first process, leader of the app's group.
pub fn child_pid(shim: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{shim}/task/{shim}/children")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// The same in Prometheus text: instances by state, and per instance its requests since it
/// started, what it has in flight, its memory, uptime, restarts and harakiri kills, and an
/// info series with its pid and state. Nothing without apps.
pub fn prometheus(apps: &[AppRows]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if apps.is_empty() {
        return out;
    }
    let families = [
        (
            "uringd_app_instances",
            "gauge",
            "Instances of each [[app]] by state.",
        ),
        (
            "uringd_app_requests_total",
            "counter",
            "Requests an instance finished since it started.",
        ),
        (
            "uringd_app_in_flight",
            "gauge",
            "Requests an instance has in flight.",
        ),
        (
            "uringd_app_rss_bytes",
            "gauge",
            "Resident memory of an instance's process group.",
        ),
        (
            "uringd_app_uptime_seconds",
            "gauge",
            "Time since an instance was started.",
        ),
        (
            "uringd_app_respawns_total",
            "counter",
            "Times an instance was started again.",
        ),
        (
            "uringd_app_harakiri_total",
            "counter",
            "Instances killed because a request outlived harakiri.",
        ),
        (
            "uringd_app_instance_info",
            "gauge",
            "An instance's pid (its shim's) and state, always 1.",
        ),
    ];
    let mut lines: Vec<Vec<String>> = vec![Vec::new(); families.len()];
    for a in apps {
        for state in STATES {
            let n = a.rows.iter().filter(|i| i.state == state).count();
            lines[0].push(format!(
                "uringd_app_instances{{app=\"{}\",state=\"{state}\"}} {n}",
                a.name
            ));
        }
        for i in &a.rows {
            let l = format!("app=\"{}\",instance=\"{}\"", a.name, i.n);
            let values = [
                i.requests.to_string(),
                i.in_flight.to_string(),
                (i.rss_kib * 1024).to_string(),
                format!("{:.3}", i.uptime_s),
                i.respawns.to_string(),
                i.harakiri_kills.to_string(),
            ];
            for (k, v) in values.iter().enumerate() {
                lines[k + 1].push(format!("{}{{{l}}} {v}", families[k + 1].0));
            }
            lines[7].push(format!(
                "uringd_app_instance_info{{{l},pid=\"{}\",state=\"{}\"}} 1",
                i.pid, i.state
            ));
        }
    }
    for ((name, kind, help), ls) in families.iter().zip(lines) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for l in ls {
            let _ = writeln!(out, "{l}");
        }
    }
    out
}

/// Every state an instance can be shown in.
pub const STATES: [&str; 6] = ["starting", "ready", "busy", "recycling", "dead", "stopped"];
