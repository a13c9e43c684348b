//! Shared by the `[[app]]` tests: a gunicorn app config, the instances' pids from uringd's
//! log, `/_uringd/apps`, and a steady closed-loop load that counts failures.
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

use super::common::*;

pub fn app_config(processes: usize, extra: &str) -> String {
    let dir = std::env::current_dir().unwrap().join("tests/backends");
    format!(
        "[[app]]\nname = \"web\"\ncommand = [\"gunicorn\", \"--workers\", \"1\", \"--chdir\", \"{}\", \"--bind\", \"unix:{{socket}}\", \"echo_app:app\"]\nprocesses = {processes}\nenv = {{ PYTHONDONTWRITEBYTECODE = \"1\", ECHO_SERVER = \"gunicorn\" }}\n{extra}\n[[route]]\nprefix = \"/\"\nupstream = \"app:web\"\n",
        dir.display()
    )
}

/// The pid the app reports for a request (the gunicorn worker that served it); status 0
/// for an answer cut short (the instance died mid-response).
pub fn served_by(s: &Server, path: &str) -> (u16, Option<u64>) {
    let Some(r) = try_request(s.addr, path) else {
        return (0, None);
    };
    let pid = serde_json::from_slice::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|v| v["pid"].as_u64());
    (r.status, pid)
}

/// The shim pids of the instances, by instance number, from the "ready" lines uringd
/// printed (in the order the instances became ready).
pub fn instance_pids(s: &Server, n: usize) -> Vec<u32> {
    let mut found: Vec<(usize, u32)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    for l in s.startup.iter() {
        if let Some(p) = ready_line(l) {
            found.push(p);
        }
    }
    while found.len() < n && Instant::now() < deadline {
        if let Ok(l) = s.log.recv_timeout(Duration::from_millis(200))
            && let Some(p) = ready_line(&l)
        {
            found.push(p);
        }
    }
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// (instance, pid) of an "instance N (pid P) ready in" line.
pub fn ready_line(line: &str) -> Option<(usize, u32)> {
    let rest = line.split("instance ").nth(1)?;
    let (n, rest) = rest.split_once(" (pid ")?;
    let (pid, rest) = rest.split_once(')')?;
    rest.starts_with(" ready in ")
        .then(|| Some((n.parse().ok()?, pid.parse().ok()?)))
        .flatten()
}

pub fn ready_pid(line: &str) -> Option<u32> {
    ready_line(line).map(|(_, p)| p)
}

/// The app's own process (the shim's child): the leader of its process group.
pub fn app_master(shim: u32) -> u32 {
    let out = Command::new("pgrep")
        .arg("-P")
        .arg(shim.to_string())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no child of shim {shim}"))
}

pub fn steady_load(
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(usize, usize)> {
    std::thread::spawn(move || {
        let (mut ok, mut failed) = (0, 0);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match request(addr, "GET", "/x", "Connection: close\r\n").status {
                200 => ok += 1,
                _ => failed += 1,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (ok, failed)
    })
}

pub fn apps_json(s: &Server) -> serde_json::Value {
    let r = request(s.admin.unwrap(), "GET", "/_uringd/apps", "");
    serde_json::from_slice(&r.body).unwrap()
}

/// What `uringd serve` with `cfg` says on stderr when it fails to start.
pub fn start_error(cfg: &str) -> String {
    let d = TempDir::new("apps-bad");
    let p = d.0.join("u.toml");
    std::fs::write(&p, cfg).unwrap();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "off",
            "--workers",
            "1",
            "--config",
        ])
        .arg(&p)
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}
