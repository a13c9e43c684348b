//! A proxied exchange, carried out: pick a server and a connection, send the request,
//! parse the answer, relay it re-framed with back-pressure both ways, and on failure do
//! what `proxy::exchange` decides (retry, answer 502/503/504, or cut). The decisions are
//! there, pure and unit-tested; this file only applies them to sockets.

use crate::compress::encoder::Encoder;
use crate::config::upstream::Proto;
use crate::driver::outq::SendResult;
use crate::driver::{Completion, Token};
use crate::http::chunked::ChunkedDecoder;
use crate::http::framing::Decode;
use crate::http::parser::find_header;
use crate::proxy::chunkenc::{LAST_CHUNK, chunk_head};
use crate::proxy::exchange::{self, Attempt, Next, ReqFacts, UpstreamError};
use crate::proxy::resphead::{
    RespError, RespHead, ToClient, parse_response_head, write_client_head,
};
use crate::transport::{Key, Received};

use super::conn::{Exchange, ExchangeKey};
use super::flow::Flow;
use super::proxy_req::Proxying;
use super::queue::Admit;
use super::request::{self, OUT_HIGH, OUT_LOW};
use super::spool::{Spool, SpoolError, ToClientBody};
use super::upconn::{Resp, Splice};

/// A spilled response goes to its file in batches of this much (one pwrite each).
const SPILL_BATCH: usize = 64 * 1024;

/// The largest buffered Content-Length body still spliced socket to socket (the size of
/// the splice pipe). Store-and-forward through the pipe (fill it before sending) was
/// measured at 1.28x the CPU of a plain splice at 1 MiB, and reading and spilling at
/// ~1.5x, against 1.03x for the plain splice (bench/README.md).
const BUFFERED_SPLICE_MAX: u64 = 1 << 20;

/// Body bytes on their way to the client: through the encoder when the response is
/// compressed, then chunk-framed when the client gets chunks.
fn relay(to: &mut ToClientBody, chunk: bool, enc: &mut Option<Box<Encoder>>, d: &[u8]) {
    if d.is_empty() {
        return;
    }
    let mut frame = |d: &[u8]| {
        if chunk {
            let mut h = [0u8; 20];
            to.put(chunk_head(&mut h, d.len()));
            to.put(d);
            to.put(b"\r\n");
        } else {
            to.put(d);
        }
    };
    match enc {
        // An in-memory encoder has no I/O to fail; should it fail anyway the bytes are
        // dropped, never sent uncompressed: the client's decoder sees a cut stream.
        Some(e) => {
            let _ = e.write(d, &mut frame);
        }
        None => frame(d),
    }
}

/// The end of a compressed body: the encoder's last bytes and trailer.
fn finish_encoding(to: &mut ToClientBody, chunk: bool, enc: &mut Option<Box<Encoder>>) {
    if let Some(e) = enc.take() {
        let _ = e.finish(&mut |d: &[u8]| relay(to, chunk, &mut None, d));
    }
}

/// The upstream's header lines an X-Accel-Redirect answer keeps (how the app names the
/// download, caches it, and its session cookie).
const ACCEL_KEPT: [&[u8]; 3] = [b"content-disposition", b"cache-control", b"set-cookie"];

impl Flow<'_> {
    pub(super) fn proxying(&mut self, x: ExchangeKey) -> Option<&mut Proxying> {
        self.conns.get_mut(x.conn)?.exchanges.proxy_mut(x.stream)
    }

    /// Starts (or retries) the upstream side of exchange `x`: to a server with room, or
    /// into its pool's queue (`queue.rs`).
    pub(super) fn proxy_attempt(&mut self, x: ExchangeKey) {
        let Some(p) = self.proxying(x) else { return };
        let (pool, tried) = (p.pool, p.tried);
        let fresh = p.attempts == 0 && p.queued_since.is_none();
        let server = match self.admit(pool, tried, fresh) {
            Admit::Server(s) => s,
            Admit::Wait => return self.enqueue(x, false),
            Admit::NoServer => return self.no_server(x, tried),
        };
        self.attempt_on(x, server);
    }

    /// Nothing to try for `x`: 503 with nobody in rotation, 502 once every server was tried.
    pub(super) fn no_server(&mut self, x: ExchangeKey, tried: u64) {
        let e = if tried == 0 {
            UpstreamError::NoServer
        } else {
            UpstreamError::NoServerLeft
        };
        self.proxy_error(x, e.status());
    }

    /// An attempt of `x` on `server` (its max_conns slot, if any, already taken).
    pub(super) fn attempt_on(&mut self, x: ExchangeKey, server: usize) {
        let now = self.ctx.http.now_tick;
        let Some(p) = self.proxying(x) else { return };
        let pool = p.pool;
        let cfg = self.ctx.cfg.clone();
        let capped = cfg.pools[pool].shield.max_conns.is_some();
        // Reuse an idle keep-alive connection if one is alive and fresh.
        let reuse = self.ups.take_idle(self.io, &cfg, pool, server, now);
        let u = match reuse {
            Some(u) => {
                self.ups[u].reused = true;
                u
            }
            None => match self.ups.open(self.io, &cfg, pool, server) {
                Ok(u) => u,
                Err(_) => {
                    // No socket for this server (descriptors, memory): the next one, if any.
                    if capped {
                        self.give_slot(pool, server);
                    }
                    let p = self.proxying(x).expect("proxying");
                    p.tried |= 1 << (server % 64);
                    self.ups.server_failed(self.ctx, pool, server);
                    return self.proxy_attempt(x);
                }
            },
        };
        self.ups.begin(u);
        let now_us = self.ctx.http.now_us;
        let up = &mut self.ups[u];
        up.t_start = now_us;
        up.t_connected = if up.connected { now_us } else { 0 };
        up.t_first = 0;
        up.slot = capped;
        up.buffer = false;
        up.spill = None;
        up.spill_over = false;
        up.splice = Splice::No;
        up.client = Some(x);
        up.head_buf.clear();
        up.resp = None;
        up.got_bytes = false;
        up.since = now;
        // Copy the forwarded head (kept for a retry) and any body bytes straight from the
        // client's state into the upstream's queue: no intermediate buffers.
        let c = &mut self.conns[x.conn];
        let Some(p) = c.exchanges.proxy_mut(x.stream) else {
            return;
        };
        p.tried |= 1 << (server % 64);
        p.attempts += 1;
        p.up = Some(u);
        let v = up.ep.out.bytes();
        v.extend_from_slice(&p.req_head);
        v.extend_from_slice(&p.to_up);
        let n = p.req_head.len() + p.to_up.len();
        p.to_up.clear();
        up.ep.out.commit(n);
        // A held body goes whole (again, on a retry): the file part by splice.
        if let Some(store) = &p.store
            && store.copy_into(&mut up.ep.out).is_err()
        {
            return self.attempt_failed(u, UpstreamError::NoSocket);
        }
        c.since = now;
        self.settle_up(u);
    }

    pub(super) fn on_up_connect(&mut self, t: Token, c: Completion) {
        let u = Key::of(t);
        let Some(up) = self.ups.get_mut(u) else {
            return;
        };
        let r = up.ep.on_connect(&c);
        if up.ep.aborting() {
            // Closed while connecting: this was the last op the slot waited for.
            return self.settle_up(u);
        }
        if let Err(errno) = r {
            return self.attempt_failed(u, UpstreamError::Connect(errno));
        }
        up.connected = true;
        up.t_connected = self.ctx.http.now_us;
        let (pool, server) = (up.pool, up.server);
        if let Some(cfg) = self.ctx.cfg.upstream_tls.get(pool).cloned().flatten() {
            // The request already queued waits in `out` for the handshake.
            let name = super::tls::upstream_name(&self.ctx.cfg.pools[pool], server);
            match name.and_then(|n| crate::transport::tls::Session::client(cfg, n).ok()) {
                Some(s) => self.ups[u].ep.tls = Some(Box::new(s)),
                None => return self.up_tls_failed(u, "setup"),
            }
        }
        let client = self.ups[u].client;
        self.settle_up(u);
        // The client's deadline moves from connect_timeout to send/read_timeout.
        if let Some(x) = client.filter(|x| self.conns.get(x.conn).is_some()) {
            self.arm_timer(x.conn);
        }
    }

    pub(super) fn on_up_send(&mut self, t: Token, c: Completion) {
        let u = Key::of(t);
        let now = self.ctx.http.now_tick;
        let Some(up) = self.ups.get_mut(u) else {
            return;
        };
        match up.ep.on_send(&c) {
            SendResult::Progress => {
                up.since = now;
                if let Some(x) = up.client
                    && let Some(conn) = self.conns.get_mut(x.conn)
                {
                    conn.since = now;
                    if conn.hold_input {
                        self.settle(x.conn); // the body may flow again
                    } else {
                        self.arm_timer(x.conn); // from send_timeout to read_timeout once sent
                    }
                }
            }
            SendResult::Notif => {}
            SendResult::Failed(neg) => {
                // The upstream may still have answered (e.g. an early 413): let the receive
                // decide unless nothing can come any more.
                if !up.ep.receiving() {
                    return self.attempt_failed(u, UpstreamError::Send(-neg));
                }
                up.ep.out.clear();
            }
        }
        self.settle_up(u);
    }

    pub(super) fn on_up_recv(&mut self, t: Token, c: Completion) {
        let buf = self.io.bufs_ref().take(c.flags, c.result);
        let u = Key::of(t);
        let Some(up) = self.ups.get_mut(u) else {
            if let Some(b) = buf {
                self.io.bufs().recycle(b);
            }
            return;
        };
        match up.ep.on_recv(&c) {
            Received::Data => {
                if let Some(mut b) = buf {
                    // One copy into a reused scratch buffer lets the receive buffer go back
                    // to the kernel before the state machines (which need the worker) run.
                    // TLS: that copy is the decrypted plaintext.
                    let mut data = self.ups.take_scratch();
                    let tls = match self.ups[u].ep.tls.as_mut() {
                        Some(s) => {
                            let bytes = self.io.bufs().data_mut(&mut b);
                            Some(s.receive(bytes, &mut |plain| data.extend_from_slice(plain)))
                        }
                        None => {
                            data.extend_from_slice(self.io.bufs_ref().data(&b));
                            None
                        }
                    };
                    self.io.bufs().recycle(b);
                    match tls.and_then(|p| p.failed) {
                        Some(f) => self.up_tls_failed(u, f.name()),
                        None if !data.is_empty() => self.on_up_data(u, &data),
                        None => {}
                    }
                    self.ups.put_scratch(data);
                }
            }
            Received::NoBuffers => self.ctx.http.stats.enobufs += 1,
            Received::Cancelled => {}
            // A read error ends the response like a close does.
            Received::Eof | Received::Failed(_) => self.on_up_eof(u),
        }
        self.settle_up(u);
    }

    fn on_up_data(&mut self, u: Key, data: &[u8]) {
        let now = self.ctx.http.now_tick;
        let now_us = self.ctx.http.now_us;
        let up = &mut self.ups[u];
        if up.t_first == 0 {
            up.t_first = now_us;
        }
        up.got_bytes = true;
        up.since = now;
        let Some(x) = up.client else {
            if up.probe {
                return self.ups.probe_data(self.io, self.ctx, u, data);
            }
            // Bytes on an idle pooled connection: it is out of step, drop it.
            return self.ups.close(self.io, u);
        };
        let Some(c) = self.conns.get_mut(x.conn) else {
            return self.ups.close(self.io, u);
        };
        c.since = now;
        if up.resp.is_none() {
            return self.up_head(u, x, data);
        }
        self.up_body(u, x, data);
        self.after_up_data(u, x);
    }

    /// Bytes before the final response head: buffered until the head is whole (interim
    /// 1xx heads skipped), then the relay is planned and the client's head written.
    fn up_head(&mut self, u: Key, x: ExchangeKey, data: &[u8]) {
        let up = &mut self.ups[u];
        up.head_buf.extend_from_slice(data);
        let Some(p) = self.conns[x.conn].exchanges.proxy(x.stream) else {
            return;
        };
        let max = self.ctx.cfg.limits.max_header_bytes;
        let r = loop {
            match parse_response_head(&up.head_buf, p.head_only, max, &mut self.ctx.http.headers) {
                Err(RespError::Incomplete) => return,
                Err(RespError::Invalid(why)) => {
                    return self.attempt_failed(u, UpstreamError::BadHead(why));
                }
                Err(_) => return self.attempt_failed(u, UpstreamError::HeadTooLarge),
                // Interim 1xx (not 101): skip it, the final answer follows.
                Ok(r) if r.status < 200 && r.status != 101 => {
                    up.head_buf.drain(..r.head_len);
                }
                Ok(r) => break r,
            }
        };
        if r.status != 101
            && find_header(&up.head_buf, &self.ctx.http.headers, b"x-accel-redirect").is_some()
        {
            return self.accel_redirect(u, x, &r);
        }
        let switch_allowed = r.status == 101 && {
            let offered = match &self.ctx.cfg.routes[p.route].action {
                crate::config::Action::Upstream { upgrades, .. } => &upgrades[..],
                _ => &[],
            };
            let to = find_header(&up.head_buf, &self.ctx.http.headers, b"upgrade");
            crate::proxy::upgrade::switch_allowed(to, offered)
        };
        let facts = ReqFacts {
            http10: p.http10,
            keep_alive: p.keep_alive,
            upgrade: p.upgrade,
            switch_allowed,
            proto: up.proto,
        };
        match exchange::plan(&r, &facts, self.ctx.cfg.splice_threshold) {
            Ok(plan) => self.start_response(u, x, &r, &plan),
            Err(e) => self.attempt_failed(u, e),
        }
    }

    /// Writes the client's head as planned, then relays what followed the head.
    fn start_response(&mut self, u: Key, x: ExchangeKey, r: &RespHead, plan: &exchange::Plan) {
        let max = self.ctx.cfg.limits.max_header_bytes;
        let up = &mut self.ups[u];
        let c = &mut self.conns[x.conn];
        let Some(p) = c.exchanges.proxy_mut(x.stream) else {
            return;
        };
        let headers = (&up.head_buf[..], &self.ctx.http.headers[..]);
        let enc = super::encode::plan_encoding(&self.ctx.http.router, c.edit, p, headers, r, *plan);
        let plan = &enc.plan;
        if enc.encoder.is_some() {
            self.ctx.http.stats.count_coding(p.coding);
        }
        up.enc = enc.encoder;
        p.tunnel = plan.tunnel;
        p.status = r.status;
        p.close_after |= plan.close_client;
        p.resp_started = true;
        p.req_head = Vec::new();
        p.store = None; // no retry any more: the held body (and its file) goes
        let v = c.ep.out.bytes();
        let start = v.len();
        let to = ToClient {
            framing: plan.framing,
            keep_alive: plan.client_keep_alive,
            http10: p.http10,
            date: Some(&self.ctx.http.date),
            server: Some(self.ctx.http.server_header.as_bytes()),
            edit: enc
                .edit
                .as_ref()
                .or_else(|| self.ctx.http.router.edit(c.edit)),
        };
        write_client_head(v, &up.head_buf, r, &self.ctx.http.headers, &to);
        let n = v.len() - start;
        c.ep.out.commit(n);
        up.keep_alive = plan.upstream_reusable;
        let headers = &self.ctx.http.headers;
        up.buffer = self.ctx.cfg.pools[up.pool].shield.response_buffering
            && !plan.tunnel
            && !exchange::streams_always(
                find_header(&up.head_buf, headers, b"content-type"),
                find_header(&up.head_buf, headers, b"x-accel-buffering"),
            );
        // TLS bytes must pass through user space to be decrypted or encrypted: no splice.
        // A buffered response is spliced (at the client's pace) only up to
        // BUFFERED_SPLICE_MAX, which the pipe and the kernel's socket buffers absorb for
        // all but a client with a tiny window; a larger one is read and spilled.
        let fits = matches!(r.body, Decode::Length(n) if n <= BUFFERED_SPLICE_MAX);
        up.splice = if plan.splice && (!up.buffer || fits) && !c.secure && up.ep.tls.is_none() {
            Splice::Pending
        } else {
            Splice::No
        };
        up.resp = Some(match plan.decode {
            _ if plan.tunnel => Resp::Tunnel,
            Decode::None => Resp::Done,
            Decode::Length(n) => Resp::Length(n),
            Decode::Chunked => Resp::Chunked(ChunkedDecoder::new(u64::MAX, max)),
            Decode::UntilClose => Resp::UntilClose,
        });
        up.chunk_to_client = plan.rechunk;
        let mut tail = std::mem::take(&mut up.head_buf);
        self.up_body(u, x, &tail[r.head_len..]);
        tail.clear();
        if let Some(up) = self.ups.get_mut(u) {
            up.head_buf = tail;
        }
        self.after_up_data(u, x);
    }

    /// Moves response body bytes to the client, re-framed (through the spill file when the
    /// response is buffered past `response_buffer`).
    fn up_body(&mut self, u: Key, x: ExchangeKey, data: &[u8]) {
        let up = &mut self.ups[u];
        let c = &mut self.conns[x.conn];
        let chunk = up.chunk_to_client;
        let mut to = ToClientBody {
            out: &mut c.ep.out,
            spill: &mut up.spill,
            dir: &self.ctx.cfg.pools[up.pool].shield.temp_dir,
            stopped: None,
        };
        let enc = &mut up.enc;
        let mut emit = |d: &[u8]| relay(&mut to, chunk, enc, d);
        let mut done = false;
        match up.resp.as_mut() {
            Some(Resp::Length(left)) => {
                let take = (*left).min(data.len() as u64) as usize;
                emit(&data[..take]);
                *left -= take as u64;
                done = *left == 0;
                if take < data.len() {
                    up.keep_alive = false; // more than it announced: out of step
                }
            }
            Some(Resp::Chunked(dec)) => match dec.feed(data, &mut emit) {
                Ok((used, fin)) => {
                    done = fin;
                    if used < data.len() {
                        up.keep_alive = false;
                    }
                }
                Err(_) => {
                    // Broken framing mid-body: the client cannot be told any more; cut it.
                    to.finish();
                    up.keep_alive = false;
                    up.resp = Some(Resp::Done);
                    c.close_after_flush = true;
                    return self.finish_exchange(u, x, false);
                }
            },
            Some(Resp::UntilClose | Resp::Tunnel) => emit(data),
            // No receive is armed while splicing; bytes here would be out of step.
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
            finish_encoding(&mut to, chunk, &mut up.enc);
            if chunk {
                to.put(LAST_CHUNK);
            }
            to.finish();
            let stopped = to.stopped.take();
            up.resp = Some(Resp::Done);
            let reusable = up.keep_alive;
            if let Some(e) = stopped {
                self.spill_failed(u, &e);
            }
            return self.finish_exchange(u, x, reusable);
        }
        to.drain();
        if let Some(e) = to.stopped.take() {
            self.spill_failed(u, &e);
        }
    }

    /// The spill stopped (max_temp_file reached, or the disk failed: logged): the rest of
    /// the response streams at the client's pace.
    fn spill_failed(&mut self, u: Key, e: &SpoolError) {
        let up = &mut self.ups[u];
        up.spill_over = true;
        if matches!(e, SpoolError::TooLarge) {
            return;
        }
        let (id, now) = (self.ctx.id, self.ctx.http.now_tick);
        let (pool, why) = (up.pool, e.why());
        let name = self.ctx.cfg.pools[pool].name.clone();
        self.ctx.http.errlog.line(id, now, || {
            format!("upstream {name}: a response could not be buffered ({why}); it streams at the client's pace")
        });
    }

    fn after_up_data(&mut self, u: Key, x: ExchangeKey) {
        if let (Some(up), Some(c)) = (self.ups.get_mut(u), self.conns.get(x.conn))
            && up.client.is_some()
            && up.spill.is_none()
            && up.splice == Splice::No
        {
            let sh = &self.ctx.cfg.pools[up.pool].shield;
            if !up.buffer || up.spill_over {
                // Back-pressure: stop reading the upstream while the client has a lot unread.
                if c.ep.unsent() > OUT_HIGH {
                    up.hold_input = true;
                }
            } else if c.ep.unsent() > sh.response_buffer {
                // Buffered past response_buffer: the rest goes through a temporary file,
                // so the server is read at its own pace whatever the client's.
                if sh.max_temp_file == 0 {
                    up.spill_over = true;
                    up.hold_input = true;
                } else {
                    up.spill = Some(Box::new(Spool::new(SPILL_BATCH, sh.max_temp_file)));
                    self.ctx.http.stats.spilled_responses += 1;
                }
            }
        }
        self.settle(x.conn);
    }

    /// Ends a response body the upstream's close delimited (or cut): what the spill holds
    /// joins the client's queue, then the last chunk if the client gets chunks.
    fn end_body(&mut self, u: Key, x: ExchangeKey, last_chunk: bool) {
        let up = &mut self.ups[u];
        let mut to = ToClientBody {
            out: &mut self.conns[x.conn].ep.out,
            spill: &mut up.spill,
            dir: &self.ctx.cfg.pools[up.pool].shield.temp_dir,
            stopped: None,
        };
        finish_encoding(&mut to, last_chunk, &mut up.enc);
        if last_chunk {
            to.put(LAST_CHUNK);
        }
        to.finish();
    }

    fn on_up_eof(&mut self, u: Key) {
        let up = &mut self.ups[u];
        let Some(x) = up.client else {
            if up.probe {
                return self.ups.probe_done(self.io, self.ctx, u, false); // closed before answering the probe
            }
            return self.ups.close(self.io, u); // an idle pooled connection was closed by the upstream
        };
        up.keep_alive = false;
        let Some(c) = self.conns.get_mut(x.conn) else {
            return self.ups.close(self.io, u);
        };
        match up.resp {
            Some(Resp::Tunnel) => {
                // The upstream ended the tunnel: close the client once it has everything.
                up.resp = Some(Resp::Done);
                c.close_after_flush = true;
                self.finish_exchange(u, x, false)
            }
            Some(Resp::UntilClose) => {
                let chunk = up.chunk_to_client;
                up.resp = Some(Resp::Done);
                self.end_body(u, x, chunk);
                self.finish_exchange(u, x, false)
            }
            Some(Resp::Done) => {}
            Some(_) => {
                // Cut mid-body: the client sees a short body and a close, never a fake end.
                c.close_after_flush = true;
                self.end_body(u, x, false);
                self.finish_exchange(u, x, false)
            }
            None => self.attempt_failed(u, UpstreamError::ClosedEarly),
        }
    }

    /// An attempt failed: count and log it, then retry, answer or cut as
    /// `exchange::after_failure` decides, and blame the server only where it is at fault.
    /// TLS with the upstream failed (`why`: the failure's kind).
    pub(super) fn up_tls_failed(&mut self, u: Key, why: &'static str) {
        let Some(up) = self.ups.get_mut(u) else {
            return;
        };
        // Before the handshake finished, the request (queued behind it) never left.
        let handshake = up.ep.tls.as_ref().is_none_or(|s| !s.was_open());
        self.attempt_failed(u, UpstreamError::Tls { why, handshake });
    }

    fn attempt_failed(&mut self, u: Key, e: UpstreamError) {
        self.ups.error(self.ctx, u, &e);
        let up = &self.ups[u];
        if up.probe {
            return self.ups.probe_done(self.io, self.ctx, u, false);
        }
        let (pool, server, client) = (up.pool, up.server, up.client);
        let (reused, got_bytes) = (up.reused, up.got_bytes);
        self.release_up(u, false);
        let Some(x) = client else { return };
        let retries = self.ctx.cfg.pools[pool].retries;
        let Some(p) = self.proxying(x) else { return };
        p.up = None;
        let a = Attempt {
            resp_started: p.resp_started,
            retryable: p.retryable,
            attempts: p.attempts,
            retries,
            reused,
            got_bytes,
        };
        if a.blames_server(&e) {
            self.ups.server_failed(self.ctx, pool, server);
        }
        if matches!(e, UpstreamError::Timeout) && self.harakiri(x, pool, server) {
            return self.proxy_error(x, e.status());
        }
        match exchange::after_failure(&e, &a) {
            Next::Retry { same_server } => {
                if same_server && let Some(p) = self.proxying(x) {
                    p.tried &= !(1u64 << (server % 64));
                }
                self.proxy_attempt(x)
            }
            Next::Answer(status) => self.proxy_error(x, status),
            Next::Cut => {
                self.conns[x.conn].close_after_flush = true;
                self.settle(x.conn)
            }
        }
    }

    /// An `[[app]]` instance that did not answer within `harakiri`: the supervisor is asked
    /// to kill it (and start it again), the request is logged and answered 504, never
    /// retried on another instance (it would take that one down too). False if the pool is
    /// no app with a harakiri.
    fn harakiri(&mut self, x: ExchangeKey, pool: usize, server: usize) -> bool {
        let cfg = self.ctx.cfg.clone();
        let Some(app) = cfg.pools[pool].app.and_then(|a| cfg.apps.get(a)) else {
            return false;
        };
        let Some(limit) = app.harakiri else {
            return false;
        };
        if let Some(s) = cfg.shield.slots.get(pool).and_then(|s| s.as_ref()) {
            s.request_kill(server);
        }
        let line = self.proxying(x).map_or_else(String::new, |p| {
            let first = p.req_head.split(|&b| b == b'\r').next().unwrap_or(b"");
            match first.first() {
                Some(b'A'..=b'Z') => String::from_utf8_lossy(first).into_owned(),
                _ => "a uwsgi request".into(),
            }
        });
        let (id, now, name) = (self.ctx.id, self.ctx.http.now_tick, app.name.clone());
        self.ctx.http.errlog.line(id, now, || {
            format!("harakiri: {line:?} on app {name} instance {server} had no answer after {limit:?}: 504, and the instance is killed")
        });
        true
    }

    /// Answers the client with an error in place of the upstream's answer.
    pub(super) fn proxy_error(&mut self, x: ExchangeKey, status: u16) {
        self.detach_up(x);
        let Some(c) = self.conns.get_mut(x.conn) else {
            return;
        };
        request::fail(c, &mut self.ctx.http, status);
        self.settle(x.conn);
    }

    /// The response is complete (or the exchange is over): hand the upstream connection
    /// back to its pool or close it, and let the client's next request through.
    fn finish_exchange(&mut self, u: Key, x: ExchangeKey, reusable: bool) {
        let Some(p) = self.end_exchange(u, x, reusable) else {
            return;
        };
        let c = &mut self.conns[x.conn];
        let fx = request::proxied_done(c, &mut self.ctx.http, p.route, p.status);
        self.apply(x.conn, fx);
        self.settle(x.conn);
    }

    /// The upstream's part of an exchange is over: its timings recorded, its connection
    /// released, and the exchange taken off the client (returned for its answer).
    fn end_exchange(&mut self, u: Key, x: ExchangeKey, reusable: bool) -> Option<Box<Proxying>> {
        let up = &self.ups[u];
        let p = self.conns[x.conn].exchanges.proxy(x.stream)?;
        let req_sent = p.req_done && up.ep.out.is_empty();
        let at = |t: u64| t.max(up.t_start) - up.t_start;
        let times = [at(up.t_connected), at(up.t_first), at(self.ctx.http.now_us)];
        let (route, now_s) = (p.route, self.ctx.http.now_s());
        self.ctx.http.recorder.record_upstream(route, times, now_s);
        self.ups.server_succeeded(self.ctx, up.pool, up.server);
        self.release_up(u, reusable && req_sent);
        let c = &mut self.conns[x.conn];
        let Some(Exchange::Proxy(p)) = c.exchanges.remove(x.stream) else {
            return None;
        };
        if p.close_after || !p.keep_alive || !p.req_done {
            c.close_after_flush = true;
        }
        Some(p)
    }

    /// The upstream answered with X-Accel-Redirect: its body is not wanted (its connection
    /// is kept only when none follows), and the file it names is the client's answer.
    fn accel_redirect(&mut self, u: Key, x: ExchangeKey, r: &RespHead) {
        let up = &self.ups[u];
        let (buf, headers) = (&up.head_buf, &self.ctx.http.headers);
        let target = find_header(buf, headers, b"x-accel-redirect")
            .unwrap_or_default()
            .to_vec();
        let mut kept = Vec::new();
        for h in headers {
            let name = h.name.get(buf);
            if ACCEL_KEPT.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                crate::proxy::hop::push_header(&mut kept, name, h.value.get(buf));
            }
        }
        // Reused only as a relayed response's would be (an HTTP server that keeps the
        // connection) and only when nothing follows the head.
        let bodyless = matches!(r.body, Decode::None | Decode::Length(0));
        let reusable =
            r.keep_alive && up.proto == Proto::Http && bodyless && buf.len() == r.head_len;
        let Some(p) = self.end_exchange(u, x, reusable) else {
            return;
        };
        let c = &mut self.conns[x.conn];
        let fx = request::accel_redirect(c, &mut self.ctx.http, &p, &target, &kept);
        self.apply(x.conn, fx);
        self.settle(x.conn);
    }

    /// Detaches an upstream connection from its client: back to the idle pool, or closed;
    /// its max_conns slot goes back.
    fn release_up(&mut self, u: Key, reusable: bool) {
        if let Some(up) = self.ups.get_mut(u) {
            up.spill = None; // what it queued holds its own descriptors
            up.enc = None;
        }
        if let Some(up) = self.ups.get_mut(u)
            && std::mem::take(&mut up.slot)
        {
            let (pool, server) = (up.pool, up.server);
            self.give_slot(pool, server);
        }
        let now = self.ctx.now();
        self.ups.release(self.io, &self.ctx.cfg, now, u, reusable);
    }

    /// Settles an upstream connection, and starts its splice once that may begin.
    pub(super) fn settle_up(&mut self, u: Key) {
        if self.ups.settle(self.io, u) {
            self.start_splice(u);
        }
    }

    /// Called from the client's settle: move request bytes to the upstream, resume a
    /// paused upstream once the client has caught up.
    pub(super) fn settle_proxy(&mut self, x: ExchangeKey) {
        let Some(p) = self.conns[x.conn].exchanges.proxy_mut(x.stream) else {
            return;
        };
        let Some(u) = p.up else { return };
        let Some(up) = self.ups.get_mut(u) else {
            return;
        };
        if !p.to_up.is_empty() {
            up.ep.out.bytes().extend_from_slice(&p.to_up);
            up.ep.out.commit(p.to_up.len());
            p.to_up.clear();
        }
        if self.splice_progress(u, x) {
            return;
        }
        if self.ups[u].hold_input && self.conns[x.conn].ep.unsent() < OUT_LOW {
            self.ups[u].hold_input = false;
        }
        self.settle_up(u);
    }

    /// The upstream's receive has stopped: the rest of the body goes client-wards by splice.
    fn start_splice(&mut self, u: Key) {
        let up = &mut self.ups[u];
        up.splice = Splice::No;
        debug_assert!(up.spill.is_none(), "no spill while a splice is pending");
        let (Some(Resp::Length(left)), Some(x)) = (&up.resp, up.client) else {
            return;
        };
        let left = *left;
        let Ok(fd) = crate::driver::dup_cloexec(up.ep.sock().raw()) else {
            // No descriptor to spare: keep copying instead.
            return self.settle_up(u);
        };
        up.splice = Splice::Active;
        up.resp = Some(Resp::Spliced);
        self.ctx.http.stats.spliced_bodies += 1;
        self.conns[x.conn].ep.out.push_stream(fd, left);
        self.settle(x.conn);
    }

    /// Called from the client's settle: once its queue has sent the spliced body, the
    /// exchange is complete.
    fn splice_progress(&mut self, u: Key, x: ExchangeKey) -> bool {
        if self.ups[u].splice != Splice::Active || self.conns[x.conn].ep.out.has_stream() {
            return false;
        }
        let up = &mut self.ups[u];
        up.splice = Splice::No;
        up.resp = Some(Resp::Done);
        let reusable = up.keep_alive;
        self.finish_exchange(u, x, reusable);
        true
    }

    /// No answer from the upstream in time: 504, and it counts against the server's health.
    pub(super) fn proxy_timeout(&mut self, x: ExchangeKey) {
        match self.proxying(x).and_then(|p| p.up) {
            Some(u) if self.ups.get(u).is_some() => self.attempt_failed(u, UpstreamError::Timeout),
            _ => self.proxy_error(x, UpstreamError::Timeout.status()),
        }
    }

    /// The connection is closing, or its codec gave up on it (an error answer): every
    /// exchange on it ends, and their upstream connections are closed, never pooled.
    pub(super) fn end_exchanges(&mut self, k: Key) {
        let mut at = None;
        while let Some(stream) = self.conns[k].exchanges.next_proxy_stream(at) {
            self.detach_up(ExchangeKey { conn: k, stream });
            at = Some(stream);
        }
        self.conns[k].exchanges = Default::default();
    }

    /// Takes the client's upstream connection away from it and closes it (never pooled:
    /// it may be mid-exchange).
    fn detach_up(&mut self, x: ExchangeKey) {
        if let Some(pool) = self
            .proxying(x)
            .filter(|p| p.queued_since.is_some())
            .map(|p| p.pool)
        {
            self.unqueue(x, pool);
        }
        if let Some(u) = self.proxying(x).and_then(|p| p.up.take()) {
            self.release_up(u, false);
        }
    }
}
