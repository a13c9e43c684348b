//! The system calls the epoll backend makes, each returning the count or the errno, the way
//! a completion carries them (`Err(e)` becomes a result of `-e`).

use std::os::fd::RawFd;

type Res = Result<usize, i32>;

fn check(n: isize) -> Res {
    if n < 0 {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    } else {
        Ok(n as usize)
    }
}

/// A non-blocking, close-on-exec accepted socket.
pub fn accept(listen: RawFd) -> Res {
    // SAFETY: no address is asked for (null pointers are allowed); the result is checked.
    let fd = unsafe {
        libc::accept4(
            listen,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    check(fd as isize)
}

/// # Safety
/// `buf..buf+len` is writable memory nothing else uses meanwhile.
pub unsafe fn recv(fd: RawFd, buf: *mut u8, len: u32) -> Res {
    // SAFETY: per this function's contract.
    check(unsafe { libc::recv(fd, buf.cast(), len as usize, libc::MSG_DONTWAIT) })
}

/// # Safety
/// `buf..buf+len` is writable memory nothing else uses meanwhile.
pub unsafe fn read(fd: RawFd, buf: *mut u8, len: u32) -> Res {
    // SAFETY: per this function's contract.
    check(unsafe { libc::read(fd, buf.cast(), len as usize) })
}

/// # Safety
/// `data..data+len` is readable.
pub unsafe fn send(fd: RawFd, data: *const u8, len: u32) -> Res {
    let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
    // SAFETY: per this function's contract.
    check(unsafe { libc::send(fd, data.cast(), len as usize, flags) })
}

/// # Safety
/// `data..data+len` is readable.
pub unsafe fn write(fd: RawFd, data: *const u8, len: u32) -> Res {
    // SAFETY: per this function's contract.
    check(unsafe { libc::write(fd, data.cast(), len as usize) })
}

/// Moves up to `len` bytes; `off_in` -1 means the source's own position.
pub fn splice(src: RawFd, off_in: i64, dst: RawFd, len: u32) -> Res {
    let mut off = off_in;
    let off_ptr = if off_in < 0 {
        std::ptr::null_mut()
    } else {
        &mut off as *mut i64
    };
    let flags = libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE;
    // SAFETY: off_ptr is null or points at a live local; the kernel reads and writes only it.
    check(unsafe { libc::splice(src, off_ptr, dst, std::ptr::null_mut(), len as usize, flags) })
}

/// # Safety
/// `addr..addr+len` is a readable socket address.
pub unsafe fn connect(fd: RawFd, addr: *const libc::sockaddr, len: libc::socklen_t) -> Res {
    // SAFETY: per this function's contract.
    check(unsafe { libc::connect(fd, addr, len) } as isize)
}

/// The pending error of a socket whose non-blocking connect has finished.
pub fn socket_error(fd: RawFd) -> i32 {
    let mut err: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: err and len are live locals of the sizes passed.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut i32).cast(),
            &mut len,
        )
    };
    if rc < 0 { libc::EIO } else { err }
}

pub fn shutdown_write(fd: RawFd) -> Res {
    // SAFETY: plain syscall on a descriptor number.
    check(unsafe { libc::shutdown(fd, libc::SHUT_WR) } as isize)
}

pub fn close(fd: RawFd) -> Res {
    // SAFETY: the caller (the worker, through the seam) owns fd and no op names it any more.
    check(unsafe { libc::close(fd) } as isize)
}

/// Sets O_NONBLOCK (the backend never blocks in a call; readiness says when to retry).
pub fn set_nonblocking(fd: RawFd) -> Res {
    // SAFETY: fcntl flag calls on a descriptor number.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) } as isize)? as i32;
    if flags & libc::O_NONBLOCK != 0 {
        return Ok(0);
    }
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } as isize)
}

pub fn epoll_create() -> Res {
    // SAFETY: plain syscall; the result is checked.
    check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) } as isize)
}

pub fn epoll_ctl(epfd: RawFd, op: i32, fd: RawFd, events: u32, data: u64) -> Res {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: ev is a live local; the kernel copies it.
    check(unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) } as isize)
}

/// Waits up to `timeout` and fills `out` (whose length is its capacity). epoll_pwait2
/// (Linux 5.11) keeps the timeout in nanoseconds: the bench's open-loop schedule and the
/// timer wheel need better than epoll_wait's milliseconds. `precise` goes false for good
/// when the kernel lacks it (called through syscall(2), so older C libraries link too).
pub fn epoll_wait(
    epfd: RawFd,
    out: &mut [libc::epoll_event],
    timeout: std::time::Duration,
    precise: &mut bool,
) -> Res {
    let max = out.len().min(i32::MAX as usize) as i32;
    if *precise {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: out is a live, writable slice of `max` events; ts is a live local; a null
        // sigmask means none is changed.
        let r = check(unsafe {
            libc::syscall(
                libc::SYS_epoll_pwait2,
                epfd,
                out.as_mut_ptr(),
                max,
                &ts as *const libc::timespec,
                std::ptr::null::<libc::sigset_t>(),
                0usize,
            )
        } as isize);
        if r != Err(libc::ENOSYS) {
            return r;
        }
        *precise = false;
    }
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    // SAFETY: out is a live, writable slice of `max` events.
    check(unsafe { libc::epoll_wait(epfd, out.as_mut_ptr(), max, ms) } as isize)
}
