//! Test support: start the real binary on an ephemeral loopback port, speak raw bytes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_uringd");

/// The backend this run of the suite exercises: the binary reads `URINGD_BACKEND` (as
/// `--backend`), so `URINGD_BACKEND=epoll cargo test` runs the same suite on epoll.
/// Unset means auto, which is io_uring on every machine this suite runs on (checked by
/// tests/backend.rs).
pub fn backend() -> &'static str {
    match std::env::var("URINGD_BACKEND").as_deref() {
        Ok("epoll") => "epoll",
        _ => "io_uring",
    }
}

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The admin endpoint, when started with `--admin 127.0.0.1:0`.
    pub admin: Option<SocketAddr>,
    /// What it printed before it was listening (worker lines with ring features).
    pub startup: Vec<String>,
    pub log: mpsc::Receiver<String>,
    _dir: Option<TempDir>,
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "uringd-test-{tag}-{}-{}",
            std::process::id(),
            rand_u64()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(1);
    h.finish()
}

impl Server {
    /// Starts `uringd serve` with a config body (TOML) and extra args, on 127.0.0.1:0.
    pub fn start(config: Option<&str>, args: &[&str]) -> Server {
        let dir = config.map(|_| TempDir::new("cfg"));
        let mut cmd = Command::new(BIN);
        cmd.arg("serve").args(["--listen", "127.0.0.1:0"]);
        if !args.contains(&"--admin") {
            cmd.args(["--admin", "off"]);
        }
        if let (Some(text), Some(d)) = (config, &dir) {
            let p = d.0.join("uringd.toml");
            std::fs::write(&p, text).unwrap();
            cmd.arg("--config").arg(p);
        }
        if !args.contains(&"--workers") {
            cmd.args(["--workers", "1"]);
        }
        cmd.args(args);
        Self::spawn(cmd, dir)
    }

    pub fn spawn(mut cmd: Command, dir: Option<TempDir>) -> Server {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start uringd");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // URINGD_TEST_LOG=DIR keeps each server's stderr in DIR/uringd-PID.log (debugging).
        let keep = std::env::var_os("URINGD_TEST_LOG")
            .map(|d| std::path::PathBuf::from(d).join(format!("uringd-{}.log", child.id())));
        std::thread::spawn(move || {
            let mut keep = keep.and_then(|p| std::fs::File::create(p).ok());
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(f) = keep.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                if tx.send(line).is_err() {
                    // The test stopped reading; keep draining so the server never blocks.
                    continue;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        let mut admin = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("admin on http://").nth(1) {
                        admin = rest.split('/').next().and_then(|a| a.parse().ok());
                    }
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                        return Server {
                            child,
                            addr,
                            admin,
                            startup: seen,
                            log: rx,
                            _dir: dir,
                        };
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("uringd did not start; stderr:\n{}", seen.join("\n"));
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// Sends SIGTERM and waits for the exit status (None if it did not exit in time).
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `req` and reads until the server closes (or the timeout).
pub fn raw(addr: SocketAddr, req: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req).unwrap();
    read_to_close(&mut s)
}

pub fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "read failed before close: {e}; got so far: {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One parsed response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Reads exactly one response (head + Content-Length body) from a stream.
pub fn read_response(s: &mut TcpStream, head_only: bool) -> Resp {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).expect("read head");
        assert!(
            n == 1,
            "connection closed mid-head; got {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status = head[9..12].parse().unwrap();
    let mut r = Resp {
        status,
        head,
        body: Vec::new(),
    };
    if !head_only && status != 100 {
        let len: usize = r
            .header("content-length")
            .map(|v| v.parse().unwrap())
            .unwrap_or(0);
        r.body = vec![0; len];
        s.read_exact(&mut r.body).expect("read body");
    }
    r
}

/// True if the peer has closed (EOF) within the timeout, false if data or nothing came.
pub fn closed_within(s: &mut TcpStream, t: Duration) -> bool {
    s.set_read_timeout(Some(t)).unwrap();
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0))
        || matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}

pub fn status_of(resp: &str) -> u16 {
    resp.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Sends `sig` to a process this test started.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory preconditions; the pid is a child of this test.
    unsafe { libc::kill(pid as i32, sig) };
}

/// A request with `Connection: close`, read to the end: None if the answer was cut short
/// (a close before the whole head or Content-Length body), which a test of a backend dying
/// mid-response counts as a failed request instead of a panic.
pub fn try_request(addr: SocketAddr, path: &str) -> Option<Resp> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let end = all.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8(all[..end + 4].to_vec()).ok()?;
    let mut r = Resp {
        status: head.get(9..12)?.parse().ok()?,
        head,
        body: all[end + 4..].to_vec(),
    };
    if let Some(len) = r.header("content-length") {
        let len: usize = len.parse().ok()?;
        if r.body.len() < len {
            return None;
        }
        r.body.truncate(len);
    }
    Some(r)
}

/// GET (or other method) on a fresh connection; returns the parsed response.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &str) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n").unwrap();
    read_response(&mut s, method == "HEAD")
}

/// Resident memory of a process in KiB (from /proc).
pub fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Connects to `addr` from the loopback address `from` (any 127.x works on Linux), so a
/// test can be a client other than 127.0.0.1.
pub fn connect_from(from: std::net::Ipv4Addr, addr: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(to) = addr else {
        panic!("connect_from takes an IPv4 server address")
    };
    let sin = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let (src, dst) = (sin(from, 0), sin(*to.ip(), to.port()));
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a new socket; both addresses are valid sockaddr_in values of `len` bytes, and
    // the descriptor is handed to TcpStream, which owns it from here.
    let s = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let s = TcpStream::from_raw_fd(fd);
        let rc = libc::bind(fd, (&raw const src).cast(), len);
        assert_eq!(rc, 0, "bind {from}: {}", std::io::Error::last_os_error());
        let rc = libc::connect(fd, (&raw const dst).cast(), len);
        assert_eq!(rc, 0, "connect {addr}: {}", std::io::Error::last_os_error());
        s
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// The proxy_protocol listener's address, from its "listening on" line (after `start`).
pub fn proxy_protocol_addr(s: &Server) -> SocketAddr {
    loop {
        let line = s
            .log
            .recv_timeout(Duration::from_secs(10))
            .expect("a listening line");
        if line.contains("PROXY protocol header expected") {
            let rest = line.split("listening on http://").nth(1).unwrap();
            return rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    }
}
