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

fn bench_json(url: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .arg("bench")
        .args(args)
        .args(["--json", url])
        .output()
        .expect("run uringd bench");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bench JSON: {e}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn return_cfg(body: &str) -> String {
    format!(
        "[[route]]\nname = \"r\"\nprefix = \"/\"\nreturn = {{ status = 200, body = \"{body}\", content_type = \"text/plain\" }}\n"
    )
}

#[test]
fn a_backend_killed_under_load_gets_every_request_answered_and_service_resumes() {
    // The backend is a real process (another uringd) killed with SIGKILL, then started
    // again on the same port.
    let mut backend = Server::start(Some(&return_cfg("b")), &[]);
    let port = backend.addr.port();
    let cfg = format!(
        "[[route]]\nname = \"app\"\nprefix = \"/\"\nupstream = \"http://127.0.0.1:{port}\"\n"
    );
    let proxy = Server::start(Some(&cfg), &["--workers", "2"]);
    let url = format!("http://{}/", proxy.addr);
    let load = std::thread::spawn(move || {
        bench_json(
            &url,
            &["-c", "16", "-t", "1", "-d", "6s", "--timeout", "5s"],
        )
    });
    std::thread::sleep(Duration::from_millis(1500));
    backend.child.kill().unwrap();
    backend.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    let _again = Server::start(
        Some(&return_cfg("b")),
        &["--listen", &format!("127.0.0.1:{port}")],
    );
    let v = load.join().unwrap();
    eprintln!("{v}");
    // Every request got an answer: none timed out, none was cut without a response.
    assert_eq!(v["errors"]["total"], 0, "{v}");
    let s = &v["status"];
    assert!(s["5xx"].as_u64().unwrap() > 0, "the outage was seen: {v}");
    assert!(s["2xx"].as_u64().unwrap() > 100, "{v}");
    // Service resumes without a restart of uringd.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let r = common::request(proxy.addr, "GET", "/", "Connection: close\r\n");
        if r.status == 200 {
            assert_eq!(r.body, b"b");
            break;
        }
        assert!(
            Instant::now() < end,
            "still {} after the backend returned",
            r.status
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sum of a Prometheus counter over all its lines.
fn metric(admin: SocketAddr, name: &str) -> u64 {
    let r = common::request(admin, "GET", "/_uringd/metrics", "Connection: close\r\n");
    String::from_utf8_lossy(&r.body)
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn a_tiny_buffer_ring_survives_enobufs_storms_and_counts_them() {
    let s = Server::start(
        None,
        &[
            "--workers",
            "1",
            "--buffers",
            "8",
            "--buffer-size",
            "512",
            "--ring-entries",
            "8",
            "--admin",
            "127.0.0.1:0",
        ],
    );
    let v = bench_json(
        &format!("http://{}/", s.addr),
        &["-c", "64", "--pipeline", "8", "-d", "3s", "--timeout", "5s"],
    );
    assert_eq!(v["errors"]["total"], 0, "{v}");
    assert_eq!(v["requests"], v["status"]["2xx"], "{v}");
    let admin = s.admin.unwrap();
    let exhausted = metric(admin, "uringd_buffer_ring_exhausted_total");
    assert!(exhausted > 0, "the storm happened and was counted");
    eprintln!(
        "requests {} with 8 buffers: ENOBUFS {exhausted}, CQ overflow {}",
        v["requests"],
        metric(admin, "uringd_cq_overflow_total")
    );
    let r = common::request(s.addr, "GET", "/", "");
    assert_eq!(r.status, 200);
}

fn keepalive_request(c: &mut TcpStream) {
    c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
}

/// True if a whole response head arrives within `t`.
fn answered_within(c: &mut TcpStream, t: Duration) -> bool {
    c.set_read_timeout(Some(t)).unwrap();
    let mut buf = [0u8; 512];
    matches!(c.read(&mut buf), Ok(n) if n > 0 && buf.starts_with(b"HTTP/1.1 200 "))
}

#[test]
fn at_the_connection_cap_accepting_pauses_and_resumes_when_a_slot_frees() {
    let s = Server::start(
        Some(&format!(
            "[limits]\nmax_connections = 4\n{}",
            return_cfg("ok")
        )),
        &["--workers", "1"],
    );
    let mut held: Vec<TcpStream> = (0..4).map(|_| s.connect()).collect();
    for c in &mut held {
        keepalive_request(c);
        assert!(answered_within(c, Duration::from_secs(2)));
    }
    // The fifth is left in the listen backlog, not refused and not closed.
    let mut fifth = s.connect();
    keepalive_request(&mut fifth);
    assert!(!answered_within(&mut fifth, Duration::from_millis(500)));
    drop(held.pop());
    assert!(
        answered_within(&mut fifth, Duration::from_secs(3)),
        "served once a slot freed"
    );
}

#[test]
fn out_of_descriptors_pauses_accepting_and_resumes_when_they_free() {
    // 48 descriptors: enough to start, not enough for 80 connections.
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!(
        "ulimit -n 48 && exec {BIN} serve --listen 127.0.0.1:0 --workers 1 --admin 127.0.0.1:0"
    ));
    let s = Server::spawn(cmd, None);
    let mut conns: Vec<TcpStream> = (0..80).map(|_| s.connect()).collect();
    for c in &mut conns {
        keepalive_request(c);
    }
    let mut waiting = Vec::new();
    let mut served = 0;
    for mut c in conns {
        if answered_within(&mut c, Duration::from_millis(300)) {
            served += 1; // dropped: frees a descriptor in the server
        } else {
            waiting.push(c);
        }
    }
    assert!(
        !waiting.is_empty(),
        "the limit was reached ({served} served)"
    );
    for c in &mut waiting {
        assert!(
            answered_within(c, Duration::from_secs(5)),
            "a connection that waited for a descriptor was served"
        );
    }
    drop(waiting);
    let errors = metric(s.admin.unwrap(), "uringd_accept_errors_total");
    assert!(errors > 0, "EMFILE was met and counted");
    let r = common::request(s.addr, "GET", "/", "");
    assert_eq!(r.status, 200, "still serving");
}
