//! The transport seam: a small completion interface the worker loop, HTTP, proxy, stats and
//! bench code talk to, with one implementation per backend, each below it.
//!
//! Module graph, without circles: `types` (completions, sockets, flag bits) and `token`
//! are leaves; `bufring` (the provided buffers, which both backends consume) depends on
//! `types` only; `uring` and `epoll` depend on those; this module (`Driver`) ties them
//! together and is the only one that names both backends.
//!
//! - `uring` (io_uring): the kernel runs the ops and posts completions.
//! - `epoll`: readiness turned into completions. Each op is tried at once; one that would
//!   block waits for its socket's edge and is retried then, and its result is queued as the
//!   same completion io_uring would post (same `user_data`, result and flag bits).
//!
//! The contract both keep, and that the code above relies on:
//! - every op started gets exactly one final completion (multishot ones: many, the last one
//!   without `F_MORE`); cancel makes the target post its final one with `-ECANCELED`;
//! - memory an op points at (send data, read target, socket address) is the caller's until
//!   that final completion, which is why the pointer-taking ops are `unsafe fn`;
//! - received bytes land in buffers taken from the provided-buffer ring (`BufRing`), named by
//!   the completion's flags; `-ENOBUFS` ends a multishot receive when the ring is empty;
//! - `close` posts nothing on success.
//!
//! The types whose memory ops point at (`OutQueue`, `Connector`, `AppendFile`, `WakeFd`) live
//! beside the seam: they keep that memory alive and leak it if dropped while an op holds it.
//! See docs/architecture.md ("The transport seam") for the choice of an enum over a trait.

pub mod append;
pub mod bufring;
pub mod choose;
pub mod connect;
pub mod epoll;
mod io_owner;
pub mod outq;
pub mod token;
mod types;
pub mod uring;
pub mod wake;

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

pub use choose::{Backend, Choice, Kind, choose};
pub use token::{Op, Token};
pub use types::{
    BUFFER_SHIFT, Completion, F_BUFFER, F_MORE, F_NOTIF, Sock, close_owned, dup_cloexec,
};

use bufring::BufRing;
use epoll::Epoll;
pub use io_owner::Io;
use uring::{Features, Ring, SetupOptions, explain_setup_error};

/// One worker's (or bench thread's) I/O driver. An enum rather than a trait object or a
/// generic: one predictable branch per op, and the worker types stay non-generic.
pub enum Driver {
    Uring(Ring),
    Epoll(Epoll),
}

/// Forwards a call to whichever backend runs.
macro_rules! each {
    ($self:expr, $d:ident => $body:expr) => {
        match $self {
            Driver::Uring($d) => $body,
            Driver::Epoll($d) => $body,
        }
    };
}

impl Driver {
    /// Builds the backend `kind` on the calling thread (io_uring's SINGLE_ISSUER needs that).
    /// The error is a sentence naming the cause.
    pub fn new(kind: Kind, opts: &SetupOptions) -> Result<Driver, String> {
        match kind {
            Kind::IoUring => Ring::new(opts)
                .map(Driver::Uring)
                .map_err(|e| explain_setup_error(&e)),
            Kind::Epoll => Epoll::new()
                .map(Driver::Epoll)
                .map_err(|e| format!("cannot create an epoll instance: {e}")),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Driver::Uring(_) => Kind::IoUring,
            Driver::Epoll(_) => Kind::Epoll,
        }
    }

    /// io_uring's negotiated features; all off for epoll (no SEND_ZC, no fixed files).
    pub fn features(&self) -> &Features {
        static NONE: Features = Features::none();
        match self {
            Driver::Uring(r) => &r.features,
            Driver::Epoll(_) => &NONE,
        }
    }

    /// For the start-up line and the admin pages.
    pub fn summary(&self) -> String {
        match self {
            Driver::Uring(r) => format!("io_uring {}", r.features.summary()),
            Driver::Epoll(_) => "epoll".to_string(),
        }
    }

    pub fn sq_entries(&self) -> u32 {
        match self {
            Driver::Uring(r) => r.sq_entries(),
            Driver::Epoll(_) => 0,
        }
    }

    pub fn cq_entries(&self) -> u32 {
        match self {
            Driver::Uring(r) => r.cq_entries(),
            Driver::Epoll(_) => 0,
        }
    }

    /// Completions the kernel had to hold back (io_uring's CQ overflow; epoll queues in
    /// memory and never drops one).
    pub fn cq_overflow(&mut self) -> u32 {
        match self {
            Driver::Uring(r) => r.cq_overflow(),
            Driver::Epoll(_) => 0,
        }
    }

    pub fn ring(&mut self) -> Option<&mut Ring> {
        match self {
            Driver::Uring(r) => Some(r),
            Driver::Epoll(_) => None,
        }
    }

    /// A multishot accept: one completion per connection (the new fd, or with `direct` an
    /// io_uring file-table slot) until cancelled or failed.
    pub fn accept_multi(&mut self, listen_fd: RawFd, token: Token, direct: bool) {
        each!(self, d => d.accept_multi(listen_fd, token, direct))
    }

    /// A multishot receive into buffers of group `bgid`.
    pub fn recv_multi(&mut self, sock: impl Into<Sock>, bgid: u16, token: Token) {
        let sock = sock.into();
        each!(self, d => d.recv_multi(sock, bgid, token))
    }

    /// One receive of at most `len` bytes into a buffer of group `bgid`.
    pub fn recv_single(&mut self, fd: RawFd, bgid: u16, len: u32, token: Token) {
        each!(self, d => d.recv_single(fd, bgid, len, token))
    }

    /// Cancels the one op whose token is `target` (it then posts its final completion).
    pub fn cancel(&mut self, target: Token, token: Token) {
        each!(self, d => d.cancel(target, token))
    }

    /// Closes `sock`; posts a completion only on failure. No op may still name it.
    pub fn close(&mut self, sock: impl Into<Sock>, token: Token) {
        let sock = sock.into();
        each!(self, d => d.close(sock, token))
    }

    /// Half-closes the write side; always posts a completion, and `sock` must stay open
    /// until it has.
    pub fn shutdown_write(&mut self, sock: impl Into<Sock>, token: Token) {
        let sock = sock.into();
        each!(self, d => d.shutdown_write(sock, token))
    }

    /// Sends `len` bytes from `data` (MSG_NOSIGNAL). `zc`: SEND_ZC, which posts a second,
    /// notification completion when the kernel lets go of the bytes.
    ///
    /// # Safety
    /// `data..data+len` stays valid and unchanged until the final completion (for `zc`, the
    /// notification).
    pub unsafe fn send(&mut self, sock: Sock, data: *const u8, len: u32, zc: bool, token: Token) {
        // SAFETY: the caller's contract is the backend's.
        each!(self, d => unsafe { d.send(sock, data, len, zc, token) })
    }

    /// Moves up to `len` bytes from `src` (at `off`, or its position if `off` is -1) into
    /// the pipe `pipe_w`, which has room for them.
    pub fn splice_in(&mut self, src: RawFd, off: i64, pipe_w: RawFd, len: u32, token: Token) {
        each!(self, d => d.splice_in(src, off, pipe_w, len, token))
    }

    /// Moves up to `len` bytes from the pipe `pipe_r`, which holds them, to `sock`.
    pub fn splice_out(&mut self, pipe_r: RawFd, sock: Sock, len: u32, token: Token) {
        each!(self, d => d.splice_out(pipe_r, sock, len, token))
    }

    /// Connects `fd` to the address at `addr`.
    ///
    /// # Safety
    /// `addr..addr+len` stays valid until the completion.
    pub unsafe fn connect(
        &mut self,
        fd: RawFd,
        addr: *const libc::sockaddr,
        len: libc::socklen_t,
        token: Token,
    ) {
        // SAFETY: the caller's contract is the backend's.
        each!(self, d => unsafe { d.connect(fd, addr, len, token) })
    }

    /// Writes `len` bytes at the file position (appends on an O_APPEND file).
    ///
    /// # Safety
    /// `data..data+len` stays valid and unchanged until the completion.
    pub unsafe fn write(&mut self, fd: RawFd, data: *const u8, len: u32, token: Token) {
        // SAFETY: the caller's contract is the backend's.
        each!(self, d => unsafe { d.write(fd, data, len, token) })
    }

    /// Reads up to `len` bytes into `buf`.
    ///
    /// # Safety
    /// `buf..buf+len` stays valid, and is written by nothing else, until the completion.
    pub unsafe fn read(&mut self, fd: RawFd, buf: *mut u8, len: u32, token: Token) {
        // SAFETY: the caller's contract is the backend's.
        each!(self, d => unsafe { d.read(fd, buf, len, token) })
    }

    /// Registers the provided-buffer ring as its group: the kernel (io_uring) or the epoll
    /// backend takes receive buffers from it from now on.
    pub fn register_buffers(&mut self, bufs: &mut BufRing) -> io::Result<()> {
        match self {
            Driver::Uring(r) => r.register_buffers(bufs),
            Driver::Epoll(e) => {
                e.provide(bufs.group(), bufs.consumer());
                Ok(())
            }
        }?;
        bufs.set_registered(true);
        Ok(())
    }

    /// Withdraws the buffer group (before the ring goes away, for a clean teardown).
    pub fn unregister_buffers(&mut self, bufs: &mut BufRing) {
        if !bufs.registered() {
            return;
        }
        match self {
            Driver::Uring(r) => r.unregister_buffers(bufs.group()),
            Driver::Epoll(e) => e.unprovide(bufs.group()),
        }
        bufs.set_registered(false);
    }

    /// Starts what was asked and waits up to `timeout` for at least one completion.
    pub fn submit_and_wait(&mut self, timeout: Duration) -> io::Result<()> {
        each!(self, d => d.submit_and_wait(timeout))
    }

    /// Starts what was asked without waiting.
    pub fn submit(&mut self) -> io::Result<()> {
        each!(self, d => d.submit())
    }

    /// Moves up to `out.capacity()` completions into `out` (cleared first).
    pub fn drain(&mut self, out: &mut Vec<Completion>) {
        each!(self, d => d.drain(out))
    }
}
