//! The upstreams part: the slab of upstream connections, their flush list, the per-server
//! pool state (idle connections, balancing, passive health) and the probes' jitter. Each
//! connection's socket-side life is here: opened with a connect, settled after every event
//! (send what is queued, keep a receive armed or paused), closed once the kernel holds
//! nothing of it. Active health checks are in `health.rs`; the exchange in `upstream.rs`.

use crate::config::Config;
use crate::config::upstream::Addr;
use crate::driver::connect::Connector;
use crate::driver::{Io, Sock};
use crate::proxy::exchange::UpstreamError;
use crate::transport::endpoint::UPSTREAM;
use crate::transport::{Key, Recv, Slab};

use super::ctx::{Ctx, to_ticks};
use super::pools::PoolState;
use super::upconn::{Splice, UpConn};

mod health;

pub(super) struct Upstreams {
    slab: Slab<UpConn>,
    dirty: Vec<Key>,
    pools: Vec<PoolState>,
    /// One reused copy of the latest received bytes (see `take_scratch`).
    scratch: Vec<u8>,
    /// Jitter source for health probe times.
    probe_rng: u64,
    any_health_checks: bool,
    /// Per pool: requests waiting for a max_conns slot, oldest first (`worker/queue.rs`).
    pub queues: Vec<std::collections::VecDeque<crate::worker::conn::ExchangeKey>>,
}

impl Upstreams {
    pub fn new(cfg: &Config, worker: usize) -> Upstreams {
        Upstreams {
            slab: Slab::with_capacity(0),
            dirty: Vec::new(),
            pools: cfg.pools.iter().map(PoolState::new).collect(),
            scratch: Vec::with_capacity(if cfg.pools.is_empty() { 0 } else { 64 * 1024 }),
            probe_rng: 0x9e37_79b9_7f4a_7c15
                ^ ((worker as u64 + 1) << 32)
                ^ std::process::id() as u64,
            any_health_checks: cfg.pools.iter().any(|p| p.health_interval.is_some()),
            queues: cfg.pools.iter().map(|_| Default::default()).collect(),
        }
    }

    /// Requests waiting for a slot, per pool (for the admin pages).
    pub fn queue_lengths(&self) -> Vec<u64> {
        self.queues.iter().map(|q| q.len() as u64).collect()
    }

    pub fn queues_empty(&self) -> bool {
        self.queues.iter().all(|q| q.is_empty())
    }

    #[inline]
    pub fn get(&self, u: Key) -> Option<&UpConn> {
        self.slab.get(u)
    }

    #[inline]
    pub fn get_mut(&mut self, u: Key) -> Option<&mut UpConn> {
        self.slab.get_mut(u)
    }

    pub fn any_health_checks(&self) -> bool {
        self.any_health_checks
    }

    /// A reused buffer to copy received bytes into, so the receive buffer goes back to the
    /// kernel before the exchange (which needs the other parts) runs. Give it back with
    /// `put_scratch`.
    pub fn take_scratch(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.scratch);
        v.clear();
        v
    }

    pub fn put_scratch(&mut self, v: Vec<u8>) {
        self.scratch = v;
    }

    /// Opens a connection to `server` of `pool` and starts its connect.
    pub fn open(
        &mut self,
        io: &mut Io,
        cfg: &Config,
        pool: usize,
        server: usize,
    ) -> std::io::Result<Key> {
        let s = &cfg.pools[pool].servers[server];
        let connector = match &s.addr {
            Addr::Tcp(a) => Connector::tcp(a),
            Addr::Unix(p) => Connector::unix(p)?,
        };
        let fd = crate::driver::connect::stream_socket(connector.family())?;
        // AF_UNIX: single-shot receives (a multishot receive can miss the EOF there).
        let unix = connector.family() == libc::AF_UNIX;
        let proto = s.proto;
        let u = self.slab.insert(UpConn::new, |_| {});
        let up = &mut self.slab[u];
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
        up.ep.connect(io, u, &UPSTREAM);
        Ok(u)
    }

    /// After any event on an upstream connection: send what is queued, keep a receive
    /// armed (or paused), free the slot once the kernel holds nothing of it. True when a
    /// chosen splice may start now (its receive has stopped): the exchange starts it.
    #[must_use]
    pub fn settle(&mut self, io: &mut Io, u: Key) -> bool {
        let Some(up) = self.slab.get_mut(u) else {
            return false;
        };
        if up.ep.aborting() {
            if up.ep.close_when_idle(io, u) {
                *up = UpConn {
                    ep: std::mem::take(&mut up.ep),
                    ..UpConn::new()
                };
                up.ep.connector = None;
                self.slab.remove(u);
            }
            return false;
        }
        if !up.connected {
            return false;
        }
        if up.ep.has_unsent() && !up.ep.dirty {
            up.ep.dirty = true;
            self.dirty.push(u);
        }
        if up.splice != Splice::No {
            // Splicing: no receive may compete with the segment for the socket's bytes.
            match up.ep.recv_state() {
                Recv::Armed | Recv::Cancelling { .. } => up.ep.pause_input(io, u, &UPSTREAM),
                _ => return up.splice == Splice::Pending,
            }
            return false;
        }
        if up.hold_input {
            up.ep.pause_input(io, u, &UPSTREAM);
        } else {
            up.ep.want_input(io, u, &UPSTREAM);
        }
        false
    }

    /// Settles a connection that serves no client (idle, probing or closing): it never
    /// has a splice to start.
    fn settle_alone(&mut self, io: &mut Io, u: Key) {
        let splice = self.settle(io, u);
        debug_assert!(!splice, "a splice without a client");
    }

    /// Stops everything on an upstream connection; the slot is freed once the kernel has
    /// returned every op.
    pub fn close(&mut self, io: &mut Io, u: Key) {
        let Some(up) = self.slab.get_mut(u) else {
            return;
        };
        up.ep.abort(io, u, &UPSTREAM);
        self.settle_alone(io, u);
    }

    /// Sends what every dirty connection queued; those whose bytes could not be encrypted
    /// (TLS) are listed in `broken` for the caller to fail.
    pub fn flush(&mut self, io: &mut Io, broken: &mut Vec<Key>) {
        for &u in &self.dirty {
            if let Some(up) = self.slab.get_mut(u) {
                if !up.connected {
                    up.ep.dirty = false;
                } else if !up.ep.flush(io, u, &UPSTREAM, usize::MAX) {
                    broken.push(u);
                }
            }
        }
        self.dirty.clear();
    }

    /// No upstream connection holds an op with the kernel any more.
    pub fn quiet(&self) -> bool {
        self.slab.iter().all(|(_, up)| !up.ep.ops_in_flight())
    }

    /// Closes every upstream socket still open (the worker is going away).
    pub fn release_sockets(&mut self) {
        for up in self.slab.values_mut() {
            if let Some(fd) = up.ep.take_fd() {
                crate::driver::close_owned(fd);
            }
        }
    }

    /// Closes idle pooled connections past their keepalive_timeout (once a second).
    pub fn sweep_idle(&mut self, io: &mut Io, cfg: &Config, now: u64) {
        for pool in 0..self.pools.len() {
            let keep = to_ticks(cfg.pools[pool].keepalive_timeout);
            for server in 0..self.pools[pool].servers.len() {
                let idle = std::mem::take(&mut self.pools[pool].servers[server].idle);
                let (keep_list, expired): (Vec<Key>, Vec<Key>) = idle.into_iter().partition(|&u| {
                    self.slab
                        .get(u)
                        .is_some_and(|up| !up.ep.aborting() && up.since + keep > now)
                });
                self.pools[pool].servers[server].idle = keep_list;
                for u in expired {
                    self.close(io, u);
                }
            }
        }
    }

    #[inline]
    pub fn connected(&self, u: Key) -> bool {
        self.slab.get(u).is_some_and(|up| up.connected)
    }

    /// Request bytes not yet taken by the upstream's kernel.
    #[inline]
    pub fn backlog(&self, u: Key) -> usize {
        self.slab.get(u).map_or(0, |up| up.ep.out.len())
    }

    /// Picks a server of `pool` that is up and not in `tried` (`PoolState::pick`).
    pub fn pick(&mut self, cfg: &Config, pool: usize, now: u64, tried: u64) -> Option<usize> {
        self.pools[pool].pick(&cfg.pools[pool], now, tried)
    }

    /// Connection `u` now serves a request (least_conn counts it).
    pub fn begin(&mut self, u: Key) {
        let up = &self.slab[u];
        self.pools[up.pool].servers[up.server].active += 1;
    }

    /// An idle keep-alive connection to `server` that is alive and fresh, if there is one
    /// (stale ones met on the way are closed).
    pub fn take_idle(
        &mut self,
        io: &mut Io,
        cfg: &Config,
        pool: usize,
        server: usize,
        now: u64,
    ) -> Option<Key> {
        let keep_ticks = to_ticks(cfg.pools[pool].keepalive_timeout);
        while let Some(u) = self.pools[pool].servers[server].idle.pop() {
            if self
                .slab
                .get(u)
                .is_some_and(|up| !up.ep.aborting() && up.since + keep_ticks > now)
            {
                return Some(u);
            }
            self.close(io, u);
        }
        None
    }

    /// Detaches a connection from its client: back to the idle pool, or closed.
    pub fn release(&mut self, io: &mut Io, cfg: &Config, now: u64, u: Key, reusable: bool) {
        let Some(up) = self.slab.get_mut(u) else {
            return;
        };
        let pc = &cfg.pools[up.pool];
        let (keepalive, max_req) = (pc.keepalive, pc.keepalive_requests);
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
            && !up.ep.aborting()
        {
            up.since = now;
            up.resp = None;
            up.hold_input = false; // an idle connection keeps a receive armed to notice a close
            up.splice = Splice::No;
            idle.push(u);
            self.settle_alone(io, u);
        } else {
            self.close(io, u);
        }
    }

    /// Counts an upstream failure and says why on stderr, at most once a second per worker
    /// (a dead backend under load must not flood the log).
    pub fn error(&self, ctx: &mut Ctx, u: Key, e: &UpstreamError) {
        ctx.http.stats.upstream_errors += 1;
        let up = &self.slab[u];
        let url = &ctx.cfg.pools[up.pool].servers[up.server].url;
        let (id, now) = (ctx.id, ctx.http.now_tick);
        ctx.http
            .errlog
            .line(id, now, || format!("upstream {url}: {}", e.why()));
    }
}

impl std::ops::Index<Key> for Upstreams {
    type Output = UpConn;
    fn index(&self, u: Key) -> &UpConn {
        &self.slab[u]
    }
}

impl std::ops::IndexMut<Key> for Upstreams {
    fn index_mut(&mut self, u: Key) -> &mut UpConn {
        &mut self.slab[u]
    }
}
