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

/// How long an app may take to stop once uringd is gone.
const ORPHAN_GRACE: Duration = Duration::from_millis(1000);

/// Who the app runs as, when not the shim's user: `--uid`, `--gid`, `--groups`.
pub struct As {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Runs the shim; returns its exit code. The shim keeps uringd's user (so it can always
/// signal the app's group); only the app becomes `who`.
pub fn run(kill_timeout: Duration, who: Option<As>, command: &[String]) -> i32 {
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
    let creds = who.map(|w| sys::Creds {
        uid: w.uid,
        gid: w.gid,
        groups: w.groups,
    });
    sys::prepare(&mut cmd, Some(3), None, creds);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start {program}: {e}");
            return 127;
        }
    };
    let pgid = child.id();
    let mut deadline: Option<Instant> = None;
    let mut orphaned = false;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            // Whatever the app left behind in its group goes with it.
            sys::kill_group(pgid, libc::SIGKILL);
            return st.code().unwrap_or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                128 + st.signal().unwrap_or(0)
            });
        }
        // uringd died (the death signal, however it died): nothing can read the app's
        // answers any more, so it gets a short grace, not kill_timeout.
        if !orphaned && sys::parent_pid() != parent {
            orphaned = true;
            if deadline.is_none() {
                sys::kill_group(pgid, libc::SIGTERM);
            }
            let soon = Instant::now() + ORPHAN_GRACE;
            deadline = Some(deadline.map_or(soon, |d| d.min(soon)));
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
