//! The per-worker context every part reads: who this worker is, its config, its clock and
//! counters (inside `HttpCtx`, which request handling borrows), its timeouts in ticks, and
//! whether it is draining.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::driver::{Io, Op, Token};
use crate::http::date::format_http_date;

use super::request::HttpCtx;
use super::timer::TICK_MS;

/// How long a closing connection keeps reading (and discarding) after its last response.
const LINGER: Duration = Duration::from_secs(2);
/// How long a retiring worker keeps an idle keep-alive connection, for a request already
/// on its way to arrive and be answered (with `Connection: close`).
const RETIRE_IDLE_GRACE: Duration = Duration::from_secs(1);

/// Timeouts converted to wheel ticks once.
pub(super) struct Ticks {
    pub header: u64,
    pub body: u64,
    pub body_deadline: u64,
    pub keepalive: u64,
    pub send: u64,
    pub linger: u64,
}

pub(super) fn to_ticks(d: Duration) -> u64 {
    // Saturate: a huge configured timeout must stay huge, not wrap to a short one.
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .div_ceil(TICK_MS)
        .max(1)
}

pub(super) struct Ctx {
    pub id: usize,
    pub cpu: usize,
    pub cfg: Arc<Config>,
    /// Request handling's context: clock, counters, histograms, scratch, access log.
    pub http: HttpCtx,
    pub ticks: Ticks,
    /// Set once a drain began: the tick by which every connection must be gone.
    pub drain_deadline: Option<u64>,
    start: Instant,
    date_secs: u64,
}

impl Ctx {
    pub fn new(id: usize, cpu: usize, cfg: Arc<Config>, http: HttpCtx) -> Ctx {
        let l = &cfg.limits;
        let ticks = Ticks {
            header: to_ticks(l.header_timeout),
            body: to_ticks(l.body_timeout),
            body_deadline: to_ticks(l.body_deadline),
            keepalive: to_ticks(l.keepalive_timeout),
            send: to_ticks(l.send_timeout),
            linger: to_ticks(LINGER),
        };
        Ctx {
            id,
            cpu,
            cfg,
            http,
            ticks,
            drain_deadline: None,
            start: Instant::now(),
            date_secs: 0,
        }
    }

    #[inline]
    pub fn now(&self) -> u64 {
        self.http.now_tick
    }

    pub fn uptime(&self) -> Duration {
        self.start.elapsed()
    }

    /// Milliseconds until the next tick boundary (the loop's longest wait).
    pub fn until_next_tick_ms(&self) -> u64 {
        TICK_MS - (self.start.elapsed().as_millis() as u64 % TICK_MS)
    }

    /// Starts the drain: ticks by which it must be over, and, retiring, the short idle
    /// grace in place of the keep-alive timeout.
    pub fn begin_drain(&mut self, graceful: bool) {
        self.drain_deadline = Some(self.http.now_tick + to_ticks(self.cfg.drain_timeout));
        self.http.draining = true;
        if graceful {
            self.ticks.keepalive = self.ticks.keepalive.min(to_ticks(RETIRE_IDLE_GRACE));
        }
    }

    /// Reads the clock (once per loop turn); once per tick also the wall clock, the Date
    /// header and an access-log flush.
    pub fn update_clock(&mut self, io: &mut Io) {
        let us = self.start.elapsed().as_micros() as u64;
        self.http.now_us = us;
        let tick = us / 1000 / TICK_MS;
        if tick == self.http.now_tick && self.date_secs != 0 {
            return;
        }
        self.http.now_tick = tick;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.http.unix_s = secs;
        if secs != self.date_secs {
            self.date_secs = secs;
            format_http_date(secs, &mut self.http.date);
            if let Some(l) = &mut self.http.log {
                l.set_time(secs);
            }
        }
        // The access log goes out once per tick, or sooner when its buffer fills.
        if let Some(l) = &mut self.http.log {
            l.file.flush(io.driver(), Token::new(Op::Log, 0, 0));
        }
    }
}

#[cfg(test)]
mod tick_tests {
    #[test]
    fn huge_durations_saturate_instead_of_wrapping() {
        let huge = std::time::Duration::from_secs(18_446_744_073_709_552);
        assert_eq!(super::to_ticks(huge), u64::MAX.div_ceil(super::TICK_MS));
        assert_eq!(super::to_ticks(std::time::Duration::from_millis(1)), 1);
    }
}
