//! The worker's error log lines (upstream failures, requests refused by a limit): at most
//! one line a second per worker, with a count of the ones held back, so a dead backend or a
//! client flood under load cannot flood the log.

/// Ticks between two lines (100 ms ticks: one line a second).
const EVERY_TICKS: u64 = 10;

#[derive(Default)]
pub struct ErrLog {
    next_tick: u64,
    suppressed: u64,
}

impl ErrLog {
    /// Prints `line()` now, or counts it if a line went out less than a second ago.
    pub fn line(&mut self, worker: usize, now_tick: u64, line: impl FnOnce() -> String) {
        if now_tick < self.next_tick {
            self.suppressed += 1;
            return;
        }
        self.next_tick = now_tick + EVERY_TICKS;
        let more = match std::mem::take(&mut self.suppressed) {
            0 => String::new(),
            n => format!(" ({n} more since the last line)"),
        };
        crate::say!("uringd: worker {worker}: {}{more}", line());
    }
}
