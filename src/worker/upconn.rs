//! One upstream connection and its socket-side life: opened with a connect, settled after
//! every event (send what is queued, keep a receive armed or paused), closed once the
//! kernel holds nothing of it. The exchange it serves is in `upstream.rs`.

use crate::config::upstream::{Addr, Proto};
use crate::driver::Sock;
use crate::driver::connect::Connector;
use crate::http::chunked::ChunkedDecoder;
use crate::transport::endpoint::UPSTREAM;
use crate::transport::{Endpoint, Key, Recv};

use super::event_loop::Worker;

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
    /// The client request this connection serves.
    pub(super) client: Option<Key>,
    /// Reading paused because the client is not taking the response fast enough.
    pub(super) hold_input: bool,
    pub(super) head_buf: Vec<u8>,
    pub(super) resp: Option<Resp>,
    /// Client framing for the body: re-chunk, or copy.
    pub(super) chunk_to_client: bool,
    pub(super) requests: u64,
    pub(super) reused: bool,
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
    fn new() -> UpConn {
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
            got_bytes: false,
            keep_alive: false,
            since: 0,
            t_start: 0,
            t_connected: 0,
            t_first: 0,
        }
    }
}

impl Worker {
    /// Opens a connection to `server` of `pool` and starts its connect.
    pub(super) fn open_up(&mut self, pool: usize, server: usize) -> std::io::Result<Key> {
        let s = &self.cfg.pools[pool].servers[server];
        let connector = match &s.addr {
            Addr::Tcp(a) => Connector::tcp(a),
            Addr::Unix(p) => Connector::unix(p)?,
        };
        let fd = crate::driver::connect::stream_socket(connector.family())?;
        // AF_UNIX: single-shot receives (a multishot receive can miss the EOF there).
        let unix = connector.family() == libc::AF_UNIX;
        let proto = s.proto;
        let u = self.ups.insert(UpConn::new, |_| {});
        let up = &mut self.ups[u];
        let mut ep = std::mem::take(&mut up.ep);
        ep.open(Sock::from(fd), unix, Some(connector));
        let mut head_buf = std::mem::take(&mut up.head_buf);
        head_buf.clear();
        *up = UpConn {
            ep,
            pool,
            server,
            proto,
            head_buf,
            ..UpConn::new()
        };
        up.ep.connect(&mut self.io, u, &UPSTREAM);
        Ok(u)
    }

    /// After any event on an upstream connection: send what is queued, keep a receive
    /// armed (or paused), free the slot once the kernel holds nothing of it.
    pub(super) fn settle_up(&mut self, u: Key) {
        let Some(up) = self.ups.get_mut(u) else {
            return;
        };
        if up.ep.aborting() {
            if up.ep.close_when_idle(&mut self.io, u) {
                *up = UpConn {
                    ep: std::mem::take(&mut up.ep),
                    ..UpConn::new()
                };
                up.ep.connector = None;
                self.ups.remove(u);
            }
            return;
        }
        if !up.connected {
            return;
        }
        if !up.ep.out.is_empty() && !up.ep.dirty {
            up.ep.dirty = true;
            self.up_dirty.push(u);
        }
        if up.splice != Splice::No {
            // Splicing: no receive may compete with the segment for the socket's bytes.
            match up.ep.recv_state() {
                Recv::Armed | Recv::Cancelling { .. } => {
                    up.ep.pause_input(&mut self.io, u, &UPSTREAM)
                }
                _ if up.splice == Splice::Pending => self.start_splice(u),
                _ => {}
            }
            return;
        }
        if up.hold_input {
            up.ep.pause_input(&mut self.io, u, &UPSTREAM);
        } else {
            up.ep.want_input(&mut self.io, u, &UPSTREAM);
        }
    }

    /// Stops everything on an upstream connection; the slot is freed once the kernel has
    /// returned every op.
    pub(super) fn close_up(&mut self, u: Key) {
        let Some(up) = self.ups.get_mut(u) else {
            return;
        };
        up.ep.abort(&mut self.io, u, &UPSTREAM);
        self.settle_up(u);
    }

    pub(super) fn flush_up_dirty(&mut self) {
        for &u in &self.up_dirty {
            if let Some(up) = self.ups.get_mut(u) {
                if up.connected {
                    up.ep.flush(&mut self.io, u, &UPSTREAM, usize::MAX);
                } else {
                    up.ep.dirty = false;
                }
            }
        }
        self.up_dirty.clear();
    }

    /// No upstream connection holds an op with the kernel any more.
    pub(super) fn ups_quiet(&self) -> bool {
        self.ups.iter().all(|(_, up)| !up.ep.ops_in_flight())
    }

    /// Closes every upstream socket still open (the worker is going away).
    pub(super) fn release_upstream_sockets(&mut self) {
        for up in self.ups.values_mut() {
            if let Some(fd) = up.ep.take_fd() {
                crate::driver::close_owned(fd);
            }
        }
    }

    /// Closes idle pooled connections past their keepalive_timeout (once a second).
    pub(super) fn sweep_idle_ups(&mut self) {
        let now = self.http.now_tick;
        for pool in 0..self.pools.len() {
            let keep = super::event_loop::to_ticks(self.cfg.pools[pool].keepalive_timeout);
            for server in 0..self.pools[pool].servers.len() {
                let idle = std::mem::take(&mut self.pools[pool].servers[server].idle);
                let (keep_list, expired): (Vec<Key>, Vec<Key>) = idle.into_iter().partition(|&u| {
                    self.ups
                        .get(u)
                        .is_some_and(|up| !up.ep.aborting() && up.since + keep > now)
                });
                self.pools[pool].servers[server].idle = keep_list;
                for u in expired {
                    self.close_up(u);
                }
            }
        }
    }

    pub(super) fn up_connected(&self, u: Key) -> bool {
        self.ups.get(u).is_some_and(|up| up.connected)
    }

    /// Request bytes not yet taken by the upstream's kernel.
    pub(super) fn up_backlog(&self, u: Key) -> usize {
        self.ups.get(u).map_or(0, |up| up.ep.out.len())
    }
}
