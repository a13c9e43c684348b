//! Draining the client connections when the worker stops (close what is idle, let what is
//! under way finish with `Connection: close`) or retires (idle ones get a short grace).

use super::conn::Phase;
use super::flow::Flow;

impl Flow<'_> {
    pub fn drain_conns(&mut self, graceful: bool) {
        for k in self.conns.keys() {
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
                for p in c.exchanges.proxies_mut() {
                    p.keep_alive = false;
                }
                self.settle(k);
            }
        }
    }

    /// Closes every idle connection now (a stop after a graceful drain began).
    pub fn close_idle(&mut self) {
        for k in self.conns.keys() {
            if self
                .conns
                .get(k)
                .is_some_and(|c| !c.ep.aborting() && c.is_idle())
            {
                self.abort(k);
            }
        }
    }

    pub fn abort_all(&mut self) {
        for k in self.conns.keys() {
            self.abort(k);
        }
    }
}
