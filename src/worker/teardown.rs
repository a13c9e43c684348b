//! What a worker gives back when it stops, normally or by a panic: every socket it still
//! owns is closed, so no client is left connected to a worker that no longer exists.

use super::event_loop::Worker;
use crate::driver::{Op, Token};

impl Worker {
    /// Sends queued SQEs (closes among them), then closes what only this worker knows of:
    /// descriptors accepted into the CQ but never seen, and every open connection's socket.
    /// Registered (fixed) descriptors go with the ring itself.
    pub(super) fn release_sockets(&mut self) {
        let _ = self.ring.submit();
        let mut cqes = Vec::with_capacity(256);
        loop {
            self.ring.drain(&mut cqes);
            if cqes.is_empty() {
                break;
            }
            for c in &cqes {
                let accepted = Token::unpack(c.user_data).is_some_and(|t| t.op == Op::Accept);
                if accepted && c.result >= 0 && !self.fixed_files {
                    crate::ring::close_owned(c.result);
                }
            }
        }
        for c in &mut self.conns {
            if c.open && !c.fixed && c.fd >= 0 {
                crate::ring::close_owned(std::mem::replace(&mut c.fd, -1));
            }
        }
        self.release_upstream_sockets();
    }
}

impl Drop for Worker {
    /// Runs on a normal stop and while unwinding from a panic alike.
    fn drop(&mut self) {
        self.release_sockets();
    }
}
