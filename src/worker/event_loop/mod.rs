//! The worker: one pinned thread, one ring, one buffer ring, and its parts (context,
//! I/O, listeners, clients, upstreams, gathers), each with private state and its own file.
//! `loop { timers; flush; publish buffers; submit_and_wait; dispatch CQEs }`.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::admin::Ask;
use crate::config::Config;
use crate::driver::wake::WakeFd;
use crate::driver::{Completion, Io, Op, Token};

mod teardown;

use super::Msg;
use super::accept::Listeners;
use super::clients::Clients;
use super::conn::ExchangeKey;
use super::ctx::{Ctx, to_ticks};
use super::flow::{Flow, Later};
use super::gathers::{self, Gather, Gathers};
use super::listener::ListenKind;
use super::request::HttpCtx;
use super::upstreams::Upstreams;

/// What a worker owns besides its config, built on its own thread.
pub struct Parts {
    /// The driver and the receive buffers, owned together (`driver::Io`).
    pub io: Io,
    pub wake: WakeFd,
    pub rx: Receiver<Msg>,
    pub listeners: Vec<(OwnedFd, crate::worker::listener::ListenKind)>,
    pub http: HttpCtx,
    /// The ring has a registered file table and accepts into it.
    pub fixed_files: bool,
}

pub struct Worker {
    ctx: Ctx,
    io: Io,
    /// This turn's completions, and the next one to dispatch: kept in the worker so that a
    /// panic mid-batch leaves the undispatched ones (accepted sockets among them) to
    /// `release_sockets` instead of dropping them with a local.
    cqes: Vec<Completion>,
    cq_next: usize,
    /// The supervisor's and the other workers' messages, and the eventfd that wakes us.
    wake: WakeFd,
    rx: Receiver<Msg>,
    listeners: Listeners,
    conns: Clients,
    ups: Upstreams,
    gathers: Gathers,
    /// What connection events asked of the parts they cannot reach (`flow::Later`).
    later: VecDeque<Later>,
    /// Connections (client, then upstream) whose bytes could not be prepared for sending
    /// this turn (TLS).
    broken: Vec<crate::transport::Key>,
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
        let need_peer = http.log.is_some()
            || !cfg.pools.is_empty()
            || cfg
                .routes
                .iter()
                .any(|r| r.limit.is_some() || r.edge.access.is_some())
            || !cfg.proxy_protocol_listen.is_empty()
            || cfg.limits.max_connections_per_ip.is_some();
        Worker {
            conns: Clients::new(
                cfg.limits.max_connections,
                need_peer,
                cfg.shield.conns.clone(),
            ),
            ups: Upstreams::new(&cfg, id),
            listeners: Listeners::new(listeners, fixed_files),
            gathers: Gathers::default(),
            later: VecDeque::new(),
            broken: Vec::new(),
            io,
            wake,
            rx,
            cqes: Vec::with_capacity(1024),
            cq_next: 0,
            ctx: Ctx::new(id, cpu, cfg, http),
        }
    }

    /// The parts a connection's events touch, borrowed together.
    fn flow(&mut self) -> Flow<'_> {
        Flow {
            ctx: &mut self.ctx,
            io: &mut self.io,
            conns: &mut self.conns,
            ups: &mut self.ups,
            later: &mut self.later,
        }
    }

    fn draining(&self) -> bool {
        self.ctx.drain_deadline.is_some()
    }

    pub fn run(mut self) {
        self.ctx.update_clock(&mut self.io);
        self.listeners.arm(&mut self.io, false);
        self.wake.arm(self.io.driver(), Token::new(Op::Wake, 0, 0));
        loop {
            self.ctx.http.handshake_budget = super::tls::handshakes_per_turn();
            let handshakes_wait = self.flow().run_deferred_handshakes();
            self.after_event();
            self.run_timers();
            // Requests waiting for a max_conns slot another worker may have freed.
            let queued = !self.ups.queues_empty() && self.flow().poll_queues();
            if let Some(d) = self.ctx.drain_deadline {
                // Also wait for the accept cancels: an accept landing after the exit would
                // be a connection nobody serves.
                if self.conns.is_empty() && self.listeners.quiet() {
                    break;
                }
                if self.ctx.now() >= d {
                    self.flow().abort_all();
                }
                if self.ctx.now() >= d + to_ticks(Duration::from_secs(1)) {
                    break; // ops still stuck after the drain: give up on them
                }
            }
            let mut broken = std::mem::take(&mut self.broken);
            self.conns
                .flush(&mut self.io, self.ctx.http.zc_threshold, &mut broken);
            for k in broken.drain(..) {
                self.flow().abort(k);
            }
            self.broken = broken;
            let mut broken = std::mem::take(&mut self.broken);
            self.ups.flush(&mut self.io, &mut broken);
            for u in broken.drain(..) {
                self.flow().up_tls_failed(u, "encrypt");
            }
            self.broken = broken;
            if let Some(l) = &mut self.ctx.http.log
                && l.file.wants_flush()
            {
                l.file.flush(self.io.driver(), Token::new(Op::Log, 0, 0));
            }
            self.io.bufs().publish();
            let wait = if handshakes_wait {
                Duration::ZERO
            } else if queued {
                Duration::from_millis(1)
            } else {
                Duration::from_millis(self.ctx.until_next_tick_ms())
            };
            if let Err(e) = self.io.driver().submit_and_wait(wait) {
                crate::say!("uringd: worker {}: io_uring_enter failed: {e}", self.ctx.id);
                std::thread::sleep(Duration::from_millis(10));
            }
            // The clock is read after waking, so the completions of this turn carry the
            // time they were seen, not the time before the wait (latencies would read low).
            self.ctx.update_clock(&mut self.io);
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
            crate::say!("uringd: worker {}: final submit failed: {e}", self.ctx.id);
        }
        // The drain ended with every connection gone: no receive is armed any more (on the
        // give-up path some may be, and the buffers are then leaked, never unmapped early).
        if self.conns.is_empty() && self.ups.quiet() {
            self.io.receives_done();
        }
    }

    /// Waits (up to a second) for an access-log write in flight, then writes what is left
    /// synchronously: every request answered before the stop is in the log. Completions of
    /// other ops seen meanwhile are kept for `release_sockets` (accepted sockets to close).
    fn finish_log(&mut self) {
        let Some(log) = self.ctx.http.log.as_mut() else {
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

    fn dispatch(&mut self, c: Completion) {
        let Some(t) = Token::unpack(c.user_data) else {
            return;
        };
        match t.op {
            Op::Accept => self.on_accept(t, c),
            Op::Recv => self.flow().on_recv(t, c),
            Op::Send => self.flow().on_send(t, c),
            Op::Wake => self.on_wake(),
            Op::UpConnect => self.flow().on_up_connect(t, c),
            Op::UpRecv => self.flow().on_up_recv(t, c),
            Op::UpSend => self.flow().on_up_send(t, c),
            Op::Log => {
                if let Some(l) = &mut self.ctx.http.log {
                    l.file.complete(&c);
                }
            }
            Op::Shutdown => self.flow().on_shutdown(t),
            // Close CQEs arrive only on failure (SKIP_SUCCESS); cancels need nothing.
            Op::Close | Op::Cancel => {}
        }
        self.after_event();
    }

    /// Applies what the event asked of the parts beyond its connection, and resumes
    /// accepting if a slot freed. Runs after every completion: two tests when there is
    /// nothing to do.
    #[inline]
    fn after_event(&mut self) {
        if !self.later.is_empty() {
            self.apply_later();
        }
        if self.listeners.paused() {
            let (now, room, draining) = (self.ctx.now(), self.conns.room(), self.draining());
            self.listeners
                .resume_if_due(&mut self.io, now, room, draining);
        }
    }

    #[cold]
    fn apply_later(&mut self) {
        while let Some(l) = self.later.pop_front() {
            match l {
                Later::Reset => self.gathers.broadcast_reset(&mut self.ctx),
                Later::Gather(k, ask) => self.start_gather(k, ask),
                Later::Dequeue(pool) => self.flow().dequeue(pool),
            }
        }
    }

    fn on_accept(&mut self, t: Token, c: Completion) {
        let (now, room, draining) = (self.ctx.now(), self.conns.room(), self.draining());
        let stats = &mut self.ctx.http.stats;
        if let Some(a) = self
            .listeners
            .on_accept(&mut self.io, t, &c, room, now, stats)
        {
            let (k, admitted) = self.conns.open(&a, now);
            self.ctx.http.stats.accepts += 1;
            if !admitted {
                // Over max_connections_per_ip: a plain client is told (503), a TLS one,
                // which could not read it before a handshake, is closed.
                self.ctx.http.stats.ip_refused += 1;
                if a.kind == ListenKind::Tls {
                    self.flow().abort(k);
                } else {
                    super::request::refuse_connection(&mut self.conns[k], &mut self.ctx.http);
                }
            } else if a.kind == ListenKind::Tls {
                let acceptor = self.ctx.cfg.tls_acceptor.as_ref();
                if !super::tls::start(&mut self.conns[k], acceptor, self.ctx.http.now_us) {
                    self.flow().abort(k);
                }
            }
            if !self.conns.room() {
                self.listeners.pause(&mut self.io);
            }
            self.flow().settle(k);
        }
        self.listeners.arm(&mut self.io, draining);
    }

    fn run_timers(&mut self) {
        let now = self.ctx.now();
        while let Some(g) = self.gathers.expired(now) {
            self.finish_gather(g, false);
        }
        if now.is_multiple_of(10) {
            self.ups.sweep_idle(&mut self.io, &self.ctx.cfg, now);
        }
        if self.ups.any_health_checks() && !self.draining() {
            self.ups.run_probes(&mut self.io, &mut self.ctx);
        }
        self.flow().run_timers();
        self.after_event();
    }

    // ---- admin gathers ----

    fn start_gather(&mut self, x: ExchangeKey, ask: Ask) {
        let own = gathers::snapshot(
            &mut self.ctx,
            &mut self.io,
            self.conns.len(),
            &self.ups.queue_lengths(),
            ask.want(),
        );
        if let Some(g) = self.gathers.start(&self.ctx, x, ask, own) {
            self.finish_gather(g, true);
        }
    }

    fn finish_gather(&mut self, mut g: Gather, complete: bool) {
        if self
            .conns
            .get(g.exchange.conn)
            .is_none_or(|c| c.ep.aborting())
        {
            return; // the client left meanwhile
        }
        let page = g.render(&self.ctx, complete);
        self.flow().answer_admin(g.exchange, page, &g.ask);
    }

    // ---- supervisor messages ----

    fn on_wake(&mut self) {
        self.wake.completed();
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Shutdown => self.begin_drain(false),
                Msg::Retire => self.begin_drain(true),
                Msg::Rearm => {
                    let draining = self.draining();
                    self.listeners.rearm(&mut self.io, draining);
                }
                Msg::Peers(p) => self.gathers.set_peers(p),
                Msg::Scrape { from, id, want } => {
                    let snap = gathers::snapshot(
                        &mut self.ctx,
                        &mut self.io,
                        self.conns.len(),
                        &self.ups.queue_lengths(),
                        want,
                    );
                    self.gathers.reply(from, id, snap);
                }
                Msg::ScrapeReply { id, snap } => {
                    let workers = self.ctx.cfg.workers;
                    if let Some(g) = self.gathers.on_reply(id, *snap, workers) {
                        self.finish_gather(g, true);
                    }
                }
                Msg::Reset => self.ctx.http.recorder.reset(),
                Msg::ReopenLog => {
                    if let Some(l) = &mut self.ctx.http.log {
                        l.file.request_reopen();
                    }
                }
            }
        }
        self.wake.arm(self.io.driver(), Token::new(Op::Wake, 0, 0));
    }

    fn begin_drain(&mut self, graceful: bool) {
        if self.draining() {
            if !graceful {
                self.flow().close_idle();
            }
            return;
        }
        self.ctx.begin_drain(graceful);
        self.listeners.close(&mut self.io);
        self.flow().drain_conns(graceful);
    }
}
