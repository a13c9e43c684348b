//! The socket side of a connection: one state machine for the server's client and upstream
//! connections and the load generator's, so that arming, pausing, cancelling and closing
//! are written once.
//!
//! It owns what the kernel may hold for the socket: the receive in flight (its state), the
//! send queue, a write-side shutdown, a connect. Whether the slot can be freed is derived
//! from those ([`Endpoint::ops_in_flight`]), never counted by hand.
//!
//! Receive states:
//!
//! | state        | a receive is with the backend | input wanted |
//! |--------------|-------------------------------|--------------|
//! | `Idle`       | no                            | yes (the next `want_input` arms one) |
//! | `Armed`      | yes                           | yes |
//! | `Cancelling` | yes, its cancel submitted     | `resume` says |
//! | `Paused`     | no                            | no (back-pressure) |
//! | `Closed`     | no                            | no more: EOF or a read error |
//!
//! The final completion of a receive (multishot: the one without `F_MORE`) moves `Armed`
//! to `Idle` and `Cancelling` to `Paused` (or `Idle` if input was wanted again meanwhile).

use crate::driver::connect::Connector;
use crate::driver::outq::{OutQueue, SendResult};
use crate::driver::{Completion, Io, Op, Sock, Token};

use super::slab::Key;
use super::tls::Session;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recv {
    Idle,
    Armed,
    Cancelling { resume: bool },
    Paused,
    Closed,
}

/// The op kinds of one kind of connection, so its completions are routed to its slab.
#[derive(Clone, Copy, Debug)]
pub struct Ops {
    pub recv: Op,
    pub send: Op,
    pub connect: Op,
    pub shutdown: Op,
}

pub const CLIENT: Ops = Ops {
    recv: Op::Recv,
    send: Op::Send,
    connect: Op::Cancel, // clients never connect
    shutdown: Op::Shutdown,
};

pub const UPSTREAM: Ops = Ops {
    recv: Op::UpRecv,
    send: Op::UpSend,
    connect: Op::UpConnect,
    shutdown: Op::Shutdown,
};

/// What a receive completion meant.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Bytes in the completion's buffer.
    Data,
    /// The peer finished sending.
    Eof,
    /// The buffer ring was empty: the receive ended, and will be armed again.
    NoBuffers,
    /// A cancelled receive's final completion.
    Cancelled,
    /// The read side failed (the connection should be aborted).
    Failed(i32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shut {
    Open,
    /// The SHUTDOWN op is with the kernel: it resolves the fd number only when it runs (on
    /// an io-wq worker), so the fd must stay open until it completes.
    InFlight,
    Done,
}

pub struct Endpoint {
    sock: Sock,
    recv: Recv,
    /// Receive with single-shot ops (AF_UNIX, where a multishot receive can miss the EOF).
    single: bool,
    shut: Shut,
    aborting: bool,
    /// Listed for a flush this loop turn.
    pub dirty: bool,
    /// What the codec queued: sent as it is, or, with TLS, encrypted at flush into the
    /// session's wire queue, which is what goes to the socket.
    pub out: OutQueue,
    /// Outgoing connections only: the address a CONNECT points at.
    pub connector: Option<Connector>,
    pub tls: Option<Box<Session>>,
}

impl Default for Endpoint {
    fn default() -> Self {
        Endpoint {
            sock: Sock::from(-1),
            recv: Recv::Idle,
            single: false,
            shut: Shut::Open,
            aborting: false,
            dirty: false,
            out: OutQueue::default(),
            connector: None,
            tls: None,
        }
    }
}

impl Endpoint {
    /// Starts over on a new socket: every field is reset, the send queue emptied (it may
    /// still hold another peer's bytes; they must never reach this one) but its buffers kept.
    pub fn open(&mut self, sock: Sock, single: bool, connector: Option<Connector>) {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        *self = Endpoint {
            sock,
            single,
            out,
            connector,
            ..Endpoint::default()
        };
    }

    pub fn sock(&self) -> Sock {
        self.sock
    }

    pub fn recv_state(&self) -> Recv {
        self.recv
    }

    pub fn aborting(&self) -> bool {
        self.aborting
    }

    /// The peer will send nothing more (or reading failed).
    pub fn read_closed(&self) -> bool {
        self.recv == Recv::Closed
    }

    /// Input is held back (paused, or being paused).
    pub fn paused(&self) -> bool {
        matches!(self.recv, Recv::Paused | Recv::Cancelling { resume: false })
    }

    pub fn shut_down(&self) -> bool {
        self.shut != Shut::Open
    }

    pub fn connecting(&self) -> bool {
        self.connector.as_ref().is_some_and(Connector::busy)
    }

    /// A receive is with the backend (armed, or cancelled but not yet returned).
    pub fn receiving(&self) -> bool {
        matches!(self.recv, Recv::Armed | Recv::Cancelling { .. })
    }

    /// Anything the kernel still holds for this socket; the slot is freed only without.
    pub fn ops_in_flight(&self) -> bool {
        self.receiving() || self.sending() || self.shut == Shut::InFlight || self.connecting()
    }

    /// A send is with the kernel (or a SEND_ZC notification is owed).
    #[inline]
    pub fn sending(&self) -> bool {
        self.out.busy() || self.tls.as_ref().is_some_and(|t| t.wire.busy())
    }

    /// Bytes queued and not yet taken by the kernel (plaintext and ciphertext alike), for
    /// back-pressure.
    #[inline]
    pub fn unsent(&self) -> usize {
        self.out.len() + self.tls.as_ref().map_or(0, |t| t.wire.len())
    }

    /// Something is queued to send.
    #[inline]
    pub fn has_unsent(&self) -> bool {
        !self.out.is_empty() || self.tls.as_ref().is_some_and(|t| !t.wire.is_empty())
    }

    /// Queues TLS close_notify before a clean close: true if that queued bytes to send
    /// first (false without TLS, or when it was queued already).
    pub fn close_notify(&mut self) -> bool {
        match &mut self.tls {
            Some(t) => {
                let before = t.wire.len();
                t.close_notify();
                t.wire.len() > before
            }
            None => false,
        }
    }

    /// Wants input: arms a receive unless one is armed, input is closed or the endpoint is
    /// being torn down.
    pub fn want_input(&mut self, io: &mut Io, key: Key, ops: &Ops) {
        if self.aborting {
            return;
        }
        match self.recv {
            Recv::Idle | Recv::Paused => {
                let t = key.token(ops.recv);
                if self.single {
                    io.recv_single(self.sock.raw(), t);
                } else {
                    io.recv_multi(self.sock, t);
                }
                self.recv = Recv::Armed;
            }
            Recv::Cancelling { .. } => self.recv = Recv::Cancelling { resume: true },
            Recv::Armed | Recv::Closed => {}
        }
    }

    /// Holds input back: cancels an armed receive (its final completion leaves it paused).
    pub fn pause_input(&mut self, io: &mut Io, key: Key, ops: &Ops) {
        match self.recv {
            Recv::Armed => {
                io.driver()
                    .cancel(key.token(ops.recv), Token::new(Op::Cancel, 0, 0));
                self.recv = Recv::Cancelling { resume: false };
            }
            Recv::Cancelling { .. } => self.recv = Recv::Cancelling { resume: false },
            Recv::Idle => self.recv = Recv::Paused,
            Recv::Paused | Recv::Closed => {}
        }
    }

    /// Accounts for a receive completion and says what it meant.
    pub fn on_recv(&mut self, c: &Completion) -> Received {
        let what = match c.result {
            n if n > 0 => Received::Data,
            0 => Received::Eof,
            e if -e == libc::ENOBUFS => Received::NoBuffers,
            e if -e == libc::ECANCELED => Received::Cancelled,
            e => Received::Failed(-e),
        };
        let last = !c.more() || matches!(what, Received::Eof | Received::Failed(_));
        if matches!(what, Received::Eof | Received::Failed(_)) {
            self.recv = Recv::Closed;
        } else if last {
            self.recv = match self.recv {
                Recv::Cancelling { resume: false } => Recv::Paused,
                Recv::Closed => Recv::Closed,
                _ => Recv::Idle,
            };
        }
        what
    }

    /// Sends what is queued, unless a send is in flight (the queue sends the rest on its
    /// completion) or the endpoint is being torn down. With TLS, the codec's bytes are
    /// encrypted first. False if that failed: the connection must be aborted.
    pub fn flush(&mut self, io: &mut Io, key: Key, ops: &Ops, zc_threshold: usize) -> bool {
        self.dirty = false;
        if self.aborting {
            return true;
        }
        let token = key.token(ops.send);
        match &mut self.tls {
            None => {
                self.out.flush(io.driver(), self.sock, token, zc_threshold);
            }
            Some(t) => {
                if t.encrypt(&mut self.out).is_err() {
                    return false;
                }
                t.wire.flush(io.driver(), self.sock, token, usize::MAX);
            }
        }
        true
    }

    pub fn on_send(&mut self, c: &Completion) -> SendResult {
        match &mut self.tls {
            Some(t) => t.wire.complete(c),
            None => self.out.complete(c),
        }
    }

    /// Half-closes the write side, once (the lingering close).
    pub fn shutdown_write(&mut self, io: &mut Io, key: Key, ops: &Ops) {
        if self.shut == Shut::Open {
            self.shut = Shut::InFlight;
            io.driver()
                .shutdown_write(self.sock, key.token(ops.shutdown));
        }
    }

    pub fn on_shutdown(&mut self) {
        if self.shut == Shut::InFlight {
            self.shut = Shut::Done;
        }
    }

    /// Starts the connect of an outgoing endpoint.
    pub fn connect(&mut self, io: &mut Io, key: Key, ops: &Ops) {
        if let Some(cn) = &mut self.connector {
            cn.connect(io.driver(), self.sock.raw(), key.token(ops.connect));
        }
    }

    /// A connect completed (`Err(errno)` if it failed).
    pub fn on_connect(&mut self, c: &Completion) -> Result<(), i32> {
        if let Some(cn) = &mut self.connector {
            cn.completed();
        }
        if c.result < 0 { Err(-c.result) } else { Ok(()) }
    }

    /// Stops everything: cancels what is in flight (each op then posts its final
    /// completion). Idempotent; after it, nothing new is armed or sent.
    pub fn abort(&mut self, io: &mut Io, key: Key, ops: &Ops) {
        if self.aborting {
            return;
        }
        self.aborting = true;
        let cancel = Token::new(Op::Cancel, 0, 0);
        if self.recv == Recv::Armed {
            io.driver().cancel(key.token(ops.recv), cancel);
            self.recv = Recv::Cancelling { resume: false };
        }
        if self.sending() {
            io.driver().cancel(key.token(ops.send), cancel);
        }
        if self.connecting() {
            io.driver().cancel(key.token(ops.connect), cancel);
        }
    }

    /// Closes the socket once nothing is in flight: true if it did (the caller frees the
    /// slot). The send queue is emptied and shrunk: an idle slot keeps no buffers.
    pub fn close_when_idle(&mut self, io: &mut Io, key: Key) -> bool {
        if self.ops_in_flight() {
            return false;
        }
        io.driver()
            .close(self.sock, Token::new(Op::Close, key.index, key.generation));
        self.sock = Sock::from(-1);
        self.out.clear();
        self.out.shrink();
        self.tls = None;
        true
    }

    /// The descriptor, for a teardown that closes it directly (no op may name it).
    pub fn take_fd(&mut self) -> Option<i32> {
        let fd = self.sock.raw();
        if fd < 0 || self.sock.is_fixed() {
            return None;
        }
        self.sock = Sock::from(-1);
        Some(fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cqe(result: i32, more: bool) -> Completion {
        Completion {
            user_data: 0,
            result,
            flags: if more { crate::driver::F_MORE } else { 0 },
        }
    }

    /// The receive state machine without a backend: the transitions the table documents.
    #[test]
    fn receive_transitions() {
        let mut e = Endpoint::default();
        assert_eq!(e.recv_state(), Recv::Idle);
        // Armed by hand here (want_input needs an Io): data keeps it armed, the final
        // completion returns it to idle.
        e.recv = Recv::Armed;
        assert_eq!(e.on_recv(&cqe(10, true)), Received::Data);
        assert_eq!(e.recv_state(), Recv::Armed);
        assert!(e.ops_in_flight());
        assert_eq!(e.on_recv(&cqe(-libc::ENOBUFS, false)), Received::NoBuffers);
        assert_eq!(e.recv_state(), Recv::Idle);
        assert!(!e.ops_in_flight());
        // A cancel for back-pressure lands as paused...
        e.recv = Recv::Cancelling { resume: false };
        assert!(e.paused());
        assert_eq!(
            e.on_recv(&cqe(-libc::ECANCELED, false)),
            Received::Cancelled
        );
        assert_eq!(e.recv_state(), Recv::Paused);
        // ...or as idle when input was wanted again meanwhile.
        e.recv = Recv::Cancelling { resume: true };
        assert!(!e.paused());
        e.on_recv(&cqe(-libc::ECANCELED, false));
        assert_eq!(e.recv_state(), Recv::Idle);
        // EOF and errors close the read side, whatever the flags say.
        e.recv = Recv::Armed;
        assert_eq!(e.on_recv(&cqe(0, false)), Received::Eof);
        assert!(e.read_closed());
        e.recv = Recv::Armed;
        assert_eq!(
            e.on_recv(&cqe(-libc::ECONNRESET, true)),
            Received::Failed(libc::ECONNRESET)
        );
        assert!(e.read_closed() && !e.ops_in_flight());
        // A late completion after close leaves it closed.
        e.on_recv(&cqe(-libc::ECANCELED, false));
        assert!(e.read_closed());
    }

    #[test]
    fn shutdown_counts_as_in_flight_until_it_completes() {
        let mut e = Endpoint {
            shut: Shut::InFlight,
            ..Endpoint::default()
        };
        assert!(e.ops_in_flight() && e.shut_down());
        e.on_shutdown();
        assert!(!e.ops_in_flight() && e.shut_down());
    }
}
