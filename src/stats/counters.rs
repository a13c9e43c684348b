//! Per-worker counters: plain integers owned by the worker thread (no atomics, no locks).

#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub accepts: u64,
    pub requests: u64,
    pub rejected: u64,
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    pub bytes_in: u64,
    pub enobufs: u64,
    pub accept_errors: u64,
    pub timeouts: u64,
    pub bytes_out: u64,
    pub upstream_errors: u64,
    /// Proxied bodies moved socket -> pipe -> socket by splice.
    pub spliced_bodies: u64,
}

impl Counters {
    pub fn count_status(&mut self, status: u16) {
        match status / 100 {
            2 => self.status_2xx += 1,
            3 => self.status_3xx += 1,
            4 => self.status_4xx += 1,
            5 => self.status_5xx += 1,
            _ => {} // 1xx are interim, not answers
        }
    }
}

impl Counters {
    /// Adds another worker's counters (for merged views).
    pub fn add(&mut self, o: &Counters) {
        self.accepts += o.accepts;
        self.requests += o.requests;
        self.rejected += o.rejected;
        self.status_2xx += o.status_2xx;
        self.status_3xx += o.status_3xx;
        self.status_4xx += o.status_4xx;
        self.status_5xx += o.status_5xx;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.enobufs += o.enobufs;
        self.accept_errors += o.accept_errors;
        self.timeouts += o.timeouts;
        self.upstream_errors += o.upstream_errors;
        self.spliced_bodies += o.spliced_bodies;
    }
}
