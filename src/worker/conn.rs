//! One client connection: an explicit state machine, stored in the worker's slab.

use crate::driver::Sock;
use std::collections::VecDeque;
use std::os::fd::RawFd;

use crate::admin::Ask;

use super::accesslog::LineParts;
use super::proxy_req::Proxying;

use crate::driver::outq::OutQueue;
use crate::http::chunked::ChunkedDecoder;
use crate::http::scan::HeadScanner;

/// Where the connection is in the request/response cycle.
pub enum Phase {
    /// Waiting for (the rest of) a request head.
    Head,
    /// Draining a request body the route does not need, then answering.
    Body(BodyLeft),
    /// Answered with a closing response: discard input until EOF or the linger deadline.
    Linger,
    /// An admin page is being gathered from every worker; later requests wait their turn.
    Admin,
    /// The request is being proxied to an upstream; later requests wait their turn.
    Proxy(Box<Proxying>),
}

pub enum BodyLeft {
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// The answer owed once the request body has been drained.
#[derive(Clone, Copy)]
pub struct Owed {
    /// Route index, or None for 404.
    pub route: Option<usize>,
    /// An error page owed instead of the route's answer (405, 404 ...), keeping the
    /// connection.
    pub error: Option<u16>,
    pub head_only: bool,
    pub keep_alive: bool,
    pub http10: bool,
}

/// A response queued but not yet fully handed to the kernel: its latency is recorded when
/// the send queue's `sent` offset passes `end`.
#[derive(Clone, Copy, Debug)]
pub struct Pending {
    pub end: u64,
    pub start_us: u64,
    pub route: Option<u16>,
    /// Status class (2..=5) of the responses: errors per second on the dashboard.
    pub class: u8,
    /// Responses in this entry: a pipelined batch shares start time and route, so it is
    /// tracked and recorded once (`record_n`), not once per request.
    pub count: u32,
}

pub struct Conn {
    pub fd: RawFd,
    /// `fd` is a slot in the ring's registered file table (`--fixed-files`).
    pub fixed: bool,
    /// Accepted on the admin listener.
    pub admin: bool,
    /// A request head has begun (its first byte time is `req_start_us`).
    pub in_head: bool,
    pub req_start_us: u64,
    pub pending: VecDeque<Pending>,
    /// An admin page to gather, picked up by the worker after input handling.
    pub admin_ask: Option<Ask>,
    /// Client address, looked up when the access log or a proxy route needs it.
    pub peer: Option<std::net::SocketAddr>,
    /// Port of the listener that accepted it (uwsgi SERVER_PORT).
    pub local_port: u16,
    /// A proxied request was just parsed: the worker starts the upstream exchange.
    pub proxy_start: bool,
    /// Request bytes queued towards the upstream (client-side back-pressure).
    pub up_backlog: usize,
    /// Status of the proxied response being relayed (for the log and counters).
    pub proxy_status: u16,
    pub log: LineParts,
    pub generation: u32,
    pub open: bool,
    pub phase: Phase,
    pub owed: Option<Owed>,
    /// Bytes of an unfinished request (only when a request spans receive buffers).
    pub inbuf: Vec<u8>,
    pub scanner: HeadScanner,
    pub out: OutQueue,
    pub recv_armed: bool,
    /// Input stopped because the client is not reading its responses.
    pub recv_paused: bool,
    pub read_closed: bool,
    /// Close once everything queued has been sent.
    pub close_after_flush: bool,
    /// Aborting: waiting for in-flight ops to finish before the fd is closed.
    pub aborting: bool,
    pub dirty: bool,
    /// No byte of a request is buffered (timeouts close silently).
    pub idle: bool,
    pub requests: u64,
    /// Tick at which the current wait began (idle, head, body progress, linger).
    pub since: u64,
    pub deadline: u64,
    pub wheel_tick: u64,
    pub last_send_tick: u64,
    /// Write side shut down (lingering close under way).
    pub shut_wr: bool,
    /// The SHUTDOWN op is with the kernel. It always runs on an io-wq worker, which looks the
    /// fd number up only when it runs: the fd must stay open (and its number unused by a new
    /// connection) until the op completes.
    pub shutdown_in_flight: bool,
    /// A cancel of the armed recv has been submitted.
    pub recv_cancelled: bool,
}

impl Conn {
    /// Between requests with nothing queued either way: closing it loses nothing.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Head)
            && self.inbuf.is_empty()
            && self.out.is_empty()
            && !self.out.busy()
    }

    pub fn new() -> Conn {
        Conn {
            fd: -1,
            fixed: false,
            admin: false,
            in_head: false,
            req_start_us: 0,
            pending: VecDeque::new(),
            admin_ask: None,
            peer: None,
            local_port: 0,
            proxy_start: false,
            up_backlog: 0,
            proxy_status: 0,
            log: LineParts::default(),
            generation: 0,
            open: false,
            phase: Phase::Head,
            owed: None,
            inbuf: Vec::new(),
            scanner: HeadScanner::new(),
            out: OutQueue::default(),
            recv_armed: false,
            recv_paused: false,
            read_closed: false,
            close_after_flush: false,
            aborting: false,
            dirty: false,
            idle: true,
            requests: 0,
            since: 0,
            deadline: 0,
            wheel_tick: 0,
            last_send_tick: 0,
            shut_wr: false,
            shutdown_in_flight: false,
            recv_cancelled: false,
        }
    }

    /// Resets a slot for a freshly accepted socket (keeps the generation).
    pub fn open(&mut self, fd: RawFd, fixed: bool, admin: bool) {
        // Defence in depth: a new connection starts with nothing queued, whatever happened.
        self.out.clear();
        self.fd = fd;
        self.fixed = fixed;
        self.admin = admin;
        self.in_head = false;
        self.pending.clear();
        self.admin_ask = None;
        self.peer = None;
        self.proxy_start = false;
        self.up_backlog = 0;
        self.log.clear();
        self.open = true;
        self.phase = Phase::Head;
        self.owed = None;
        self.inbuf.clear();
        self.scanner.reset();
        self.recv_armed = false;
        self.recv_paused = false;
        self.read_closed = false;
        self.close_after_flush = false;
        self.aborting = false;
        self.dirty = false;
        self.idle = true;
        self.requests = 0;
        self.since = 0;
        self.deadline = 0;
        self.wheel_tick = 0;
        self.last_send_tick = 0;
        self.shut_wr = false;
        self.shutdown_in_flight = false;
        self.recv_cancelled = false;
    }

    /// The socket as ring ops name it.
    pub fn sock(&self) -> Sock {
        if self.fixed {
            Sock::fixed(self.fd as u32)
        } else {
            Sock::from(self.fd)
        }
    }

    /// Anything the kernel still holds for this slot (then it must not be freed).
    pub fn ops_in_flight(&self) -> bool {
        self.recv_armed || self.out.busy() || self.shutdown_in_flight
    }
}
