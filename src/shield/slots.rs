//! `max_conns`: requests in flight to each server of a pool, counted over every worker of
//! a generation (and carried over a reload, so the retiring workers' requests still count).
//! One atomic per server; taking a slot is a compare-and-swap below the cap. A server can
//! also be marked not ready (an `[[app]]` instance starting or dead): its count then reads
//! as full, so requests wait for a ready one instead of being sent to it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Set in a server's count while it is not ready: no count below any cap has it.
const NOT_READY: u32 = 1 << 31;

#[derive(Debug)]
pub struct Slots {
    in_flight: Box<[AtomicU32]>,
    /// Requests each server has finished (slots given back): an app's recycling reads it.
    served: Box<[AtomicU64]>,
    /// A worker asks the supervisor to kill this server's process (harakiri).
    kill: Box<[AtomicBool]>,
    /// Past this many finished requests the server takes no more (0: no limit): an app
    /// instance's `max_requests`, stopped exactly there by the worker that counts the last.
    limit: Box<[AtomicU64]>,
    /// When a worker last saw requests of this pool waiting (µs on `shield::epoch`'s
    /// clock): an app's supervisor starts more instances while this stays recent.
    waiting_us: AtomicU64,
}

impl Slots {
    fn with(servers: usize, initial: u32) -> Slots {
        Slots {
            in_flight: (0..servers).map(|_| AtomicU32::new(initial)).collect(),
            served: (0..servers).map(|_| AtomicU64::new(0)).collect(),
            kill: (0..servers).map(|_| AtomicBool::new(false)).collect(),
            limit: (0..servers).map(|_| AtomicU64::new(0)).collect(),
            waiting_us: AtomicU64::new(0),
        }
    }

    /// A worker has requests of this pool waiting now (`now_us` on the shared clock).
    pub fn note_waiting(&self, now_us: u64) {
        // Loads first: while requests wait every worker notes it every turn, and a
        // store per turn would bounce the line between their cores for nothing.
        if self.waiting_us.load(Ordering::Relaxed) + 1_000 < now_us {
            self.waiting_us.store(now_us, Ordering::Relaxed);
        }
    }

    /// When requests of this pool were last seen waiting (0: never).
    pub fn waiting_at(&self) -> u64 {
        self.waiting_us.load(Ordering::Relaxed)
    }

    /// Server `i` takes no new request once it has finished `n` (0: no limit).
    pub fn set_limit(&self, i: usize, n: u64) {
        if let Some(l) = self.limit.get(i) {
            l.store(n, Ordering::Release);
        }
    }

    pub fn new(servers: usize) -> Slots {
        Slots::with(servers, 0)
    }

    /// Every server not ready until `set_ready` says otherwise (an app's instances).
    pub fn not_ready(servers: usize) -> Slots {
        Slots::with(servers, NOT_READY)
    }

    /// Requests server `i` has finished since it started.
    pub fn served(&self, i: usize) -> u64 {
        self.served.get(i).map_or(0, |n| n.load(Ordering::Acquire))
    }

    /// Starts server `i`'s count of finished requests again (a new instance).
    pub fn reset_served(&self, i: usize) {
        if let Some(n) = self.served.get(i) {
            n.store(0, Ordering::Release);
        }
    }

    /// Asks for server `i`'s process to be killed (a request outlived harakiri).
    pub fn request_kill(&self, i: usize) {
        if let Some(k) = self.kill.get(i) {
            k.store(true, Ordering::Release);
        }
    }

    /// Whether a kill of server `i` was asked for since the last call.
    pub fn take_kill(&self, i: usize) -> bool {
        self.kill
            .get(i)
            .is_some_and(|k| k.swap(false, Ordering::AcqRel))
    }

    /// Marks server `i` ready to take requests, or not (those in flight go on counting).
    pub fn set_ready(&self, i: usize, ready: bool) {
        if let Some(n) = self.in_flight.get(i) {
            if ready {
                n.fetch_and(!NOT_READY, Ordering::AcqRel);
            } else {
                n.fetch_or(NOT_READY, Ordering::AcqRel);
            }
        }
    }

    pub fn is_ready(&self, i: usize) -> bool {
        self.in_flight
            .get(i)
            .is_some_and(|n| n.load(Ordering::Acquire) & NOT_READY == 0)
    }

    /// Takes a slot of server `i` if it has fewer than `max` in flight.
    pub fn take(&self, i: usize, max: u32) -> bool {
        let Some(n) = self.in_flight.get(i) else {
            return false;
        };
        n.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            (v < max).then_some(v + 1)
        })
        .is_ok()
    }

    /// Gives back a slot of server `i`.
    pub fn give(&self, i: usize) {
        let served = self
            .served
            .get(i)
            .map_or(0, |s| s.fetch_add(1, Ordering::AcqRel) + 1);
        let limit = self.limit.get(i).map_or(0, |l| l.load(Ordering::Acquire));
        if limit > 0 && served >= limit {
            self.set_ready(i, false);
        }
        if let Some(n) = self.in_flight.get(i) {
            // Never below zero, whatever a bug elsewhere does.
            let _ = n.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (v & !NOT_READY).checked_sub(1).map(|c| c | (v & NOT_READY))
            });
        }
    }

    /// A bit per server (the first 64) that has `max` or more in flight.
    pub fn full(&self, max: u32) -> u64 {
        self.in_flight
            .iter()
            .take(64)
            .enumerate()
            .filter(|(_, n)| n.load(Ordering::Acquire) >= max)
            .fold(0, |m, (i, _)| m | 1 << i)
    }

    pub fn in_flight(&self, i: usize) -> u32 {
        self.in_flight
            .get(i)
            .map_or(0, |n| n.load(Ordering::Acquire) & !NOT_READY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_in_flight_per_server() {
        let s = Slots::new(2);
        assert!(s.take(0, 2) && s.take(0, 2));
        assert!(!s.take(0, 2), "a third is refused");
        assert_eq!(s.full(2), 0b01);
        assert!(s.take(1, 2));
        s.give(0);
        assert_eq!(s.full(2), 0);
        assert!(s.take(0, 2));
        s.give(1);
        s.give(1); // one too many: stays at zero
        assert_eq!(s.in_flight(1), 0);
        assert!(!s.take(5, 2), "no such server");
    }

    #[test]
    fn a_server_not_ready_takes_nothing_and_keeps_its_count() {
        let s = Slots::not_ready(2);
        assert!(!s.take(0, 4) && !s.is_ready(0));
        assert_eq!(s.full(4), 0b11);
        s.set_ready(0, true);
        assert!(s.is_ready(0) && s.take(0, 4) && s.take(0, 4));
        s.set_ready(0, false);
        assert!(!s.take(0, 4), "not ready: nothing new");
        assert_eq!(s.in_flight(0), 2, "those in flight still count");
        s.give(0);
        assert_eq!(s.in_flight(0), 1);
        assert!(!s.is_ready(0), "a slot given back does not make it ready");
        s.set_ready(0, true);
        assert_eq!(s.in_flight(0), 1);
        s.give(0);
        s.give(0);
        assert_eq!(s.in_flight(0), 0);
        assert!(s.is_ready(0));
    }

    #[test]
    fn a_server_at_its_request_limit_takes_no_more() {
        let s = Slots::new(1);
        s.set_limit(0, 2);
        assert!(s.take(0, 5));
        s.give(0);
        assert!(s.take(0, 5));
        s.give(0);
        assert!(!s.is_ready(0) && !s.take(0, 5), "two served: no third");
        assert_eq!(s.served(0), 2);
        s.reset_served(0);
        s.set_ready(0, true);
        assert!(s.take(0, 5));
    }

    #[test]
    fn waiting_is_noted_at_most_once_a_millisecond() {
        let s = Slots::new(1);
        assert_eq!(s.waiting_at(), 0);
        s.note_waiting(5_000);
        s.note_waiting(5_500);
        assert_eq!(s.waiting_at(), 5_000);
        s.note_waiting(6_001);
        assert_eq!(s.waiting_at(), 6_001);
    }

    #[test]
    fn threads_never_exceed_the_cap() {
        let s = std::sync::Arc::new(Slots::new(1));
        let peak = std::sync::Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (s, peak) = (s.clone(), peak.clone());
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        if s.take(0, 3) {
                            peak.fetch_max(s.in_flight(0), Ordering::AcqRel);
                            s.give(0);
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert!(peak.load(Ordering::Acquire) <= 3);
        assert_eq!(s.in_flight(0), 0);
    }
}
