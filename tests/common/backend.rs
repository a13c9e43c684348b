//! Test backends for the reverse proxy, std only.
//!
//! Include from an integration test with
//!
//! ```ignore
//! #[path = "common/backend.rs"]
//! mod backend;
//! ```
//!
//! - [`Gunicorn`]: `tests/backends/echo_app.py` under gunicorn (HTTP, TCP or Unix socket).
//! - [`Uwsgi`]: the same app under uWSGI (uwsgi protocol, TCP or Unix socket).
//! - [`RawBackend`]: an in-process HTTP/1.1 backend on 127.0.0.1:0 that records the raw bytes
//!   of every request it receives and answers according to a [`Mode`].
//! - A small client: [`http_get`], [`http_request`], [`read_response`], [`uwsgi_request`].
//!
//! Everything listens on 127.0.0.1 or on a Unix socket in a temp dir. Each Python server runs
//! in its own process group: dropping the handle stops the server and its workers and reaps
//! them (no zombies). A tiny `sh` watchdog beside it kills the group if the test process dies
//! without dropping the handle (a `static`, an abort, a SIGKILL).
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The uWSGI plugin name: Debian's `uwsgi-plugin-python3` ships `python311_plugin.so` and an
/// alternatives link `python3_plugin.so` to it.
pub const UWSGI_PLUGIN: &str = "python3";
/// How long a Python backend gets to come up before the test fails.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Read timeout of the client helpers, so a broken proxy fails a test instead of hanging it.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// `tests/backends`, where `echo_app.py` lives.
pub fn backends_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/backends")
}

/// A port on 127.0.0.1 that nobody listens on (bound, read, released), for "connection
/// refused" tests. Another process could take it later, as with any such trick.
pub fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap()
}

/// Polls `f` every 10 ms until it is true or `timeout` passes; returns its last answer.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------
// Endpoints and streams
// ---------------------------------------------------------------------------------------

/// Where a backend listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl From<SocketAddr> for Endpoint {
    fn from(a: SocketAddr) -> Endpoint {
        Endpoint::Tcp(a)
    }
}

impl From<&Endpoint> for Endpoint {
    fn from(e: &Endpoint) -> Endpoint {
        e.clone()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "{a}"),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl Endpoint {
    /// Connects, with [`CLIENT_TIMEOUT`] as read and write timeout.
    pub fn connect(&self) -> io::Result<Stream> {
        let s = match self {
            Endpoint::Tcp(a) => Stream::Tcp(TcpStream::connect_timeout(a, CLIENT_TIMEOUT)?),
            Endpoint::Unix(p) => Stream::Unix(UnixStream::connect(p)?),
        };
        s.set_timeout(Some(CLIENT_TIMEOUT))?;
        Ok(s)
    }
}

/// A connected TCP or Unix stream.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    pub fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
            Stream::Unix(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
        }
    }

    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Client helpers
// ---------------------------------------------------------------------------------------

/// One parsed HTTP response.
#[derive(Clone, Debug, Default)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Every header line in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The body came with `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// The body had no framing and ran until the peer closed.
    pub close_delimited: bool,
    /// Statuses of interim (1xx) responses read before this one.
    pub interim: Vec<u16>,
}

impl Response {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header of that name, in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_line_crlf<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a complete line",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(bad(format!(
            "line not ended by CRLF: {:?}",
            String::from_utf8_lossy(&line)
        )));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|e| bad(format!("non-UTF-8 line: {e}")))
}

fn read_chunked<R: BufRead>(r: &mut R, body: &mut Vec<u8>) -> io::Result<()> {
    loop {
        let line = read_line_crlf(r)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| bad(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line_crlf(r)?.is_empty() {}
            return Ok(());
        }
        let start = body.len();
        body.resize(start + size as usize, 0);
        r.read_exact(&mut body[start..])?;
        if !read_line_crlf(r)?.is_empty() {
            return Err(bad("chunk data not followed by CRLF"));
        }
    }
}

/// Reads one response from `r` (skipping 1xx interim responses other than 101). `head`: the
/// request was HEAD, so there is no body. The body is framed by chunked, Content-Length, or
/// else runs to EOF; `r` is left right after it, ready for the next response.
pub fn read_response<R: BufRead>(r: &mut R, head: bool) -> io::Result<Response> {
    let mut resp = Response::default();
    loop {
        let status_line = read_line_crlf(r)?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") {
            return Err(bad(format!("bad status line {status_line:?}")));
        }
        let code = parts.next().unwrap_or("");
        resp.status = match code.parse::<u16>() {
            Ok(c) if code.len() == 3 => c,
            _ => return Err(bad(format!("bad status line {status_line:?}"))),
        };
        resp.reason = parts.next().unwrap_or("").to_string();
        resp.headers.clear();
        loop {
            let line = read_line_crlf(r)?;
            if line.is_empty() {
                break;
            }
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| bad(format!("bad header line {line:?}")))?;
            resp.headers
                .push((k.to_string(), v.trim_matches([' ', '\t']).to_string()));
        }
        if (100..200).contains(&resp.status) && resp.status != 101 {
            resp.interim.push(resp.status);
            continue;
        }
        break;
    }
    if head || resp.status == 204 || resp.status == 304 || resp.status == 101 {
        return Ok(resp);
    }
    let te = resp
        .header("transfer-encoding")
        .map(str::to_ascii_lowercase);
    if let Some(te) = te
        && te.rsplit(',').next().map(str::trim) == Some("chunked")
    {
        resp.chunked = true;
        read_chunked(r, &mut resp.body)?;
        return Ok(resp);
    }
    if let Some(cl) = resp.header("content-length") {
        let n: usize = cl
            .trim()
            .parse()
            .map_err(|_| bad(format!("bad Content-Length {cl:?}")))?;
        resp.body.resize(n, 0);
        r.read_exact(&mut resp.body)?;
        return Ok(resp);
    }
    resp.close_delimited = true;
    r.read_to_end(&mut resp.body)?;
    Ok(resp)
}

/// Writes `raw` on a new connection to `to`, reads one response (`head`: it answers HEAD).
pub fn http_raw(to: impl Into<Endpoint>, raw: &[u8], head: bool) -> io::Result<Response> {
    let to = to.into();
    let mut s = to.connect()?;
    s.write_all(raw)?;
    read_response(&mut BufReader::new(s), head)
}

/// Builds an HTTP/1.1 request. Adds `Host: localhost` unless `headers` has a Host, and
/// `Content-Length` when there is a body and `headers` has neither it nor Transfer-Encoding.
pub fn build_request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    let mut out = format!("{method} {target} HTTP/1.1\r\n");
    if !has("host") {
        out.push_str("Host: localhost\r\n");
    }
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() && !has("content-length") && !has("transfer-encoding") {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// One request on a new connection; panics on I/O or parse errors (with what it was doing).
pub fn http_request(
    to: impl Into<Endpoint>,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let to = to.into();
    let raw = build_request(method, target, headers, body);
    http_raw(&to, &raw, method == "HEAD")
        .unwrap_or_else(|e| panic!("{method} {target} to {to}: {e}"))
}

/// `GET path` on a new connection: (status, headers, body). Panics on errors.
pub fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let r = http_request(addr, "GET", path, headers, b"");
    (r.status, r.headers, r.body)
}

/// An uwsgi packet: header `[modifier1 = 0, datasize (u16 LE), modifier2 = 0]`, then each var
/// as `u16 LE key length, key, u16 LE value length, value`. Panics past 65535 bytes of vars.
pub fn uwsgi_packet(vars: &[(String, String)]) -> Vec<u8> {
    let mut data = Vec::new();
    for (k, v) in vars {
        for s in [k, v] {
            let len = u16::try_from(s.len()).expect("uwsgi var longer than 65535 bytes");
            data.extend_from_slice(&len.to_le_bytes());
            data.extend_from_slice(s.as_bytes());
        }
    }
    let size = u16::try_from(data.len()).expect("uwsgi vars larger than 65535 bytes");
    let mut out = vec![0u8];
    out.extend_from_slice(&size.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&data);
    out
}

/// The CGI vars a minimal proxy sends for a request: REQUEST_METHOD, REQUEST_URI, PATH_INFO
/// (the raw path before `?`), QUERY_STRING, SERVER_PROTOCOL, SERVER_NAME, SERVER_PORT,
/// REMOTE_ADDR, HTTP_HOST, CONTENT_LENGTH, then each header as HTTP_NAME (Content-Type as
/// CONTENT_TYPE).
pub fn uwsgi_vars(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body_len: usize,
) -> Vec<(String, String)> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut vars: Vec<(String, String)> = [
        ("REQUEST_METHOD", method),
        ("REQUEST_URI", uri),
        ("PATH_INFO", path),
        ("QUERY_STRING", query),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_NAME", "localhost"),
        ("SERVER_PORT", "80"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("HTTP_HOST", "localhost"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    vars.push(("CONTENT_LENGTH".into(), body_len.to_string()));
    for (k, v) in headers {
        let name = if k.eq_ignore_ascii_case("content-type") {
            "CONTENT_TYPE".to_string()
        } else {
            format!("HTTP_{}", k.to_ascii_uppercase().replace('-', "_"))
        };
        if name == "HTTP_HOST" {
            vars.retain(|(k, _)| k != "HTTP_HOST");
        }
        vars.push((name, v.to_string()));
    }
    vars
}

/// Sends an uwsgi packet with `vars` and `body` and reads the HTTP response uWSGI writes back
/// (it closes the connection after it; bodies without Content-Length run to the close).
pub fn uwsgi_exchange(
    to: impl Into<Endpoint>,
    vars: &[(String, String)],
    body: &[u8],
    head: bool,
) -> io::Result<Response> {
    let mut s = to.into().connect()?;
    let mut pkt = uwsgi_packet(vars);
    pkt.extend_from_slice(body);
    s.write_all(&pkt)?;
    read_response(&mut BufReader::new(s), head)
}

/// One request to a uWSGI socket in the uwsgi protocol, with [`uwsgi_vars`]. Panics on errors.
pub fn uwsgi_request(
    to: impl Into<Endpoint>,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let to = to.into();
    let vars = uwsgi_vars(method, uri, headers, body.len());
    uwsgi_exchange(&to, &vars, body, method == "HEAD")
        .unwrap_or_else(|e| panic!("uwsgi {method} {uri} to {to}: {e}"))
}

// ---------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}
const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory effects. Callers only signal processes (or the group) of
    // a child they have not reaped yet, so the id cannot have been reused.
    unsafe {
        kill(pid, sig);
    }
}

/// (state, process group) of a live or zombie process, from /proc/<pid>/stat.
fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut f = rest.split(' ');
    let state = f.next()?.chars().next()?;
    let _ppid = f.next()?;
    Some((state, f.next()?.parse().ok()?))
}

/// Pids of the processes in process group `pgid` that have not exited (zombies excluded).
pub fn process_group_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| matches!(proc_stat(pid), Some((s, g)) if g == pgid && s != 'Z' && s != 'X'))
        .collect()
}

/// Kills process group `$1` and removes the scratch dir `$2` when its stdin closes: the test
/// process died without dropping the handle (a `static`, an abort, a SIGKILL). Drop kills
/// this watchdog first. (dash's kill wants `-PGID` and rejects `--`.)
const WATCHDOG: &str = r#"read -r _; kill -9 "-$1" 2>/dev/null; rm -rf "$2""#;

/// A server process (its own process group leader) with its workers, its stderr collected,
/// and a watchdog. Drop ends them all and reaps them.
struct Group {
    child: Child,
    watchdog: Child,
    log: Arc<Mutex<String>>,
}

const LOG_CAP: usize = 1 << 20;

impl Group {
    fn spawn(program: &str, args: &[String], envs: &[(&str, &str)], dir: &Path) -> Group {
        let mut child = Command::new(program)
            .args(args)
            .envs(envs.iter().copied())
            // Imports must not leave __pycache__ in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {program} ({e}); scripts/setup installs it (as root)")
            });
        let watchdog = Command::new("/bin/sh")
            .args(["-c", WATCHDOG, "backend-watchdog"])
            .arg(child.id().to_string())
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let watchdog = match watchdog {
            Ok(w) => w,
            Err(e) => {
                signal(-(child.id() as i32), SIGKILL);
                let _ = child.wait();
                panic!("start /bin/sh watchdog: {e}");
            }
        };
        let mut stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        // Drain stderr always (a full pipe would stall the server); keep the last MiB.
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&String::from_utf8_lossy(&buf[..n]));
                if l.len() > LOG_CAP {
                    let mut cut = l.len() - LOG_CAP / 2;
                    while !l.is_char_boundary(cut) {
                        cut += 1;
                    }
                    l.drain(..cut);
                }
            }
        });
        Group {
            child,
            watchdog,
            log,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The server exited (it stays a zombie until `stop` reaps it).
    fn exited(&self) -> bool {
        matches!(proc_stat(self.child.id()), Some(('Z' | 'X', _)) | None)
    }

    /// Waits for `ok` (true) or one of `fail` (false) to show in stderr, or the server to
    /// exit (false); panics after `START_TIMEOUT`.
    fn wait_log(&self, what: &str, ok: &str, fail: &[&str]) -> bool {
        let end = Instant::now() + START_TIMEOUT;
        loop {
            let log = self.log();
            if log.contains(ok) {
                return true;
            }
            if fail.iter().any(|f| log.contains(f)) {
                return false;
            }
            if self.exited() {
                // Let the stderr reader catch up with the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return false;
            }
            if Instant::now() >= end {
                panic!("{what} did not start within {START_TIMEOUT:?}; its stderr:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ends the server and its workers and reaps them, leaving no zombie: SIGKILL to the
    /// workers (the server reaps them), SIGINT to the server (gunicorn and uWSGI then stop at
    /// once), SIGKILL to whatever is left after 3 s, then wait.
    fn stop(&mut self) {
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        let pid = self.child.id();
        if !self.exited() {
            for p in process_group_members(pid) {
                if p != pid {
                    signal(p as i32, SIGKILL);
                }
            }
            signal(pid as i32, SIGINT);
            wait_until(Duration::from_secs(3), || self.exited());
        }
        // The leader is not reaped yet, so the group id is still ours.
        signal(-(pid as i32), SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A scratch directory removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(tag: &str) -> ScratchDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "uringd-backend-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        ScratchDir(p)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How a Python backend listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    /// 127.0.0.1 on a free port.
    Tcp,
    /// A socket file in a fresh temp dir.
    Unix,
}

fn free_port() -> u16 {
    refused_addr().port()
}

/// How to start one of the Python servers.
struct PySpec<'a> {
    program: &'a str,
    envs: &'a [(&'a str, &'a str)],
    /// The command line for an endpoint.
    args: &'a dyn Fn(&Endpoint) -> Vec<String>,
    /// The stderr line that says it listens on that endpoint.
    ok_line: &'a dyn Fn(&Endpoint) -> String,
    /// Stderr text that means the TCP port was taken.
    clash: &'a [&'a str],
    /// One health request; true when it got the right answer.
    health: &'a dyn Fn(&Endpoint) -> bool,
}

/// Starts a server until it reports `ok_line` in stderr; on a TCP port clash (`clash` in
/// stderr) retries with another port. Then polls `health` until it passes.
/// A Python backend (gunicorn or uWSGI) running our echo app; its process group dies with it.
pub struct PyServer {
    pub addr: Option<SocketAddr>,
    pub unix: Option<PathBuf>,
    pub endpoint: Endpoint,
    group: Group,
    _dir: ScratchDir,
}

impl PyServer {
    fn launch(spec: &PySpec, listen: Listen, dir: ScratchDir) -> PyServer {
        let (group, endpoint) = start_python(spec, listen, &dir);
        let (addr, unix) = match &endpoint {
            Endpoint::Tcp(a) => (Some(*a), None),
            Endpoint::Unix(p) => (None, Some(p.clone())),
        };
        PyServer {
            addr,
            unix,
            endpoint,
            group,
            _dir: dir,
        }
    }

    /// What the server wrote to stderr so far (boot lines, tracebacks; uWSGI also logs
    /// one line per request).
    pub fn stderr(&self) -> String {
        self.group.log()
    }

    /// The master's pid, which is also the process group id of it and its workers.
    pub fn pgid(&self) -> u32 {
        self.group.child.id()
    }
}

fn start_python(spec: &PySpec, listen: Listen, dir: &ScratchDir) -> (Group, Endpoint) {
    let what = spec.program;
    let attempts = if listen == Listen::Tcp { 5 } else { 1 };
    for attempt in 1..=attempts {
        let ep = match listen {
            Listen::Tcp => Endpoint::Tcp(SocketAddr::from(([127, 0, 0, 1], free_port()))),
            Listen::Unix => Endpoint::Unix(dir.0.join(format!("{what}.sock"))),
        };
        let mut group = Group::spawn(what, &(spec.args)(&ep), spec.envs, &dir.0);
        if !group.wait_log(what, &(spec.ok_line)(&ep), spec.clash) {
            let log = group.log();
            group.stop();
            if attempt < attempts && spec.clash.iter().any(|c| log.contains(c)) {
                continue;
            }
            panic!("{what} failed to start on {ep}; its stderr:\n{log}");
        }
        if !wait_until(START_TIMEOUT, || (spec.health)(&ep)) {
            let log = group.log();
            group.stop();
            panic!("{what} on {ep} never answered /health; its stderr:\n{log}");
        }
        return (group, ep);
    }
    unreachable!()
}

/// `tests/backends/echo_app.py` under gunicorn, speaking HTTP. Killed (whole process group)
/// on drop.
pub struct Gunicorn(PyServer);

impl std::ops::Deref for Gunicorn {
    type Target = PyServer;
    fn deref(&self) -> &PyServer {
        &self.0
    }
}

impl Gunicorn {
    /// Sync workers on 127.0.0.1:<free port>. Sync workers answer every response with
    /// `Connection: close` (gunicorn's `--keep-alive` applies only to threaded/async workers).
    pub fn tcp(workers: usize) -> Gunicorn {
        Gunicorn::start(Listen::Tcp, workers, &[])
    }

    /// Two sync workers on a Unix socket in a temp dir.
    pub fn unix() -> Gunicorn {
        Gunicorn::start(Listen::Unix, 2, &[])
    }

    /// `gthread` workers on TCP: these keep connections alive (30 s), for pooling tests.
    pub fn tcp_threads(workers: usize, threads: usize) -> Gunicorn {
        let threads = threads.to_string();
        Gunicorn::start(
            Listen::Tcp,
            workers,
            &["--worker-class", "gthread", "--threads", &threads],
        )
    }

    /// Any combination; `extra` goes last, so a later `--worker-class` overrides `sync`.
    pub fn start(listen: Listen, workers: usize, extra: &[&str]) -> Gunicorn {
        let dir = ScratchDir::new("gunicorn");
        let chdir = backends_dir();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let make_args = |ep: &Endpoint| -> Vec<String> {
            let bind = match ep {
                Endpoint::Tcp(a) => a.to_string(),
                Endpoint::Unix(p) => format!("unix:{}", p.display()),
            };
            let mut a: Vec<String> = [
                "--chdir",
                chdir.to_str().unwrap(),
                "--bind",
                &bind,
                "--workers",
                &workers.to_string(),
                "--worker-class",
                "sync",
                "--keep-alive",
                "30",
                "--graceful-timeout",
                "1",
                "--log-level",
                "info",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            a.extend(extra.iter().cloned());
            a.push("echo_app:app".into());
            a
        };
        let ok_line = |ep: &Endpoint| match ep {
            Endpoint::Tcp(a) => format!("Listening at: http://{a} "),
            Endpoint::Unix(p) => format!("Listening at: unix:{} ", p.display()),
        };
        let health = |ep: &Endpoint| {
            http_raw(ep, &build_request("GET", "/health", &[], b""), false)
                .map(|r| r.status == 200 && r.body == b"ok")
                .unwrap_or(false)
        };
        let spec = PySpec {
            program: "gunicorn",
            envs: &[("ECHO_SERVER", "gunicorn")],
            args: &make_args,
            ok_line: &ok_line,
            clash: &["Connection in use", "Address already in use"],
            health: &health,
        };
        Gunicorn(PyServer::launch(&spec, listen, dir))
    }
}

/// `tests/backends/echo_app.py` under uWSGI, speaking the uwsgi protocol (`--socket`), with a
/// master and 2 worker processes. Killed (whole process group) on drop.
pub struct Uwsgi(PyServer);

impl std::ops::Deref for Uwsgi {
    type Target = PyServer;
    fn deref(&self) -> &PyServer {
        &self.0
    }
}

impl Uwsgi {
    /// On 127.0.0.1:<free port>.
    pub fn tcp() -> Uwsgi {
        Uwsgi::start(Listen::Tcp, 2, &[])
    }

    /// On a Unix socket in a temp dir.
    pub fn unix() -> Uwsgi {
        Uwsgi::start(Listen::Unix, 2, &[])
    }

    /// Any combination; `extra` is appended to the command line.
    pub fn start(listen: Listen, processes: usize, extra: &[&str]) -> Uwsgi {
        let dir = ScratchDir::new("uwsgi");
        let chdir = backends_dir();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let make_args = |ep: &Endpoint| -> Vec<String> {
            let socket = match ep {
                Endpoint::Tcp(a) => a.to_string(),
                Endpoint::Unix(p) => p.display().to_string(),
            };
            let mut a: Vec<String> = [
                // --plugin only warns when the plugin does not load; --need-plugin exits.
                "--need-plugin",
                UWSGI_PLUGIN,
                "--strict",
                "--socket",
                &socket,
                "--chdir",
                chdir.to_str().unwrap(),
                "--wsgi-file",
                "echo_app.py",
                "--callable",
                "app",
                // uWSGI 2.0 otherwise keeps running without the app, answering 500s.
                "--need-app",
                "--master",
                "--processes",
                &processes.to_string(),
                "--die-on-term",
                // The largest uwsgi packet (vars) accepted; the default 4096 rejects big heads.
                "--buffer-size",
                "65535",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            a.extend(extra.iter().cloned());
            a
        };
        let ok_line = |ep: &Endpoint| match ep {
            Endpoint::Tcp(a) => format!("bound to TCP address {a} "),
            Endpoint::Unix(p) => format!("bound to UNIX address {} ", p.display()),
        };
        let health = |ep: &Endpoint| {
            let vars = uwsgi_vars("GET", "/health", &[], 0);
            uwsgi_exchange(ep, &vars, b"", false)
                .map(|r| r.status == 200 && r.body == b"ok")
                .unwrap_or(false)
        };
        let spec = PySpec {
            program: "uwsgi",
            envs: &[("ECHO_SERVER", "uwsgi")],
            args: &make_args,
            ok_line: &ok_line,
            clash: &["Address already in use"],
            health: &health,
        };
        Uwsgi(PyServer::launch(&spec, listen, dir))
    }
}

// ---------------------------------------------------------------------------------------
// RawBackend
// ---------------------------------------------------------------------------------------

/// How a [`RawBackend`] answers. Every mode but `Dead` first reads a whole request (framed by
/// Content-Length or chunked; a head alone when it has neither) and records it.
#[derive(Clone, Debug)]
pub enum Mode {
    /// HTTP/1.1 keep-alive: 200 with `Content-Length` and body = the raw request (head +
    /// body) as received; headers `X-Conn: <connection number, from 1>` and
    /// `X-Seq: <request number on that connection, from 1>`. Sends `100 Continue` for
    /// `Expect: 100-continue`, closes after a request with `Connection: close` (or HTTP/1.0
    /// without keep-alive), no body for HEAD.
    Echo,
    /// Writes exactly these bytes after each request; keeps the connection open.
    Fixed(String),
    /// Waits, then 200 `slow` (Content-Length 4); keep-alive.
    Slow(Duration),
    /// Accepts and closes at once, reading nothing.
    Dead,
    /// `HTTP/1.1 200 OK`, `Content-Length: 100000`, then 1000 bytes, then closes.
    CloseMidBody,
    /// Like `Echo`, but closes the connection (without saying so) after n responses.
    CloseAfter(usize),
    /// Runs these steps on each connection, then closes.
    Script(Vec<Action>),
}

/// A step of [`Mode::Script`].
#[derive(Clone, Debug)]
pub enum Action {
    /// Reads (and records) one request; ends the script if the peer closes first.
    ReadRequest,
    /// Writes these bytes.
    Write(Vec<u8>),
    /// Sleeps (cut short when the backend is dropped).
    Sleep(Duration),
    /// Closes the connection now.
    Close,
    /// Reads and discards until the peer closes or the backend is dropped.
    Hold,
}

/// An in-process backend on 127.0.0.1:0. `requests` holds the raw bytes of every request
/// received, in arrival order across connections; a request that stalls shows up after
/// 200 ms idle as what has arrived so far, and is completed in place if the rest comes.
/// Request framing that cannot be parsed (bad chunk) is recorded after 200 ms idle and
/// answered `400` + close (except in `Fixed`, which answers its bytes anyway).
pub struct RawBackend {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Vec<u8>>>>,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    mode: Mode,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
    connections: AtomicUsize,
    stop: AtomicBool,
    /// A clone of each live connection's stream, to shut it down on drop; the handler removes
    /// its own when done, so that its close is a real close.
    streams: Mutex<HashMap<usize, TcpStream>>,
    handlers: Mutex<Vec<JoinHandle<()>>>,
}

/// How long a connection may sit with a partial request before it is recorded.
const IDLE: Duration = Duration::from_millis(200);

impl RawBackend {
    pub fn start(mode: Mode) -> RawBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            mode,
            requests: requests.clone(),
            connections: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            streams: Mutex::new(HashMap::new()),
            handlers: Mutex::new(Vec::new()),
        });
        let sh = shared.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sh.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let id = sh.connections.fetch_add(1, Ordering::SeqCst) + 1;
                let Ok(clone) = stream.try_clone() else {
                    continue;
                };
                sh.streams.lock().unwrap().insert(id, clone);
                let sh2 = sh.clone();
                let h = std::thread::spawn(move || {
                    serve(&sh2, stream, id);
                    sh2.streams.lock().unwrap().remove(&id);
                });
                let mut handlers = sh.handlers.lock().unwrap();
                handlers.retain(|h| !h.is_finished());
                handlers.push(h);
            }
        });
        RawBackend {
            addr,
            requests,
            shared,
            accept: Some(accept),
        }
    }

    /// A copy of every request recorded so far.
    pub fn requests(&self) -> Vec<Vec<u8>> {
        self.requests.lock().unwrap().clone()
    }

    /// The requests as (lossy) text, handy in assertion messages.
    pub fn requests_text(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }

    /// Waits up to `timeout` for at least `n` recorded requests; returns them all.
    pub fn wait_requests(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        wait_until(timeout, || self.requests.lock().unwrap().len() >= n);
        self.requests()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        for (_, s) in self.shared.streams.lock().unwrap().drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let handlers: Vec<_> = self.shared.handlers.lock().unwrap().drain(..).collect();
        for h in handlers {
            let _ = h.join();
        }
    }
}

enum Frame {
    /// Need more bytes; `head_end` once the head is complete.
    Incomplete {
        head_end: Option<usize>,
        expect_continue: bool,
    },
    Complete(usize),
    Invalid,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Where the first request in `buf` ends.
fn frame(buf: &[u8]) -> Frame {
    let Some(h) = find(buf, b"\r\n\r\n", 0) else {
        return Frame::Incomplete {
            head_end: None,
            expect_continue: false,
        };
    };
    let head_end = h + 4;
    let head = String::from_utf8_lossy(&buf[..h]);
    let mut cl: Option<usize> = None;
    let mut chunked = false;
    let mut expect_continue = false;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                let Ok(n) = value.parse::<usize>() else {
                    return Frame::Invalid;
                };
                if cl.is_some_and(|c| c != n) {
                    return Frame::Invalid;
                }
                cl = Some(n);
            }
            "transfer-encoding" => {
                chunked = value.rsplit(',').next().map(str::trim) == Some("chunked");
                if !chunked {
                    return Frame::Invalid;
                }
            }
            "expect" => expect_continue = value == "100-continue",
            _ => {}
        }
    }
    let incomplete = Frame::Incomplete {
        head_end: Some(head_end),
        expect_continue,
    };
    if chunked {
        return match chunked_end(buf, head_end) {
            Some(Ok(end)) => Frame::Complete(end),
            Some(Err(())) => Frame::Invalid,
            None => incomplete,
        };
    }
    match cl {
        Some(n) if buf.len() < head_end + n => incomplete,
        Some(n) => Frame::Complete(head_end + n),
        None => Frame::Complete(head_end),
    }
}

/// The end of a chunked body starting at `pos`: None = incomplete, Err = malformed.
fn chunked_end(buf: &[u8], mut pos: usize) -> Option<Result<usize, ()>> {
    loop {
        let Some(eol) = find(buf, b"\r\n", pos) else {
            return if buf.len() - pos > 1024 {
                Some(Err(()))
            } else {
                None
            };
        };
        let line = String::from_utf8_lossy(&buf[pos..eol]);
        let size_text = line
            .split(';')
            .next()
            .unwrap_or("")
            .trim_matches([' ', '\t']);
        if size_text.is_empty()
            || size_text.len() > 15
            || !size_text.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Some(Err(()));
        }
        let size = usize::from_str_radix(size_text, 16).unwrap();
        pos = eol + 2;
        if size == 0 {
            // Trailer lines up to the empty one.
            loop {
                let eol = find(buf, b"\r\n", pos)?;
                let empty = eol == pos;
                pos = eol + 2;
                if empty {
                    return Some(Ok(pos));
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return None;
        }
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Some(Err(()));
        }
        pos += size + 2;
    }
}

enum Got {
    Request(Vec<u8>),
    Invalid,
    Closed,
}

struct Conn {
    shared: Arc<Shared>,
    stream: TcpStream,
    buf: Vec<u8>,
    /// Index in `requests` of the partial request recorded after idling.
    partial: Option<usize>,
}

impl Conn {
    fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    /// Records `bytes` as the current request (in place of its partial snapshot, if any).
    fn record(&mut self, bytes: Vec<u8>, done: bool) {
        let mut reqs = self.shared.requests.lock().unwrap();
        match self.partial {
            Some(i) => reqs[i] = bytes,
            None => {
                reqs.push(bytes);
                self.partial = Some(reqs.len() - 1);
            }
        }
        if done {
            self.partial = None;
        }
    }

    /// Reads the next request. `continue_100`: answer `Expect: 100-continue`.
    fn next_request(&mut self, continue_100: bool) -> Got {
        let mut sent_continue = false;
        let mut invalid = false;
        loop {
            if !invalid {
                match frame(&self.buf) {
                    Frame::Complete(n) => {
                        let req: Vec<u8> = self.buf.drain(..n).collect();
                        self.record(req.clone(), true);
                        return Got::Request(req);
                    }
                    Frame::Invalid => invalid = true,
                    Frame::Incomplete {
                        head_end,
                        expect_continue,
                    } => {
                        if continue_100
                            && expect_continue
                            && !sent_continue
                            && head_end == Some(self.buf.len())
                        {
                            sent_continue = true;
                            let _ = self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
                        }
                    }
                }
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    if !self.buf.is_empty() {
                        let b = std::mem::take(&mut self.buf);
                        self.record(b, true);
                    }
                    return Got::Closed;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    if self.stopped() {
                        return Got::Closed;
                    }
                    if invalid {
                        let b = std::mem::take(&mut self.buf);
                        self.record(b, true);
                        return Got::Invalid;
                    }
                    if !self.buf.is_empty() {
                        let b = self.buf.clone();
                        self.record(b, false);
                    }
                }
                Err(_) => {
                    if !self.buf.is_empty() {
                        let b = std::mem::take(&mut self.buf);
                        self.record(b, true);
                    }
                    return Got::Closed;
                }
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stopped() {
            let now = Instant::now();
            if now >= end {
                break;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(10)));
        }
    }

    /// Echo-style answering; `limit`: close silently after that many responses.
    fn echo(&mut self, id: usize, limit: Option<usize>) {
        let mut seq = 0;
        loop {
            if limit.is_some_and(|l| seq >= l) {
                return;
            }
            let req = match self.next_request(true) {
                Got::Request(r) => r,
                Got::Invalid => {
                    self.write(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    return;
                }
                Got::Closed => return,
            };
            seq += 1;
            let (head_request, close) = request_traits(&req);
            let mut resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nX-Conn: {id}\r\nX-Seq: {seq}\r\n",
                req.len()
            );
            if close {
                resp.push_str("Connection: close\r\n");
            }
            resp.push_str("\r\n");
            let mut resp = resp.into_bytes();
            if !head_request {
                resp.extend_from_slice(&req);
            }
            if !self.write(&resp) || close {
                return;
            }
        }
    }
}

/// (is HEAD, the client asked to close).
fn request_traits(req: &[u8]) -> (bool, bool) {
    let end = find(req, b"\r\n\r\n", 0).unwrap_or(req.len());
    let head = String::from_utf8_lossy(&req[..end]).to_ascii_lowercase();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let is_head = request_line.starts_with("head ");
    let http10 = request_line.ends_with("http/1.0");
    let mut close = false;
    let mut keep_alive = false;
    for line in lines {
        if let Some(v) = line.strip_prefix("connection:") {
            for token in v.split(',').map(str::trim) {
                close |= token == "close";
                keep_alive |= token == "keep-alive";
            }
        }
    }
    (is_head, close || (http10 && !keep_alive))
}

/// Answers one connection; dropping `stream` at the end closes it (the clone in `streams`
/// goes right after).
fn serve(shared: &Arc<Shared>, stream: TcpStream, id: usize) {
    if let Mode::Dead = shared.mode {
        drop(stream);
        return;
    }
    let _ = stream.set_read_timeout(Some(IDLE));
    let _ = stream.set_nodelay(true);
    let mut c = Conn {
        shared: shared.clone(),
        stream,
        buf: Vec::new(),
        partial: None,
    };
    match &shared.mode {
        Mode::Dead => {}
        Mode::Echo => c.echo(id, None),
        Mode::CloseAfter(n) => c.echo(id, Some(*n)),
        Mode::Fixed(bytes) => loop {
            match c.next_request(false) {
                Got::Closed => break,
                Got::Request(_) | Got::Invalid => {
                    if !c.write(bytes.as_bytes()) {
                        break;
                    }
                }
            }
        },
        Mode::Slow(d) => {
            let mut seq = 0;
            loop {
                match c.next_request(true) {
                    Got::Closed | Got::Invalid => break,
                    Got::Request(_) => {}
                }
                seq += 1;
                c.sleep(*d);
                if c.stopped() {
                    break;
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Conn: {id}\r\nX-Seq: {seq}\r\n\r\nslow"
                );
                if !c.write(resp.as_bytes()) {
                    break;
                }
            }
        }
        Mode::CloseMidBody => {
            if let Got::Request(_) = c.next_request(true) {
                let mut resp = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec();
                resp.extend(std::iter::repeat_n(b'x', 1000));
                c.write(&resp);
            }
        }
        Mode::Script(actions) => {
            for a in actions {
                match a {
                    Action::ReadRequest => {
                        if let Got::Closed = c.next_request(false) {
                            break;
                        }
                    }
                    Action::Write(b) => {
                        if !c.write(b) {
                            break;
                        }
                    }
                    Action::Sleep(d) => c.sleep(*d),
                    Action::Close => break,
                    Action::Hold => {
                        let mut sink = [0u8; 65536];
                        loop {
                            match c.stream.read(&mut sink) {
                                Ok(0) => break,
                                Ok(_) => {}
                                Err(e)
                                    if e.kind() == io::ErrorKind::WouldBlock
                                        || e.kind() == io::ErrorKind::TimedOut =>
                                {
                                    if c.stopped() {
                                        break;
                                    }
                                }
                                Err(_) => break,
                            }
                        }
                    }
                }
            }
        }
    }
}
