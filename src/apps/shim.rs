//! `uringd app-shim`: the process between uringd and an app instance. uringd starts it with
//! a death signal (SIGTERM when uringd dies, however it dies, even by SIGKILL); it starts
//! the app in a process group of its own and, on SIGTERM, stops the whole group: SIGTERM,
//! then SIGKILL after the kill timeout (SIGUSR1: SIGKILL at once, for harakiri). So no
//! instance, nor any process it forked (a gunicorn master's workers), outlives uringd. The
//! app's exit status is the shim's.
//!
//! The app is started through `sh -c 'export LISTEN_PID=$$; exec "$@"'`, so LISTEN_PID names the
//! app's own pid (systemd socket activation, which gunicorn and uWSGI read): it is only
//! known once the process exists.

use std::process::Command;
use std::time::{Duration, Instant};

use super::sys;

/// Runs the shim; returns its exit code.
pub fn run(kill_timeout: Duration, command: &[String]) -> i32 {
    let parent = sys::parent_pid();
    if sys::die_with_parent(libc::SIGTERM).is_err() || parent == 1 {
        return 1;
    }
    let set = sys::block_signals(&[
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGCHLD,
        libc::SIGUSR1,
    ]);
    let Some((program, args)) = command.split_first() else {
        return 2;
    };
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("export LISTEN_PID=$$; exec \"$@\"")
        .arg(program)
        .arg(program)
        .args(args)
        .env("LISTEN_FDS", "1");
    // fd 3 (the socket uringd passed) is inherited as it is; the app leads its own group.
    sys::prepare(&mut cmd, Some(3), None);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start {program}: {e}");
            return 127;
        }
    };
    let pgid = child.id();
    let mut deadline: Option<Instant> = None;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            // Whatever the app left behind in its group goes with it.
            sys::kill_group(pgid, libc::SIGKILL);
            return st.code().unwrap_or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                128 + st.signal().unwrap_or(0)
            });
        }
        // uringd died (the death signal), or asks for a stop.
        if sys::parent_pid() != parent && deadline.is_none() {
            sys::kill_group(pgid, libc::SIGTERM);
            deadline = Some(Instant::now() + kill_timeout);
        }
        match sys::wait_signal(&set, 100) {
            Some(libc::SIGTERM | libc::SIGINT | libc::SIGHUP) if deadline.is_none() => {
                sys::kill_group(pgid, libc::SIGTERM);
                deadline = Some(Instant::now() + kill_timeout);
            }
            // Harakiri: the app is killed at once, no grace.
            Some(libc::SIGUSR1) => sys::kill_group(pgid, libc::SIGKILL),
            _ => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            sys::kill_group(pgid, libc::SIGKILL);
        }
    }
}
