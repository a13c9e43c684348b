//! A scriptable HTTP/1.1 server for testing the load generator: a thread per connection,
//! each request answered (or not) as a script decides, with counters the tests check.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What the server does with one request.
#[derive(Clone, Copy, Debug)]
pub enum Action {
    /// Wait, then answer `status` with a 2-byte body.
    Respond { delay: Duration, status: u16 },
    /// Close the connection without answering.
    Close,
    /// Never answer (the connection stays open).
    Hang,
    /// Answer with bytes that are not HTTP.
    Garbage,
}

/// What the script sees of a request.
pub struct Req<'a> {
    /// 0-based number of the request across the whole server.
    pub n: u64,
    /// Time since the server received its first request.
    pub since_first: Duration,
    pub path: &'a str,
}

type Script = dyn Fn(&Req) -> Action + Send + Sync;

#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub connections: AtomicU64,
    /// The most complete requests found waiting in one read (pipelining depth).
    pub max_batch: AtomicUsize,
    pub paths: Mutex<Vec<String>>,
}

pub struct LoadTarget {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl LoadTarget {
    /// `pause`: sleep this long before handling each read (lets pipelined requests pile up).
    pub fn start(
        pause: Duration,
        script: impl Fn(&Req) -> Action + Send + Sync + 'static,
    ) -> LoadTarget {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let first: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
        let (c, s) = (counters.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                c.connections.fetch_add(1, Ordering::Relaxed);
                let (c, s, script, first) = (c.clone(), s.clone(), script.clone(), first.clone());
                std::thread::spawn(move || serve(conn, pause, &c, &s, &*script, &first));
            }
        });
        LoadTarget {
            addr,
            counters,
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::Relaxed)
    }
}

impl Drop for LoadTarget {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(
    mut s: TcpStream,
    pause: Duration,
    c: &Counters,
    stop: &AtomicBool,
    script: &Script,
    first: &OnceLock<Instant>,
) {
    let _ = s.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if !pause.is_zero() {
            std::thread::sleep(pause);
            // Whatever else arrived meanwhile belongs to this batch.
            s.set_nonblocking(true).unwrap();
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            s.set_nonblocking(false).unwrap();
        }
        let mut out = Vec::new();
        let mut batch = 0;
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            batch += 1;
            let path = head.split(' ').nth(1).unwrap_or("").to_string();
            let n = c.requests.fetch_add(1, Ordering::Relaxed);
            let since_first = first.get_or_init(Instant::now).elapsed();
            c.paths.lock().unwrap().push(path.clone());
            let close = head.to_ascii_lowercase().contains("connection: close");
            match script(&Req {
                n,
                since_first,
                path: &path,
            }) {
                Action::Respond { delay, status } => {
                    if !delay.is_zero() {
                        if !out.is_empty() {
                            let _ = s.write_all(&out);
                            out.clear();
                        }
                        std::thread::sleep(delay);
                    }
                    let conn = if close { "Connection: close\r\n" } else { "" };
                    out.extend_from_slice(
                        format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\n{conn}\r\nok")
                            .as_bytes(),
                    );
                    if close {
                        let _ = s.write_all(&out);
                        return;
                    }
                }
                Action::Close => {
                    let _ = s.write_all(&out);
                    return;
                }
                Action::Hang => {
                    let _ = s.write_all(&out);
                    while !stop.load(Ordering::Relaxed) && s.read(&mut chunk).is_ok_and(|n| n > 0) {
                    }
                    return;
                }
                Action::Garbage => {
                    out.extend_from_slice(b"SSH-2.0-NotHTTP\r\n\r\n");
                }
            }
        }
        c.max_batch.fetch_max(batch, Ordering::Relaxed);
        if !out.is_empty() && s.write_all(&out).is_err() {
            return;
        }
    }
}
