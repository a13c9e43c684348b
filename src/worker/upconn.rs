//! One upstream connection's state: its endpoint, which server it is for, and where the
//! response it relays stands. Its socket-side life is in `upstreams/mod.rs`, the exchange it
//! serves in `upstream.rs`.

use crate::config::upstream::Proto;
use crate::http::chunked::ChunkedDecoder;
use crate::transport::Endpoint;

use super::conn::ExchangeKey;
use super::spool::Spool;

/// Where the upstream's response body is.
pub(super) enum Resp {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    /// After a 101: raw bytes both ways until either side closes.
    Tunnel,
    /// The rest of a Content-Length body is being spliced into the client's queue.
    Spliced,
    Done,
}

/// A large body handed to the client's queue as a socket segment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Splice {
    No,
    /// Chosen: stop receiving, then splice (bytes already received go first).
    Pending,
    /// The client's queue holds the socket segment.
    Active,
}

pub struct UpConn {
    /// The socket: connect, receive state, send queue, abort (`transport::Endpoint`).
    pub(super) ep: Endpoint,
    pub(super) pool: usize,
    pub(super) server: usize,
    pub(super) proto: Proto,
    /// An active health probe (no client; its answer decides the server's health).
    pub(super) probe: bool,
    pub(super) splice: Splice,
    pub(super) connected: bool,
    /// The exchange (client connection and stream) this connection serves.
    pub(super) client: Option<ExchangeKey>,
    /// Reading paused because the client is not taking the response fast enough.
    pub(super) hold_input: bool,
    pub(super) head_buf: Vec<u8>,
    pub(super) resp: Option<Resp>,
    /// Client framing for the body: re-chunk, or copy.
    pub(super) chunk_to_client: bool,
    pub(super) requests: u64,
    pub(super) reused: bool,
    /// Holds a max_conns slot of its server (given back on release).
    pub(super) slot: bool,
    /// Response buffering: read the response whatever the client's pace.
    pub(super) buffer: bool,
    /// The response's bytes past `response_buffer`, on their way to a temporary file.
    pub(super) spill: Option<Box<Spool>>,
    /// The spill stopped (max_temp_file, a disk error): back-pressure from here on.
    pub(super) spill_over: bool,
    /// The body is compressed on its way to the client (`compress_proxied`).
    pub(super) enc: Option<Box<crate::compress::encoder::Encoder>>,
    pub(super) got_bytes: bool,
    pub(super) keep_alive: bool,
    /// Tick of the last activity (idle pooled connections expire from it).
    pub since: u64,
    /// This exchange's timeline in microseconds: attempt start, connected, first byte.
    pub(super) t_start: u64,
    pub(super) t_connected: u64,
    pub(super) t_first: u64,
}

impl UpConn {
    /// The one definition of a fresh upstream connection (opening and freeing a slot both
    /// start from it).
    pub(super) fn new() -> UpConn {
        UpConn {
            ep: Endpoint::default(),
            pool: 0,
            server: 0,
            proto: Proto::Http,
            probe: false,
            splice: Splice::No,
            connected: false,
            client: None,
            hold_input: false,
            head_buf: Vec::new(),
            resp: None,
            chunk_to_client: false,
            requests: 0,
            reused: false,
            slot: false,
            buffer: false,
            spill: None,
            spill_over: false,
            enc: None,
            got_bytes: false,
            keep_alive: false,
            since: 0,
            t_start: 0,
            t_connected: 0,
            t_first: 0,
        }
    }
}
