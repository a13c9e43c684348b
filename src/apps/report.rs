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
    /// "starting", "ready", "recycling" or "dead" (waiting to be started again); the page
    /// says "busy" for a ready one with every slot taken.
    pub state: &'static str,
    pub started: Instant,
    pub respawns: u64,
    pub harakiri_kills: u64,
}

#[derive(Clone, Debug)]
pub struct AppReport {
    pub name: String,
    pub concurrency: u32,
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

/// The page: one object per app, `slots` being its pool's (by app name order).
pub fn json(apps: &[AppReport], slots: &dyn Fn(&str) -> Option<Arc<Slots>>) -> Value {
    let rss = rss_by_group();
    let now = Instant::now();
    let list: Vec<Value> = apps
        .iter()
        .map(|a| {
            let s = slots(&a.name);
            let instances: Vec<Value> = a
                .instances
                .iter()
                .map(|i| {
                    let (served, in_flight) = s
                        .as_ref()
                        .map_or((0, 0), |s| (s.served(i.n), s.in_flight(i.n)));
                    let state = if i.state == "ready" && in_flight >= a.concurrency {
                        "busy"
                    } else {
                        i.state
                    };
                    // The app runs in the group its shim's child leads; the shim's own
                    // group holds the shim alone.
                    let app_rss: u64 = child_pid(i.pid).and_then(|c| rss.get(&c).copied()).unwrap_or(0);
                    json!({
                        "instance": i.n,
                        "pid": i.pid,
                        "app_pid": child_pid(i.pid),
                        "state": state,
                        "requests": served,
                        "in_flight": in_flight,
                        "rss_kib": app_rss,
                        "uptime_s": if i.state == "dead" { 0.0 } else { now.duration_since(i.started).as_secs_f64() },
                        "respawns": i.respawns,
                        "harakiri_kills": i.harakiri_kills,
                    })
                })
                .collect();
            json!({ "name": a.name, "concurrency": a.concurrency, "instances": instances })
        })
        .collect();
    json!({ "apps": list })
}

/// The shim's one child: the app's first process, leader of the app's group.
pub fn child_pid(shim: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{shim}/task/{shim}/children")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}
