//! Listening sockets handed to this process instead of bound by it:
//! - by a previous uringd during a binary upgrade: `URINGD_LISTEN_FDS`, groups of
//!   `l|ADDR=FD,FD` (traffic), `t|ADDR=FD,...` (TLS) or `a|ADDR=FD,...` (admin) joined by
//!   `;`, ADDR as configured;
//!   and `URINGD_UPGRADE_FD`, a pipe on which to say `ready` once serving;
//! - by systemd socket activation: `LISTEN_PID`, `LISTEN_FDS` (descriptors from 3 on) and
//!   `LISTEN_FDNAMES` (a socket named `admin` is the admin listener).
//!
//! Every descriptor is checked to be a listening stream socket before it is used, and all
//! the variables are removed, so nothing leaks into processes started later.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::worker::listener::ListenKind;

/// One address's inherited sockets.
pub struct Group {
    /// The configured address it was bound for (upgrade), or its own address (systemd).
    pub key: String,
    pub kind: ListenKind,
    pub fds: Vec<OwnedFd>,
}

#[derive(Default)]
pub struct Inherited {
    pub groups: Vec<Group>,
    /// systemd passed them: its traffic sockets replace the `listen` addresses.
    pub activated: bool,
    /// The previous uringd waits on this for `ready`.
    pub ready_pipe: Option<OwnedFd>,
}

pub const LISTEN_VAR: &str = "URINGD_LISTEN_FDS";
pub const READY_VAR: &str = "URINGD_UPGRADE_FD";

/// Takes the inherited sockets named by the environment, if any. Call before any thread
/// starts (it edits the environment).
pub fn take_from_env() -> Result<Inherited, String> {
    let ours = std::env::var(LISTEN_VAR).ok();
    let ready = std::env::var(READY_VAR).ok();
    let pid = std::env::var("LISTEN_PID").ok();
    let n = std::env::var("LISTEN_FDS").ok();
    let names = std::env::var("LISTEN_FDNAMES").ok();
    for v in [
        LISTEN_VAR,
        READY_VAR,
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
    ] {
        // SAFETY: called from the main thread before any other thread exists, so nothing
        // reads the environment concurrently.
        unsafe { std::env::remove_var(v) };
    }
    let mut out = Inherited::default();
    if let Some(spec) = ours {
        out.groups = parse_ours(&spec)?;
        if let Some(fd) = ready {
            let fd: RawFd = fd
                .parse()
                .map_err(|_| format!("{READY_VAR}={fd:?} is not a descriptor number"))?;
            out.ready_pipe = Some(own(fd)?);
        }
    } else if let (Some(pid), Some(n)) = (pid, n)
        && pid.parse::<u32>().ok() == Some(std::process::id())
    {
        let n: i32 = n
            .parse()
            .map_err(|_| format!("LISTEN_FDS={n:?} is not a number"))?;
        let names: Vec<&str> = names.as_deref().unwrap_or("").split(':').collect();
        for i in 0..n {
            let fd = own(3 + i)?;
            let kind = match names.get(i as usize) {
                Some(&"admin") => ListenKind::Admin,
                Some(&"tls" | &"https") => ListenKind::Tls,
                Some(&"proxy") => ListenKind::Proxied,
                _ => ListenKind::Http,
            };
            let key = crate::worker::listener::local_addr(&fd)
                .map(|a| a.to_string())
                .map_err(|e| format!("socket-activated descriptor {}: {e}", 3 + i))?;
            check_listening(&fd)?;
            out.groups.push(Group {
                key,
                kind,
                fds: vec![fd],
            });
        }
        out.activated = !out.groups.is_empty();
    }
    Ok(out)
}

fn parse_ours(spec: &str) -> Result<Vec<Group>, String> {
    let bad = || format!("{LISTEN_VAR}={spec:?} is malformed");
    let mut groups = Vec::new();
    for g in spec.split(';').filter(|g| !g.is_empty()) {
        let (kind, rest) = g.split_once('|').ok_or_else(bad)?;
        let (key, fds) = rest.rsplit_once('=').ok_or_else(bad)?;
        key.parse::<SocketAddr>().map_err(|_| bad())?;
        let mut owned = Vec::new();
        for f in fds.split(',') {
            let fd = own(f.parse().map_err(|_| bad())?)?;
            check_listening(&fd)?;
            owned.push(fd);
        }
        groups.push(Group {
            key: key.to_string(),
            kind: ListenKind::from_letter(kind).ok_or_else(bad)?,
            fds: owned,
        });
    }
    Ok(groups)
}

/// The variable's value for `groups` (descriptor numbers as they are in this process,
/// which a child started without CLOEXEC on them keeps).
pub fn encode(groups: &[(String, ListenKind, Vec<RawFd>)]) -> String {
    let mut out = String::new();
    for (key, kind, fds) in groups {
        if !out.is_empty() {
            out.push(';');
        }
        let list: Vec<String> = fds.iter().map(|f| f.to_string()).collect();
        out.push_str(&format!("{}|{key}={}", kind.letter(), list.join(",")));
    }
    out
}

/// Takes ownership of an inherited descriptor number, after checking it is open, and marks
/// it close-on-exec.
fn own(fd: RawFd) -> Result<OwnedFd, String> {
    // SAFETY: fcntl on an arbitrary number only reads or sets its flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if fd < 0 || flags < 0 {
        return Err(format!(
            "inherited descriptor {fd} is not open: {}",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
    // SAFETY: the descriptor was handed to this process for it to own, and nothing else in
    // the process refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn check_listening(fd: &OwnedFd) -> Result<(), String> {
    let mut v: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: v and len are live and sized for the option.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut v as *mut i32).cast(),
            &mut len,
        )
    };
    if rc < 0 || v == 0 {
        return Err(format!(
            "inherited descriptor {} is not a listening socket",
            fd.as_raw_fd()
        ));
    }
    Ok(())
}

/// Lets a child keep these descriptors across exec. Runs between fork and exec, so only
/// async-signal-safe calls.
pub fn keep_across_exec(fds: &[RawFd]) {
    for &fd in fds {
        // SAFETY: fcntl is async-signal-safe; fd is open in the parent, hence in the child.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_parse_shape() {
        let s = encode(&[
            ("127.0.0.1:0".into(), ListenKind::Http, vec![5, 6]),
            ("[::1]:9000".into(), ListenKind::Admin, vec![7]),
            ("127.0.0.1:8443".into(), ListenKind::Tls, vec![8]),
        ]);
        assert_eq!(s, "l|127.0.0.1:0=5,6;a|[::1]:9000=7;t|127.0.0.1:8443=8");
    }

    #[test]
    fn malformed_specs_name_the_variable() {
        for bad in ["x", "l|nonsense=3", "l|127.0.0.1:1=", "l|127.0.0.1:1=a"] {
            let e = parse_ours(bad).err().unwrap();
            assert!(e.contains(LISTEN_VAR), "{e}");
        }
        // A number that is not an open descriptor.
        let e = parse_ours("l|127.0.0.1:1=999999").err().unwrap();
        assert!(e.contains("not open"), "{e}");
    }
}
