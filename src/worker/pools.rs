//! Per-worker upstream pool state: idle keep-alive connections, balancing, passive health.
//! Owned by one worker; nothing here is shared.

use crate::config::upstream::{Balance, Pool};
use crate::transport::Key;

pub struct ServerState {
    /// Idle pooled connections (upstream slab keys), most recently used last.
    pub idle: Vec<Key>,
    /// Connections busy with a request (for least_conn).
    pub active: u32,
    fails: u32,
    fail_window_start: u64,
    down_until: u64,
    /// Taken out of rotation and not yet seen healthy again (transitions are logged once).
    out: bool,
    /// Active health: when the next probe is due, and the probe connection in flight.
    pub next_probe: u64,
    pub probe: Option<Key>,
}

/// `down_until` of a server an active probe found unhealthy: out until a probe succeeds
/// (never forgotten by `pick`).
const PROBED_DOWN: u64 = u64::MAX;

pub struct PoolState {
    rr: usize,
    pub servers: Vec<ServerState>,
}

impl PoolState {
    pub fn new(p: &Pool) -> PoolState {
        PoolState {
            rr: 0,
            servers: p
                .servers
                .iter()
                .map(|_| ServerState {
                    idle: Vec::new(),
                    active: 0,
                    fails: 0,
                    fail_window_start: 0,
                    down_until: 0,
                    out: false,
                    next_probe: 0,
                    probe: None,
                })
                .collect(),
        }
    }

    /// Picks a server that is up, not in `skip` (servers already tried for this request).
    /// When passive health has every server out, their failures are forgotten and they are
    /// tried again (as nginx does): a pool whose servers all hiccupped recovers on the next
    /// request, not after fail_timeout. None: nothing to try (the caller answers 503), which
    /// is left only to servers active probes found unhealthy, and to `skip`.
    pub fn pick(&mut self, p: &Pool, now: u64, skip: u64) -> Option<usize> {
        if let Some(i) = self.pick_up(p, now, skip) {
            return Some(i);
        }
        if self.servers.iter().any(|s| s.down_until <= now) {
            return None; // some server is up: the tried ones are what is missing
        }
        let mut forgot = false;
        for s in &mut self.servers {
            if s.down_until != PROBED_DOWN {
                s.down_until = 0;
                s.fails = 0;
                forgot = true;
            }
        }
        if forgot {
            self.pick_up(p, now, skip)
        } else {
            None
        }
    }

    fn pick_up(&mut self, p: &Pool, now: u64, skip: u64) -> Option<usize> {
        let n = self.servers.len();
        let up = |i: usize, s: &ServerState| s.down_until <= now && (skip >> (i % 64)) & 1 == 0;
        match p.balance {
            Balance::RoundRobin => {
                for k in 0..n {
                    let i = (self.rr + k) % n;
                    if up(i, &self.servers[i]) {
                        self.rr = (i + 1) % n;
                        return Some(i);
                    }
                }
                None
            }
            Balance::LeastConn => (0..n)
                .filter(|&i| up(i, &self.servers[i]))
                .min_by_key(|&i| (self.servers[i].active, (i + n - self.rr % n) % n))
                .inspect(|&i| self.rr = i + 1),
            Balance::First => (0..n).find(|&i| up(i, &self.servers[i])),
        }
    }

    /// Passive health: `max_fails` failures within `fail_window` ticks take a server out
    /// for `fail_window` ticks (nginx's max_fails / fail_timeout). True when this failure
    /// took it out of rotation (and it was in).
    /// A pool of one server never takes it out (as nginx): with nowhere else to send the
    /// request, refusing it with 503 only delays noticing that the server is back.
    pub fn failed(&mut self, server: usize, max_fails: u32, fail_window: u64, now: u64) -> bool {
        let alone = self.servers.len() == 1;
        let s = &mut self.servers[server];
        if max_fails == 0 || alone {
            return false;
        }
        if now >= s.fail_window_start + fail_window {
            s.fails = 0;
            s.fail_window_start = now;
        }
        s.fails += 1;
        if s.fails >= max_fails {
            s.down_until = now + fail_window;
            s.fails = 0;
            return !std::mem::replace(&mut s.out, true);
        }
        false
    }

    /// A request to the server succeeded. True when that brings it back into rotation.
    pub fn succeeded(&mut self, server: usize) -> bool {
        let s = &mut self.servers[server];
        s.fails = 0;
        std::mem::replace(&mut s.out, false)
    }

    /// An active probe answered: healthy clears any down state; unhealthy takes the server
    /// out until a later probe succeeds. Some(out) when the server changed side.
    pub fn probed(&mut self, server: usize, healthy: bool) -> Option<bool> {
        let s = &mut self.servers[server];
        s.probe = None;
        if healthy {
            s.down_until = 0;
            s.fails = 0;
        } else {
            s.down_until = PROBED_DOWN;
        }
        let was_out = std::mem::replace(&mut s.out, !healthy);
        (was_out == healthy).then_some(!healthy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::upstream::{build_pool, parse_server};

    fn pool(n: usize, b: &str) -> Pool {
        let servers = (0..n)
            .map(|i| parse_server(&format!("http://127.0.0.1:{}", 9000 + i), "k").unwrap())
            .collect();
        let raw = crate::config::upstream::RawPool {
            balance: Some(b.into()),
            ..Default::default()
        };
        build_pool("p", &raw, servers).unwrap()
    }

    #[test]
    fn round_robin_skips_down_and_tried() {
        let p = pool(3, "round_robin");
        let mut s = PoolState::new(&p);
        assert_eq!(
            (s.pick(&p, 0, 0), s.pick(&p, 0, 0), s.pick(&p, 0, 0)),
            (Some(0), Some(1), Some(2))
        );
        assert!(s.failed(1, 1, 100, 0));
        assert_eq!(
            (s.pick(&p, 0, 0), s.pick(&p, 0, 0), s.pick(&p, 0, 0)),
            (Some(0), Some(2), Some(0))
        );
        assert_eq!(s.pick(&p, 0, 0b101), None, "0 and 2 tried, 1 down");
        assert_eq!(s.pick(&p, 100, 0b101), Some(1), "back after fail_timeout");
    }

    #[test]
    fn a_lone_server_is_never_taken_out_and_an_all_out_pool_forgets() {
        let p = pool(1, "round_robin");
        let mut s = PoolState::new(&p);
        for _ in 0..5 {
            assert!(!s.failed(0, 1, 100, 0));
            assert_eq!(s.pick(&p, 1, 0), Some(0), "one server: always tried");
        }
        let p = pool(2, "round_robin");
        let mut s = PoolState::new(&p);
        assert!(s.failed(0, 1, 100, 0) && s.failed(1, 1, 100, 0));
        assert!(s.pick(&p, 1, 0).is_some(), "all out: failures forgotten");
        assert!(s.pick(&p, 1, 0).is_some(), "both back in rotation");
        assert_eq!(s.pick(&p, 1, 0b11), None, "both tried for this request");
        // Probed down is not forgotten.
        s.probed(0, false);
        s.probed(1, false);
        assert_eq!(s.pick(&p, 1, 0), None);
    }

    #[test]
    fn each_change_of_side_is_reported_once() {
        let p = pool(2, "round_robin");
        let mut s = PoolState::new(&p);
        assert!(s.failed(0, 1, 100, 0), "taken out");
        assert!(!s.failed(0, 1, 100, 0), "already out");
        assert!(s.succeeded(0), "back");
        assert!(!s.succeeded(0));
        assert_eq!(s.probed(0, false), Some(true));
        assert_eq!(s.probed(0, false), None);
        assert_eq!(s.probed(0, true), Some(false));
        assert_eq!(s.probed(0, true), None);
    }

    #[test]
    fn least_conn_prefers_idle_servers() {
        let p = pool(2, "least_conn");
        let mut s = PoolState::new(&p);
        s.servers[0].active = 3;
        assert_eq!(s.pick(&p, 0, 0), Some(1));
    }
}
