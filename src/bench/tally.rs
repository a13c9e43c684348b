//! What a thread counted: latency histograms, status classes and errors. Threads send one
//! per second (an interval) and the coordinator adds them up, so memory stays fixed however
//! long the run.

use crate::stats::series::{Hist, MAX_US, new_hist};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Errors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
    pub parse: u64,
    /// TLS handshakes (or records) that failed.
    pub tls: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout + self.parse + self.tls
    }

    fn add(&mut self, o: &Errors) {
        self.connect += o.connect;
        self.read += o.read;
        self.write += o.write;
        self.timeout += o.timeout;
        self.parse += o.parse;
        self.tls += o.tls;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Connect,
    Read,
    Write,
    Timeout,
    Parse,
    Tls,
}

#[derive(Clone)]
pub struct Tally {
    /// From each request's intended send time (open loop) or its send time (closed loop).
    pub corrected: Hist,
    /// From the moment the request was handed to the kernel.
    pub uncorrected: Hist,
    pub completed: u64,
    pub bytes: u64,
    /// Responses by status class: [1xx, 2xx, 3xx, 4xx, 5xx].
    pub status: [u64; 5],
    pub errors: Errors,
    /// TLS handshakes completed: full, and resumed from a ticket.
    pub handshakes: [u64; 2],
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            corrected: new_hist(),
            uncorrected: new_hist(),
            completed: 0,
            bytes: 0,
            status: [0; 5],
            errors: Errors::default(),
            handshakes: [0; 2],
        }
    }
}

fn us(ns: u64) -> u64 {
    (ns / 1000).clamp(1, MAX_US)
}

impl Tally {
    pub fn response(&mut self, status: u16, corrected_ns: u64, uncorrected_ns: u64) {
        self.completed += 1;
        if let Some(s) = self
            .status
            .get_mut(usize::from(status / 100).wrapping_sub(1))
        {
            *s += 1;
        }
        self.latency(corrected_ns, uncorrected_ns);
    }

    /// A timed-out request still has a latency: the time it was given.
    pub fn latency(&mut self, corrected_ns: u64, uncorrected_ns: u64) {
        let _ = self.corrected.record(us(corrected_ns));
        let _ = self.uncorrected.record(us(uncorrected_ns));
    }

    pub fn error(&mut self, kind: ErrorKind) {
        let e = &mut self.errors;
        match kind {
            ErrorKind::Connect => e.connect += 1,
            ErrorKind::Read => e.read += 1,
            ErrorKind::Write => e.write += 1,
            ErrorKind::Timeout => e.timeout += 1,
            ErrorKind::Parse => e.parse += 1,
            ErrorKind::Tls => e.tls += 1,
        }
    }

    pub fn merge(&mut self, o: &Tally) {
        // Same bounds everywhere, so adding cannot fail.
        let _ = self.corrected.add(&o.corrected);
        let _ = self.uncorrected.add(&o.uncorrected);
        self.completed += o.completed;
        self.bytes += o.bytes;
        for (a, b) in self.status.iter_mut().zip(o.status) {
            *a += b;
        }
        self.errors.add(&o.errors);
        for (a, b) in self.handshakes.iter_mut().zip(o.handshakes) {
            *a += b;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.completed == 0 && self.errors.total() == 0 && self.corrected.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_merges() {
        let mut a = Tally::default();
        a.response(200, 2_000_000, 1_000_000);
        a.response(503, 10, 10);
        a.error(ErrorKind::Timeout);
        a.latency(5_000_000_000, 5_000_000_000);
        let mut b = Tally::default();
        b.response(404, 3_000_000, 3_000_000);
        b.error(ErrorKind::Connect);
        b.merge(&a);
        assert_eq!(b.completed, 3);
        assert_eq!(b.status, [0, 1, 0, 1, 1]);
        assert_eq!(b.errors.total(), 2);
        assert_eq!(b.corrected.len(), 4);
        // Sub-microsecond values count as 1 us rather than vanishing.
        assert_eq!(b.corrected.min(), 1);
        assert!(b.corrected.max() >= 4_990_000);
    }
}
