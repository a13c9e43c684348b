//! Is an instance ready? A request on its socket that gets an answer: `GET ready_path`
//! answered 2xx, or (without a ready_path) `GET /` answered at all, in HTTP or uwsgi as
//! the app speaks. The socket is uringd's own, so connecting always succeeds (the kernel
//! queues it): the answer is what says the app took it. Runs on a thread per start.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::upstream::Proto;

/// The request bytes of a probe.
pub fn request(proto: Proto, path: &str) -> Vec<u8> {
    match proto {
        Proto::Http => format!(
            "GET {path} HTTP/1.1\r\nHost: uringd-ready\r\nUser-Agent: uringd-ready\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
        Proto::Uwsgi => {
            let vars = [
                ("REQUEST_METHOD", "GET"),
                ("REQUEST_URI", path),
                ("PATH_INFO", path),
                ("QUERY_STRING", ""),
                ("SERVER_PROTOCOL", "HTTP/1.1"),
                ("SERVER_NAME", "uringd-ready"),
                ("SERVER_PORT", "0"),
                ("REMOTE_ADDR", "127.0.0.1"),
                ("HTTP_HOST", "uringd-ready"),
                ("wsgi.url_scheme", "http"),
            ];
            let mut body = Vec::new();
            for (k, v) in vars {
                body.extend_from_slice(&(k.len() as u16).to_le_bytes());
                body.extend_from_slice(k.as_bytes());
                body.extend_from_slice(&(v.len() as u16).to_le_bytes());
                body.extend_from_slice(v.as_bytes());
            }
            let mut p = vec![0u8];
            p.extend_from_slice(&(body.len() as u16).to_le_bytes());
            p.push(0);
            p.extend_from_slice(&body);
            p
        }
    }
}

/// The status of an answer's first line (`HTTP/1.x NNN ...`; uwsgi apps answer HTTP too).
pub fn status(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|&b| b == b'\n').next()?;
    let code = line.strip_prefix(b"HTTP/1.")?.get(2..5)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// One attempt: Some(ready) once an answer came, None if none came in `wait`.
fn once(socket: &Path, req: &[u8], wait: Duration, need_2xx: bool) -> Option<bool> {
    let mut s = UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(wait)).ok()?;
    s.set_write_timeout(Some(wait)).ok()?;
    s.write_all(req).ok()?;
    let mut got = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match s.read(&mut got[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let code = status(&got[..n])?;
    Some(!need_2xx || (200..300).contains(&code))
}

/// Probes until the instance answers as ready, `stop()` says to give up, or `deadline`.
pub fn until_ready(
    socket: &Path,
    proto: Proto,
    ready_path: Option<&str>,
    deadline: Instant,
    stop: &dyn Fn() -> bool,
) -> bool {
    let req = request(proto, ready_path.unwrap_or("/"));
    while Instant::now() < deadline && !stop() {
        let left = deadline.saturating_duration_since(Instant::now());
        match once(
            socket,
            &req,
            left.min(Duration::from_secs(1)),
            ready_path.is_some(),
        ) {
            Some(true) => return true,
            // An answer, but not 2xx from the ready path: not yet.
            Some(false) => std::thread::sleep(Duration::from_millis(100)),
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_requests() {
        assert_eq!(status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status(b"HTTP/1.0 503 x"), Some(503));
        assert_eq!(status(b"garbage"), None);
        assert_eq!(status(b"HTTP/1.1 2"), None);
        let u = request(Proto::Uwsgi, "/health");
        assert_eq!(u[0], 0);
        assert_eq!(u16::from_le_bytes([u[1], u[2]]) as usize, u.len() - 4);
        assert!(
            String::from_utf8_lossy(&request(Proto::Http, "/h")).starts_with("GET /h HTTP/1.1\r\n")
        );
    }
}
