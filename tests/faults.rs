//! Faults: a worker that panics is restarted on its CPU while its listener keeps queueing
//! connections; load keeps flowing through it all.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{BIN, Server};

/// Outcome counts of a stream of one-request connections.
#[derive(Default, Debug)]
struct Tally {
    ok: u64,
    /// EOF or reset before a response: allowed only for a connection the dying worker held.
    closed: u64,
    refused: u64,
    hung: u64,
    other: u64,
}

fn one_request(addr: SocketAddr, t: &mut Tally) {
    let mut s = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            t.refused += 1;
            return;
        }
        Err(_) => {
            t.other += 1;
            return;
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    if s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        t.closed += 1;
        return;
    }
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) if out.starts_with(b"HTTP/1.1 200 ") => t.ok += 1,
        Ok(_) if out.is_empty() => t.closed += 1,
        Ok(_) => t.other += 1,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => t.closed += 1,
        Err(_) => t.hung += 1,
    }
}

/// Runs one-request connections against `addr` until `stop`.
fn load(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Tally> {
    std::thread::spawn(move || {
        let mut t = Tally::default();
        while !stop.load(Ordering::Relaxed) {
            one_request(addr, &mut t);
        }
        t
    })
}

/// The CPUs a thread of `pid` named `name` may run on (its Cpus_allowed_list).
fn thread_cpus(pid: u32, name: &str) -> Option<String> {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let status = std::fs::read_to_string(dir.join("status")).ok()?;
            return status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string());
        }
    }
    None
}

fn wait_line(s: &Server, what: &str, within: Duration) -> Option<String> {
    let end = Instant::now() + within;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match s.log.recv_timeout(left) {
            Ok(l) if l.contains(what) => return Some(l),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn a_panicking_worker_is_restarted_on_its_cpu_and_no_connection_is_refused() {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--admin", "off"])
        .args(["--workers", "2", "--cpus", "0,1"])
        .env("URINGD_DEBUG_PANIC_PATH", "/boom");
    let s = Server::spawn(cmd, None);
    let stop = Arc::new(AtomicBool::new(false));
    let loaders: Vec<_> = (0..2).map(|_| load(s.addr, stop.clone())).collect();
    std::thread::sleep(Duration::from_millis(300));

    // Ask for the panic until each worker has died once (the kernel picks the worker).
    let mut died = Vec::new();
    let end = Instant::now() + Duration::from_secs(20);
    while died.len() < 2 && Instant::now() < end {
        let mut c = s.connect();
        c.write_all(b"GET /boom HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        assert!(rest.is_empty(), "a panicking worker answered: {rest:?}");
        let line = wait_line(&s, ") panicked: ", Duration::from_secs(5)).expect("panic logged");
        let id: usize = line
            .split("worker ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        assert!(
            line.contains(&format!("(cpu {id}) panicked: debug hook"))
                && line.contains(&format!("restarting it on cpu {id}")),
            "{line}"
        );
        wait_line(
            &s,
            &format!("worker {id}: restarted: cpu {id}"),
            Duration::from_secs(5),
        )
        .expect("restart reported");
        assert_eq!(
            thread_cpus(s.pid(), &format!("uringd-w{id}")).as_deref(),
            Some(id.to_string().as_str()),
            "restarted worker pinned to its CPU"
        );
        if !died.contains(&id) {
            died.push(id);
        }
        std::thread::sleep(Duration::from_millis(1100));
    }
    assert_eq!(died.len(), 2, "both workers were made to panic");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for l in loaders {
        let t = l.join().unwrap();
        total.ok += t.ok;
        total.closed += t.closed;
        total.refused += t.refused;
        total.hung += t.hung;
        total.other += t.other;
    }
    eprintln!("load across two worker panics: {total:?}");
    // A connection the dying worker held is closed (never left hanging); nothing is refused.
    assert_eq!(total.refused, 0, "{total:?}");
    assert_eq!(total.hung, 0, "{total:?}");
    assert_eq!(total.other, 0, "{total:?}");
    assert!(total.ok > 100, "{total:?}");
    assert!(
        total.closed <= 8,
        "only in-flight connections may be cut: {total:?}"
    );
    // Served normally afterwards, by both workers.
    let mut t = Tally::default();
    for _ in 0..50 {
        one_request(s.addr, &mut t);
    }
    assert_eq!(t.ok, 50, "{t:?}");
}
