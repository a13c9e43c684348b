//! A client connection's life, carried out: receive, hand the bytes to request handling,
//! apply the effects it returns, send, time out, close. `Flow` borrows just the parts a
//! connection touches (context, I/O, clients, upstreams); listeners and gathers stay out
//! of reach, and what needs them (an admin gather, a reset for every worker) is handed
//! back to the worker as `Later`, applied as soon as the event returns.

use std::collections::VecDeque;

use crate::admin::Ask;
use crate::driver::outq::SendResult;
use crate::driver::{Completion, Io, Token};
use crate::transport::endpoint::CLIENT;
use crate::transport::{Key, Received};

use super::clients::Clients;
use super::conn::{Conn, ExchangeKey, Phase};
use super::ctx::{Ctx, to_ticks};
use super::request::{self, Effects, OUT_LOW, Start};
use super::tls::Outcome;
use super::upstreams::Upstreams;

/// What a connection's event asks of the parts `Flow` does not hold.
pub(super) enum Later {
    /// An admin `POST /reset`: every worker's histograms.
    Reset,
    /// Gather an admin page from every worker for this exchange.
    Gather(ExchangeKey, Ask),
    /// A max_conns slot of this pool was given back: start its oldest waiting request.
    Dequeue(usize),
}

pub(super) struct Flow<'a> {
    pub ctx: &'a mut Ctx,
    pub io: &'a mut Io,
    pub conns: &'a mut Clients,
    pub ups: &'a mut Upstreams,
    pub later: &'a mut VecDeque<Later>,
}

impl Flow<'_> {
    pub fn on_recv(&mut self, t: Token, c: Completion) {
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
        let http = &mut self.ctx.http;
        match conn.ep.on_recv(&c) {
            Received::Data => {
                if let Some(mut b) = buf {
                    http.stats.bytes_in += c.result as u64;
                    if conn.ep.aborting() {
                    } else if conn.ep.tls.is_some() {
                        let data = self.io.bufs().data_mut(&mut b);
                        match super::tls::on_data(conn, http, data, up_backlog) {
                            Outcome::Done(f) => fx = f,
                            Outcome::Deferred => {
                                if !conn.tls_deferred {
                                    conn.tls_deferred = true;
                                    http.stats.tls.deferred += 1;
                                    self.conns.defer_handshake(k);
                                }
                            }
                            Outcome::Flooded => {
                                self.io.bufs().recycle(b);
                                return self.abort(k);
                            }
                        }
                    } else {
                        let data = self.io.bufs_ref().data(&b);
                        fx = request::on_data(conn, http, data, up_backlog);
                    }
                    self.io.bufs().recycle(b);
                }
            }
            Received::NoBuffers => http.stats.enobufs += 1, // re-armed by settle
            Received::Eof | Received::Cancelled => {}
            Received::Failed(_) => self.abort(k),
        }
        self.apply(k, fx);
        self.settle(k);
    }

    /// Runs the handshakes the last turn put off, oldest first, as far as this turn's budget
    /// goes. True if some still wait (the loop must not sleep on them).
    pub fn run_deferred_handshakes(&mut self) -> bool {
        if !self.conns.has_deferred() {
            return false;
        }
        let mut list = self.conns.take_deferred();
        let mut done = 0;
        for &k in &list {
            if self.ctx.http.handshake_budget == 0 {
                break;
            }
            done += 1;
            let up_backlog = self.up_backlog_of(k);
            let Some(conn) = self.conns.get_mut(k).filter(|c| c.tls_deferred) else {
                continue;
            };
            conn.tls_deferred = false;
            if conn.ep.aborting() {
                continue;
            }
            match super::tls::on_data(conn, &mut self.ctx.http, &mut [], up_backlog) {
                Outcome::Done(fx) => self.apply(k, fx),
                Outcome::Deferred => {} // cannot happen: the budget was checked
                Outcome::Flooded => self.abort(k),
            }
            self.settle(k);
        }
        list.drain(..done);
        let waiting = !list.is_empty();
        self.conns.put_back_deferred(list);
        waiting
    }

    /// Carries out what request handling asked for: a proxy exchange starts at once; what
    /// needs the worker's other parts is queued for it (`Later`). Called after every call
    /// into request handling, so this is also where an exchange the codec gave up on (an
    /// error answer, the connection now lingering) ends at once, with its upstream
    /// connection, and whatever it asked to start with it is dropped.
    pub fn apply(&mut self, k: Key, fx: Effects) {
        if fx.reset {
            self.later.push_back(Later::Reset);
        }
        if let Some(c) = self.conns.get(k)
            && matches!(c.phase, Phase::Linger)
            && !c.exchanges.is_empty()
        {
            return self.end_exchanges(k);
        }
        match fx.start {
            Some(Start::Proxy { stream }) => self.proxy_attempt(ExchangeKey { conn: k, stream }),
            Some(Start::Gather { stream, ask }) => {
                let x = ExchangeKey { conn: k, stream };
                self.later.push_back(Later::Gather(x, ask));
            }
            None => {}
        }
    }

    pub fn on_shutdown(&mut self, t: Token) {
        let k = Key::of(t);
        if let Some(c) = self.conns.get_mut(k) {
            c.ep.on_shutdown();
            self.settle(k);
        }
    }

    pub fn on_send(&mut self, t: Token, c: Completion) {
        let k = Key::of(t);
        let now = self.ctx.now();
        let Some(conn) = self.conns.get_mut(k) else {
            return;
        };
        match conn.ep.on_send(&c) {
            SendResult::Progress => {
                conn.last_send_tick = now;
                self.ctx.http.stats.bytes_out += c.result as u64;
                request::record_sent(conn, &mut self.ctx.http);
            }
            SendResult::Notif => {}
            SendResult::Failed(_) => self.abort(k),
        }
        self.settle(k);
    }

    /// After any event on a connection: decide what it needs next. The one place that
    /// arms recv, schedules sends, starts closes and frees slots.
    pub fn settle(&mut self, k: Key) {
        let now = self.ctx.now();
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        if c.ep.aborting() {
            if c.ep.close_when_idle(self.io, k) {
                self.conns.free(k);
            }
            return;
        }
        if !c.exchanges.is_empty() {
            if matches!(c.phase, Phase::Linger) {
                // The codec gave up on the connection (an error answer): its exchanges end.
                self.end_exchanges(k);
            } else {
                // Each proxied exchange moves its request bytes on.
                let mut at = None;
                while let Some(stream) = self.conns[k].exchanges.next_proxy_stream(at) {
                    self.settle_proxy(ExchangeKey { conn: k, stream });
                    if self.conns.get(k).is_none_or(|c| c.ep.aborting()) {
                        return;
                    }
                    at = Some(stream);
                }
            }
        }
        // Resume input once the client has read enough of its answers (and the upstream
        // has taken enough of the body); handling the stash may hold it again.
        let c = &mut self.conns[k];
        if c.hold_input && c.ep.unsent() < OUT_LOW {
            c.hold_input = false;
            if !c.inbuf.is_empty() {
                let up_backlog = self.up_backlog_of(k);
                let fx = request::consume_stash(&mut self.conns[k], &mut self.ctx.http, up_backlog);
                self.apply(k, fx);
                if self.conns.get(k).is_none_or(|c| c.ep.aborting()) {
                    return self.settle(k);
                }
            }
        }
        let c = &mut self.conns[k];
        if c.ep.has_unsent() {
            if !c.ep.dirty && !c.ep.sending() {
                c.last_send_tick = now; // a fresh send starts its own send_timeout
            }
            self.conns.mark_dirty(k);
        } else if !c.ep.sending() {
            let read_closed = c.ep.read_closed();
            if c.close_after_flush || (read_closed && matches!(c.phase, Phase::Head)) {
                if read_closed {
                    return self.abort(k);
                }
                if c.ep.close_notify() {
                    // TLS: close_notify goes out first; this runs again once it has.
                    self.conns.mark_dirty(k);
                    return self.arm_timer(k);
                }
                if !c.ep.shut_down() {
                    // Lingering close: our answer is out; read and discard until the peer
                    // closes, so unread input does not turn our close into a reset that
                    // eats the answer.
                    c.phase = Phase::Linger;
                    c.since = now;
                    c.ep.shutdown_write(self.io, k, &CLIENT);
                }
            } else if read_closed {
                // The peer stopped sending in the middle of a request: nothing to answer.
                return self.abort(k);
            } else if matches!(c.phase, Phase::Head) && c.inbuf.is_empty() && !c.idle {
                c.idle = true;
                c.since = now;
            }
        }
        let c = &mut self.conns[k];
        if c.wants_input() {
            c.ep.want_input(self.io, k, &CLIENT);
        } else if c.hold_input {
            c.ep.pause_input(self.io, k, &CLIENT);
        }
        self.arm_timer(k);
    }

    /// Request bytes of `k`'s proxied requests still queued towards their upstreams.
    #[inline]
    fn up_backlog_of(&self, k: Key) -> usize {
        let Some(c) = self.conns.get(k) else { return 0 };
        c.exchanges
            .proxies()
            .filter_map(|(_, p)| p.up)
            .map(|u| self.ups.backlog(u))
            .sum()
    }

    #[inline]
    fn deadline(&self, c: &Conn) -> u64 {
        let t = &self.ctx.ticks;
        if c.ep.has_unsent() || c.ep.sending() {
            return c.last_send_tick.max(c.since) + t.send;
        }
        match c.phase {
            Phase::Linger => c.since + t.linger,
            // The soonest of its exchanges' (gathers have their own deadline: keep the
            // connection meanwhile).
            Phase::Exchange => c
                .exchanges
                .proxies()
                .map(|(_, p)| {
                    let pc = &self.ctx.cfg.pools[p.pool];
                    if let Some(at) = p.queued_since {
                        return at + to_ticks(pc.shield.queue_timeout);
                    }
                    let to = match p.up {
                        // A body being held: the client's gap timeout.
                        None if !p.req_done => {
                            return (c.since + t.body).min(c.body_start + t.body_deadline);
                        }
                        Some(u) if !self.ups.connected(u) => pc.connect_timeout,
                        Some(u) if !p.req_done || self.ups.backlog(u) > 0 => pc.send_timeout,
                        _ => pc.read_timeout,
                    };
                    let gap = c.since + to_ticks(to);
                    if p.req_done {
                        gap
                    } else {
                        gap.min(c.body_start + t.body_deadline)
                    }
                })
                .min()
                .unwrap_or(c.since + t.keepalive),
            Phase::Body(_) => (c.since + t.body).min(c.body_start + t.body_deadline),
            Phase::Head if c.idle && c.requests > 0 => c.since + t.keepalive,
            Phase::Head => c.since + t.header,
        }
    }

    #[inline]
    pub fn arm_timer(&mut self, k: Key) {
        let d = self.deadline(&self.conns[k]);
        self.conns.schedule(k, d);
    }

    /// The wheel's due connections: re-filed if their deadline moved on, expired if not.
    pub fn run_timers(&mut self) {
        let now = self.ctx.now();
        let due = self.conns.take_due(now);
        for &k in &due {
            // An earlier expiry in this batch may have closed it meanwhile.
            let Some(c) = self.conns.get(k).filter(|c| !c.ep.aborting()) else {
                continue;
            };
            if self.deadline(c) > now {
                self.arm_timer(k);
            } else {
                self.expire(k);
            }
        }
        self.conns.done_due(due);
    }

    fn expire(&mut self, k: Key) {
        let c = &self.conns[k];
        let busy = c.ep.has_unsent() || c.ep.sending();
        let body_late = self.ctx.now() >= c.body_start + self.ctx.ticks.body_deadline;
        let stats = &mut self.ctx.http.stats;
        let t = &mut stats.timeouts;
        let proxied = c.exchanges.proxies().next();
        // A proxied request whose body is still coming past body_deadline, or that stalled
        // while uringd holds it (no server chosen yet: the client is late, not a server).
        let body_overdue = !busy
            && proxied.is_some_and(|(_, p)| {
                !p.req_done && !p.resp_started && (body_late || p.up.is_none())
            });
        let queued = !busy && proxied.is_some_and(|(_, p)| p.queued_since.is_some());
        match &c.phase {
            _ if busy => t.send += 1,
            Phase::Exchange if body_overdue => t.body += 1,
            Phase::Exchange if queued => t.queue += 1,
            Phase::Exchange if proxied.is_some() => t.upstream += 1,
            Phase::Body(_) => t.body += 1,
            // An idle keep-alive connection at keepalive_timeout: its normal end.
            Phase::Head if c.idle && c.requests > 0 => stats.idle_closes += 1,
            Phase::Head => t.header += 1,
            // The lingering close and an admin gather ran out: nothing was owed.
            Phase::Linger | Phase::Exchange => {}
        }
        if matches!(c.phase, Phase::Exchange) {
            if queued && let Some((stream, _)) = proxied {
                // No slot of max_conns freed up in queue_timeout: 503, try again later.
                return self.queue_timeout(ExchangeKey { conn: k, stream });
            }
            if body_overdue {
                // The client is still sending the body past body_deadline: 408, and the
                // upstream connection ends with the exchange.
                let c = &mut self.conns[k];
                request::fail(c, &mut self.ctx.http, 408);
                c.since = self.ctx.now();
                return self.settle(k);
            }
            if let Some((stream, p)) = proxied
                && !p.resp_started
                && !c.ep.has_unsent()
            {
                // The upstream is too slow: 504, and it counts against its health.
                return self.proxy_timeout(ExchangeKey { conn: k, stream });
            }
            return self.abort(k);
        }
        let c = &mut self.conns[k];
        let partial =
            matches!(c.phase, Phase::Body(_)) || (matches!(c.phase, Phase::Head) && !c.idle);
        if !busy && partial && !c.close_after_flush {
            // A request was under way: tell the client why we give up on it.
            request::fail(c, &mut self.ctx.http, 408);
            c.since = self.ctx.now();
            self.settle(k);
        } else {
            self.abort(k);
        }
    }

    /// Stops everything on a connection; its slot is freed once the kernel returns all ops.
    pub fn abort(&mut self, k: Key) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        if c.ep.aborting() {
            return;
        }
        c.ep.abort(self.io, k, &CLIENT);
        if !c.exchanges.is_empty() {
            self.end_exchanges(k);
        }
        if self.conns[k].ep.close_when_idle(self.io, k) {
            self.conns.free(k);
        }
    }

    /// The admin page gathered for `x` is ready: answer it (if the client is still there).
    pub fn answer_admin(&mut self, x: ExchangeKey, page: (u16, &'static str, Vec<u8>), ask: &Ask) {
        let k = x.conn;
        let Some(c) = self.conns.get_mut(k).filter(|c| !c.ep.aborting()) else {
            return; // the client left meanwhile
        };
        if c.exchanges.get(x.stream).is_none() {
            return; // that exchange is over (the connection gave up on it)
        }
        let (status, ctype, body) = page;
        let fx = request::admin_done(c, &mut self.ctx.http, status, ctype, &body, ask);
        self.apply(k, fx);
        self.settle(k);
    }
}
