//! The io_uring driver: ring setup with per-kernel fallbacks, the feature probe, typed op
//! submission, tokens and the provided-buffer ring. This is the only module that holds
//! io_uring `unsafe`; everything above it uses the safe types exported here.

pub mod append;
pub mod bufring;
pub mod connect;
pub mod outq;
pub mod probe;
mod setup;
pub mod token;
mod wake;

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::{IoUring, opcode, squeue, types};

/// Closes a descriptor the caller owns outright: no op in flight or queued names it, and
/// nothing will use the number again. For tearing down after a worker panicked.
pub fn close_owned(fd: RawFd) {
    if fd >= 0 {
        // SAFETY: the caller owns fd (see above); OwnedFd closes it exactly once.
        drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    }
}

pub use setup::{Features, SetupOptions, explain_setup_error, soft_rlimit};
pub use token::{Op, Token};
pub use wake::{WakeFd, Waker};

/// A socket as ops name it: a plain descriptor, or a slot in the ring's registered file
/// table (a "direct" descriptor, `--fixed-files`), which saves the fd-table lookup per op.
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
}

impl From<RawFd> for Sock {
    fn from(fd: RawFd) -> Sock {
        Sock {
            raw: fd,
            fixed: false,
        }
    }
}

/// Builds an op against a [`Sock`]: `types::Fixed` for a registered slot, `types::Fd`
/// otherwise (the opcode builders are generic over both).
macro_rules! on_sock {
    ($sock:expr, |$t:ident| $body:expr) => {{
        let s: $crate::ring::Sock = $sock;
        if s.fixed {
            let $t = io_uring::types::Fixed(s.raw as u32);
            $body
        } else {
            let $t = io_uring::types::Fd(s.raw);
            $body
        }
    }};
}
pub(crate) use on_sock;

/// One worker's ring. Created on the worker thread (SINGLE_ISSUER requires it).
pub struct Ring {
    uring: IoUring,
    pub features: Features,
    /// SQEs pushed since the last submit; lets the loop skip an empty enter.
    pending: u32,
}

/// A completion copied out of the CQ so the ring can be borrowed again while handling it.
#[derive(Clone, Copy, Debug)]
pub struct Completion {
    pub user_data: u64,
    pub result: i32,
    pub flags: u32,
}

impl Completion {
    /// More completions will follow for this request (multishot, or SEND_ZC's notification).
    pub fn more(&self) -> bool {
        io_uring::cqueue::more(self.flags)
    }

    /// This is SEND_ZC's "buffer released" notification, not a result.
    pub fn is_notif(&self) -> bool {
        io_uring::cqueue::notif(self.flags)
    }
}

/// MSG_NOSIGNAL: a peer that went away must give EPIPE, not kill the process.
const SEND_FLAGS: i32 = libc::MSG_NOSIGNAL;

impl Ring {
    pub fn new(opts: &SetupOptions) -> io::Result<Ring> {
        let (uring, features) = setup::build(opts)?;
        Ok(Ring {
            uring,
            features,
            pending: 0,
        })
    }

    pub fn sq_entries(&self) -> u32 {
        self.uring.params().sq_entries()
    }

    pub fn cq_entries(&self) -> u32 {
        self.uring.params().cq_entries()
    }

    /// Asks the kernel to busy-poll the NAPI contexts of this ring's sockets for up to `us`
    /// microseconds before sleeping in a wait (IORING_REGISTER_NAPI, Linux 6.9).
    pub fn register_napi(&mut self, us: u32) -> io::Result<()> {
        let mut napi = types::Napi::new()
            .set_busy_poll_timeout(us)
            .set_prefer_busy_poll(true);
        self.uring.submitter().register_napi(&mut napi)
    }

    /// CQ overflows the kernel has counted (events it had to hold back).
    pub fn cq_overflow(&mut self) -> u32 {
        self.uring.completion().overflow()
    }

    fn push(&mut self, e: squeue::Entry) {
        loop {
            // SAFETY: every entry built in this module points only at memory that the caller's
            // safe type keeps alive until its final CQE (see each op below).
            let full = unsafe { self.uring.submission().push(&e).is_err() };
            if !full {
                self.pending += 1;
                return;
            }
            // SQ full: hand what we have to the kernel and retry.
            let _ = self.uring.submit();
            self.pending = 0;
        }
    }

    /// `direct`: each accepted socket goes into a free slot of the registered file table
    /// and the CQE carries the slot index instead of an fd.
    pub fn accept_multi(&mut self, listen_fd: RawFd, token: Token, direct: bool) {
        // A direct descriptor is not in the fd table, so close-on-exec does not apply (and
        // the kernel rejects the flag with EINVAL).
        let flags = if direct { 0 } else { libc::SOCK_CLOEXEC };
        let e = opcode::AcceptMulti::new(types::Fd(listen_fd))
            .flags(flags)
            .allocate_file_index(direct)
            .build()
            .user_data(token.pack());
        self.push(e);
    }

    /// Registers an empty file table of `n` slots for direct accepts (`--fixed-files`).
    pub fn register_fixed_table(&mut self, n: u32) -> io::Result<()> {
        self.uring.submitter().register_files_sparse(n)
    }

    pub fn recv_multi(&mut self, fd: impl Into<Sock>, bgid: u16, token: Token) {
        let e = on_sock!(fd.into(), |t| opcode::RecvMulti::new(t, bgid).build())
            .user_data(token.pack());
        self.push(e);
    }

    /// A single-shot receive into a provided buffer (re-armed by the caller after each
    /// CQE). Used on AF_UNIX sockets, where multishot recv can miss the EOF CQE (a kernel
    /// race: liburing issue #1549).
    pub fn recv_single(&mut self, fd: RawFd, bgid: u16, len: u32, token: Token) {
        let e = opcode::Recv::new(types::Fd(fd), std::ptr::null_mut(), len)
            .buf_group(bgid)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
            .user_data(token.pack());
        self.push(e);
    }

    /// Cancels the one request whose user_data is `target`.
    pub fn cancel(&mut self, target: Token, token: Token) {
        let e = opcode::AsyncCancel::new(target.pack())
            .build()
            .user_data(token.pack());
        self.push(e);
    }

    /// Closes a plain fd; the CQE is skipped on success (nothing to do with it).
    pub fn close(&mut self, fd: impl Into<Sock>, token: Token) {
        let e = on_sock!(fd.into(), |t| opcode::Close::new(t).build())
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(token.pack());
        self.push(e);
    }

    /// Half-closes the write side (lingering close). Always posts a CQE: the kernel runs
    /// SHUTDOWN on an io-wq worker that resolves `fd` by number only then, so the caller must
    /// keep the fd open until this completes, or the shutdown can hit whichever connection
    /// reuses the number (found by `uringd bench --no-keepalive`: EPIPE on fresh connections).
    pub fn shutdown_write(&mut self, fd: impl Into<Sock>, token: Token) {
        let e = on_sock!(fd.into(), |t| opcode::Shutdown::new(t, libc::SHUT_WR)
            .build())
        .user_data(token.pack());
        self.push(e);
    }

    /// Submits pending SQEs and waits for at least one CQE or the timeout.
    pub fn submit_and_wait(&mut self, timeout: Duration) -> io::Result<()> {
        let ts = types::Timespec::new()
            .sec(timeout.as_secs())
            .nsec(timeout.subsec_nanos());
        let args = types::SubmitArgs::new().timespec(&ts);
        self.pending = 0;
        match self.uring.submitter().submit_with_args(1, &args) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Submits pending SQEs without waiting (used when CQEs are already waiting).
    pub fn submit(&mut self) -> io::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        self.pending = 0;
        match self.uring.submit() {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Moves up to `out.capacity()` completions into `out` (cleared first).
    pub fn drain(&mut self, out: &mut Vec<Completion>) {
        out.clear();
        let cap = out.capacity().max(1);
        let mut cq = self.uring.completion();
        cq.sync();
        for cqe in &mut cq {
            out.push(Completion {
                user_data: cqe.user_data(),
                result: cqe.result(),
                flags: cqe.flags(),
            });
            if out.len() >= cap {
                break;
            }
        }
    }
}
