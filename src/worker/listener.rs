//! Listening sockets: one SO_REUSEPORT socket per worker per address, all created by the main
//! thread before workers start, so a bind error is reported once, clearly, at start-up.

use crate::config::{SocketConfig, Steering};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

fn setopt(fd: &OwnedFd, level: i32, name: i32, val: i32) -> io::Result<()> {
    // SAFETY: passes a pointer to a live i32 and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&val as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn socket_for(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket creation; the result is checked.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is fresh and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind(fd: &OwnedFd, addr: &SocketAddr) -> io::Result<()> {
    let (ss, len) = sockaddr(addr);
    // SAFETY: ss holds a valid sockaddr of length len.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The address a socket actually got (resolves port 0).
pub fn local_addr(fd: &OwnedFd) -> io::Result<SocketAddr> {
    sock_name(fd.as_raw_fd(), libc::getsockname)
}

/// The client's address of an accepted socket (for the access log).
pub fn peer_addr(fd: std::os::fd::RawFd) -> Option<SocketAddr> {
    sock_name(fd, libc::getpeername).ok()
}

type NameFn = unsafe extern "C" fn(i32, *mut libc::sockaddr, *mut libc::socklen_t) -> i32;

fn sock_name(fd: std::os::fd::RawFd, f: NameFn) -> io::Result<SocketAddr> {
    // SAFETY: zeroed storage is valid; the call fills at most `len` bytes of it.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: as above; fd is a socket we own.
    let rc = unsafe {
        f(
            fd,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(match ss.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for an AF_INET socket.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read((&ss as *const libc::sockaddr_storage).cast()) };
            SocketAddr::from((
                u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                u16::from_be(sin.sin_port),
            ))
        }
        _ => {
            // SAFETY: the kernel wrote a sockaddr_in6 for an AF_INET6 socket.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read((&ss as *const libc::sockaddr_storage).cast()) };
            SocketAddr::from((sin6.sin6_addr.s6_addr, u16::from_be(sin6.sin6_port)))
        }
    })
}

/// What a listening socket serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenKind {
    /// HTTP: the routes.
    Http,
    /// The admin endpoint's pages.
    Admin,
    /// HTTPS: the routes, behind a TLS session.
    Tls,
    /// HTTP whose connections begin with a PROXY protocol header (`proxy_protocol_listen`).
    Proxied,
}

impl ListenKind {
    /// Its letter in `URINGD_LISTEN_FDS` (serve/inherit.rs).
    pub fn letter(self) -> &'static str {
        match self {
            ListenKind::Http => "l",
            ListenKind::Admin => "a",
            ListenKind::Tls => "t",
            ListenKind::Proxied => "p",
        }
    }

    pub fn from_letter(s: &str) -> Option<ListenKind> {
        [
            ListenKind::Http,
            ListenKind::Admin,
            ListenKind::Tls,
            ListenKind::Proxied,
        ]
        .into_iter()
        .find(|k| k.letter() == s)
    }
}

/// Explains a bind failure in terms of what to do about it, naming the flag that sets the
/// address.
pub fn explain_bind_error(addr: &SocketAddr, e: &io::Error, kind: ListenKind) -> String {
    let (what, flag) = match kind {
        ListenKind::Admin => (
            "the admin endpoint on ",
            "--admin (or [server] admin; \"off\" disables it)",
        ),
        ListenKind::Http => ("", "--listen (or [server] listen)"),
        ListenKind::Tls => ("TLS ", "--tls-listen (or [tls] listen)"),
        ListenKind::Proxied => (
            "PROXY protocol ",
            "--proxy-protocol-listen (or [server] proxy_protocol_listen)",
        ),
    };
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => format!(
            "cannot listen {what}on {addr}: the address is already in use (another process holds this port; stop it or choose another address with {flag})"
        ),
        Some(libc::EADDRNOTAVAIL) => {
            format!("cannot listen on {addr}: no interface on this machine has that address")
        }
        Some(libc::EACCES) => format!(
            "cannot listen on {addr}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        ),
        _ => format!("cannot listen on {addr}: {e}"),
    }
}

/// Creates `n` SO_REUSEPORT listeners for `addr` (all on the same port, even when the
/// configured port is 0). Fails with EADDRINUSE if anyone else already holds the port,
/// including another SO_REUSEPORT group owned by the same user.
pub fn reuseport_group(
    addr: &SocketAddr,
    n: usize,
    opts: &SocketConfig,
    steer: bool,
) -> io::Result<(Vec<OwnedFd>, SocketAddr)> {
    let mut addr = *addr;
    if addr.port() != 0 {
        // A plain bind first: SO_REUSEPORT alone would silently join another process's group.
        let probe = socket_for(&addr)?;
        setopt(&probe, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        bind(&probe, &addr)?;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let fd = socket_for(&addr)?;
        setopt(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        setopt(&fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        // Accepted sockets inherit TCP_NODELAY and SO_BUSY_POLL from the listener (the
        // kernel clones the listening socket), so neither costs a syscall per connection.
        // Nagle stays off by default: responses are written whole, never trickled.
        setopt(
            &fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            i32::from(opts.tcp_nodelay),
        )?;
        if let Some(us) = opts.busy_poll_us {
            setopt(&fd, libc::SOL_SOCKET, libc::SO_BUSY_POLL, us as i32)
                .map_err(|e| io::Error::new(e.kind(), format!("SO_BUSY_POLL {us}: {e}")))?;
        }
        if addr.is_ipv6() {
            setopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
        }
        bind(&fd, &addr)?;
        if addr.port() == 0 {
            addr = local_addr(&fd)?;
        }
        out.push(fd);
    }
    if steer
        && opts.steering == Steering::Cpu
        && let Some(first) = out.first()
    {
        attach_cpu_steering(first, n)?;
    }
    for fd in &out {
        let backlog = opts.backlog.min(i32::MAX as u32) as i32;
        // SAFETY: listen on a bound socket we own.
        if unsafe { libc::listen(fd.as_raw_fd(), backlog) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((out, addr))
}

/// SO_ATTACH_REUSEPORT_CBPF: a three-instruction classic BPF program that returns the CPU
/// that received the SYN, modulo the group size, as the index of the socket to use. Socket
/// i of the group belongs to worker i, pinned to CPU i (config validation ensures it), so a
/// connection is accepted on the CPU whose softirq already touched it.
fn attach_cpu_steering(fd: &OwnedFd, n: usize) -> io::Result<()> {
    const SKF_AD_OFF: i32 = -0x1000;
    const SKF_AD_CPU: i32 = 36;
    let prog = [
        // A = current CPU
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: (SKF_AD_OFF + SKF_AD_CPU) as u32,
        },
        // A %= n
        libc::sock_filter {
            code: (libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: n as u32,
        },
        // return A
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_A) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: the program and its descriptor live across the call; the kernel copies both.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("SO_ATTACH_REUSEPORT_CBPF (reuseport_steering = \"cpu\"): {e}"),
        ));
    }
    Ok(())
}
