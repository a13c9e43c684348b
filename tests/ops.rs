//! Operations under load: reload (SIGHUP), binary upgrade (SIGUSR2) and systemd socket
//! activation. Load comes from `uringd bench`; the claim checked is "0 failed requests".

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Server, TempDir, signal};
use serde_json::Value;

fn cfg(body: &str, extra: &str) -> String {
    format!(
        "{extra}\n[[route]]\nname = \"v\"\nprefix = \"/\"\nreturn = {{ status = 200, body = \"{body}\", content_type = \"text/plain\" }}\n"
    )
}

fn start(path: &Path) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--admin", "off"])
        .args(["--workers", "2"])
        .arg("--config")
        .arg(path);
    Server::spawn(cmd, None)
}

/// Starts `uringd bench` against `url` for `secs`; returns the child (JSON on stdout).
fn bench(url: &str, secs: u32) -> Child {
    Command::new(BIN)
        .args(["bench", "-c", "16", "-t", "1", "-d"])
        .arg(format!("{secs}s"))
        .args(["--json", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start uringd bench")
}

fn bench_result(c: Child) -> Value {
    let out = c.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bench JSON: {e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn assert_no_failures(v: &Value) {
    assert_eq!(v["errors"]["total"], 0, "{v}");
    let ok = v["status"]["2xx"].as_u64().unwrap();
    assert_eq!(v["requests"].as_u64().unwrap(), ok, "only 2xx: {v}");
    assert!(ok > 1000, "load actually ran: {v}");
}

fn wait_line(s: &Server, what: &str, within: Duration) -> String {
    let end = Instant::now() + within;
    let mut seen = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match s.log.recv_timeout(left) {
            Ok(l) if l.contains(what) => return l,
            Ok(l) => seen.push(l),
            Err(_) => break,
        }
    }
    panic!("no line with {what:?}; saw:\n{}", seen.join("\n"));
}

/// The body served once the switch is done: a connection accepted by the old workers just
/// before they retired is still answered by them (with `Connection: close`).
fn settled_body(addr: std::net::SocketAddr, want: &str) -> String {
    let end = Instant::now() + Duration::from_secs(3);
    loop {
        let b = body_of(addr);
        if b == want || Instant::now() > end {
            return b;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn body_of(addr: std::net::SocketAddr) -> String {
    let r = common::request(addr, "GET", "/", "Connection: close\r\n");
    String::from_utf8(r.body).unwrap()
}

#[test]
fn reload_applies_a_good_config_keeps_a_bad_one_out_and_fails_no_request() {
    let dir = TempDir::new("reload");
    let path = dir.0.join("uringd.toml");
    let log1 = dir.0.join("access1.log");
    let log2 = dir.0.join("access2.log");
    std::fs::write(
        &path,
        cfg(
            "v1",
            &format!("[server]\naccess_log = \"{}\"", log1.display()),
        ),
    )
    .unwrap();
    let s = start(&path);
    assert_eq!(body_of(s.addr), "v1");
    // A keep-alive connection opened before the reload must still be answered after it.
    let mut early = s.connect();
    early
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert_eq!(common::read_response(&mut early, false).status, 200);

    let load = bench(&format!("http://{}/", s.addr), 4);
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::write(
        &path,
        cfg(
            "v2",
            &format!(
                "[server]\naccess_log = \"{}\"\n[limits]\nmax_body_bytes = 4",
                log2.display()
            ),
        ),
    )
    .unwrap();
    signal(s.pid(), libc::SIGHUP);
    wait_line(&s, "uringd: reloaded", Duration::from_secs(5));
    assert_eq!(settled_body(s.addr, "v2"), "v2");
    std::thread::sleep(Duration::from_millis(1000));
    // A broken config is refused, with the key named, and the running one stays.
    std::fs::write(&path, "[limits]\nmax_body_bytes = \"lots\"\n").unwrap();
    signal(s.pid(), libc::SIGHUP);
    let refused = wait_line(&s, "reload refused", Duration::from_secs(5));
    assert!(refused.contains("max_body_bytes"), "{refused}");
    assert_no_failures(&bench_result(load));
    assert_eq!(body_of(s.addr), "v2");

    // The old connection was answered with a close, or is still served.
    early.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").ok();
    // New limits and the new access log are in force.
    let r = common::request(s.addr, "POST", "/", "Content-Length: 10\r\n\r\n0123456789");
    assert_eq!(r.status, 413);
    // The access log is flushed in batches (at least once a second).
    let end = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&log2)
        .unwrap_or_default()
        .contains("\"POST / ")
    {
        assert!(Instant::now() < end, "the reloaded access log is written");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Settings of the listening sockets cannot change on a reload: the warning says so, and
    // the rest of the file is applied.
    std::fs::write(&path, cfg("v3", "[server]\nbacklog = 77")).unwrap();
    signal(s.pid(), libc::SIGHUP);
    let warn = wait_line(&s, "reload: warning", Duration::from_secs(5));
    assert!(warn.contains("socket options"), "{warn}");
    wait_line(&s, "uringd: reloaded", Duration::from_secs(5));
    assert_eq!(settled_body(s.addr, "v3"), "v3");
}

/// The pid in "upgrade: process PID is serving".
fn new_pid(line: &str) -> u32 {
    line.split("process ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

#[test]
fn binary_upgrade_hands_the_sockets_over_and_fails_no_request() {
    let dir = TempDir::new("upgrade");
    let path = dir.0.join("uringd.toml");
    std::fs::write(&path, cfg("old", "")).unwrap();
    let mut s = start(&path);
    let load = bench(&format!("http://{}/", s.addr), 4);
    std::thread::sleep(Duration::from_millis(1000));
    // The "new binary" reads the config again: its answer tells the processes apart.
    std::fs::write(&path, cfg("new", "")).unwrap();
    signal(s.pid(), libc::SIGUSR2);
    let line = wait_line(&s, "is serving;", Duration::from_secs(10));
    let pid = new_pid(&line);
    assert_ne!(pid, s.pid());
    // The old process drains and exits by itself.
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "old process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let v = bench_result(load);
    let survived = std::fs::metadata(format!("/proc/{pid}")).is_ok();
    let after = settled_body(s.addr, "new");
    signal(pid, libc::SIGTERM);
    assert!(survived, "new process still running");
    assert_no_failures(&v);
    assert_eq!(after, "new", "served by the new process, same address");
}

#[test]
fn a_failed_upgrade_leaves_the_old_process_serving() {
    let dir = TempDir::new("upgrade-fail");
    let path = dir.0.join("uringd.toml");
    std::fs::write(&path, cfg("old", "")).unwrap();
    let s = start(&path);
    // The new process will refuse this config and exit.
    std::fs::write(&path, "nonsense = 1\n").unwrap();
    signal(s.pid(), libc::SIGUSR2);
    let line = wait_line(&s, "upgrade failed", Duration::from_secs(10));
    assert!(line.contains("still serving"), "{line}");
    assert_eq!(body_of(s.addr), "old");
}

#[test]
fn systemd_socket_activation_serves_the_passed_socket() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let fd = l.as_raw_fd();
    let mut cmd = Command::new("sh");
    // LISTEN_PID must be uringd's own pid: `exec` keeps the shell's.
    cmd.arg("-c")
        .arg(format!(
            "LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web exec {BIN} serve --listen 127.0.0.1:0 --admin off --workers 2"
        ));
    // SAFETY: dup2 and fcntl are async-signal-safe; fd is open in this process.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself keeps CLOEXEC, so clear it explicitly too.
            if libc::dup2(fd, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let s = Server::spawn(cmd, None);
    drop(l);
    assert_eq!(s.addr, addr, "serves the passed socket, not --listen");
    assert!(
        s.startup.iter().any(|l| l.contains("socket activation")),
        "{:?}",
        s.startup
    );
    let r = common::request(addr, "GET", "/", "");
    assert!(r.status == 200 || r.status == 404, "{r:?}");
}
