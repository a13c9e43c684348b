//! One client connection: an explicit state machine, stored in the worker's slab.

use crate::driver::Sock;

use super::accesslog::LineParts;
use super::pending::PendingQueue;
use super::proxy_req::Proxying;

use crate::http::chunked::ChunkedDecoder;
use crate::http::scan::HeadScanner;
use crate::transport::Endpoint;

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
    /// Boxed: the decoder is large and rarely needed, and every idle slot would carry it.
    Chunked(Box<ChunkedDecoder>),
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

pub struct Conn {
    /// The socket: receive state, send queue, write shutdown, abort (`transport::Endpoint`).
    pub ep: Endpoint,
    /// Accepted on the admin listener.
    pub admin: bool,
    /// A request head has begun (its first byte time is `req_start_us`).
    pub in_head: bool,
    pub req_start_us: u64,
    pub pending: PendingQueue,
    /// Client address, looked up when the access log or a proxy route needs it.
    pub peer: Option<std::net::SocketAddr>,
    /// Port of the listener that accepted it (uwsgi SERVER_PORT).
    pub local_port: u16,
    /// Status of the proxied response being relayed (for the log and counters).
    pub proxy_status: u16,
    pub log: LineParts,
    pub phase: Phase,
    pub owed: Option<Owed>,
    /// Bytes of an unfinished request (only when a request spans receive buffers).
    pub inbuf: Vec<u8>,
    pub scanner: HeadScanner,
    /// Input is held back: the client is not reading its answers, or the upstream is not
    /// taking the request body. Request handling sets it; `settle` pauses the endpoint and
    /// clears it once the queues have drained.
    pub hold_input: bool,
    /// Close once everything queued has been sent.
    pub close_after_flush: bool,
    /// No byte of a request is buffered (timeouts close silently).
    pub idle: bool,
    pub requests: u64,
    /// Tick at which the current wait began (idle, head, body progress, linger).
    pub since: u64,
    pub wheel_tick: u64,
    pub last_send_tick: u64,
}

impl Conn {
    /// Between requests with nothing queued either way: closing it loses nothing.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Head)
            && self.inbuf.is_empty()
            && self.ep.out.is_empty()
            && !self.ep.out.busy()
    }

    /// The one definition of a fresh connection: `open` starts from it, so a field added
    /// here cannot be forgotten on reuse.
    pub fn new() -> Conn {
        Conn {
            ep: Endpoint::default(),
            admin: false,
            in_head: false,
            req_start_us: 0,
            pending: PendingQueue::default(),
            peer: None,
            local_port: 0,
            proxy_status: 0,
            log: LineParts::default(),
            phase: Phase::Head,
            owed: None,
            inbuf: Vec::new(),
            scanner: HeadScanner::new(),
            hold_input: false,
            close_after_flush: false,
            idle: true,
            requests: 0,
            since: 0,
            wheel_tick: 0,
            last_send_tick: 0,
        }
    }

    /// Resets a slot for a freshly accepted socket: everything from `new`, except the
    /// endpoint's buffers (emptied: another client's bytes must never reach this one).
    pub fn open(&mut self, sock: Sock, admin: bool, local_port: u16, now: u64) {
        let mut ep = std::mem::take(&mut self.ep);
        ep.open(sock, false, None);
        *self = Conn {
            ep,
            admin,
            local_port,
            since: now,
            ..Conn::new()
        };
    }

    /// Input is wanted: nothing holds it back and the peer may still send.
    pub fn wants_input(&self) -> bool {
        !self.hold_input && !self.ep.read_closed()
    }
}
