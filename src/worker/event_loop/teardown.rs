//! What a worker gives back when it stops, normally or by a panic: every socket it still
//! owns is closed, so no client is left connected to a worker that no longer exists.

use super::Worker;
use crate::driver::{Op, Token};

impl Worker {
    /// Sends queued SQEs (closes among them), then closes what only this worker knows of:
    /// descriptors accepted but never seen (left in this turn's batch by a panic, or still
    /// in the driver's queue), and every open connection's socket. Registered (fixed)
    /// descriptors go with the ring itself.
    fn release_sockets(&mut self) {
        let _ = self.io.driver().submit();
        let mut cqes = std::mem::take(&mut self.cqes);
        let mut next = std::mem::take(&mut self.cq_next);
        loop {
            for c in cqes.get(next..).unwrap_or_default() {
                let accepted = Token::unpack(c.user_data).is_some_and(|t| t.op == Op::Accept);
                if accepted && c.result >= 0 && !self.listeners.fixed_files() {
                    crate::driver::close_owned(c.result);
                }
            }
            next = 0;
            self.io.driver().drain(&mut cqes);
            if cqes.is_empty() {
                break;
            }
        }
        self.conns.release_sockets();
        self.ups.release_sockets();
    }
}

impl Drop for Worker {
    /// Runs on a normal stop and while unwinding from a panic alike.
    fn drop(&mut self) {
        // A panicking worker still leaves its buffered log lines (when no write is in
        // flight; a normal stop has already waited for that one).
        if let Some(l) = self.ctx.http.log.as_mut() {
            l.file.write_rest_blocking();
        }
        self.release_sockets();
    }
}
