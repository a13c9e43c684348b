//! The io_uring backend of the transport seam (`crate::driver`): ring setup with
//! per-kernel fallbacks, the feature probe and typed op submission. This is the only module
//! that holds io_uring `unsafe`.

pub mod probe;
mod setup;

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::{IoUring, opcode, squeue, types};

pub use setup::{Features, SetupOptions, explain_setup_error, soft_rlimit};

use super::bufring::BufRing;
use super::token::Token;
use super::types::{Completion, Sock};

/// How often a full SQ is handed to the kernel in a row before an entry waits for the
/// next loop turn instead.
const SUBMIT_TRIES: usize = 4;

/// Builds an op against a [`Sock`]: `types::Fixed` for a registered slot, `types::Fd`
/// otherwise (the opcode builders are generic over both).
macro_rules! on_sock {
    ($sock:expr, |$t:ident| $body:expr) => {{
        let s: $crate::driver::Sock = $sock;
        if s.is_fixed() {
            let $t = io_uring::types::Fixed(s.raw() as u32);
            $body
        } else {
            let $t = io_uring::types::Fd(s.raw());
            $body
        }
    }};
}

/// One worker's ring. Created on the worker thread (SINGLE_ISSUER requires it).
pub struct Ring {
    uring: IoUring,
    pub features: Features,
    /// SQEs pushed since the last submit; lets the loop skip an empty enter.
    pending: u32,
    /// Entries the SQ had no room for, pushed at the next wait.
    backlog: Vec<squeue::Entry>,
    /// Completions reaped to make room in the CQ (a submit refused with EBUSY), handed out
    /// by the next `drain` before the CQ's own.
    spill: VecDeque<Completion>,
    /// A submit error that is not back-pressure, reported by the next wait.
    failure: Option<io::Error>,
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
            backlog: Vec::new(),
            spill: VecDeque::new(),
            failure: None,
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

    /// Queues an entry. A full SQ is submitted and retried a bounded number of times; an
    /// entry that still does not fit waits in `backlog` for the next wait, never a spin.
    fn push(&mut self, e: squeue::Entry) {
        for attempt in 0..=SUBMIT_TRIES {
            if attempt > 0 {
                self.submit_full();
            }
            if self.try_push(&e) {
                return;
            }
        }
        self.backlog.push(e);
    }

    fn try_push(&mut self, e: &squeue::Entry) -> bool {
        // SAFETY: every entry built here points only at memory that outlives its final CQE:
        // the `unsafe fn` ops (send, connect, write, read) put that on their callers; the
        // receive ops point at the provided-buffer ring, which `driver::Io` keeps mapped
        // until every receive has returned (or leaks); the others point at no memory.
        let ok = unsafe { self.uring.submission().push(e).is_ok() };
        if ok {
            self.pending += 1;
        }
        ok
    }

    /// Hands a full SQ to the kernel. EBUSY means the kernel holds completions we have not
    /// reaped: reap them into `spill` (the worker gets them at its next drain) so the next
    /// submit can go through. Any other error is kept for the next wait to report.
    fn submit_full(&mut self) {
        match self.uring.submit() {
            Ok(_) => self.pending = 0,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                let mut cq = self.uring.completion();
                cq.sync();
                for cqe in &mut cq {
                    self.spill.push_back(Completion {
                        user_data: cqe.user_data(),
                        result: cqe.result(),
                        flags: cqe.flags(),
                    });
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => self.failure = Some(e),
        }
    }

    /// Moves backlogged entries into the SQ while it has room.
    fn push_backlog(&mut self) {
        let backlog = std::mem::take(&mut self.backlog);
        let mut rest = backlog.into_iter();
        for e in rest.by_ref() {
            if !self.try_push(&e) {
                self.backlog.push(e);
                break;
            }
        }
        self.backlog.extend(rest);
    }

    /// Registers the provided-buffer ring with the kernel.
    pub(super) fn register_buffers(&mut self, b: &BufRing) -> io::Result<()> {
        // SAFETY: the entries mapping is page aligned and holds `count` entries; `driver::Io`
        // keeps it (and the buffers) mapped while this ring may pick from it.
        unsafe {
            self.uring.submitter().register_buf_ring_with_flags(
                b.ring_addr(),
                b.count(),
                b.group(),
                0,
            )
        }
    }

    pub(super) fn unregister_buffers(&mut self, bgid: u16) {
        let _ = self.uring.submitter().unregister_buf_ring(bgid);
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

    pub fn recv_multi(&mut self, sock: Sock, bgid: u16, token: Token) {
        let e = on_sock!(sock, |t| opcode::RecvMulti::new(t, bgid).build()).user_data(token.pack());
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
    pub fn close(&mut self, sock: Sock, token: Token) {
        let e = on_sock!(sock, |t| opcode::Close::new(t).build())
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(token.pack());
        self.push(e);
    }

    /// Half-closes the write side (lingering close). Always posts a CQE: the kernel runs
    /// SHUTDOWN on an io-wq worker that resolves `fd` by number only then, so the caller must
    /// keep the fd open until this completes, or the shutdown can hit whichever connection
    /// reuses the number (found by `uringd bench --no-keepalive`: EPIPE on fresh connections).
    pub fn shutdown_write(&mut self, sock: Sock, token: Token) {
        let e = on_sock!(sock, |t| opcode::Shutdown::new(t, libc::SHUT_WR).build())
            .user_data(token.pack());
        self.push(e);
    }

    /// See [`Driver::send`](crate::driver::Driver::send).
    ///
    /// # Safety
    /// `data..data+len` stays valid and unchanged until the final CQE (for `zc`, the
    /// notification).
    pub unsafe fn send(&mut self, sock: Sock, data: *const u8, len: u32, zc: bool, token: Token) {
        let e = if zc {
            on_sock!(sock, |t| opcode::SendZc::new(t, data, len)
                .flags(SEND_FLAGS)
                .build())
        } else {
            on_sock!(sock, |t| opcode::Send::new(t, data, len)
                .flags(SEND_FLAGS)
                .build())
        };
        self.push(e.user_data(token.pack()));
    }

    pub fn splice_in(&mut self, src: RawFd, off: i64, pipe_w: RawFd, len: u32, token: Token) {
        let e = opcode::Splice::new(types::Fd(src), off, types::Fd(pipe_w), -1, len)
            .build()
            .user_data(token.pack());
        self.push(e);
    }

    pub fn splice_out(&mut self, pipe_r: RawFd, sock: Sock, len: u32, token: Token) {
        let e = on_sock!(sock, |t| opcode::Splice::new(
            types::Fd(pipe_r),
            -1,
            t,
            -1,
            len
        )
        .build())
        .user_data(token.pack());
        self.push(e);
    }

    /// # Safety
    /// `addr..addr+len` stays valid until the CQE.
    pub unsafe fn connect(
        &mut self,
        fd: RawFd,
        addr: *const libc::sockaddr,
        len: libc::socklen_t,
        token: Token,
    ) {
        let e = opcode::Connect::new(types::Fd(fd), addr, len)
            .build()
            .user_data(token.pack());
        self.push(e);
    }

    /// # Safety
    /// `data..data+len` stays valid and unchanged until the CQE.
    pub unsafe fn write(&mut self, fd: RawFd, data: *const u8, len: u32, token: Token) {
        let e = opcode::Write::new(types::Fd(fd), data, len)
            .offset(u64::MAX) // -1: the file position (O_APPEND)
            .build()
            .user_data(token.pack());
        self.push(e);
    }

    /// # Safety
    /// `buf..buf+len` stays valid, and written by nothing else, until the CQE.
    pub unsafe fn read(&mut self, fd: RawFd, buf: *mut u8, len: u32, token: Token) {
        let e = opcode::Read::new(types::Fd(fd), buf, len)
            .build()
            .user_data(token.pack());
        self.push(e);
    }

    /// Submits pending SQEs and waits for at least one CQE or the timeout.
    pub fn submit_and_wait(&mut self, timeout: Duration) -> io::Result<()> {
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        if !self.backlog.is_empty() {
            self.push_backlog();
        }
        // Completions reaped earlier are waiting already: do not sleep.
        let want = if self.spill.is_empty() { 1 } else { 0 };
        let ts = types::Timespec::new()
            .sec(timeout.as_secs())
            .nsec(timeout.subsec_nanos());
        let args = types::SubmitArgs::new().timespec(&ts);
        self.pending = 0;
        match self.uring.submitter().submit_with_args(want, &args) {
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
        if !self.backlog.is_empty() {
            self.push_backlog();
        }
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
        let cap = super::types::drain_queued(&mut self.spill, out);
        if out.len() >= cap {
            return;
        }
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
