//! The upstream side of proxying: connections in their own slab, per-worker pools, the
//! response parsed and re-framed towards the client with back-pressure both ways, and the
//! error answers a front process owes (502 bad/refused, 503 nobody healthy, 504 timeout).

use std::os::fd::{FromRawFd, RawFd};

use crate::config::upstream::{Addr, Proto};
use crate::driver::connect::Connector;
use crate::driver::outq::{OutQueue, SendResult};
use crate::driver::{Completion, Op, Token};
use crate::http::chunked::ChunkedDecoder;
use crate::http::parser::find_header;
use crate::proxy::chunkenc::{LAST_CHUNK, chunk_header};
use crate::proxy::resphead::{
    ClientFraming, RespBody, RespError, ToClient, parse_response_head, write_client_head,
};

use super::conn::Phase;
use super::event_loop::Worker;
use super::proxy_req::Proxying;
use super::request::{self, OUT_HIGH, OUT_LOW};

/// Where the upstream's response body is.
enum Resp {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    /// After a 101: raw bytes both ways until either side closes.
    Tunnel,
    /// The rest of a Content-Length body is being spliced into the client's queue.
    Spliced,
    Done,
}

pub struct UpConn {
    fd: RawFd,
    pub generation: u32,
    pub open: bool,
    pub(super) pool: usize,
    pub(super) server: usize,
    pub(super) proto: Proto,
    /// An active health probe (no client; its answer decides the server's health).
    pub(super) probe: bool,
    /// A Unix socket: receive with single-shot recvs (multishot can miss the EOF there).
    unix: bool,
    /// A large body is to be spliced: stop receiving, then hand the rest to the client's
    /// send queue as a socket segment (ordering: bytes already received go first).
    splice_pending: bool,
    splicing: bool,
    connector: Option<Connector>,
    connected: bool,
    /// Serving this client request: (slab index, generation).
    client: Option<(u32, u32)>,
    pub out: OutQueue,
    dirty: bool,
    recv_armed: bool,
    recv_cancelled: bool,
    /// Reading paused because the client is not taking the response fast enough.
    paused: bool,
    pub(super) head_buf: Vec<u8>,
    resp: Option<Resp>,
    /// Client framing for the body: re-chunk, or copy.
    chunk_to_client: bool,
    requests: u64,
    reused: bool,
    got_bytes: bool,
    keep_alive: bool,
    aborting: bool,
    /// Tick of the last activity (idle pooled connections expire from it).
    pub since: u64,
    /// This exchange's timeline in microseconds: attempt start, connected, first byte.
    t_start: u64,
    t_connected: u64,
    t_first: u64,
}

impl UpConn {
    fn ops_in_flight(&self) -> bool {
        self.recv_armed || self.out.busy() || self.connector.as_ref().is_some_and(|c| c.busy())
    }
}

fn tok(op: Op, u: usize, g: u32) -> Token {
    Token::new(op, u as u32, g)
}

impl Worker {
    fn proxying(&mut self, ci: usize) -> Option<&mut Proxying> {
        match &mut self.conns[ci].phase {
            Phase::Proxy(p) => Some(p),
            _ => None,
        }
    }

    /// Starts (or retries) the exchange for client `ci`.
    pub(super) fn proxy_attempt(&mut self, ci: usize) {
        let now = self.http.now_tick;
        let Some(p) = self.proxying(ci) else { return };
        let (pool, tried) = (p.pool, p.tried);
        let cfg = self.cfg.clone();
        let pc = &cfg.pools[pool];
        let Some(server) = self.pools[pool].pick(pc, now, tried) else {
            return self.proxy_error(ci, if tried == 0 { 503 } else { 502 });
        };
        // Reuse an idle keep-alive connection if one is alive and fresh.
        let keep_ticks = super::event_loop::to_ticks(pc.keepalive_timeout);
        let mut reuse = None;
        while let Some(u) = self.pools[pool].servers[server].idle.pop() {
            let u = u as usize;
            let up = &self.ups[u];
            if up.open && !up.aborting && up.since + keep_ticks > now {
                reuse = Some(u);
                break;
            }
            self.close_up(u);
        }
        let u = match reuse {
            Some(u) => {
                self.ups[u].reused = true;
                u
            }
            None => match self.open_up(pool, server) {
                Ok(u) => u,
                Err(_) => {
                    let p = self.proxying(ci).expect("proxying");
                    p.tried |= 1 << (server % 64);
                    self.server_failed(pool, server);
                    return self.proxy_attempt(ci);
                }
            },
        };
        self.pools[pool].servers[server].active += 1;
        let cgen = self.conns[ci].generation;
        let now_us = self.http.now_us;
        let up = &mut self.ups[u];
        up.t_start = now_us;
        up.t_connected = if up.connected { now_us } else { 0 };
        up.t_first = 0;
        up.splice_pending = false;
        up.splicing = false;
        up.client = Some((ci as u32, cgen));
        up.head_buf.clear();
        up.resp = None;
        up.got_bytes = false;
        up.since = now;
        let g = up.generation;
        // Copy the forwarded head (kept for a retry) and any body bytes straight from the
        // client's state into the upstream's queue: no intermediate buffers.
        let Phase::Proxy(p) = &mut self.conns[ci].phase else {
            return;
        };
        p.tried |= 1 << (server % 64);
        p.attempts += 1;
        p.up = Some((u as u32, g));
        let v = up.out.bytes();
        v.extend_from_slice(&p.req_head);
        v.extend_from_slice(&p.to_up);
        let n = p.req_head.len() + p.to_up.len();
        p.to_up.clear();
        up.out.commit(n);
        self.conns[ci].since = now;
        self.settle_up(u);
    }

    pub(super) fn open_up(&mut self, pool: usize, server: usize) -> std::io::Result<usize> {
        let s = &self.cfg.pools[pool].servers[server];
        let mut connector = match &s.addr {
            Addr::Tcp(a) => Connector::tcp(a),
            Addr::Unix(p) => Connector::unix(p)?,
        };
        let fd = crate::driver::connect::stream_socket(connector.family())?;
        let unix = connector.family() == libc::AF_UNIX;
        let proto = s.proto;
        let u = match self.up_free.pop() {
            Some(u) => u as usize,
            None => {
                self.ups.push(UpConn {
                    fd: -1,
                    generation: 0,
                    open: false,
                    pool: 0,
                    server: 0,
                    proto,
                    probe: false,
                    unix: false,
                    splice_pending: false,
                    splicing: false,
                    connector: None,
                    connected: false,
                    client: None,
                    out: OutQueue::default(),
                    dirty: false,
                    recv_armed: false,
                    recv_cancelled: false,
                    paused: false,
                    head_buf: Vec::new(),
                    resp: None,
                    chunk_to_client: false,
                    requests: 0,
                    reused: false,
                    got_bytes: false,
                    keep_alive: false,
                    aborting: false,
                    since: 0,
                    t_start: 0,
                    t_connected: 0,
                    t_first: 0,
                });
                self.ups.len() - 1
            }
        };
        let g = self.ups[u].generation;
        connector.connect(self.io.driver(), fd, tok(Op::UpConnect, u, g));
        let up = &mut self.ups[u];
        up.fd = fd;
        up.open = true;
        up.pool = pool;
        up.server = server;
        up.proto = proto;
        up.probe = false;
        up.unix = unix;
        up.connector = Some(connector);
        up.connected = false;
        up.client = None;
        up.dirty = false;
        up.recv_armed = false;
        up.recv_cancelled = false;
        up.paused = false;
        up.requests = 0;
        up.reused = false;
        up.keep_alive = false;
        up.aborting = false;
        Ok(u)
    }

    fn live_up(&self, t: Token) -> Option<usize> {
        let u = t.index as usize;
        self.ups
            .get(u)
            .filter(|up| up.open && up.generation == t.generation)
            .map(|_| u)
    }

    pub(super) fn on_up_connect(&mut self, t: Token, c: Completion) {
        let Some(u) = self.live_up(t) else { return };
        if let Some(cn) = &mut self.ups[u].connector {
            cn.completed();
        }
        if self.ups[u].aborting {
            // Closed while connecting: this was the last op the slot waited for.
            return self.settle_up(u);
        }
        if c.result < 0 {
            self.upstream_error(u, "connect failed", -c.result);
            return self.up_failed(u, true);
        }
        self.ups[u].connected = true;
        self.ups[u].t_connected = self.http.now_us;
        self.settle_up(u);
        // The client's deadline moves from connect_timeout to send/read_timeout.
        if let Some((ci, _)) = self.ups[u].client {
            self.arm_timer(ci as usize);
        }
    }

    pub(super) fn on_up_send(&mut self, t: Token, c: Completion) {
        let Some(u) = self.live_up(t) else { return };
        let now = self.http.now_tick;
        match self.ups[u].out.complete(&c) {
            SendResult::Progress => {
                self.ups[u].since = now;
                if let Some((ci, _)) = self.ups[u].client {
                    let ci = ci as usize;
                    self.conns[ci].since = now;
                    self.conns[ci].up_backlog = self.ups[u].out.len();
                    if self.conns[ci].recv_paused {
                        self.settle(ci);
                    } else {
                        self.arm_timer(ci); // from send_timeout to read_timeout once sent
                    }
                }
            }
            SendResult::Notif => {}
            SendResult::Failed(_) => {
                // The upstream may still have answered (e.g. an early 413): let recv decide
                // unless nothing can come any more.
                if !self.ups[u].recv_armed {
                    self.upstream_error(u, "sending the request failed", -c.result);
                    return self.up_failed(u, false);
                }
                self.ups[u].out.clear();
            }
        }
        self.settle_up(u);
    }

    pub(super) fn on_up_recv(&mut self, t: Token, c: Completion) {
        let buf = self.io.bufs_ref().take(c.flags, c.result);
        let Some(u) = self.live_up(t) else {
            if let Some(b) = buf {
                self.io.bufs().recycle(b);
            }
            return;
        };
        if !c.more() {
            self.ups[u].recv_armed = false;
            self.ups[u].recv_cancelled = false;
        }
        if c.result > 0 {
            if let Some(b) = buf {
                // One copy into a reused scratch buffer lets the receive buffer go back to
                // the kernel before the state machines (which need the worker) run.
                let mut data = std::mem::take(&mut self.up_scratch);
                data.clear();
                data.extend_from_slice(self.io.bufs_ref().data(&b));
                self.io.bufs().recycle(b);
                self.on_up_data(u, &data);
                self.up_scratch = data;
            }
        } else if c.result == 0 {
            self.on_up_eof(u);
        } else {
            match -c.result {
                libc::ENOBUFS => self.http.stats.enobufs += 1,
                libc::ECANCELED => {}
                _ => self.on_up_eof(u),
            }
        }
        if u < self.ups.len() {
            self.settle_up(u);
        }
    }

    fn on_up_data(&mut self, u: usize, data: &[u8]) {
        let now = self.http.now_tick;
        let now_us = self.http.now_us;
        let up = &mut self.ups[u];
        if up.t_first == 0 {
            up.t_first = now_us;
        }
        up.got_bytes = true;
        up.since = now;
        let Some((ci, cg)) = up.client else {
            if up.probe {
                return self.probe_data(u, data);
            }
            // Bytes on an idle pooled connection: it is out of step, drop it.
            return self.close_up(u);
        };
        let ci = ci as usize;
        if self.conns[ci].generation != cg || !self.conns[ci].open {
            return self.close_up(u);
        }
        self.conns[ci].since = now;
        let mut rest: &[u8] = data;
        if self.ups[u].resp.is_none() {
            let up = &mut self.ups[u];
            up.head_buf.extend_from_slice(data);
            let head_only = matches!(&self.conns[ci].phase, Phase::Proxy(p) if p.head_only);
            let max = self.cfg.limits.max_header_bytes;
            let (r, len) = loop {
                match parse_response_head(&up.head_buf, head_only, max, &mut self.http.headers) {
                    Err(RespError::Incomplete) => return,
                    Err(RespError::Invalid(why)) => {
                        self.upstream_error(u, why, 0);
                        return self.bad_upstream(u, ci);
                    }
                    Err(_) => {
                        self.upstream_error(u, "response head too large", 0);
                        return self.bad_upstream(u, ci);
                    }
                    // Interim 1xx (not 101): skip it, the final answer follows.
                    Ok(r) if r.status < 200 && r.status != 101 => {
                        up.head_buf.drain(..r.head_len);
                    }
                    Ok(r) => break (r, r.head_len),
                }
            };
            let Phase::Proxy(p) = &mut self.conns[ci].phase else {
                return;
            };
            if r.status == 101 && !p.upgrade {
                // Switching protocols nobody asked for: refuse to tunnel.
                self.upstream_error(u, "101 Switching Protocols without an upgrade request", 0);
                return self.bad_upstream(u, ci);
            }
            if r.status == 101 {
                let offered = match &self.cfg.routes[p.route].action {
                    crate::config::Action::Upstream { upgrades, .. } => &upgrades[..],
                    _ => &[],
                };
                let to = find_header(&up.head_buf, &self.http.headers, b"upgrade");
                if !crate::proxy::upgrade::switch_allowed(to, offered) {
                    self.upstream_error(u, "101 to a protocol the route does not tunnel", 0);
                    return self.bad_upstream(u, ci);
                }
            }
            let tunnel = r.status == 101;
            let (framing, chunk, resp) = match r.body {
                _ if tunnel => {
                    p.tunnel = true;
                    p.close_after = true;
                    (ClientFraming::None, false, Resp::Tunnel)
                }
                RespBody::None => (ClientFraming::None, false, Resp::Done),
                RespBody::Length(n) => (
                    ClientFraming::Length(n),
                    false,
                    if n == 0 { Resp::Done } else { Resp::Length(n) },
                ),
                RespBody::Chunked if !p.http10 => (
                    ClientFraming::Chunked,
                    true,
                    Resp::Chunked(ChunkedDecoder::new(u64::MAX, max)),
                ),
                RespBody::Chunked => {
                    p.close_after = true;
                    (
                        ClientFraming::None,
                        false,
                        Resp::Chunked(ChunkedDecoder::new(u64::MAX, max)),
                    )
                }
                RespBody::UntilClose if !p.http10 => {
                    (ClientFraming::Chunked, true, Resp::UntilClose)
                }
                RespBody::UntilClose => {
                    p.close_after = true;
                    (ClientFraming::None, false, Resp::UntilClose)
                }
            };
            let keep = p.keep_alive && !p.close_after;
            let http10 = p.http10;
            p.resp_started = true;
            p.req_head = Vec::new();
            let status = r.status;
            let c = &mut self.conns[ci];
            let v = c.out.bytes();
            let start = v.len();
            let to = ToClient {
                framing,
                keep_alive: keep,
                http10,
                date: Some(&self.http.date),
                server: Some(self.http.server_header.as_bytes()),
            };
            write_client_head(v, &up.head_buf, &r, &self.http.headers, &to);
            let n = v.len() - start;
            c.out.commit(n);
            c.proxy_status = status;
            up.keep_alive = r.keep_alive && up.proto == Proto::Http;
            up.splice_pending = matches!(resp, Resp::Length(n) if n >= self.cfg.splice_threshold);
            up.resp = Some(resp);
            up.chunk_to_client = chunk;
            let tail = std::mem::take(&mut up.head_buf);
            self.up_body(u, ci, &tail[len..]);
            let mut tail = tail;
            tail.clear();
            self.ups[u].head_buf = tail;
            return self.after_up_data(u, ci);
        }
        self.up_body(u, ci, std::mem::take(&mut rest));
        self.after_up_data(u, ci)
    }

    /// Moves response body bytes to the client, re-framed.
    fn up_body(&mut self, u: usize, ci: usize, data: &[u8]) {
        let up = &mut self.ups[u];
        let c = &mut self.conns[ci];
        let chunk = up.chunk_to_client;
        let emit = |out: &mut OutQueue, d: &[u8]| {
            if d.is_empty() {
                return;
            }
            let v = out.bytes();
            let start = v.len();
            if chunk {
                chunk_header(v, d.len());
                v.extend_from_slice(d);
                v.extend_from_slice(b"\r\n");
            } else {
                v.extend_from_slice(d);
            }
            let n = v.len() - start;
            out.commit(n);
        };
        let mut done = false;
        match up.resp.as_mut() {
            Some(Resp::Length(left)) => {
                let take = (*left).min(data.len() as u64) as usize;
                emit(&mut c.out, &data[..take]);
                *left -= take as u64;
                done = *left == 0;
                if take < data.len() {
                    up.keep_alive = false; // more than it announced: out of step
                }
            }
            Some(Resp::Chunked(dec)) => match dec.feed(data, &mut |d: &[u8]| emit(&mut c.out, d)) {
                Ok((used, fin)) => {
                    done = fin;
                    if used < data.len() {
                        up.keep_alive = false;
                    }
                }
                Err(_) => {
                    // Broken framing mid-body: the client cannot be told any more; cut it.
                    up.keep_alive = false;
                    up.resp = Some(Resp::Done);
                    self.conns[ci].close_after_flush = true;
                    return self.finish_exchange(u, ci, false);
                }
            },
            Some(Resp::UntilClose | Resp::Tunnel) => emit(&mut c.out, data),
            // No recv is armed while splicing; bytes here would be out of step.
            Some(Resp::Spliced) => up.keep_alive = false,
            Some(Resp::Done) => {
                if !data.is_empty() {
                    up.keep_alive = false;
                }
                done = true;
            }
            None => {}
        }
        if done {
            if chunk {
                c.out.bytes().extend_from_slice(LAST_CHUNK);
                c.out.commit(LAST_CHUNK.len());
            }
            self.ups[u].resp = Some(Resp::Done);
            let reusable = self.ups[u].keep_alive;
            self.finish_exchange(u, ci, reusable);
        }
    }

    fn after_up_data(&mut self, u: usize, ci: usize) {
        // Back-pressure: stop reading the upstream while the client has a lot unread.
        if self.conns[ci].out.len() > OUT_HIGH && self.ups[u].client.is_some() {
            self.ups[u].paused = true;
        }
        self.settle(ci);
    }

    fn on_up_eof(&mut self, u: usize) {
        let Some((ci, cg)) = self.ups[u].client else {
            if self.ups[u].probe {
                return self.probe_done(u, false); // closed before answering the probe
            }
            return self.close_up(u); // an idle pooled connection was closed by the upstream
        };
        let ci = ci as usize;
        self.ups[u].keep_alive = false;
        if self.conns[ci].generation != cg || !self.conns[ci].open {
            return self.close_up(u);
        }
        match self.ups[u].resp {
            Some(Resp::Tunnel) => {
                // The upstream ended the tunnel: close the client once it has everything.
                self.ups[u].resp = Some(Resp::Done);
                self.conns[ci].close_after_flush = true;
                self.finish_exchange(u, ci, false)
            }
            Some(Resp::UntilClose) => {
                if self.ups[u].chunk_to_client {
                    let c = &mut self.conns[ci];
                    c.out.bytes().extend_from_slice(LAST_CHUNK);
                    c.out.commit(LAST_CHUNK.len());
                }
                self.ups[u].resp = Some(Resp::Done);
                self.finish_exchange(u, ci, false)
            }
            Some(Resp::Done) => {}
            Some(_) => {
                // Cut mid-body: the client sees a short body and a close, never a fake end.
                self.conns[ci].close_after_flush = true;
                self.finish_exchange(u, ci, false)
            }
            None => {
                self.upstream_error(u, "closed the connection before answering", 0);
                self.up_failed(u, false)
            }
        }
    }

    /// The upstream failed before answering: retry where safe, else 502.
    fn up_failed(&mut self, u: usize, connect: bool) {
        if self.ups[u].probe {
            return self.probe_done(u, false);
        }
        let up = &self.ups[u];
        let (pool, server, reused, got) = (up.pool, up.server, up.reused, up.got_bytes);
        let client = up.client;
        self.release_up(u, false);
        let Some((ci, cg)) = client else { return };
        let ci = ci as usize;
        if self.conns[ci].generation != cg || !self.conns[ci].open {
            return;
        }
        let stale = reused && !got && !connect; // a pooled connection the upstream had closed
        if !stale {
            self.server_failed(pool, server);
        }
        let retries = self.cfg.pools[pool].retries;
        let Some(p) = self.proxying(ci) else { return };
        if p.resp_started {
            self.conns[ci].close_after_flush = true;
            return self.settle(ci);
        }
        p.up = None;
        // Safe to send again: nothing reached the upstream (connect failed), or the request
        // is idempotent without a body. A stale pooled connection may retry the same server.
        let may = (connect || p.retryable) && p.attempts <= retries;
        if stale && p.retryable {
            p.tried &= !(1u64 << (server % 64));
            return self.proxy_attempt(ci);
        }
        if may {
            return self.proxy_attempt(ci);
        }
        self.proxy_error(ci, 502)
    }

    fn bad_upstream(&mut self, u: usize, ci: usize) {
        self.release_up(u, false);
        self.proxy_error(ci, 502);
    }

    /// Counts an upstream failure and says why on stderr, at most once a second per worker
    /// (a dead backend under load must not flood the log); `errno` 0 when there is none.
    pub(super) fn upstream_error(&mut self, u: usize, why: &str, errno: i32) {
        self.http.stats.upstream_errors += 1;
        let up = &self.ups[u];
        let url = &self.cfg.pools[up.pool].servers[up.server].url;
        let err = if errno > 0 {
            format!(": {}", std::io::Error::from_raw_os_error(errno))
        } else {
            String::new()
        };
        let (id, now) = (self.id, self.http.now_tick);
        self.http
            .errlog
            .line(id, now, || format!("upstream {url}: {why}{err}"));
    }

    /// Answers the client with an error in place of the upstream's answer.
    pub(super) fn proxy_error(&mut self, ci: usize, status: u16) {
        self.detach_up(ci);
        let c = &mut self.conns[ci];
        request::fail(c, &mut self.http, status);
        self.settle(ci);
    }

    /// The response is complete (or the exchange is over): hand the upstream connection
    /// back to its pool or close it, and let the client's next request through.
    fn finish_exchange(&mut self, u: usize, ci: usize, reusable: bool) {
        let req_sent = matches!(&self.conns[ci].phase, Phase::Proxy(p) if p.req_done)
            && self.ups[u].out.is_empty();
        if let Phase::Proxy(p) = &self.conns[ci].phase {
            let up = &self.ups[u];
            let at = |t: u64| t.max(up.t_start) - up.t_start;
            let times = [at(up.t_connected), at(up.t_first), at(self.http.now_us)];
            let (route, now_s) = (p.route, self.http.now_s());
            self.http.recorder.record_upstream(route, times, now_s);
        }
        self.server_succeeded(self.ups[u].pool, self.ups[u].server);
        self.release_up(u, reusable && req_sent);
        let c = &mut self.conns[ci];
        let Phase::Proxy(p) = std::mem::replace(&mut c.phase, Phase::Head) else {
            return;
        };
        if p.close_after || !p.keep_alive || !p.req_done {
            c.close_after_flush = true;
        }
        request::proxied_done(c, &mut self.http, p.route, c.proxy_status);
        self.settle(ci);
    }

    /// Detaches an upstream connection from its client: back to the idle pool, or closed.
    fn release_up(&mut self, u: usize, reusable: bool) {
        let now = self.http.now_tick;
        let pc = &self.cfg.pools[self.ups[u].pool];
        let (keepalive, max_req) = (pc.keepalive, pc.keepalive_requests);
        let up = &mut self.ups[u];
        if up.client.take().is_some() {
            let s = &mut self.pools[up.pool].servers[up.server];
            s.active = s.active.saturating_sub(1);
        }
        up.requests += 1;
        let idle = &mut self.pools[up.pool].servers[up.server].idle;
        if reusable
            && up.keep_alive
            && up.requests < max_req
            && idle.len() < keepalive
            && !up.aborting
        {
            up.since = now;
            up.resp = None;
            up.paused = false; // an idle connection keeps a recv armed to notice a close
            up.splice_pending = false;
            up.splicing = false;
            idle.push(u as u32);
            self.settle_up(u);
        } else {
            self.close_up(u);
        }
    }

    pub(super) fn close_up(&mut self, u: usize) {
        let up = &mut self.ups[u];
        if !up.open || up.aborting {
            return;
        }
        up.aborting = true;
        if up.recv_armed && !up.recv_cancelled {
            self.io.driver().cancel(
                tok(Op::UpRecv, u, up.generation),
                Token::new(Op::Cancel, 0, 0),
            );
            up.recv_cancelled = true;
        }
        if up.out.busy() {
            self.io.driver().cancel(
                tok(Op::UpSend, u, up.generation),
                Token::new(Op::Cancel, 0, 0),
            );
        }
        if up.connector.as_ref().is_some_and(|c| c.busy()) {
            self.io.driver().cancel(
                tok(Op::UpConnect, u, up.generation),
                Token::new(Op::Cancel, 0, 0),
            );
        }
        self.settle_up(u);
    }

    /// No upstream connection holds an op with the kernel any more.
    pub(super) fn ups_quiet(&self) -> bool {
        self.ups.iter().all(|up| !up.open || !up.ops_in_flight())
    }

    /// Closes every upstream socket still open (the worker is going away).
    pub(super) fn release_upstream_sockets(&mut self) {
        for up in &mut self.ups {
            if up.open && up.fd >= 0 {
                crate::driver::close_owned(std::mem::replace(&mut up.fd, -1));
            }
        }
    }

    /// After any event on an upstream connection: send what is queued, keep a recv armed,
    /// free the slot once the kernel holds nothing of it.
    pub(super) fn settle_up(&mut self, u: usize) {
        let up = &mut self.ups[u];
        if !up.open {
            return;
        }
        if up.aborting {
            if !up.ops_in_flight() {
                self.io.driver().close(up.fd, Token::new(Op::Close, 0, 0));
                up.open = false;
                up.fd = -1;
                up.generation = up.generation.wrapping_add(1) & crate::driver::token::GEN_MASK;
                up.connector = None;
                up.out.clear();
                up.out.shrink();
                up.head_buf = Vec::new();
                self.up_free.push(u as u32);
            }
            return;
        }
        if !up.connected {
            return;
        }
        if !up.out.is_empty() && !up.dirty {
            up.dirty = true;
            self.up_dirty.push(u as u32);
        }
        if up.splice_pending || up.splicing {
            if up.recv_armed && !up.recv_cancelled {
                self.io.driver().cancel(
                    tok(Op::UpRecv, u, up.generation),
                    Token::new(Op::Cancel, 0, 0),
                );
                up.recv_cancelled = true;
            } else if !up.recv_armed && up.splice_pending {
                self.start_splice(u);
            }
            return;
        }
        if !up.recv_armed && !up.paused {
            let t = tok(Op::UpRecv, u, up.generation);
            if up.unix {
                self.io.recv_single(up.fd, t);
            } else {
                self.io.recv_multi(up.fd, t);
            }
            up.recv_armed = true;
        } else if up.paused && up.recv_armed && !up.recv_cancelled {
            self.io.driver().cancel(
                tok(Op::UpRecv, u, up.generation),
                Token::new(Op::Cancel, 0, 0),
            );
            up.recv_cancelled = true;
        }
    }

    pub(super) fn flush_up_dirty(&mut self) {
        for i in 0..self.up_dirty.len() {
            let u = self.up_dirty[i] as usize;
            let up = &mut self.ups[u];
            up.dirty = false;
            if up.open && !up.aborting && up.connected {
                up.out.flush(
                    self.io.driver(),
                    up.fd,
                    tok(Op::UpSend, u, up.generation),
                    usize::MAX,
                );
            }
        }
        self.up_dirty.clear();
    }

    /// Called from the client's settle: move request bytes to the upstream, resume a
    /// paused upstream once the client has caught up, start the exchange if it is new.
    pub(super) fn settle_proxy(&mut self, ci: usize) {
        if std::mem::take(&mut self.conns[ci].proxy_start) {
            return self.proxy_attempt(ci);
        }
        let Phase::Proxy(p) = &mut self.conns[ci].phase else {
            return;
        };
        let Some((u, g)) = p.up else { return };
        let u = u as usize;
        if !self
            .ups
            .get(u)
            .is_some_and(|up| up.open && up.generation == g)
        {
            return;
        }
        if !p.to_up.is_empty() {
            let body = std::mem::take(&mut p.to_up);
            let up = &mut self.ups[u];
            up.out.bytes().extend_from_slice(&body);
            up.out.commit(body.len());
            let mut body = body;
            body.clear();
            p.to_up = body;
        }
        self.conns[ci].up_backlog = self.ups[u].out.len();
        if self.splice_progress(u, ci) {
            return;
        }
        if self.ups[u].paused && self.conns[ci].out.len() < OUT_LOW {
            self.ups[u].paused = false;
        }
        self.settle_up(u);
    }

    /// The upstream's recv has stopped: the rest of the body goes client-wards by splice.
    fn start_splice(&mut self, u: usize) {
        let up = &mut self.ups[u];
        up.splice_pending = false;
        let (Some(Resp::Length(left)), Some((ci, _))) = (&up.resp, up.client) else {
            return;
        };
        let left = *left;
        // A descriptor of its own for the segment, so it outlives nothing it should not.
        // SAFETY: dup of a socket we own; the result is checked.
        let dup = unsafe { libc::fcntl(up.fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            // No descriptor to spare: keep copying instead.
            self.settle_up(u);
            return;
        }
        // SAFETY: dup is a fresh descriptor owned by nobody else.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(dup) };
        up.splicing = true;
        up.resp = Some(Resp::Spliced);
        self.http.stats.spliced_bodies += 1;
        let ci = ci as usize;
        self.conns[ci].out.push_stream(fd, left);
        self.settle(ci);
    }

    /// Called from the client's settle: once its queue has sent the spliced body, the
    /// exchange is complete.
    fn splice_progress(&mut self, u: usize, ci: usize) -> bool {
        if !self.ups[u].splicing || self.conns[ci].out.has_stream() {
            return false;
        }
        let up = &mut self.ups[u];
        up.splicing = false;
        up.resp = Some(Resp::Done);
        let reusable = up.keep_alive;
        self.finish_exchange(u, ci, reusable);
        true
    }

    /// Closes idle pooled connections past their keepalive_timeout (once a second).
    pub(super) fn sweep_idle_ups(&mut self) {
        let now = self.http.now_tick;
        for pool in 0..self.pools.len() {
            let keep = super::event_loop::to_ticks(self.cfg.pools[pool].keepalive_timeout);
            for server in 0..self.pools[pool].servers.len() {
                let idle = std::mem::take(&mut self.pools[pool].servers[server].idle);
                let (keep_list, expired): (Vec<u32>, Vec<u32>) = idle.into_iter().partition(|&u| {
                    let up = &self.ups[u as usize];
                    up.open && !up.aborting && up.since + keep > now
                });
                self.pools[pool].servers[server].idle = keep_list;
                for u in expired {
                    self.close_up(u as usize);
                }
            }
        }
    }

    pub(super) fn up_connected(&self, u: usize) -> bool {
        self.ups.get(u).is_some_and(|up| up.connected)
    }

    /// Request bytes not yet taken by the upstream's kernel.
    pub(super) fn up_backlog(&self, u: usize) -> usize {
        self.ups.get(u).map_or(0, |up| up.out.len())
    }

    /// No answer from the upstream in time: 504, and it counts against the server's health.
    pub(super) fn proxy_timeout(&mut self, ci: usize) {
        if let Some((u, g)) = self.proxying(ci).and_then(|p| p.up) {
            let u = u as usize;
            if self
                .ups
                .get(u)
                .is_some_and(|up| up.generation == g && up.open)
            {
                self.upstream_error(u, "timed out", 0);
                let (pool, server) = (self.ups[u].pool, self.ups[u].server);
                self.server_failed(pool, server);
            }
        }
        self.proxy_error(ci, 504);
    }

    /// The client went away (or timed out): drop its upstream connection, never pool it.
    pub(super) fn abandon_proxy(&mut self, ci: usize) {
        self.detach_up(ci);
    }

    /// Takes the client's upstream connection away from it and closes it (never pooled:
    /// it may be mid-exchange).
    fn detach_up(&mut self, ci: usize) {
        if let Some((u, g)) = self.proxying(ci).and_then(|p| p.up.take()) {
            let u = u as usize;
            if self
                .ups
                .get(u)
                .is_some_and(|up| up.generation == g && up.open)
            {
                self.release_up(u, false);
            }
        }
    }
}
