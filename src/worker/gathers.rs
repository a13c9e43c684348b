//! The gathers part: an admin page is gathered from every worker (this one included),
//! which are asked for a snapshot over their channels; the page is answered when all have
//! replied. Nobody blocks: replies arrive as messages, like any other event. Also where
//! the other workers are known (`peers`), for scrapes and for resets.

use crate::admin::{self, Ask};
use crate::driver::Io;
use crate::stats::{PoolQueue, RingInfo, Snapshot, Want, WorkerSnapshot};

use super::conn::ExchangeKey;
use super::ctx::Ctx;
use super::{Msg, Peer};

/// How long a gather may wait for a worker that does not answer (ticks of 100 ms).
const GATHER_TICKS: u64 = 20;

pub(super) struct Gather {
    id: u64,
    /// The exchange (client connection and stream) the page is for.
    pub exchange: ExchangeKey,
    pub ask: Ask,
    got: Vec<WorkerSnapshot>,
    started: u64,
}

#[derive(Default)]
pub(super) struct Gathers {
    list: Vec<Gather>,
    next_id: u64,
    peers: Vec<Peer>,
}

/// This worker's part of a snapshot. `live`: its client connections.
pub(super) fn snapshot(
    ctx: &mut Ctx,
    io: &mut Io,
    live: usize,
    waiting: &[u64],
    want: Want,
) -> WorkerSnapshot {
    let window = want.window;
    let h = &mut ctx.http;
    let now_s = h.now_s();
    let mut counters = h.stats.clone();
    if let Some(l) = &h.log {
        counters.log_dropped_lines = l.file.dropped_lines;
        counters.log_write_errors = l.file.errors;
    }
    WorkerSnapshot {
        id: ctx.id,
        cpu: ctx.cpu,
        counters,
        active: live as u64,
        ring: RingInfo {
            sq_entries: io.driver().sq_entries(),
            cq_entries: io.driver().cq_entries(),
            cq_overflow: io.driver().cq_overflow(),
            buffers: io.bufs_ref().count(),
            buffer_size: io.bufs_ref().buf_size(),
            backend: io.driver().kind().name(),
            features: io.driver().features().summary(),
        },
        total: h.recorder.total(window, now_s),
        routes: h.recorder.routes(window, now_s),
        upstream: h.recorder.upstream(window, now_s),
        handshakes: h.recorder.handshakes(window, now_s),
        queues: h
            .recorder
            .queues(window, now_s)
            .into_iter()
            .map(|(pool, wait)| {
                let i = ctx.cfg.pools.iter().position(|p| p.name == pool);
                PoolQueue {
                    waiting: i.and_then(|i| waiting.get(i)).copied().unwrap_or(0),
                    pool,
                    wait,
                }
            })
            .collect(),
        history: match want.history_since {
            Some(since) => h.recorder.history(since, h.unix_s),
            None => Vec::new(),
        },
    }
}

impl Gathers {
    pub fn set_peers(&mut self, p: Vec<Peer>) {
        self.peers = p;
    }

    /// Starts gathering the page `ask` for `exchange`, with this worker's own part `own`.
    /// Returns the gather if that was all it needed (a single worker).
    pub fn start(
        &mut self,
        ctx: &Ctx,
        exchange: ExchangeKey,
        ask: Ask,
        own: WorkerSnapshot,
    ) -> Option<Gather> {
        let id = self.next_id;
        self.next_id += 1;
        let want = ask.want();
        for (i, p) in self.peers.iter().enumerate() {
            if i != ctx.id {
                p.send(Msg::Scrape {
                    from: ctx.id,
                    id,
                    want,
                });
            }
        }
        self.list.push(Gather {
            id,
            exchange,
            ask,
            got: vec![own],
            started: ctx.now(),
        });
        self.complete(id, ctx.cfg.workers)
    }

    /// Another worker asked for this one's part.
    pub fn reply(&self, from: usize, id: u64, snap: WorkerSnapshot) {
        if let Some(p) = self.peers.get(from) {
            p.send(Msg::ScrapeReply {
                id,
                snap: Box::new(snap),
            });
        }
    }

    /// A part arrived. Returns the gather once every worker's part is in.
    pub fn on_reply(&mut self, id: u64, snap: WorkerSnapshot, workers: usize) -> Option<Gather> {
        let g = self.list.iter_mut().find(|g| g.id == id)?;
        g.got.push(snap);
        self.complete(id, workers)
    }

    fn complete(&mut self, id: u64, workers: usize) -> Option<Gather> {
        let pos = self.list.iter().position(|g| g.id == id)?;
        (self.list[pos].got.len() >= workers).then(|| self.list.swap_remove(pos))
    }

    /// A gather that waited too long (a worker is stuck or gone), if any.
    pub fn expired(&mut self, now: u64) -> Option<Gather> {
        let pos = self
            .list
            .iter()
            .position(|g| now >= g.started + GATHER_TICKS)?;
        Some(self.list.swap_remove(pos))
    }

    /// Clears every worker's histograms (this one at once, the others by message).
    pub fn broadcast_reset(&self, ctx: &mut Ctx) {
        ctx.http.recorder.reset();
        for (i, p) in self.peers.iter().enumerate() {
            if i != ctx.id {
                p.send(Msg::Reset);
            }
        }
    }
}

impl Gather {
    /// The page: rendered from every part (`complete`), or a 503 naming why not.
    pub fn render(&mut self, ctx: &Ctx, complete: bool) -> (u16, &'static str, Vec<u8>) {
        if !complete {
            let why = b"a worker did not answer in time\n".to_vec();
            return (503, "text/plain", why);
        }
        let mut workers = std::mem::take(&mut self.got);
        workers.sort_by_key(|w| w.id);
        let snap = Snapshot {
            window: self.ask.window,
            uptime_s: ctx.uptime().as_secs(),
            now_unix: ctx.http.unix_s,
            workers,
        };
        // The [[app]] instances: the supervisor's list, not a worker's part.
        let apps = match self.ask.page {
            admin::Page::Metrics | admin::Page::Dashboard => {
                crate::apps::report::view(&ctx.http.shield, &ctx.http.pools_names)
            }
            _ => Vec::new(),
        };
        let (status, ctype, mut body) = admin::render_page(&self.ask, &snap, &apps);
        if matches!(self.ask.page, admin::Page::Metrics) && status == 200 {
            body.extend_from_slice(crate::apps::report::prometheus(&apps).as_bytes());
        }
        (status, ctype, body)
    }
}
