//! Gathering an admin page: the worker that got the request asks every worker (itself
//! included) for a snapshot over their channels and answers when all have replied. Nobody
//! blocks: replies arrive as messages, like any other event.

use crate::admin::{self, Ask};
use crate::stats::{RingInfo, Snapshot, Want, WorkerSnapshot};

use super::Msg;
use super::event_loop::Worker;
use super::request;
use crate::transport::Key;

/// How long a gather may wait for a worker that does not answer (ticks of 100 ms).
const GATHER_TICKS: u64 = 20;

pub struct Gather {
    id: u64,
    /// The client connection the page is for.
    conn: Key,
    ask: Ask,
    got: Vec<WorkerSnapshot>,
    started: u64,
}

impl Worker {
    /// This worker's part of a snapshot.
    pub(super) fn snapshot(&mut self, want: Want) -> WorkerSnapshot {
        let window = want.window;
        let now_s = self.http.now_s();
        let mut counters = self.http.stats.clone();
        if let Some(l) = &self.http.log {
            counters.log_dropped_lines = l.file.dropped_lines;
            counters.log_write_errors = l.file.errors;
        }
        WorkerSnapshot {
            id: self.id,
            cpu: self.cpu,
            counters,
            active: self.conns.len() as u64,
            ring: RingInfo {
                sq_entries: self.io.driver().sq_entries(),
                cq_entries: self.io.driver().cq_entries(),
                cq_overflow: self.io.driver().cq_overflow(),
                buffers: self.io.bufs_ref().count(),
                buffer_size: self.io.bufs_ref().buf_size(),
                backend: self.io.driver().kind().name(),
                features: self.io.driver().features().summary(),
            },
            total: self.http.recorder.total(window, now_s),
            routes: self.http.recorder.routes(window, now_s),
            upstream: self.http.recorder.upstream(window, now_s),
            history: match want.history_since {
                Some(since) => self.http.recorder.history(since, self.http.unix_s),
                None => Vec::new(),
            },
        }
    }

    pub(super) fn start_gather(&mut self, conn: Key, ask: Ask) {
        let id = self.next_gather;
        self.next_gather += 1;
        let want = ask.want();
        let own = self.snapshot(want);
        for (i, p) in self.peers.iter().enumerate() {
            if i != self.id {
                p.send(Msg::Scrape {
                    from: self.id,
                    id,
                    want,
                });
            }
        }
        self.gathers.push(Gather {
            id,
            conn,
            ask,
            got: vec![own],
            started: self.http.now_tick,
        });
        self.try_finish(id);
    }

    pub(super) fn on_scrape(&mut self, from: usize, id: u64, want: Want) {
        let snap = Box::new(self.snapshot(want));
        if let Some(p) = self.peers.get(from) {
            p.send(Msg::ScrapeReply { id, snap });
        }
    }

    pub(super) fn on_scrape_reply(&mut self, id: u64, snap: Box<WorkerSnapshot>) {
        if let Some(g) = self.gathers.iter_mut().find(|g| g.id == id) {
            g.got.push(*snap);
            self.try_finish(id);
        }
    }

    fn try_finish(&mut self, id: u64) {
        let Some(pos) = self.gathers.iter().position(|g| g.id == id) else {
            return;
        };
        if self.gathers[pos].got.len() >= self.cfg.workers {
            let g = self.gathers.swap_remove(pos);
            self.finish(g, true);
        }
    }

    /// Answers gathers that waited too long (a worker is stuck or gone) with 503.
    pub(super) fn expire_gathers(&mut self) {
        let now = self.http.now_tick;
        while let Some(pos) = self
            .gathers
            .iter()
            .position(|g| now >= g.started + GATHER_TICKS)
        {
            let g = self.gathers.swap_remove(pos);
            self.finish(g, false);
        }
    }

    fn finish(&mut self, mut g: Gather, complete: bool) {
        let k = g.conn;
        if self.conns.get(k).is_none_or(|c| c.ep.aborting()) {
            return; // the client left meanwhile
        }
        let (status, ctype, body) = if complete {
            g.got.sort_by_key(|w| w.id);
            let snap = Snapshot {
                window: g.ask.window,
                uptime_s: self.start.elapsed().as_secs(),
                now_unix: self.http.unix_s,
                workers: g.got,
            };
            admin::render_page(&g.ask, &snap)
        } else {
            (
                503,
                "text/plain",
                b"a worker did not answer in time\n".to_vec(),
            )
        };
        let c = &mut self.conns[k];
        let fx = request::admin_done(c, &mut self.http, status, ctype, &body, &g.ask);
        self.apply(k, fx);
        self.settle(k);
    }

    /// Clears every worker's histograms (this one at once, the others by message).
    pub(super) fn broadcast_reset(&mut self) {
        self.http.recorder.reset();
        for (i, p) in self.peers.iter().enumerate() {
            if i != self.id {
                p.send(Msg::Reset);
            }
        }
    }
}
