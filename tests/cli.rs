//! Start-up, configuration errors, `check`, the listener per worker and pinning.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_cfg(dir: &TempDir, text: &str) -> String {
    let p = dir.0.join("c.toml");
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn check_accepts_a_good_config() {
    let d = TempDir::new("check");
    let p = write_cfg(
        &d,
        "[server]\nlisten=[\"127.0.0.1:8080\"]\n[[route]]\nprefix=\"/\"\nreturn={body=\"x\"}\n",
    );
    let (code, out, err) = run(&["check", "--config", &p]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": ok"), "{out}");
}

#[test]
fn unknown_key_is_named_with_the_nearest_valid_one() {
    let d = TempDir::new("typo");
    let p = write_cfg(&d, "[limits]\nheader_timout = \"5s\"\n");
    let (code, _, err) = run(&["check", "--config", &p]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown key `header_timout`"), "{err}");
    assert!(err.contains("did you mean `header_timeout`"), "{err}");
    assert!(err.contains("c.toml:2"), "names file and line: {err}");
    let (code, _, err) = run(&["serve", "--config", &p]);
    assert_eq!(code, 2, "serve refuses a bad config: {err}");
    assert!(err.contains("header_timout"));
}

#[test]
fn bad_values_name_key_and_fix() {
    let d = TempDir::new("vals");
    for (text, needle) in [
        ("[server]\nlisten=[\"localhost\"]\n", "server.listen"),
        ("[server]\nworkers=0\n", "server.workers"),
        ("[server]\nbuffers=1000\n", "power of two"),
        ("[[route]]\nprefix=\"api\"\nreturn={}\n", "route[0].prefix"),
        (
            "[[route]]\nprefix=\"/\"\nreturn={status=99}\n",
            "route[0].return.status",
        ),
        ("[limits]\nbody_timeout=\"soon\"\n", "limits.body_timeout"),
        (
            "[[route]]\nprefix=\"/\"\nredirect={to=\"https://$hots/\"}\n",
            "route[0].redirect.to = \"https://$hots/\" unknown variable $hots",
        ),
        (
            "[[route]]\nprefix=\"/\"\nredirect={to=\"/x\", status=303}\n",
            "route[0].redirect.status = 303: use 301 or 308",
        ),
        (
            "[[route]]\nprefix=\"/\"\nredirect={}\n",
            "route[0].redirect: missing `to`",
        ),
        (
            "[[route]]\nprefix=\"/\"\nredirect={to=\"/x\"}\nreturn={}\n",
            "give one of `return`, `redirect`",
        ),
        ("[server\n", "c.toml"),
    ] {
        let p = write_cfg(&d, text);
        let (code, _, err) = run(&["check", "--config", &p]);
        assert_eq!(code, 1, "{text}");
        assert!(err.contains(needle), "{text}: {err}");
    }
    let (code, _, err) = run(&["serve", "--listen", "nope:1"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--listen") || err.contains("server.listen"),
        "{err}"
    );
    let (code, _, err) = run(&["serve", "--cpus", "0-1", "--workers", "3"]);
    assert_eq!(code, 2);
    assert!(err.contains("server.cpus"), "{err}");
}

#[test]
fn port_in_use_is_a_clear_startup_error() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let (code, _, err) = run(&["serve", "--listen", &addr, "--admin", "off"]);
    assert_eq!(code, 1);
    assert!(err.contains("already in use"), "{err}");
    assert!(err.contains(&addr), "{err}");
}

#[test]
fn admin_port_in_use_names_the_admin_flag() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let (code, _, err) = run(&["serve", "--listen", "127.0.0.1:0", "--admin", &addr]);
    assert_eq!(code, 1);
    assert!(
        err.contains("admin endpoint") && err.contains("--admin"),
        "{err}"
    );
    assert!(!err.contains("--listen"), "{err}");
}

#[test]
fn every_config_error_is_printed_once_per_line() {
    let d = TempDir::new("errs");
    let p = write_cfg(
        &d,
        "[server]\nworkers = \"two\"\nlisten = \"127.0.0.1:0\"\ncpus = \"0-1\"\n[limits]\nmax_body_bytes = true\nheadr_timeout = \"1s\"\n",
    );
    let (code, _, err) = run(&["check", "--config", &p]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].contains("c.toml:2:") && lines[0].contains("server.workers: expected a whole number, e.g. workers = 4, found the string \"two\""), "{err}");
    assert!(
        lines[1].contains("limits.max_body_bytes: expected a size"),
        "{err}"
    );
    assert!(lines[2].contains("did you mean `header_timeout`"), "{err}");
    assert!(
        lines.iter().all(|l| l.starts_with("uringd check: ")),
        "{err}"
    );
    let (code, _, err) = run(&["serve", "--config", &p]);
    assert_eq!(code, 2);
    assert_eq!(err.matches("uringd: config error: ").count(), 3, "{err}");
}

#[test]
fn check_takes_the_flags_serve_takes_and_catches_what_serve_would_refuse() {
    let d = TempDir::new("checkflags");
    // A file of limits only: no route of its own, --upstream supplies it.
    let p = write_cfg(&d, "[limits]\nmax_body_bytes = \"2MiB\"\n");
    let (code, _, err) = run(&["check", "--config", &p]);
    assert_eq!(code, 1);
    assert!(err.contains("no [[route]]"), "{err}");
    let (code, out, err) = run(&[
        "check",
        "--config",
        &p,
        "--upstream",
        "http://127.0.0.1:8000",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": ok") && out.contains("1 route(s)"), "{out}");
    // An access log whose directory does not exist.
    let p = write_cfg(
        &d,
        "[server]\naccess_log = \"/nonexistent-uringd-dir/access.log\"\n[[route]]\nprefix=\"/\"\nreturn={}\n",
    );
    let (code, _, err) = run(&["check", "--config", &p]);
    assert_eq!(code, 1);
    assert!(
        err.contains("server.access_log") && err.contains("/nonexistent-uringd-dir"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "serve",
        "--config",
        &p,
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "off",
    ]);
    assert_eq!(code, 2, "serve refuses it the same way: {err}");
}

#[test]
fn serve_says_where_it_proxies_and_what_static_alone_serves() {
    let s = Server::start(None, &["--upstream", "http://127.0.0.1:9"]);
    assert!(
        s.startup
            .iter()
            .any(|l| l.contains("route /: proxied to http://127.0.0.1:9")),
        "{:?}",
        s.startup
    );
    let d = TempDir::new("static-alone");
    std::fs::write(d.0.join("a.txt"), "A").unwrap();
    let s = Server::start(None, &["--static", &format!("/files/={}", d.0.display())]);
    assert!(
        s.startup
            .iter()
            .any(|l| l.contains("route /files/: files from")),
        "{:?}",
        s.startup
    );
    assert_eq!(
        common::request(s.addr, "GET", "/files/a.txt", "").body,
        b"A"
    );
    assert_eq!(common::request(s.addr, "GET", "/", "").status, 404);
}

#[test]
fn a_second_uringd_on_the_same_port_is_refused_not_merged() {
    // SO_REUSEPORT would let a second process silently share the port; we must refuse.
    let s = Server::start(None, &["--workers", "2"]);
    let addr = s.addr.to_string();
    let (code, _, err) = run(&["serve", "--listen", &addr, "--admin", "off"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already in use"), "{err}");
}

#[test]
fn embedded_default_answers_hello_world() {
    let s = Server::start(None, &[]);
    let out = raw(
        s.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("Content-Type: text/plain"));
    assert!(out.ends_with("\r\n\r\nHello, World!"));
    let (code, out, _) = run(&["check", "--print-default"]);
    assert_eq!(code, 0);
    assert!(out.contains("Hello, World!"));
}

/// LISTEN sockets on `port` in /proc/net/tcp (state 0A).
fn listeners_on(port: u16) -> usize {
    let t = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let hex = format!(":{port:04X} ");
    t.lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(hex.trim_end()) && f[3] == "0A"
        })
        .count()
}

#[test]
fn one_reuseport_listener_per_worker() {
    let s = Server::start(None, &["--workers", "3"]);
    assert_eq!(listeners_on(s.addr.port()), 3);
    // Connections spread across workers: with 3 listeners the kernel hashes among them.
    for _ in 0..30 {
        let out = raw(
            s.addr,
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status_of(&out), 200);
    }
}

#[test]
fn workers_are_pinned_to_their_cpus() {
    let ncpu = std::thread::available_parallelism().unwrap().get();
    let cpus = if ncpu >= 2 { "1,0" } else { "0" };
    let workers = if ncpu >= 2 { "2" } else { "1" };
    let s = Server::start(None, &["--workers", workers, "--cpus", cpus]);
    std::thread::sleep(Duration::from_millis(100));
    let mut seen = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{}/task", s.pid())).unwrap() {
        let t = t.unwrap().path();
        let comm = std::fs::read_to_string(t.join("comm")).unwrap();
        let comm = comm.trim();
        if let Some(id) = comm.strip_prefix("uringd-w") {
            let status = std::fs::read_to_string(t.join("status")).unwrap();
            let allowed = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .unwrap()
                .trim()
                .to_string();
            seen.push((id.parse::<usize>().unwrap(), allowed));
        }
    }
    seen.sort();
    let want: Vec<(usize, String)> = cpus
        .split(',')
        .enumerate()
        .map(|(i, c)| (i, c.to_string()))
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn sqpoll_mode_serves() {
    let s = Server::start(None, &["--sqpoll"]);
    let out = raw(
        s.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(out.ends_with("Hello, World!"), "{out}");
    assert!(
        s.startup
            .iter()
            .any(|l| l.contains("worker 0") && l.contains("sqpoll")),
        "the worker reports the SQPOLL ring it got: {:?}",
        s.startup
    );
}
