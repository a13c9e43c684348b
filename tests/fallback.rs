//! The backend choice: `auto` falls back to epoll where io_uring is blocked (a real seccomp
//! filter, as Docker's default profile installs), says why in one line, and everything the
//! user touches (serve, doctor, bench) follows; a forced io_uring that cannot start exits
//! non-zero with the reason.

mod common;
#[path = "common/seccomp.rs"]
mod seccomp;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, Server};

fn serve_cmd(backend: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args(["--workers", "2", "--backend", backend]);
    cmd
}

fn backend_line(s: &Server) -> String {
    s.startup
        .iter()
        .find(|l| l.starts_with("uringd: backend "))
        .cloned()
        .unwrap_or_else(|| panic!("no backend line in {:?}", s.startup))
}

#[test]
fn auto_runs_io_uring_where_it_works() {
    let s = Server::spawn(serve_cmd("auto"), None);
    let line = backend_line(&s);
    assert!(
        line.starts_with("uringd: backend io_uring: auto:"),
        "{line}"
    );
    let r = common::request(s.addr, "GET", "/", "");
    assert_eq!(r.status, 200);
}

#[test]
fn auto_falls_back_to_epoll_under_seccomp_and_serves() {
    let mut cmd = serve_cmd("auto");
    seccomp::block_io_uring(&mut cmd, libc::EPERM);
    let mut s = Server::spawn(cmd, None);
    let line = backend_line(&s);
    assert!(
        line.starts_with("uringd: backend epoll: auto: io_uring not used:"),
        "{line}"
    );
    assert!(line.contains("EPERM") && line.contains("seccomp"), "{line}");
    assert!(
        s.startup
            .iter()
            .any(|l| l.contains("worker 0:") && l.contains("epoll")),
        "{:?}",
        s.startup
    );
    // Keep-alive, pipelined, and the admin endpoint with its histograms, all on epoll.
    let mut c = s.connect();
    std::io::Write::write_all(
        &mut c,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .unwrap();
    for _ in 0..2 {
        let r = common::read_response(&mut c, false);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"Hello, World!");
    }
    let admin = s.admin.expect("admin address");
    let w = common::request(admin, "GET", "/_uringd/workers", "");
    assert_eq!(w.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&w.body).unwrap();
    let ws = v.as_array().unwrap();
    assert!(ws.iter().all(|w| w["ring"]["backend"] == "epoll"), "{v}");
    let reqs: u64 = ws.iter().map(|w| w["requests"].as_u64().unwrap()).sum();
    assert_eq!(reqs, 2);
    assert_eq!(s.terminate(Duration::from_secs(10)), Some(0));
}

#[test]
fn forced_io_uring_under_seccomp_exits_with_the_reason() {
    let mut cmd = serve_cmd("io_uring");
    seccomp::block_io_uring(&mut cmd, libc::EPERM);
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("backend io_uring was asked for and cannot start"),
        "{err}"
    );
    assert!(err.contains("seccomp"), "{err}");
    assert!(!err.contains("listening on"), "{err}");
}

#[test]
fn doctor_reports_what_auto_picks_and_why() {
    let mut cmd = Command::new(BIN);
    cmd.args(["doctor", "--json"]);
    // ENOSYS is the other answer a filter gives (and what a kernel without io_uring says).
    seccomp::block_io_uring(&mut cmd, libc::ENOSYS);
    let out = cmd.output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["backend"]["auto"], "epoll", "{v}");
    let why = v["backend"]["reason"].as_str().unwrap();
    assert!(why.contains("ENOSYS") && why.contains("seccomp"), "{why}");
    assert_eq!(v["io_uring"]["available"], false);
    let text = Command::new(BIN).arg("doctor").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("backend = io_uring"), "{text}");
}

#[test]
fn bench_falls_back_the_same_way() {
    let s = Server::start(None, &[]);
    let url = format!("http://{}/", s.addr);
    let mut cmd = Command::new(BIN);
    cmd.args(["bench", "-c", "4", "-t", "1", "-d", "1s", "--json", &url])
        .env_remove("URINGD_BACKEND");
    seccomp::block_io_uring(&mut cmd, libc::EPERM);
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("uringd bench: backend epoll: auto: io_uring not used:"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["backend"], "epoll");
    assert!(v["requests"].as_u64().unwrap() > 100, "{v}");
    assert_eq!(v["errors"]["total"], 0, "{v}");
}

#[test]
fn io_uring_knobs_on_epoll_warn_or_refuse() {
    // A knob with nothing to act on is a warning (an error under --strict)...
    let s = Server::start(None, &["--backend", "epoll", "--napi-busy-poll", "50"]);
    let start = s.startup.join("\n");
    assert!(
        start.contains("warning: napi_busy_poll is an io_uring knob and the backend is epoll"),
        "{start}"
    );
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--admin", "off"])
        .args(["--backend", "epoll", "--napi-busy-poll", "50", "--strict"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("napi_busy_poll is an io_uring knob"), "{err}");
    // ...and an explicit contradiction in the config is refused, naming the keys.
    let bad = Command::new(BIN)
        .args(["serve", "--backend", "epoll", "--fixed-files", "on"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(
        err.contains("server.fixed_files") && err.contains("server.backend is epoll"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["serve", "--backend", "kqueue"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("server.backend: `kqueue` is not a backend"),
        "{err}"
    );
}
