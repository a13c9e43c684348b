//! Outgoing connections: the socket address a CONNECT SQE points at is boxed and owned here,
//! so it stays put until the kernel has answered (leaked, not freed, if dropped earlier).

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::Path;

use super::{Driver, Token};

/// A close-on-exec stream socket for `family`, with Nagle off for TCP (requests and
/// responses are written whole; delaying them only adds latency).
pub fn stream_socket(family: i32) -> io::Result<RawFd> {
    // SAFETY: plain socket creation; the result is checked.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    if family != libc::AF_UNIX {
        let one: i32 = 1;
        // SAFETY: pointer to a live i32 and its size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const i32).cast(),
                4,
            );
        }
    }
    Ok(fd)
}

pub struct Connector {
    addr: Box<(libc::sockaddr_storage, libc::socklen_t)>,
    in_flight: bool,
}

impl Connector {
    pub fn tcp(a: &SocketAddr) -> Connector {
        // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match a {
            SocketAddr::V4(v4) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(v4.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(v6) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.ip().octets(),
                    },
                    sin6_scope_id: v6.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        Connector {
            addr: Box::new((ss, len as libc::socklen_t)),
            in_flight: false,
        }
    }

    pub fn unix(path: &Path) -> io::Result<Connector> {
        let bytes = path.as_os_str().as_encoded_bytes();
        // SAFETY: sockaddr_un is plain old data; all-zero is valid.
        let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        if bytes.len() >= sun.sun_path.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "unix socket path too long",
            ));
        }
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in sun.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un.
        unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sun) };
        let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
        Ok(Connector {
            addr: Box::new((ss, len as libc::socklen_t)),
            in_flight: false,
        })
    }

    pub fn family(&self) -> i32 {
        self.addr.0.ss_family as i32
    }

    /// Starts the connect; call `completed` when its CQE arrives.
    pub fn connect(&mut self, d: &mut Driver, fd: RawFd, token: Token) {
        let addr = (&self.addr.0 as *const libc::sockaddr_storage).cast();
        // SAFETY: the boxed address stays put while in_flight; Drop leaks it if still in
        // flight.
        unsafe { d.connect(fd, addr, self.addr.1, token) };
        self.in_flight = true;
    }

    pub fn completed(&mut self) {
        self.in_flight = false;
    }

    pub fn busy(&self) -> bool {
        self.in_flight
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        if self.in_flight {
            let b = std::mem::replace(
                &mut self.addr,
                Box::new((
                    // SAFETY: all-zero sockaddr_storage is valid.
                    unsafe { std::mem::zeroed() },
                    0,
                )),
            );
            std::mem::forget(b);
        }
    }
}
