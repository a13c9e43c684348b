//! The listeners part: each listening socket's multishot accept, and when accepting pauses
//! (the connection cap, or out of descriptors) and resumes.

use std::os::fd::{AsRawFd, OwnedFd};

use crate::driver::{Completion, Io, Op, Sock, Token};
use crate::stats::Counters;

use super::listener::ListenKind;

struct Listener {
    fd: Option<OwnedFd>,
    armed: bool,
    port: u16,
    kind: ListenKind,
}

/// A connection the kernel handed over.
pub(super) struct Accepted {
    pub sock: Sock,
    /// The plain descriptor (for getpeername), None when it is a registered slot.
    pub fd: Option<i32>,
    pub kind: ListenKind,
    pub port: u16,
}

pub(super) struct Listeners {
    list: Vec<Listener>,
    /// Accepting is paused (connection cap, or EMFILE) until `retry_tick`, or until a slot
    /// frees when that is 0.
    paused: bool,
    retry_tick: u64,
    /// Accepted sockets are direct descriptors (their CQE result is a table slot).
    fixed_files: bool,
}

impl Listeners {
    pub fn new(fds: Vec<(OwnedFd, ListenKind)>, fixed_files: bool) -> Listeners {
        Listeners {
            list: fds
                .into_iter()
                .map(|(fd, kind)| Listener {
                    port: super::listener::local_addr(&fd)
                        .map(|a| a.port())
                        .unwrap_or(0),
                    fd: Some(fd),
                    armed: false,
                    kind,
                })
                .collect(),
            paused: false,
            retry_tick: 0,
            fixed_files,
        }
    }

    /// Accepting is paused (see `resume_if_due`).
    #[inline]
    pub fn paused(&self) -> bool {
        self.paused
    }

    pub fn fixed_files(&self) -> bool {
        self.fixed_files
    }

    /// No accept is armed (a drain waits for the cancels: an accept landing after the
    /// exit would be a connection nobody serves).
    pub fn quiet(&self) -> bool {
        self.list.iter().all(|l| !l.armed)
    }

    /// Arms every listener's accept that is not armed, unless paused or `draining`.
    pub fn arm(&mut self, io: &mut Io, draining: bool) {
        if self.paused || draining {
            return;
        }
        for (i, l) in self.list.iter_mut().enumerate() {
            if let (Some(fd), false) = (&l.fd, l.armed) {
                io.driver().accept_multi(
                    fd.as_raw_fd(),
                    Token::new(Op::Accept, i as u32, 0),
                    self.fixed_files,
                );
                l.armed = true;
            }
        }
    }

    /// Stops accepting until a slot frees (or the retry tick, if one is set).
    pub fn pause(&mut self, io: &mut Io) {
        self.paused = true;
        self.cancel(io);
    }

    fn cancel(&mut self, io: &mut Io) {
        for (i, l) in self.list.iter().enumerate() {
            if l.armed {
                let t = Token::new(Op::Accept, i as u32, 0);
                io.driver().cancel(t, Token::new(Op::Cancel, 0, 0));
            }
        }
    }

    /// Cancels armed accepts without pausing: each cancel's final CQE re-arms, and a fresh
    /// accept first tries the queue at once.
    pub fn rearm(&mut self, io: &mut Io, draining: bool) {
        if !self.paused && !draining {
            self.cancel(io);
        }
    }

    /// A drain: no more accepts, and the listening sockets go (the ring keeps its own
    /// reference until the cancel lands).
    pub fn close(&mut self, io: &mut Io) {
        self.pause(io);
        for l in &mut self.list {
            l.fd = None;
        }
    }

    /// An accept completion. Returns the connection to open, if there is one and `room`
    /// (below the connection cap); without room the socket is closed at once. The caller
    /// re-arms (`arm`) once it has taken the connection (which may pause accepting).
    pub fn on_accept(
        &mut self,
        io: &mut Io,
        t: Token,
        c: &Completion,
        room: bool,
        now: u64,
        stats: &mut Counters,
    ) -> Option<Accepted> {
        let li = t.index as usize;
        if !c.more()
            && let Some(l) = self.list.get_mut(li)
        {
            l.armed = false;
        }
        let mut accepted = None;
        if c.result >= 0 {
            let sock = self.sock_of(c.result);
            // Accepted after a drain began (the cancel raced it): still served, its answer
            // carries `Connection: close`. Only a full slab refuses it.
            if room {
                accepted = Some(Accepted {
                    sock,
                    fd: (!self.fixed_files).then_some(c.result),
                    kind: self.list.get(li).map_or(ListenKind::Http, |l| l.kind),
                    port: self.list.get(li).map_or(0, |l| l.port),
                });
            } else {
                io.driver().close(sock, Token::new(Op::Close, 0, 0));
            }
        } else if c.result != -libc::ECANCELED {
            stats.accept_errors += 1;
            if !matches!(-c.result, libc::ECONNABORTED | libc::EINTR | libc::EAGAIN) {
                // Out of descriptors or memory (or anything persistent): back off and
                // retry, do not spin re-arming an accept that fails at once.
                self.paused = true;
                self.retry_tick = now + 5;
            }
        }
        accepted
    }

    /// The socket an accept completion names: a registered descriptor's table slot, or a
    /// plain descriptor.
    fn sock_of(&self, fd: i32) -> Sock {
        if self.fixed_files {
            Sock::fixed(fd as u32)
        } else {
            Sock::from(fd)
        }
    }

    /// Resumes accepting when the pause is over: its retry tick has come (`now`), or, for a
    /// pause at the cap, a slot is free (`room`). Cheap enough to ask after every event.
    pub fn resume_if_due(&mut self, io: &mut Io, now: u64, room: bool, draining: bool) {
        if self.paused && room && (self.retry_tick == 0 || now >= self.retry_tick) {
            self.paused = false;
            self.retry_tick = 0;
            self.arm(io, draining);
        }
    }
}
