//! Tables shared by every worker, keyed by client input (an address, a header value): the
//! rate limits' arrival times and the per-address connection counts. Fixed size, so a
//! flood of distinct keys cannot grow them; keyed hashing (SipHash with a random key per
//! table), so a client cannot aim its keys at one slot; lock-free (atomics), so a worker
//! never waits on another on the request path.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::gcra::{self, Rate};

/// Slots a key may use, from its home slot on.
const PROBES: usize = 4;

struct Slot {
    /// A 32-bit tag of the key holding the slot (never 0: 0 is a free slot).
    tag: AtomicU32,
    /// The key's theoretical arrival time, microseconds on the process clock.
    tat: AtomicU64,
}

/// The arrival times of one `limit`. A key takes the first of its `PROBES` slots that is
/// its own, free or expired (a full bucket remembers nothing); when all are held by live
/// keys it shares its home slot, which can only refuse more, never less.
pub struct RateTable {
    slots: Box<[Slot]>,
    hasher: RandomState,
    rate: Rate,
}

impl std::fmt::Debug for RateTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RateTable({} slots, {:?})", self.slots.len(), self.rate)
    }
}

impl RateTable {
    /// `slots` is rounded up to a power of two.
    pub fn new(rate: Rate, slots: usize) -> RateTable {
        let n = slots.next_power_of_two().max(PROBES);
        RateTable {
            slots: (0..n)
                .map(|_| Slot {
                    tag: AtomicU32::new(0),
                    tat: AtomicU64::new(0),
                })
                .collect(),
            hasher: RandomState::new(),
            rate,
        }
    }

    /// One request of `key` at `now` (microseconds, the process clock): Ok, or Err with the
    /// microseconds until it would be allowed.
    pub fn check(&self, key: &[u8], now: u64) -> Result<(), u64> {
        let h = self.hasher.hash_one(key);
        let tag = (h >> 32) as u32 | 1;
        let mask = self.slots.len() - 1;
        let home = h as usize & mask;
        let at = |p: usize| &self.slots[(home + p) & mask];
        // Its own slot first, wherever it is among the probes: claiming an expired slot
        // before a later one it already holds would hand it a fresh bucket (found by the
        // rate_limit fuzz target).
        let own = (0..PROBES)
            .map(at)
            .find(|s| s.tag.load(Ordering::Acquire) == tag);
        let slot = own
            .or_else(|| {
                (0..PROBES).map(at).find(|s| {
                    let t = s.tag.load(Ordering::Acquire);
                    let free = t == 0 || gcra::expired(s.tat.load(Ordering::Acquire), now);
                    // An expired arrival time reads as a full bucket: no reset needed.
                    free && (s
                        .tag
                        .compare_exchange(t, tag, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                        || s.tag.load(Ordering::Acquire) == tag)
                })
            })
            .unwrap_or(&self.slots[home]);
        let mut tat = slot.tat.load(Ordering::Acquire);
        loop {
            let next = gcra::decide(tat, now, self.rate)?;
            match slot
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(seen) => tat = seen,
            }
        }
    }
}

/// Open connections per client address (`max_connections_per_ip`), in hashed buckets: two
/// addresses sharing a bucket share its count (with 65,536 buckets, rarely).
pub struct ConnTable {
    counts: Box<[AtomicU32]>,
    hasher: RandomState,
    max: u32,
}

impl std::fmt::Debug for ConnTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ConnTable({} buckets, max {})",
            self.counts.len(),
            self.max
        )
    }
}

impl ConnTable {
    pub fn new(max: u32, buckets: usize) -> ConnTable {
        ConnTable {
            counts: (0..buckets.next_power_of_two())
                .map(|_| AtomicU32::new(0))
                .collect(),
            hasher: RandomState::new(),
            max,
        }
    }

    /// Counts a new connection from `ip`: its bucket, or None when the address is at the
    /// limit (nothing counted).
    pub fn acquire(&self, ip: IpAddr) -> Option<u32> {
        let i = self.hasher.hash_one(ip) as usize & (self.counts.len() - 1);
        if self.counts[i].fetch_add(1, Ordering::AcqRel) >= self.max {
            self.counts[i].fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(i as u32)
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    /// The connection counted in `bucket` closed.
    pub fn release(&self, bucket: u32) {
        if let Some(c) = self.counts.get(bucket as usize) {
            let _ = c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_limited_apart() {
        let t = RateTable::new(Rate::new(1, 1_000_000, 2).unwrap(), 1024);
        let now = 10_000_000;
        for _ in 0..3 {
            assert!(t.check(b"a", now).is_ok());
        }
        assert_eq!(t.check(b"a", now), Err(1_000_000));
        assert!(t.check(b"b", now).is_ok(), "another key is untouched");
        assert!(t.check(b"a", now + 1_000_000).is_ok());
    }

    #[test]
    fn a_flood_of_keys_stays_in_the_table() {
        // 10,000 distinct keys in 16 slots: the table does not grow; every key still gets
        // its first request (expired or shared slots), and a repeat key is still limited.
        let t = RateTable::new(Rate::new(1, 1_000_000, 0).unwrap(), 16);
        let now = 5_000_000;
        let mut allowed = 0;
        for i in 0..10_000u32 {
            allowed += usize::from(t.check(&i.to_le_bytes(), now).is_ok());
        }
        assert!((16..10_000).contains(&allowed), "{allowed}");
        assert_eq!(t.slots.len(), 16);
        assert!(
            t.check(b"y", now + 10_000_000).is_ok(),
            "expired slots are reused"
        );
        assert!(t.check(b"y", now + 10_000_000).is_err());
    }

    #[test]
    fn connections_per_address() {
        let t = ConnTable::new(2, 64);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let (x, y) = (t.acquire(a).unwrap(), t.acquire(a).unwrap());
        assert!(t.acquire(a).is_none(), "the third is refused");
        t.release(x);
        let z = t.acquire(a).unwrap();
        t.release(y);
        t.release(z);
        t.release(z); // a double release never wraps the count
        assert!(t.acquire(a).is_some() && t.acquire(a).is_some());
    }

    #[test]
    fn shared_by_threads() {
        let t = std::sync::Arc::new(RateTable::new(Rate::new(1, 1_000_000, 99).unwrap(), 64));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || (0..100).filter(|_| t.check(b"k", 1).is_ok()).count())
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 100, "burst 99 + 1, exactly, across threads");
    }
}
