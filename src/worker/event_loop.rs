//! The worker: one pinned thread, one ring, one buffer ring, one connection slab.
//! `loop { publish buffers; flush dirty connections; submit_and_wait; dispatch CQEs }`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;

use crate::config::Config;
use crate::driver::outq::SendResult;
use crate::driver::wake::WakeFd;
use crate::driver::{Completion, Io, Op, Sock, Token};
use crate::http::date::format_http_date;
use crate::transport::endpoint::CLIENT;
use crate::transport::{Key, Received, Slab};

use super::conn::{Conn, Phase};
use super::pools::PoolState;
use super::request::{self, Effects, HttpCtx, OUT_LOW, Start};
use super::scrape::Gather;
use super::timer::{TICK_MS, Wheel};
use super::upconn::UpConn;
use super::{Msg, Peer};

/// How long a closing connection keeps reading (and discarding) after its last response.
const LINGER: Duration = Duration::from_secs(2);
/// How long a retiring worker keeps an idle keep-alive connection, for a request already
/// on its way to arrive and be answered (with `Connection: close`).
const RETIRE_IDLE_GRACE: Duration = Duration::from_secs(1);

struct Listener {
    fd: Option<OwnedFd>,
    armed: bool,
    port: u16,
    /// The admin endpoint's listener (its connections get admin pages, not routes).
    admin: bool,
}

/// What a worker owns besides its config, built on its own thread.
pub struct Parts {
    /// The driver and the receive buffers, owned together (`driver::Io`).
    pub io: Io,
    pub wake: WakeFd,
    pub rx: Receiver<Msg>,
    pub listeners: Vec<(OwnedFd, bool)>,
    pub http: HttpCtx,
    /// The ring has a registered file table and accepts into it.
    pub fixed_files: bool,
}

pub struct Worker {
    pub id: usize,
    pub(super) cpu: usize,
    pub(super) cfg: Arc<Config>,
    pub(super) io: Io,
    wake: WakeFd,
    rx: Receiver<Msg>,
    listeners: Vec<Listener>,
    /// Accepting is paused (connection cap, or EMFILE) until this tick or until a slot frees.
    accept_paused: bool,
    accept_retry_tick: u64,
    /// Client connections, named by typed keys (index and generation).
    pub(super) conns: Slab<Conn>,
    /// Connections with bytes queued to flush this turn.
    dirty: Vec<Key>,
    wheel: Wheel,
    fired: Vec<(u32, u32, u64)>,
    pub(super) http: HttpCtx,
    pub(super) start: Instant,
    pub(super) peers: Vec<Peer>,
    /// Upstream connections (their own slab; tokens say which slab an op belongs to).
    pub(super) ups: Slab<UpConn>,
    pub(super) up_dirty: Vec<Key>,
    pub(super) pools: Vec<PoolState>,
    pub(super) up_scratch: Vec<u8>,
    /// Client addresses are looked up (getpeername) only if something needs them.
    need_peer: bool,
    /// Accepted sockets are direct descriptors (their CQE result is a table slot).
    pub(super) fixed_files: bool,
    /// Jitter source for health probe times.
    pub(super) probe_rng: u64,
    any_health_checks: bool,
    pub(super) gathers: Vec<Gather>,
    pub(super) next_gather: u64,
    date_secs: u64,
    drain_deadline: Option<u64>,
    /// This turn's completions, and the next one to dispatch: kept in the worker so that a
    /// panic mid-batch leaves the undispatched ones (accepted sockets among them) to
    /// `release_sockets` instead of dropping them with a local.
    pub(super) cqes: Vec<Completion>,
    pub(super) cq_next: usize,
    ticks: Ticks,
}

/// Timeouts converted to wheel ticks once.
struct Ticks {
    header: u64,
    body: u64,
    keepalive: u64,
    send: u64,
    linger: u64,
}

pub(super) fn to_ticks(d: Duration) -> u64 {
    // Saturate: a huge configured timeout must stay huge, not wrap to a short one.
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .div_ceil(TICK_MS)
        .max(1)
}

impl Worker {
    pub fn new(id: usize, cpu: usize, cfg: Arc<Config>, parts: Parts) -> Worker {
        let Parts {
            io,
            wake,
            rx,
            listeners,
            http,
            fixed_files,
        } = parts;
        let l = &cfg.limits;
        let ticks = Ticks {
            header: to_ticks(l.header_timeout),
            body: to_ticks(l.body_timeout),
            keepalive: to_ticks(l.keepalive_timeout),
            send: to_ticks(l.send_timeout),
            linger: to_ticks(LINGER),
        };
        Worker {
            id,
            cpu,
            peers: Vec::new(),
            ups: Slab::with_capacity(0),
            up_dirty: Vec::new(),
            pools: cfg.pools.iter().map(PoolState::new).collect(),
            up_scratch: Vec::with_capacity(64 * 1024),
            need_peer: http.log.is_some() || !cfg.pools.is_empty(),
            fixed_files,
            probe_rng: 0x9e37_79b9_7f4a_7c15 ^ ((id as u64 + 1) << 32) ^ std::process::id() as u64,
            any_health_checks: cfg.pools.iter().any(|p| p.health_interval.is_some()),
            gathers: Vec::new(),
            next_gather: 0,
            io,
            wake,
            rx,
            listeners: listeners
                .into_iter()
                .map(|(fd, admin)| Listener {
                    port: super::listener::local_addr(&fd)
                        .map(|a| a.port())
                        .unwrap_or(0),
                    fd: Some(fd),
                    armed: false,
                    admin,
                })
                .collect(),
            accept_paused: false,
            accept_retry_tick: 0,
            // Reserved up front, not grown: growth by doubling copies the slab and leaves
            // the old copies as heap holes that count against every idle connection. Pages
            // not yet used are never touched, so this costs no memory until they are.
            conns: Slab::with_capacity(cfg.limits.max_connections.min(1 << 20)),
            dirty: Vec::new(),
            wheel: Wheel::new(0),
            fired: Vec::new(),
            http,
            start: Instant::now(),
            date_secs: 0,
            drain_deadline: None,
            cqes: Vec::with_capacity(1024),
            cq_next: 0,
            ticks,
            cfg,
        }
    }

    pub fn run(mut self) {
        self.update_clock();
        self.arm_accepts();
        self.wake.arm(self.io.driver(), Token::new(Op::Wake, 0, 0));
        loop {
            self.run_timers();
            if let Some(d) = self.drain_deadline {
                // Also wait for the accept cancels: an accept landing after the exit would
                // be a connection nobody serves.
                if self.conns.is_empty() && self.listeners.iter().all(|l| !l.armed) {
                    break;
                }
                if self.http.now_tick >= d {
                    self.abort_all();
                }
                if self.http.now_tick >= d + to_ticks(Duration::from_secs(1)) {
                    break; // ops still stuck after the drain: give up on them
                }
            }
            self.flush_dirty();
            self.flush_up_dirty();
            if let Some(l) = &mut self.http.log
                && l.file.wants_flush()
            {
                l.file.flush(self.io.driver(), Token::new(Op::Log, 0, 0));
            }
            self.io.bufs().publish();
            let next_tick_ms = TICK_MS - (self.start.elapsed().as_millis() as u64 % TICK_MS);
            if let Err(e) = self
                .io
                .driver()
                .submit_and_wait(Duration::from_millis(next_tick_ms))
            {
                crate::say!("uringd: worker {}: io_uring_enter failed: {e}", self.id);
                std::thread::sleep(Duration::from_millis(10));
            }
            // The clock is read after waking, so the completions of this turn carry the
            // time they were seen, not the time before the wait (latencies would read low).
            self.update_clock();
            self.io.driver().drain(&mut self.cqes);
            self.cq_next = 0;
            while let Some(&c) = self.cqes.get(self.cq_next) {
                self.cq_next += 1;
                self.dispatch(c);
            }
        }
        self.finish_log();
        // Closes queued by the last turn must reach the kernel before the ring goes away,
        // or those sockets would stay open until the whole process exits.
        if let Err(e) = self.io.driver().submit() {
            crate::say!("uringd: worker {}: final submit failed: {e}", self.id);
        }
        // The drain ended with every connection gone: no receive is armed any more (on the
        // give-up path some may be, and the buffers are then leaked, never unmapped early).
        if self.conns.is_empty() && self.ups_quiet() {
            self.io.receives_done();
        }
    }

    /// Waits (up to a second) for an access-log write in flight, then writes what is left
    /// synchronously: every request answered before the stop is in the log. Completions of
    /// other ops seen meanwhile are kept for `release_sockets` (accepted sockets to close).
    fn finish_log(&mut self) {
        let Some(log) = self.http.log.as_mut() else {
            return;
        };
        let end = Instant::now() + Duration::from_secs(1);
        let mut seen = Vec::new();
        while log.file.in_flight() && Instant::now() < end {
            if self
                .io
                .driver()
                .submit_and_wait(Duration::from_millis(50))
                .is_err()
            {
                break;
            }
            self.io.driver().drain(&mut seen);
            for c in seen.drain(..) {
                match Token::unpack(c.user_data) {
                    Some(t) if t.op == Op::Log => log.file.complete(&c),
                    _ => self.cqes.push(c),
                }
            }
        }
        log.file.write_rest_blocking();
    }

    fn update_clock(&mut self) {
        let us = self.start.elapsed().as_micros() as u64;
        self.http.now_us = us;
        let tick = us / 1000 / TICK_MS;
        if tick == self.http.now_tick && self.date_secs != 0 {
            return;
        }
        self.http.now_tick = tick;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.http.unix_s = secs;
        if secs != self.date_secs {
            self.date_secs = secs;
            format_http_date(secs, &mut self.http.date);
            if let Some(l) = &mut self.http.log {
                l.set_time(secs);
            }
        }
        // The access log goes out once per tick, or sooner when its buffer fills.
        if let Some(l) = &mut self.http.log {
            l.file.flush(self.io.driver(), Token::new(Op::Log, 0, 0));
        }
    }

    fn dispatch(&mut self, c: Completion) {
        let Some(t) = Token::unpack(c.user_data) else {
            return;
        };
        match t.op {
            Op::Accept => self.on_accept(t, c),
            Op::Recv => self.on_recv(t, c),
            Op::Send => self.on_send(t, c),
            Op::Wake => self.on_wake(),
            Op::UpConnect => self.on_up_connect(t, c),
            Op::UpRecv => self.on_up_recv(t, c),
            Op::UpSend => self.on_up_send(t, c),
            Op::Log => {
                if let Some(l) = &mut self.http.log {
                    l.file.complete(&c);
                }
            }
            Op::Shutdown => self.on_shutdown(t),
            // Close CQEs arrive only on failure (SKIP_SUCCESS); cancels need nothing.
            Op::Close | Op::Cancel => {}
        }
    }

    // ---- accept ----

    fn arm_accepts(&mut self) {
        if self.accept_paused || self.drain_deadline.is_some() {
            return;
        }
        for (i, l) in self.listeners.iter_mut().enumerate() {
            if let (Some(fd), false) = (&l.fd, l.armed) {
                self.io.driver().accept_multi(
                    fd.as_raw_fd(),
                    Token::new(Op::Accept, i as u32, 0),
                    self.fixed_files,
                );
                l.armed = true;
            }
        }
    }

    fn pause_accepts(&mut self) {
        self.accept_paused = true;
        self.cancel_accepts();
    }

    fn cancel_accepts(&mut self) {
        for (i, l) in self.listeners.iter().enumerate() {
            if l.armed {
                let t = Token::new(Op::Accept, i as u32, 0);
                self.io.driver().cancel(t, Token::new(Op::Cancel, 0, 0));
            }
        }
    }

    /// Cancels armed accepts without pausing: each cancel's final CQE re-arms, and a fresh
    /// accept first tries the queue at once.
    fn rearm_accepts(&mut self) {
        if !self.accept_paused && self.drain_deadline.is_none() {
            self.cancel_accepts();
        }
    }

    fn on_accept(&mut self, t: Token, c: Completion) {
        let li = t.index as usize;
        if !c.more()
            && let Some(l) = self.listeners.get_mut(li)
        {
            l.armed = false;
        }
        if c.result >= 0 {
            let fd = c.result;
            // Accepted after a drain began (the cancel raced it): still served, its answer
            // carries `Connection: close`. Only a full slab refuses it.
            if self.conns.len() >= self.cfg.limits.max_connections {
                let sock = self.accepted_sock(fd);
                self.io.driver().close(sock, Token::new(Op::Close, 0, 0));
            } else {
                let admin = self.listeners.get(li).is_some_and(|l| l.admin);
                let port = self.listeners.get(li).map_or(0, |l| l.port);
                self.open_conn(fd, admin, port);
            }
        } else if c.result != -libc::ECANCELED {
            self.http.stats.accept_errors += 1;
            if !matches!(-c.result, libc::ECONNABORTED | libc::EINTR | libc::EAGAIN) {
                // Out of descriptors or memory (or anything persistent): back off and
                // retry, do not spin re-arming an accept that fails at once.
                self.accept_paused = true;
                self.accept_retry_tick = self.http.now_tick + 5;
            }
        }
        if !self.accept_paused {
            self.arm_accepts();
        }
    }

    /// The socket an accept completion names: a registered descriptor's table slot, or a
    /// plain descriptor.
    fn accepted_sock(&self, fd: i32) -> Sock {
        if self.fixed_files {
            Sock::fixed(fd as u32)
        } else {
            Sock::from(fd)
        }
    }

    fn open_conn(&mut self, fd: i32, admin: bool, port: u16) {
        let sock = self.accepted_sock(fd);
        let now = self.http.now_tick;
        let open = move |c: &mut Conn| c.open(sock, admin, port, now);
        let k = self.conns.insert(
            || {
                let mut c = Conn::new();
                open(&mut c);
                c
            },
            open,
        );
        self.http.stats.accepts += 1;
        let c = &mut self.conns[k];
        // A registered descriptor has no getpeername (config validation keeps the two apart).
        if self.need_peer && !self.fixed_files {
            c.peer = super::listener::peer_addr(fd);
        }
        if self.conns.len() >= self.cfg.limits.max_connections {
            self.pause_accepts();
        }
        self.settle(k);
    }

    // ---- receive ----

    fn on_recv(&mut self, t: Token, c: Completion) {
        let buf = self.io.bufs_ref().take(c.flags, c.result);
        let k = Key::of(t);
        let up_backlog = self.up_backlog_of(k);
        let Some(conn) = self.conns.get_mut(k) else {
            // A late CQE for a slot that has moved on: give the buffer back, touch nothing.
            if let Some(b) = buf {
                self.io.bufs().recycle(b);
            }
            return;
        };
        let mut fx = Effects::default();
        match conn.ep.on_recv(&c) {
            Received::Data => {
                if let Some(b) = buf {
                    self.http.stats.bytes_in += c.result as u64;
                    if !conn.ep.aborting() {
                        let data = self.io.bufs_ref().data(&b);
                        fx = request::on_data(conn, &mut self.http, data, up_backlog);
                    }
                    self.io.bufs().recycle(b);
                }
            }
            Received::NoBuffers => self.http.stats.enobufs += 1, // re-armed by settle
            Received::Eof | Received::Cancelled => {}
            Received::Failed(_) => self.abort(k),
        }
        self.apply(k, fx);
        self.settle(k);
    }

    /// Carries out what request handling asked for, at once.
    pub(super) fn apply(&mut self, k: Key, fx: Effects) {
        if fx.reset {
            self.broadcast_reset();
        }
        match fx.start {
            Some(Start::Proxy) => self.proxy_attempt(k),
            Some(Start::Gather(ask)) => self.start_gather(k, ask),
            None => {}
        }
    }

    fn on_shutdown(&mut self, t: Token) {
        let k = Key::of(t);
        if let Some(c) = self.conns.get_mut(k) {
            c.ep.on_shutdown();
            self.settle(k);
        }
    }

    // ---- send ----

    fn on_send(&mut self, t: Token, c: Completion) {
        let k = Key::of(t);
        let now = self.http.now_tick;
        let Some(conn) = self.conns.get_mut(k) else {
            return;
        };
        match conn.ep.on_send(&c) {
            SendResult::Progress => {
                conn.last_send_tick = now;
                self.http.stats.bytes_out += c.result as u64;
                request::record_sent(conn, &mut self.http);
            }
            SendResult::Notif => {}
            SendResult::Failed(_) => self.abort(k),
        }
        self.settle(k);
    }

    fn flush_dirty(&mut self) {
        let zc = self.http.zc_threshold;
        for &k in &self.dirty {
            if let Some(c) = self.conns.get_mut(k) {
                c.ep.flush(&mut self.io, k, &CLIENT, zc);
            }
        }
        self.dirty.clear();
    }

    // ---- state ----

    /// After any event on a connection: decide what it needs next. The one place that
    /// arms recv, schedules sends, starts closes and frees slots.
    pub(super) fn settle(&mut self, k: Key) {
        let now = self.http.now_tick;
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        if c.ep.aborting() {
            if c.ep.close_when_idle(&mut self.io, k) {
                self.free_slot(k);
            }
            return;
        }
        if matches!(c.phase, Phase::Proxy(_)) {
            self.settle_proxy(k);
            if self.conns.get(k).is_none_or(|c| c.ep.aborting()) {
                return;
            }
        }
        // Resume input once the client has read enough of its answers (and the upstream
        // has taken enough of the body); handling the stash may hold it again.
        let c = &mut self.conns[k];
        if c.hold_input && c.ep.out.len() < OUT_LOW {
            c.hold_input = false;
            if !c.inbuf.is_empty() {
                let up_backlog = self.up_backlog_of(k);
                let fx = request::consume_stash(&mut self.conns[k], &mut self.http, up_backlog);
                self.apply(k, fx);
                if self.conns.get(k).is_none_or(|c| c.ep.aborting()) {
                    return self.settle(k);
                }
            }
        }
        let c = &mut self.conns[k];
        if !c.ep.out.is_empty() {
            if !c.ep.dirty {
                if !c.ep.out.busy() {
                    c.last_send_tick = now; // a fresh send starts its own send_timeout
                }
                c.ep.dirty = true;
                self.dirty.push(k);
            }
        } else if !c.ep.out.busy() {
            let read_closed = c.ep.read_closed();
            if c.close_after_flush || (read_closed && matches!(c.phase, Phase::Head)) {
                if read_closed {
                    return self.abort(k);
                }
                if !c.ep.shut_down() {
                    // Lingering close: our answer is out; read and discard until the peer
                    // closes, so unread input does not turn our close into a reset that
                    // eats the answer.
                    c.phase = Phase::Linger;
                    c.since = now;
                    c.ep.shutdown_write(&mut self.io, k, &CLIENT);
                }
            } else if read_closed {
                // The peer stopped sending in the middle of a request: nothing to answer.
                return self.abort(k);
            } else if matches!(c.phase, Phase::Head) && c.inbuf.is_empty() && !c.idle {
                c.idle = true;
                c.since = now;
            }
        }
        if c.wants_input() {
            c.ep.want_input(&mut self.io, k, &CLIENT);
        } else if c.hold_input {
            c.ep.pause_input(&mut self.io, k, &CLIENT);
        }
        self.arm_timer(k);
    }

    /// Request bytes of `k`'s proxied request still queued towards its upstream.
    fn up_backlog_of(&self, k: Key) -> usize {
        match self.conns.get(k).map(|c| &c.phase) {
            Some(Phase::Proxy(p)) => p.up.map_or(0, |u| self.up_backlog(u)),
            _ => 0,
        }
    }

    fn deadline(&self, c: &Conn) -> u64 {
        let t = &self.ticks;
        if !c.ep.out.is_empty() || c.ep.out.busy() {
            return c.last_send_tick.max(c.since) + t.send;
        }
        match c.phase {
            Phase::Linger => c.since + t.linger,
            // Gathers have their own deadline; keep the connection meanwhile.
            Phase::Admin => c.since + t.keepalive,
            Phase::Proxy(ref p) => {
                let pc = &self.cfg.pools[p.pool];
                let to = match p.up {
                    Some(u) if !self.up_connected(u) => pc.connect_timeout,
                    Some(u) if !p.req_done || self.up_backlog(u) > 0 => pc.send_timeout,
                    _ => pc.read_timeout,
                };
                c.since + to_ticks(to)
            }
            Phase::Body(_) => c.since + t.body,
            Phase::Head if c.idle && c.requests > 0 => c.since + t.keepalive,
            Phase::Head => c.since + t.header,
        }
    }

    pub(super) fn arm_timer(&mut self, k: Key) {
        let d = self.deadline(&self.conns[k]);
        let c = &mut self.conns[k];
        if c.wheel_tick == 0 || c.wheel_tick > d {
            c.wheel_tick = self.wheel.schedule(d, k.index, k.generation);
        }
    }

    fn run_timers(&mut self) {
        let now = self.http.now_tick;
        if self.accept_paused
            && self.accept_retry_tick != 0
            && now >= self.accept_retry_tick
            && self.conns.len() < self.cfg.limits.max_connections
        {
            self.accept_paused = false;
            self.accept_retry_tick = 0;
            self.arm_accepts();
        }
        if !self.gathers.is_empty() {
            self.expire_gathers();
        }
        if now.is_multiple_of(10) && !self.pools.is_empty() {
            self.sweep_idle_ups();
        }
        if self.any_health_checks && self.drain_deadline.is_none() {
            self.run_probes();
        }
        self.wheel.advance(now, &mut self.fired);
        let fired = std::mem::take(&mut self.fired);
        for &(index, generation, filed) in &fired {
            let k = Key { index, generation };
            let Some(c) = self.conns.get_mut(k) else {
                continue; // stale entry: the slot moved on
            };
            if c.wheel_tick != filed {
                continue; // re-filed elsewhere
            }
            c.wheel_tick = 0;
            if c.ep.aborting() {
                continue;
            }
            let d = self.deadline(&self.conns[k]);
            if d > now {
                self.arm_timer(k);
            } else {
                self.expire(k);
            }
        }
        self.fired = fired;
        self.fired.clear();
    }

    fn expire(&mut self, k: Key) {
        let c = &self.conns[k];
        let busy = !c.ep.out.is_empty() || c.ep.out.busy();
        let t = &mut self.http.stats.timeouts;
        match &c.phase {
            _ if busy => t.send += 1,
            Phase::Proxy(_) => t.upstream += 1,
            Phase::Body(_) => t.body += 1,
            // An idle keep-alive connection at keepalive_timeout: its normal end.
            Phase::Head if c.idle && c.requests > 0 => self.http.stats.idle_closes += 1,
            Phase::Head => t.header += 1,
            // The lingering close and an admin gather ran out: nothing was owed.
            Phase::Linger | Phase::Admin => {}
        }
        if let Phase::Proxy(p) = &c.phase {
            if !p.resp_started && c.ep.out.is_empty() {
                // The upstream is too slow: 504, and it counts against its health.
                return self.proxy_timeout(k);
            }
            return self.abort(k);
        }
        let c = &mut self.conns[k];
        let partial =
            matches!(c.phase, Phase::Body(_)) || (matches!(c.phase, Phase::Head) && !c.idle);
        if !busy && partial && !c.close_after_flush {
            // A request was under way: tell the client why we give up on it.
            request::fail(c, &mut self.http, 408);
            c.since = self.http.now_tick;
            self.settle(k);
        } else {
            self.abort(k);
        }
    }

    /// Stops everything on a connection; its slot is freed once the kernel returns all ops.
    pub(super) fn abort(&mut self, k: Key) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        if c.ep.aborting() {
            return;
        }
        c.ep.abort(&mut self.io, k, &CLIENT);
        if matches!(c.phase, Phase::Proxy(_)) {
            self.abandon_proxy(k);
        }
        if self.conns[k].ep.close_when_idle(&mut self.io, k) {
            self.free_slot(k);
        }
    }

    /// The socket is closed: the slot goes back to the slab, keeping no buffers (that is
    /// what makes 10k idle connections cheap) and nothing of this client.
    fn free_slot(&mut self, k: Key) {
        let c = &mut self.conns[k];
        *c = Conn {
            ep: std::mem::take(&mut c.ep),
            ..Conn::new()
        };
        self.conns.remove(k);
        if self.accept_paused
            && self.accept_retry_tick == 0
            && self.conns.len() < self.cfg.limits.max_connections
        {
            self.accept_paused = false;
            self.arm_accepts();
        }
    }

    /// The keys of every live connection (a snapshot: the loop may free some).
    fn conn_keys(&self) -> Vec<Key> {
        self.conns.iter().map(|(k, _)| k).collect()
    }

    fn abort_all(&mut self) {
        for k in self.conn_keys() {
            self.abort(k);
        }
    }

    // ---- supervisor messages ----

    fn on_wake(&mut self) {
        self.wake.completed();
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Shutdown => self.begin_drain(false),
                Msg::Retire => self.begin_drain(true),
                Msg::Rearm => self.rearm_accepts(),
                Msg::Peers(p) => self.peers = p,
                Msg::Scrape { from, id, want } => self.on_scrape(from, id, want),
                Msg::ScrapeReply { id, snap } => self.on_scrape_reply(id, snap),
                Msg::Reset => self.http.recorder.reset(),
                Msg::ReopenLog => {
                    if let Some(l) = &mut self.http.log {
                        l.file.request_reopen();
                    }
                }
            }
        }
        self.wake.arm(self.io.driver(), Token::new(Op::Wake, 0, 0));
    }

    fn begin_drain(&mut self, graceful: bool) {
        if self.drain_deadline.is_some() {
            if !graceful {
                self.close_idle();
            }
            return;
        }
        self.drain_deadline = Some(self.http.now_tick + to_ticks(self.cfg.drain_timeout));
        self.http.draining = true;
        self.pause_accepts();
        for l in &mut self.listeners {
            l.fd = None; // the ring keeps its own reference until the cancel lands
        }
        if graceful {
            // Idle keep-alive connections get a short grace instead of a close now.
            self.ticks.keepalive = self.ticks.keepalive.min(to_ticks(RETIRE_IDLE_GRACE));
        }
        for k in self.conn_keys() {
            let Some(c) = self.conns.get_mut(k).filter(|c| !c.ep.aborting()) else {
                continue;
            };
            let idle = c.is_idle();
            if idle && graceful {
                self.arm_timer(k);
            } else if idle {
                self.abort(k);
            } else {
                // A finished exchange closes after its answer; one under way answers with
                // close. Retiring, the answer already queued promised keep-alive, so the
                // close waits for the next request (answered with close) or the idle grace.
                let between = matches!(c.phase, Phase::Head) && c.inbuf.is_empty();
                c.close_after_flush |= between && !graceful;
                if let Some(o) = c.owed.as_mut() {
                    o.keep_alive = false;
                }
                if let Phase::Proxy(p) = &mut c.phase {
                    p.keep_alive = false;
                }
                self.settle(k);
            }
        }
    }

    /// Closes every idle connection now (a stop after a graceful drain began).
    fn close_idle(&mut self) {
        for k in self.conn_keys() {
            if self
                .conns
                .get(k)
                .is_some_and(|c| !c.ep.aborting() && c.is_idle())
            {
                self.abort(k);
            }
        }
    }
}

#[cfg(test)]
mod tick_tests {
    #[test]
    fn huge_durations_saturate_instead_of_wrapping() {
        let huge = std::time::Duration::from_secs(18_446_744_073_709_552);
        assert_eq!(super::to_ticks(huge), u64::MAX.div_ceil(super::TICK_MS));
        assert_eq!(super::to_ticks(std::time::Duration::from_millis(1)), 1);
    }
}
