//! `uringd serve`'s tuning knobs, each checked where the kernel shows it: the ring's
//! /proc/PID/fdinfo, socket options read through pidfd_getfd on the server's own accepted
//! socket, the listen backlog in `ss`, and where connections land with CPU steering.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use common::*;

/// The server's io_uring fdinfo texts (one per worker ring).
fn ring_fdinfo(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let link = std::fs::read_link(e.path()).unwrap_or_default();
        if link.to_string_lossy().contains("io_uring") {
            let fd = e.file_name().to_string_lossy().into_owned();
            out.push(std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap());
        }
    }
    assert!(!out.is_empty(), "no io_uring fd in /proc/{pid}/fd");
    out
}

fn field<'a>(fdinfo: &'a str, name: &str) -> &'a str {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("{name} not in fdinfo:\n{fdinfo}"))
        .trim()
}

/// A keep-alive connection to `s` that has been answered once (so the server holds it).
fn answered(s: &Server) -> TcpStream {
    let mut c = s.connect();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 1024];
    let n = c.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    c
}

/// Duplicates the server's end of `client` into this process (pidfd_getfd) so its socket
/// options can be read.
fn server_side(pid: u32, client: &TcpStream) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    let local = client.local_addr().unwrap().port();
    let server = client.peer_addr().unwrap().port();
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let inode = tcp
        .lines()
        .skip(1)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = |a: &str| u16::from_str_radix(a.rsplit(':').next().unwrap(), 16).unwrap();
            (port(f[1]) == server && port(f[2]) == local).then(|| f[9].to_string())
        })
        .expect("the server's socket in /proc/net/tcp");
    let want = format!("socket:[{inode}]");
    let target: i32 = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .find(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == want))
        .expect("the accepted socket among the server's fds")
        .file_name()
        .to_string_lossy()
        .parse()
        .unwrap();
    // SAFETY: raw syscalls with checked results; the new fd is owned by us.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) as i32;
        assert!(
            pidfd >= 0,
            "pidfd_open: {}",
            std::io::Error::last_os_error()
        );
        let fd = libc::syscall(libc::SYS_pidfd_getfd, pidfd, target, 0) as i32;
        libc::close(pidfd);
        assert!(fd >= 0, "pidfd_getfd: {}", std::io::Error::last_os_error());
        std::os::fd::OwnedFd::from_raw_fd(fd)
    }
}

fn getsockopt(fd: &std::os::fd::OwnedFd, level: i32, name: i32) -> i32 {
    use std::os::fd::AsRawFd;
    let mut v: i32 = -1;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: pointers to a live i32 and its length.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut v as *mut i32).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "getsockopt: {}", std::io::Error::last_os_error());
    v
}

#[test]
fn ring_knobs_show_in_fdinfo() {
    let s = Server::start(
        None,
        // The ring's own fdinfo is what is checked: io_uring whatever the suite runs on.
        &[
            "--backend",
            "io_uring",
            "--ring-entries",
            "256",
            "--napi-busy-poll",
            "50",
            "--defer-taskrun",
            "off",
        ],
    );
    let info = &ring_fdinfo(s.pid())[0];
    assert_eq!(field(info, "SqMask"), "0xff");
    assert_eq!(field(info, "NAPI"), "enabled");
    assert_eq!(field(info, "napi_busy_poll_dt"), "50000");
    assert_eq!(field(info, "SqThread"), "-1");
    let start = s.startup.join("\n");
    assert!(
        start.contains("coop_taskrun") && !start.contains("defer_taskrun"),
        "{start}"
    );
    assert!(
        start.contains("napi_busy_poll 50us") && start.contains("ring 256"),
        "{start}"
    );

    let s = Server::start(
        None,
        &[
            "--backend",
            "io_uring",
            "--sqpoll",
            "--sqpoll-idle",
            "50ms",
            "--buffers",
            "256",
            "--buffer-size",
            "8KiB",
        ],
    );
    let info = &ring_fdinfo(s.pid())[0];
    assert_ne!(field(info, "SqThread"), "-1", "an SQ polling thread");
    assert_eq!(field(info, "NAPI"), "disabled");
    assert!(
        s.startup.join("\n").contains("buffers 256x8192"),
        "{:?}",
        s.startup
    );
    // Still serves.
    drop(answered(&s));
}

#[test]
fn socket_knobs_reach_accepted_sockets() {
    let s = Server::start(None, &[]);
    let c = answered(&s);
    let fd = server_side(s.pid(), &c);
    assert_eq!(
        getsockopt(&fd, libc::IPPROTO_TCP, libc::TCP_NODELAY),
        1,
        "default on"
    );
    assert_eq!(getsockopt(&fd, libc::SOL_SOCKET, libc::SO_BUSY_POLL), 0);

    let s = Server::start(None, &["--tcp-nodelay", "off", "--busy-poll", "50"]);
    let c = answered(&s);
    let fd = server_side(s.pid(), &c);
    assert_eq!(getsockopt(&fd, libc::IPPROTO_TCP, libc::TCP_NODELAY), 0);
    assert_eq!(getsockopt(&fd, libc::SOL_SOCKET, libc::SO_BUSY_POLL), 50);
}

#[test]
fn backlog_is_the_listen_queue() {
    let s = Server::start(None, &["--backlog", "77"]);
    let out = Command::new("ss")
        .args(["-ltnH", &format!("sport = :{}", s.addr.port())])
        .output()
        .expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    // For a listener, ss shows the backlog as Send-Q.
    let sendq: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(sendq, vec!["77"], "{text}");
}

#[test]
fn cpu_steering_keeps_a_connection_on_the_cpu_that_received_it() {
    let avail = core_affinity::get_core_ids().unwrap();
    assert!(avail.len() >= 2, "needs two CPUs");
    let count_on = |steer: &str| -> (u64, u64) {
        let s = Server::start(
            None,
            &[
                "--workers",
                "2",
                "--cpus",
                "0,1",
                "--reuseport-steering",
                steer,
                "--admin",
                "127.0.0.1:0",
            ],
        );
        let addr = s.addr;
        // On loopback the SYN is processed on the connecting CPU: connect from CPU 1.
        std::thread::spawn(move || {
            core_affinity::set_for_current(core_affinity::CoreId { id: 1 });
            for _ in 0..40 {
                let mut c = TcpStream::connect(addr).unwrap();
                c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .unwrap();
                let mut v = Vec::new();
                c.read_to_end(&mut v).unwrap();
            }
        })
        .join()
        .unwrap();
        let m = request(s.admin.unwrap(), "GET", "/_uringd/metrics", "");
        let text = String::from_utf8_lossy(&m.body).into_owned();
        let accepts = |w: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("uringd_accepts_total{{worker=\"{w}\"}} ")))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        (accepts("0"), accepts("1"))
    };
    let (w0, w1) = count_on("cpu");
    // The metrics request itself may land on either worker.
    assert!(
        w1 >= 40 && w0 <= 1,
        "cpu steering: worker 0 {w0}, worker 1 {w1}"
    );
    let (w0, w1) = count_on("hash");
    assert!(
        w0 >= 5 && w1 >= 5,
        "hash spreads: worker 0 {w0}, worker 1 {w1}"
    );
}

#[test]
fn knob_errors_name_the_key_and_the_fix() {
    for (args, want) in [
        (
            vec!["--reuseport-steering", "rss"],
            "use \"hash\" (the kernel's default) or \"cpu\"",
        ),
        (vec!["--defer-taskrun", "maybe"], "use on or off"),
        (
            vec!["--sqpoll", "--defer-taskrun", "on"],
            "cannot be combined with sqpoll",
        ),
        (
            vec![
                "--workers",
                "1",
                "--cpus",
                "1",
                "--reuseport-steering",
                "cpu",
            ],
            "must be pinned to CPUs 0..0 in order",
        ),
        (vec!["--busy-poll", "5000000"], "use 1 to 1000000"),
        (vec!["--ring-entries", "3"], "use 8 to 32768"),
    ] {
        let out = Command::new(BIN)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--admin", "off"])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn doctor_reports_this_machine() {
    let out = Command::new(BIN)
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("doctor --json is JSON");
    assert_eq!(v["io_uring"]["available"], true, "{v}");
    for k in [
        "recv_multishot",
        "send_zc",
        "defer_taskrun",
        "napi",
        "provided_buffer_rings",
    ] {
        assert!(v["features"][k].is_boolean(), "features.{k}");
    }
    for k in [
        "somaxconn",
        "busy_poll",
        "io_uring_disabled",
        "tcp_max_syn_backlog",
    ] {
        assert!(v["sysctls"][k].is_u64(), "sysctls.{k} in {}", v["sysctls"]);
    }
    assert!(v["sysctls"]["ip_local_port_range"].is_array());
    assert!(v["limits"]["nofile"]["soft"].is_u64() || v["limits"]["nofile"]["soft"] == "unlimited");
    assert!(v["findings"].as_array().unwrap().len() > 20);
    let problems = v["summary"]["problem"].as_u64().unwrap();
    assert_eq!(out.status.code(), Some(i32::from(problems > 0)));
    let text = Command::new(BIN).arg("doctor").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.starts_with("uringd doctor: Linux "), "{text}");
    assert!(text.contains("[ok]      recv_multishot = yes"), "{text}");
}

#[test]
fn fixed_files_serve_from_the_registered_table() {
    let dir = TempDir::new("fixed");
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.0.join("big.bin"), &big).unwrap();
    // The catch-all comes from the config: `--static` alone serves only its files.
    let hello = "[[route]]\nprefix = \"/\"\nreturn = { body = \"Hello, World!\" }\n";
    let s = Server::start(
        Some(hello),
        &[
            "--backend",
            "io_uring",
            "--fixed-files",
            "on",
            "--static",
            &format!("/files/={}", dir.0.display()),
        ],
    );
    let info = &ring_fdinfo(s.pid())[0];
    let slots: u64 = field(info, "UserFiles").parse().unwrap();
    assert!(slots >= 64, "a registered table: {info}");
    assert!(
        s.startup.join("\n").contains("fixed_files"),
        "{:?}",
        s.startup
    );
    // Keep-alive requests, then a 2 MB file (spliced to the direct descriptor).
    let mut c = answered(&s);
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let r = read_response(&mut c, false);
    assert_eq!(r.body, b"Hello, World!");
    let r = request(s.addr, "GET", "/files/big.bin", "");
    assert_eq!(r.status, 200);
    assert!(r.body == big, "the spliced body arrived intact");
    // Accepted sockets never enter the fd table.
    let fds = std::fs::read_dir(format!("/proc/{}/fd", s.pid()))
        .unwrap()
        .count();
    assert!(fds < 20, "{fds} fds");

    // The client address is unknowable from a direct descriptor: refused where it is needed.
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "off",
            "--fixed-files",
            "on",
        ])
        .args(["--upstream", "http://127.0.0.1:9", "--backend", "io_uring"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.fixed_files") && err.contains("getpeername"),
        "{err}"
    );
}
