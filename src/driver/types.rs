//! Types both backends and everything above the seam share: completions, sockets, the
//! completion flag bits. A leaf module: it depends on nothing else in the crate.

use std::os::fd::RawFd;

/// Completion flag bits: io_uring's ABI values, which the epoll backend posts too.
pub const F_BUFFER: u32 = 1;
pub const F_MORE: u32 = 2;
pub const F_NOTIF: u32 = 8;
pub const BUFFER_SHIFT: u32 = 16;

/// A completion copied out of the backend's queue so the driver can be borrowed again while
/// handling it.
#[derive(Clone, Copy, Debug)]
pub struct Completion {
    pub user_data: u64,
    pub result: i32,
    pub flags: u32,
}

impl Completion {
    /// More completions will follow for this request (multishot, or SEND_ZC's notification).
    pub fn more(&self) -> bool {
        self.flags & F_MORE != 0
    }

    /// This is SEND_ZC's "buffer released" notification, not a result.
    pub fn is_notif(&self) -> bool {
        self.flags & F_NOTIF != 0
    }

    /// The provided buffer this completion filled, if any.
    pub fn buffer(&self) -> Option<u16> {
        (self.flags & F_BUFFER != 0).then_some((self.flags >> BUFFER_SHIFT) as u16)
    }
}

/// A socket as ops name it: a plain descriptor, or a slot in the ring's registered file
/// table (a "direct" descriptor, `--fixed-files`, io_uring only), which saves the fd-table
/// lookup per op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sock {
    raw: i32,
    fixed: bool,
}

impl Sock {
    pub fn fixed(index: u32) -> Sock {
        Sock {
            raw: index as i32,
            fixed: true,
        }
    }

    pub fn raw(self) -> i32 {
        self.raw
    }

    pub fn is_fixed(self) -> bool {
        self.fixed
    }
}

impl From<RawFd> for Sock {
    fn from(fd: RawFd) -> Sock {
        Sock {
            raw: fd,
            fixed: false,
        }
    }
}

/// Closes a descriptor the caller owns outright: no op in flight or queued names it, and
/// nothing will use the number again. For tearing down after a worker panicked.
pub fn close_owned(fd: RawFd) {
    if fd >= 0 {
        // SAFETY: the caller owns fd (see above); OwnedFd closes it exactly once.
        drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    }
}

/// A close-on-exec duplicate of `fd`, owned by the caller (a splice segment gets its own
/// descriptor, so it outlives nothing it should not).
pub fn dup_cloexec(fd: RawFd) -> std::io::Result<std::os::fd::OwnedFd> {
    // SAFETY: fcntl on a descriptor number; a bad one fails with EBADF, checked below.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: dup is a fresh descriptor owned by nobody else.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dup) })
}

/// Moves queued completions into `out` (cleared first), up to its capacity (at least one):
/// the first step of both backends' `drain`. Returns the capacity, for the caller to go on.
pub(super) fn drain_queued(
    queue: &mut std::collections::VecDeque<Completion>,
    out: &mut Vec<Completion>,
) -> usize {
    out.clear();
    let cap = out.capacity().max(1);
    let n = queue.len().min(cap);
    out.extend(queue.drain(..n));
    cap
}
