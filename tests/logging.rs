//! The logs never stop the server and never lose a line: a closed stderr is survived, and
//! every answered request is in the access log after a stop, a reload or an upgrade.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Server, TempDir, signal};

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[test]
fn serve_keeps_serving_after_its_stderr_reader_goes_away() {
    // A backend nobody listens on: every proxied request prints an upstream error line.
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let dir = TempDir::new("stderr");
    let cfg = dir.0.join("u.toml");
    let text = format!(
        "[[route]]\nprefix = \"/up\"\nupstream = \"{refused}\"\n[[route]]\nprefix = \"/\"\nreturn = {{ body = \"ok\" }}\n"
    );
    std::fs::write(&cfg, text).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--admin", "off"])
        .args(["--workers", "2", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Like `uringd serve 2>&1 | head`: read up to the address, then close the pipe.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("a line").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    drop(lines);
    for round in 0..3 {
        // Each of these writes a line to the closed stderr.
        let r = common::request(addr, "GET", "/up/x", "");
        assert_eq!(r.status, 502, "round {round}");
        signal(pid, libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(300));
        signal(pid, libc::SIGUSR1);
        let r = common::request(addr, "GET", "/", "");
        assert_eq!(r.status, 200, "round {round}: still serving");
        assert!(alive(pid), "round {round}: the server died with its stderr");
    }
    signal(pid, libc::SIGTERM);
    let end = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.code(),
        Some(0),
        "a clean stop, not a panic: {status}"
    );
}

fn count_lines(p: &Path, needle: &str) -> usize {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

fn start_logged(dir: &TempDir, log: &Path) -> Server {
    let cfg = dir.0.join("u.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\naccess_log = \"{}\"\n[[route]]\nprefix = \"/\"\nreturn = {{ body = \"ok\" }}\n",
            log.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--admin", "off"])
        .args(["--workers", "2", "--config"])
        .arg(&cfg);
    Server::spawn(cmd, None)
}

/// Three requests answered, then at once the signal: all three lines must be there once
/// the process that answered them is gone.
fn answered_then(sig: i32, tag: &str) {
    for trial in 0..3 {
        let dir = TempDir::new(tag);
        let log = dir.0.join("access.log");
        let mut s = start_logged(&dir, &log);
        let mut c = s.connect();
        for i in 0..2 {
            std::io::Write::write_all(
                &mut c,
                format!("GET /ka{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
            )
            .unwrap();
            assert_eq!(common::read_response(&mut c, false).status, 200);
        }
        let r = common::request(s.addr, "GET", "/last", "Connection: close\r\n");
        assert_eq!(r.status, 200);
        signal(s.pid(), sig);
        let end = Instant::now() + Duration::from_secs(10);
        let mut new_pid = None;
        if sig == libc::SIGTERM {
            assert_eq!(s.terminate(Duration::from_secs(10)), Some(0));
        } else {
            // The answering workers (or process) retire: they are gone once the
            // keep-alive connection is closed and the drain finished.
            drop(c);
            let want = if sig == libc::SIGHUP {
                "reloaded"
            } else {
                "is serving;"
            };
            loop {
                let l = s.log.recv_timeout(Duration::from_secs(10)).expect("a line");
                if l.contains(want) {
                    new_pid = l
                        .split("process ")
                        .nth(1)
                        .and_then(|r| r.split_whitespace().next())
                        .and_then(|p| p.parse::<u32>().ok());
                    break;
                }
            }
        }
        while count_lines(&log, "\"GET /") < 3 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(p) = new_pid {
            signal(p, libc::SIGTERM);
        }
        for path in ["/ka0", "/ka1", "/last"] {
            assert_eq!(
                count_lines(&log, &format!("\"GET {path} ")),
                1,
                "trial {trial}: {path} logged once:\n{text}"
            );
        }
    }
}

#[test]
fn every_answered_request_is_logged_after_a_stop() {
    answered_then(libc::SIGTERM, "log-stop");
}

#[test]
fn every_answered_request_is_logged_after_a_reload() {
    answered_then(libc::SIGHUP, "log-reload");
}

#[test]
fn every_answered_request_is_logged_after_an_upgrade() {
    answered_then(libc::SIGUSR2, "log-upgrade");
}

/// Lines the server printed so far (waiting a little for late ones).
fn lines_within(s: &Server, t: Duration) -> Vec<String> {
    let end = Instant::now() + t;
    let mut out = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match s.log.recv_timeout(left) {
            Ok(l) => out.push(l),
            Err(_) => break,
        }
    }
    out
}

#[test]
fn a_request_refused_by_a_limit_names_the_limit_and_its_key() {
    let s = Server::start(
        Some(
            "[limits]\nmax_body_bytes = 100\n[[route]]\nprefix = \"/\"\nreturn = { body = \"ok\" }\n",
        ),
        &[],
    );
    let r = common::request(s.addr, "POST", "/", "Content-Length: 1000\r\n");
    assert_eq!(r.status, 413);
    let lines = lines_within(&s, Duration::from_millis(500));
    let hit: Vec<&String> = lines.iter().filter(|l| l.contains("413")).collect();
    assert_eq!(hit.len(), 1, "{lines:?}");
    assert!(
        hit[0].contains("max_body_bytes") && hit[0].contains("100 bytes"),
        "{hit:?}"
    );
}

/// A tiny HTTP backend on `l`: answers every request `200 ok`, keep-alive.
fn serve_ok(l: std::net::TcpListener) {
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut b = [0u8; 4096];
                loop {
                    match std::io::Read::read(&mut c, &mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if std::io::Write::write_all(&mut c, ok).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
}

#[test]
fn an_upstream_leaving_and_rejoining_the_rotation_is_logged_once_each_way() {
    // Two servers (a lone one is never taken out): nobody listens on the first's port at
    // first, and the same port serves later; the second serves throughout.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let live = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let live_port = live.local_addr().unwrap().port();
    serve_ok(live);
    let cfg = format!(
        "[upstream.app]\nservers = [\"http://127.0.0.1:{port}\", \"http://127.0.0.1:{live_port}\"]\n\
         max_fails = 1\nfail_timeout = \"300ms\"\n[[route]]\nprefix = \"/\"\nupstream = \"app\"\n"
    );
    let s = Server::start(Some(&cfg), &[]);
    for _ in 0..3 {
        // The refused connect is retried on the other server.
        assert_eq!(common::request(s.addr, "GET", "/", "").status, 200);
    }
    serve_ok(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
    // Past fail_timeout the first server is tried again, and is back.
    let end = Instant::now() + Duration::from_secs(5);
    let mut lines = Vec::new();
    while !lines
        .iter()
        .any(|l: &String| l.contains("back in rotation"))
    {
        assert!(Instant::now() < end, "the upstream came back: {lines:?}");
        assert_eq!(common::request(s.addr, "GET", "/", "").status, 200);
        lines.extend(lines_within(&s, Duration::from_millis(50)));
    }
    for _ in 0..3 {
        assert_eq!(common::request(s.addr, "GET", "/", "").status, 200);
    }
    lines.extend(lines_within(&s, Duration::from_millis(500)));
    let out: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("out of rotation"))
        .collect();
    let back: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("back in rotation"))
        .collect();
    assert_eq!(out.len(), 1, "{lines:?}");
    assert_eq!(back.len(), 1, "{lines:?}");
    assert!(out[0].contains(&format!("127.0.0.1:{port}")), "{out:?}");
}
