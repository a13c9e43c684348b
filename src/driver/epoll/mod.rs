//! The epoll backend of the transport seam (`crate::driver`): readiness turned into
//! completions, for machines where io_uring is blocked or missing.
//!
//! Every op is tried when it is asked for. One that would block parks on its descriptor's
//! read or write side; descriptors are registered once, edge-triggered for both directions
//! (as nginx does), so keep-alive traffic costs no epoll_ctl per request. An edge retries the
//! parked op. Results are queued as the completions io_uring would post: same user data,
//! result and flag bits (buffer id, F_MORE), drained by the same worker loop.
//!
//! Receives take buffers from the provided-buffer ring (`BufRing`) the way the kernel does
//! for io_uring; an empty ring ends a multishot receive with -ENOBUFS.

mod slots;
mod sys;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use slots::{Parked, Side, Slots, Wait};

use super::bufring::Consumer;
use super::token::Token;
use super::types::{BUFFER_SHIFT, Completion, F_BUFFER, F_MORE, Sock};

/// Accepts per readiness before other descriptors get a turn.
const ACCEPT_BATCH: usize = 64;
/// Full-buffer receives per readiness before other descriptors get a turn.
const RECV_BATCH: usize = 16;
const EVENTS: usize = 256;

pub struct Epoll {
    epfd: OwnedFd,
    slots: Slots,
    /// Where each parked op waits, for cancel (ops that finish at once are never here).
    parked: HashMap<u64, (RawFd, Side)>,
    ready: VecDeque<Completion>,
    events: Vec<libc::epoll_event>,
    /// Descriptors left readable when their batch ran out: retried without a new edge.
    again: Vec<(RawFd, u32)>,
    bufs: Option<(u16, Consumer)>,
    /// The last wait polled; with completions queued, the next one may skip the syscall.
    polled_last: bool,
    /// epoll_pwait2 works here (nanosecond timeouts).
    precise: bool,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        let fd = sys::epoll_create().map_err(io::Error::from_raw_os_error)?;
        Ok(Epoll {
            // SAFETY: a fresh descriptor that nothing else owns.
            epfd: unsafe { OwnedFd::from_raw_fd(fd as RawFd) },
            slots: Slots::default(),
            parked: HashMap::new(),
            ready: VecDeque::with_capacity(256),
            events: vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS],
            again: Vec::new(),
            bufs: None,
            polled_last: false,
            precise: true,
        })
    }

    /// The provided-buffer ring receives take from (`BufRing::new`).
    pub fn provide(&mut self, bgid: u16, c: Consumer) {
        self.bufs = Some((bgid, c));
    }

    pub fn unprovide(&mut self, bgid: u16) {
        if self.bufs.as_ref().is_some_and(|(g, _)| *g == bgid) {
            self.bufs = None;
        }
    }

    fn post(&mut self, user_data: u64, result: i32, flags: u32) {
        self.ready.push_back(Completion {
            user_data,
            result,
            flags,
        });
    }

    // ---- ops (see `Driver` for what each promises) ----

    pub fn accept_multi(&mut self, listen_fd: RawFd, token: Token, _direct: bool) {
        // The listener must not block the loop when another process took the connection.
        if let Err(e) = sys::set_nonblocking(listen_fd) {
            return self.post(token.pack(), -e, 0);
        }
        self.arm(listen_fd, Side::Read, token, Wait::Accept);
    }

    pub fn recv_multi(&mut self, sock: Sock, bgid: u16, token: Token) {
        self.recv(sock.raw(), bgid, token, true, u32::MAX);
    }

    pub fn recv_single(&mut self, fd: RawFd, bgid: u16, len: u32, token: Token) {
        self.recv(fd, bgid, token, false, len);
    }

    fn recv(&mut self, fd: RawFd, bgid: u16, token: Token, multishot: bool, len: u32) {
        if self.bufs.as_ref().is_none_or(|(g, _)| *g != bgid) {
            return self.post(token.pack(), -libc::ENOBUFS, 0);
        }
        self.arm(fd, Side::Read, token, Wait::Recv { multishot, len });
    }

    pub fn cancel(&mut self, target: Token, token: Token) {
        let ud = target.pack();
        let Some((fd, side)) = self.parked.remove(&ud) else {
            return self.post(token.pack(), -libc::ENOENT, 0);
        };
        let slot = self.slots.get(fd);
        if slot.side(side).is_some_and(|p| p.user_data == ud) {
            *slot.side(side) = None;
        }
        self.post(ud, -libc::ECANCELED, 0);
        self.post(token.pack(), 0, 0);
        self.release_if_idle(fd);
    }

    pub fn close(&mut self, sock: Sock, token: Token) {
        let fd = sock.raw();
        // The seam's users cancel first; this is the backstop that keeps "every op gets a
        // final completion" true even if they did not.
        for side in [Side::Read, Side::Write] {
            if let Some(p) = self.slots.get(fd).side(side).take() {
                self.parked.remove(&p.user_data);
                self.post(p.user_data, -libc::ECANCELED, 0);
            }
        }
        let slot = self.slots.get(fd);
        if slot.registered && !slot.accepted {
            let _ = sys::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, 0, 0);
        }
        slot.reset();
        if let Err(e) = sys::close(fd) {
            self.post(token.pack(), -e, 0);
        }
    }

    pub fn shutdown_write(&mut self, sock: Sock, token: Token) {
        let r = sys::shutdown_write(sock.raw());
        self.post_result(token.pack(), r);
    }

    /// # Safety
    /// See [`Driver::send`](crate::driver::Driver::send). SEND_ZC is io_uring's; `zc` is
    /// never asked for here (the features say so), and a plain send is the same bytes.
    pub unsafe fn send(&mut self, sock: Sock, data: *const u8, len: u32, _zc: bool, t: Token) {
        self.arm(sock.raw(), Side::Write, t, Wait::Send { data, len });
    }

    pub fn splice_in(&mut self, src: RawFd, off: i64, pipe_w: RawFd, len: u32, token: Token) {
        self.arm(src, Side::Read, token, Wait::SpliceIn { off, pipe_w, len });
    }

    pub fn splice_out(&mut self, pipe_r: RawFd, sock: Sock, len: u32, token: Token) {
        self.arm(
            sock.raw(),
            Side::Write,
            token,
            Wait::SpliceOut { pipe_r, len },
        );
    }

    /// # Safety
    /// `addr..addr+len` is a readable socket address (it is used before this returns).
    pub unsafe fn connect(
        &mut self,
        fd: RawFd,
        addr: *const libc::sockaddr,
        len: libc::socklen_t,
        token: Token,
    ) {
        if let Err(e) = sys::set_nonblocking(fd) {
            return self.post(token.pack(), -e, 0);
        }
        // SAFETY: per this function's contract.
        match unsafe { sys::connect(fd, addr, len) } {
            Err(libc::EINPROGRESS) => self.park(fd, Side::Write, token.pack(), Wait::Connect),
            r => self.post_result(token.pack(), r),
        }
    }

    /// # Safety
    /// `data..data+len` is readable (it is written before this returns). A regular file:
    /// the write is done here, as nginx writes its access log.
    pub unsafe fn write(&mut self, fd: RawFd, data: *const u8, len: u32, token: Token) {
        // SAFETY: per this function's contract.
        let r = unsafe { sys::write(fd, data, len) };
        self.post_result(token.pack(), r);
    }

    /// # Safety
    /// See [`Driver::read`](crate::driver::Driver::read).
    pub unsafe fn read(&mut self, fd: RawFd, buf: *mut u8, len: u32, token: Token) {
        // The wake eventfd: blocking for io_uring's sake, so made non-blocking here.
        if let Err(e) = sys::set_nonblocking(fd) {
            return self.post(token.pack(), -e, 0);
        }
        self.arm(fd, Side::Read, token, Wait::Read { buf, len });
    }

    pub fn submit(&mut self) -> io::Result<()> {
        Ok(()) // every op ran when it was asked for
    }

    pub fn submit_and_wait(&mut self, timeout: Duration) -> io::Result<()> {
        self.run_again();
        let timeout = if !self.ready.is_empty() || !self.again.is_empty() {
            if self.polled_last && self.again.is_empty() {
                // Hand over what is queued first; the next turn polls (no starvation).
                self.polled_last = false;
                return Ok(());
            }
            Duration::ZERO
        } else {
            timeout
        };
        let epfd = self.epfd.as_raw_fd();
        let n = match sys::epoll_wait(epfd, &mut self.events, timeout, &mut self.precise) {
            Ok(n) => n,
            Err(libc::EINTR) => 0,
            Err(e) => return Err(io::Error::from_raw_os_error(e)),
        };
        self.polled_last = true;
        for i in 0..n {
            let ev = self.events[i];
            let (bits, data) = (ev.events, ev.u64);
            self.on_event(bits, data);
        }
        Ok(())
    }

    /// Moves up to `out.capacity()` completions into `out` (cleared first).
    pub fn drain(&mut self, out: &mut Vec<Completion>) {
        super::types::drain_queued(&mut self.ready, out);
    }

    // ---- readiness ----

    fn on_event(&mut self, bits: u32, data: u64) {
        let (fd, generation) = slots::unpack(data);
        let Some(slot) = self.slots.find(fd) else {
            return;
        };
        if !slot.registered || slot.generation != generation {
            return; // a registration since dropped: the descriptor number moved on
        }
        let hup = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        if bits & hup != 0 {
            slot.eof = true;
        }
        if bits & (libc::EPOLLIN as u32 | hup) != 0 {
            self.retry(fd, Side::Read);
        }
        let out = (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        if bits & out != 0 {
            self.retry(fd, Side::Write);
        }
    }

    fn run_again(&mut self) {
        if self.again.is_empty() {
            return;
        }
        for (fd, generation) in std::mem::take(&mut self.again) {
            if self.slots.get(fd).generation == generation {
                self.retry(fd, Side::Read);
            }
        }
    }

    /// Runs the op parked on `side` of `fd` again; it stays parked if it would still block.
    fn retry(&mut self, fd: RawFd, side: Side) {
        let Some(p) = self.slots.get(fd).side(side).take() else {
            return;
        };
        match self.attempt(fd, p) {
            Some(p) => *self.slots.get(fd).side(side) = Some(p),
            None => {
                self.parked.remove(&p.user_data);
                self.release_if_idle(fd);
            }
        }
    }

    /// A new op: tried now, parked (and its descriptor registered) if it would block.
    fn arm(&mut self, fd: RawFd, side: Side, token: Token, wait: Wait) {
        let p = Parked {
            user_data: token.pack(),
            wait,
        };
        if let Some(p) = self.attempt(fd, p) {
            self.park(fd, side, p.user_data, p.wait);
        }
    }

    fn park(&mut self, fd: RawFd, side: Side, user_data: u64, wait: Wait) {
        let slot = self.slots.get(fd);
        // Listeners are dups the worker drops itself, and a proxied body is spliced from a
        // dup of the upstream socket that its OutQueue closes: neither passes through close.
        if matches!(wait, Wait::Accept | Wait::SpliceIn { .. }) {
            slot.external = true;
        }
        if let Some(old) = slot.side(side).replace(Parked { user_data, wait }) {
            // Two ops on one side of a socket is a bug above the seam; fail the older one
            // rather than lose its completion.
            self.parked.remove(&old.user_data);
            self.post(old.user_data, -libc::EBUSY, 0);
        }
        self.parked.insert(user_data, (fd, side));
        self.register(fd);
    }

    fn register(&mut self, fd: RawFd) {
        let slot = self.slots.get(fd);
        if slot.registered {
            return;
        }
        slot.generation = slot.generation.wrapping_add(1);
        let data = slots::pack(fd, slot.generation);
        let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
        let epfd = self.epfd.as_raw_fd();
        let r = match sys::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, events, data) {
            Err(libc::EEXIST) => sys::epoll_ctl(epfd, libc::EPOLL_CTL_MOD, fd, events, data),
            r => r,
        };
        match r {
            Ok(_) => slot.registered = true,
            Err(e) => {
                // Nothing would ever wake what waits on it: fail it now.
                for side in [Side::Read, Side::Write] {
                    if let Some(p) = self.slots.get(fd).side(side).take() {
                        self.parked.remove(&p.user_data);
                        self.post(p.user_data, -e, 0);
                    }
                }
            }
        }
    }

    /// Drops the registration of a descriptor that may be closed elsewhere once nothing
    /// waits on it, so a reused number never inherits it.
    fn release_if_idle(&mut self, fd: RawFd) {
        let slot = self.slots.get(fd);
        if slot.external && slot.read.is_none() && slot.write.is_none() {
            if slot.registered {
                let _ = sys::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, 0, 0);
            }
            slot.reset();
        }
    }

    fn post_result(&mut self, user_data: u64, r: Result<usize, i32>) {
        match r {
            Ok(n) => self.post(user_data, n.min(i32::MAX as usize) as i32, 0),
            Err(e) => self.post(user_data, -e, 0),
        }
    }

    /// Runs an op as far as it goes now. Returns it if it must wait for readiness (a
    /// multishot op that keeps going, or one that would block); None once its final
    /// completion is posted.
    fn attempt(&mut self, fd: RawFd, p: Parked) -> Option<Parked> {
        let ud = p.user_data;
        let r = match p.wait {
            Wait::Accept => return self.accept_batch(fd, p),
            Wait::Recv { multishot, len } => return self.recv_batch(fd, p, multishot, len),
            // SAFETY: the caller of `read` keeps buf..buf+len for us until the completion.
            Wait::Read { buf, len } => unsafe { sys::read(fd, buf, len) },
            Wait::SpliceIn { off, pipe_w, len } => sys::splice(fd, off, pipe_w, len),
            // SAFETY: the caller of `send` keeps data..data+len until the completion.
            Wait::Send { data, len } => unsafe { sys::send(fd, data, len) },
            Wait::SpliceOut { pipe_r, len } => sys::splice(pipe_r, -1, fd, len),
            Wait::Connect => match sys::socket_error(fd) {
                0 => Ok(0),
                e => Err(e),
            },
        };
        match r {
            Err(libc::EAGAIN | libc::EINTR) => Some(p),
            r => {
                self.post_result(ud, r);
                None
            }
        }
    }

    fn accept_batch(&mut self, fd: RawFd, p: Parked) -> Option<Parked> {
        for _ in 0..ACCEPT_BATCH {
            match sys::accept(fd) {
                Ok(nfd) => {
                    let nfd = nfd as RawFd;
                    let slot = self.slots.get(nfd);
                    slot.reset();
                    slot.accepted = true;
                    self.post(p.user_data, nfd, F_MORE);
                }
                Err(libc::EAGAIN) => return Some(p),
                // The client gave up while queued: nothing to report, go on.
                Err(libc::ECONNABORTED | libc::EINTR) => {}
                Err(e) => {
                    self.post(p.user_data, -e, 0);
                    return None;
                }
            }
        }
        let generation = self.slots.get(fd).generation;
        self.again.push((fd, generation));
        Some(p)
    }

    fn recv_batch(&mut self, fd: RawFd, p: Parked, multishot: bool, len: u32) -> Option<Parked> {
        let ud = p.user_data;
        let eof = self.slots.get(fd).eof;
        for _ in 0..RECV_BATCH {
            let Some(b) = self.bufs.as_ref().and_then(|(_, c)| c.peek()) else {
                self.post(ud, -libc::ENOBUFS, 0);
                return None;
            };
            let want = if multishot { b.len } else { b.len.min(len) };
            // SAFETY: a published buffer is the consumer's until a completion names it
            // (the BufRing owner does not touch it meanwhile); want <= its length.
            match unsafe { sys::recv(fd, b.ptr, want) } {
                Ok(0) => {
                    self.post(ud, 0, 0);
                    return None;
                }
                Ok(n) => {
                    if let Some((_, c)) = self.bufs.as_mut() {
                        c.consume();
                    }
                    let more = if multishot { F_MORE } else { 0 };
                    let flags = F_BUFFER | (u32::from(b.bid) << BUFFER_SHIFT) | more;
                    self.post(ud, n as i32, flags);
                    if !multishot {
                        return None;
                    }
                    // A short read emptied the socket: the next bytes bring a new edge.
                    if n < want as usize && !eof {
                        return Some(p);
                    }
                }
                Err(libc::EAGAIN) => return Some(p),
                Err(libc::EINTR) => {}
                Err(e) => {
                    self.post(ud, -e, 0);
                    return None;
                }
            }
        }
        let generation = self.slots.get(fd).generation;
        self.again.push((fd, generation));
        Some(p)
    }
}
