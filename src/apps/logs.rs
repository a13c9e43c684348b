//! An instance's stdout and stderr, line by line, into uringd's log with the app's name
//! and the instance's pid; the last lines of stderr are kept for the error that reports a
//! failed start. A reader runs until the pipe's last writer is gone, so nothing an
//! instance wrote before it crashed is lost.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};

/// Lines of stderr kept for an error message.
pub const KEPT_LINES: usize = 10;

/// The last lines an instance wrote to stderr.
pub type Tail = Arc<Mutex<VecDeque<String>>>;

/// Relays `from` on a thread of its own; `tail` (for stderr) keeps its last lines.
pub fn relay(from: impl Read + Send + 'static, prefix: String, tail: Option<Tail>) {
    let _ = std::thread::Builder::new()
        .name("uringd-app-log".into())
        .spawn(move || {
            let mut r = BufReader::new(from);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                crate::say!("{prefix}: {text}");
                if let Some(t) = &tail
                    && let Ok(mut t) = t.lock()
                {
                    if t.len() == KEPT_LINES {
                        t.pop_front();
                    }
                    t.push_back(text.to_string());
                }
            }
        });
}
