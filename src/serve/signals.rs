//! The supervisor takes its signals synchronously (sigtimedwait) instead of in handlers.

use std::time::Duration;

pub const HANDLED: [i32; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
    // An [[app]] instance exited: reaped at once, not at the next tick.
    libc::SIGCHLD,
];

/// Blocks the handled signals in this thread and, by inheritance, in every worker spawned
/// after it, so only the supervisor sees them.
pub fn block() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local; pthread_sigmask affects this thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in HANDLED {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        // A peer that vanished must give EPIPE on a write, not kill the process.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        set
    }
}

/// Unblocks them again, for a child about to exec (signal masks survive exec).
pub fn unblock_in_child(set: &libc::sigset_t) {
    // SAFETY: sigprocmask is async-signal-safe and set is a valid, initialised sigset.
    unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, set, std::ptr::null_mut()) };
}

/// Waits up to `timeout` for one of the blocked signals.
pub fn wait(set: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: set and ts are valid for the call; info may be null.
    let s = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (s > 0).then_some(s)
}
