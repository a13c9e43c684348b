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
}

impl Counters {
    pub fn count_status(&mut self, status: u16) {
        match status / 100 {
            2 => self.status_2xx += 1,
            3 => self.status_3xx += 1,
            4 => self.status_4xx += 1,
            _ => self.status_5xx += 1,
        }
    }
}
