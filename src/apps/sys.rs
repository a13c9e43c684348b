//! The process calls app supervision needs that std does not offer: signals to a process
//! group, the death signal, the socket handed over as fd 3, and the child's signal mask.
//! The only `unsafe` of `src/apps/`; each block says why it is sound.

use std::os::fd::RawFd;

/// Sends `sig` to every process of group `pgid` (ESRCH, none left, is fine).
pub fn kill_group(pgid: u32, sig: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory involved.
        unsafe { libc::kill(-(pgid as i32), sig) };
    }
}

/// Sends `sig` to one process.
pub fn kill_pid(pid: u32, sig: i32) {
    if pid > 1 {
        // SAFETY: kill(2) on a pid; no memory involved.
        unsafe { libc::kill(pid as i32, sig) };
    }
}

/// The child gets `sig` when this thread's process dies, however it dies.
pub fn die_with_parent(sig: i32) -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number; no memory involved.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `cmd`'s process the leader of a new process group (so the whole tree it starts
/// can be signalled at once), with `socket` as its fd 3 (systemd's first listening
/// descriptor) when given, dying with its parent (`death`: the signal), and with every
/// signal unblocked (the supervisor's threads block the ones it waits for, and a mask
/// survives exec), running as `ids` when given (groups first, then the group, then the
/// user: each step needs the privilege the next drops).
pub fn prepare(
    cmd: &mut std::process::Command,
    socket: Option<RawFd>,
    death: Option<i32>,
    ids: Option<Creds>,
) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and makes only async-signal-safe calls
    // (setpgid, prctl, dup2, fcntl, sigprocmask, setgroups, setgid, setuid) on values
    // moved into it before the fork (the groups' buffer is not touched but read).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(c) = &ids
                && (libc::setgroups(c.groups.len(), c.groups.as_ptr()) != 0
                    || libc::setgid(c.gid) != 0
                    || libc::setuid(c.uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(sig) = death
                && libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(fd) = socket {
                if fd == 3 {
                    let flags = libc::fcntl(3, libc::F_GETFD);
                    libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                } else if libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::sigprocmask(libc::SIG_UNBLOCK, &all, std::ptr::null_mut());
            Ok(())
        });
    }
}

/// Who a process runs as: user, group and supplementary groups.
pub struct Creds {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
}

/// A set of the signals the shim waits for, blocked in this thread.
pub fn block_signals(sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local; pthread_sigmask affects this thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits up to `ms` for one of `set`'s signals.
pub fn wait_signal(set: &libc::sigset_t, ms: u64) -> Option<i32> {
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: set and ts are valid for the call; info may be null.
    let s = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (s > 0).then_some(s)
}

/// The parent's pid (the shim checks it has not been orphaned before its death signal
/// was set).
pub fn parent_pid() -> u32 {
    std::os::unix::process::parent_id()
}

/// `program` as PATH would find it (or as given, when it holds a '/').
pub fn find_program(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return runnable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| runnable(p))
}
