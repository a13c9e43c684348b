//! `max_conns`: requests in flight to each server of a pool, counted over every worker of
//! a generation (and carried over a reload, so the retiring workers' requests still count).
//! One atomic per server; taking a slot is a compare-and-swap below the cap.

use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug)]
pub struct Slots {
    in_flight: Box<[AtomicU32]>,
}

impl Slots {
    pub fn new(servers: usize) -> Slots {
        Slots {
            in_flight: (0..servers).map(|_| AtomicU32::new(0)).collect(),
        }
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
        if let Some(n) = self.in_flight.get(i) {
            // Never below zero, whatever a bug elsewhere does.
            let _ = n.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1));
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
            .map_or(0, |n| n.load(Ordering::Acquire))
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
