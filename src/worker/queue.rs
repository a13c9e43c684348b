//! `max_conns` admission: a request takes a slot of the server it goes to (counted over
//! every worker, `shield::slots`) or waits in its pool's FIFO queue on this worker, oldest
//! first, until a slot frees or `queue_timeout` passes (503 with Retry-After). A slot is
//! held from the attempt's start until its upstream connection is released (the response
//! read, or the attempt failed): with response buffering that is the backend's own time,
//! not the client's. Slots freed here wake this worker's queue at once; slots freed by
//! another worker are found by polling while anything waits (`poll_queues`).

use super::conn::ExchangeKey;
use super::flow::{Flow, Later};
use super::request;

/// Retry-After on a queue timeout: the backend was saturated for queue_timeout already.
const QUEUE_RETRY_AFTER_S: u32 = 5;

/// Whether a request may go to a server now.
pub(super) enum Admit {
    /// To this server (its slot taken, if the pool caps them).
    Server(usize),
    /// Every server in rotation is at max_conns (or others wait first).
    Wait,
    /// No server to try: down, or tried already for this request.
    NoServer,
}

impl Flow<'_> {
    /// Chooses a server for `x` of `pool` (skipping `tried`), taking a slot where the pool
    /// caps them. `fresh`: a new request, which queues behind any already waiting.
    pub(super) fn admit(&mut self, pool: usize, tried: u64, fresh: bool) -> Admit {
        let now = self.ctx.http.now_tick;
        let cfg = &*self.ctx.cfg;
        let (Some(max), Some(slots)) = (
            cfg.pools[pool].shield.max_conns,
            cfg.shield.slots.get(pool).and_then(|s| s.as_deref()),
        ) else {
            return match self.ups.pick(cfg, pool, now, tried) {
                Some(s) => Admit::Server(s),
                None => Admit::NoServer,
            };
        };
        if fresh && !self.ups.queues[pool].is_empty() {
            return Admit::Wait;
        }
        // Another worker may take the slot between the look and the take: a few rounds.
        for _ in 0..8 {
            let full = slots.full(max);
            match self.ups.pick(cfg, pool, now, tried | full) {
                Some(s) if slots.take(s, max) => return Admit::Server(s),
                Some(_) => continue,
                None if full & !tried != 0 => return Admit::Wait,
                None => return Admit::NoServer,
            }
        }
        Admit::Wait
    }

    /// Gives back the slot a released upstream connection held, and lets the queue on.
    pub(super) fn give_slot(&mut self, pool: usize, server: usize) {
        if let Some(s) = self.ctx.cfg.shield.slots.get(pool).and_then(|s| s.as_ref()) {
            s.give(server);
            if !self.ups.queues[pool].is_empty() {
                self.later.push_back(Later::Dequeue(pool));
            }
        }
    }

    /// `x` waits for a slot: at the back, or at the front if it was first already.
    pub(super) fn enqueue(&mut self, x: ExchangeKey, front: bool) {
        let (now, now_us) = (self.ctx.http.now_tick, self.ctx.http.now_us);
        let Some(p) = self.proxying(x) else { return };
        let pool = p.pool;
        if p.queued_since.is_none() {
            p.queued_since = Some(now);
            p.queued_us = now_us;
            self.ctx.http.stats.queued += 1;
        }
        self.note_waiting(pool);
        let q = &mut self.ups.queues[pool];
        if front {
            q.push_front(x);
        } else {
            q.push_back(x);
        }
        self.arm_timer(x.conn);
    }

    /// Starts the oldest waiting requests of `pool` while slots are free.
    pub(super) fn dequeue(&mut self, pool: usize) {
        while let Some(x) = self.ups.queues[pool].pop_front() {
            let Some(p) = self.proxying(x) else { continue };
            if p.queued_since.is_none() || p.up.is_some() {
                continue;
            }
            let tried = p.tried;
            match self.admit(pool, tried, false) {
                Admit::Wait => {
                    self.ups.queues[pool].push_front(x);
                    return;
                }
                Admit::Server(s) => {
                    self.left_queue(x);
                    self.attempt_on(x, s);
                }
                Admit::NoServer => {
                    // Answered here: proxy_attempt would take it for a new request and
                    // queue it again behind the others.
                    self.left_queue(x);
                    self.no_server(x, tried);
                }
            }
        }
    }

    /// Slots freed by other workers: polled every loop turn while requests wait here.
    pub fn poll_queues(&mut self) -> bool {
        let mut any = false;
        for pool in 0..self.ups.queues.len() {
            if !self.ups.queues[pool].is_empty() {
                self.dequeue(pool);
                if !self.ups.queues[pool].is_empty() {
                    self.note_waiting(pool);
                    any = true;
                }
            }
        }
        any
    }

    /// Tells the pool's supervisor (an `[[app]]`'s, which may start more instances) that
    /// requests wait here.
    fn note_waiting(&self, pool: usize) {
        if let Some(s) = self.ctx.cfg.shield.slots.get(pool).and_then(|s| s.as_ref()) {
            s.note_waiting(self.ctx.http.shared_now_us());
        }
    }

    /// `x` leaves the queue state (it is admitted, answered or gone): its wait is recorded.
    fn left_queue(&mut self, x: ExchangeKey) {
        let (now_us, now_s) = (self.ctx.http.now_us, self.ctx.http.now_s());
        let Some(p) = self.proxying(x) else { return };
        if p.queued_since.take().is_some() {
            let (pool, waited) = (p.pool, now_us.saturating_sub(p.queued_us));
            self.ctx.http.recorder.record_queue(pool, waited, now_s);
        }
    }

    /// `x` ends while it waits (the client left, the connection gave up on it).
    pub(super) fn unqueue(&mut self, x: ExchangeKey, pool: usize) {
        self.left_queue(x);
        self.ups.queues[pool].retain(|&e| e != x);
    }

    /// No slot freed up for `x` within queue_timeout: 503 with Retry-After, and the close
    /// (with request streaming, part of the body may still be unread).
    pub(super) fn queue_timeout(&mut self, x: ExchangeKey) {
        if let Some(pool) = self.conns[x.conn].exchanges.proxy(x.stream).map(|p| p.pool) {
            self.unqueue(x, pool);
        }
        let c = &mut self.conns[x.conn];
        request::fail_retry_after(c, &mut self.ctx.http, 503, QUEUE_RETRY_AFTER_S);
        self.settle(x.conn);
    }
}
