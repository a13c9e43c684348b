//! Binary upgrade on SIGUSR2, as nginx does it: start the binary found at our own path
//! with the same arguments, hand it the listening sockets (kept open across exec, named in
//! `URINGD_LISTEN_FDS`) and a pipe; once it writes `ready` on the pipe it is serving, and
//! this process retires its workers, drains and exits. If it fails, this one keeps serving.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::inherit::{self, LISTEN_VAR, READY_VAR};
use super::sockets::Sockets;

/// How long the new binary gets to start serving.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Upgrade {
    child: Child,
    ready: std::fs::File,
    got: Vec<u8>,
    started: Instant,
}

pub enum Progress {
    Pending,
    /// The new process (this pid) is serving.
    Ready(u32),
    Failed(String),
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a live array of two ints for the kernel to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Starts the new binary. `sigs`: the signals this process blocks, unblocked in the child.
pub fn begin(exe: &Path, sockets: &Sockets, sigs: libc::sigset_t) -> Result<Upgrade, String> {
    let (rd, wr) = pipe().map_err(|e| format!("pipe: {e}"))?;
    let mut keep = sockets.raw_fds();
    keep.push(wr.as_raw_fd());
    let mut cmd = Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .env(LISTEN_VAR, sockets.export())
        .env(READY_VAR, wr.as_raw_fd().to_string());
    // SAFETY: the closure runs between fork and exec and makes only async-signal-safe calls
    // (fcntl, sigprocmask) on values copied into it.
    unsafe {
        cmd.pre_exec(move || {
            inherit::keep_across_exec(&keep);
            super::signals::unblock_in_child(&sigs);
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    drop(wr); // only the child holds the write end now: EOF means it died
    Ok(Upgrade {
        child,
        ready: std::fs::File::from(rd),
        got: Vec::new(),
        started: Instant::now(),
    })
}

impl Upgrade {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Checks the pipe and the child without blocking.
    pub fn poll(&mut self) -> Progress {
        let mut buf = [0u8; 64];
        loop {
            match self.ready.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if self.got.starts_with(b"ready") {
                        return Progress::Ready(self.pid());
                    }
                    return self.check_alive();
                }
                Err(e) => return self.fail(format!("reading its ready pipe: {e}")),
            }
        }
        if self.got.starts_with(b"ready") {
            return Progress::Ready(self.pid());
        }
        // EOF without "ready": it exited (or closed the pipe) before serving.
        match self.child.try_wait() {
            Ok(Some(st)) => Progress::Failed(format!("the new process exited ({st})")),
            _ => self.fail("the new process closed its ready pipe without starting".into()),
        }
    }

    fn check_alive(&mut self) -> Progress {
        if let Ok(Some(st)) = self.child.try_wait() {
            return Progress::Failed(format!("the new process exited ({st})"));
        }
        if self.started.elapsed() > READY_TIMEOUT {
            return self.fail(format!(
                "the new process did not start within {READY_TIMEOUT:?}"
            ));
        }
        Progress::Pending
    }

    fn fail(&mut self, why: String) -> Progress {
        let _ = self.child.kill();
        let _ = self.child.wait();
        Progress::Failed(why)
    }
}
