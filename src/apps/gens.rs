//! The pool slots an app's instances are counted in. A reload that changes the pool makes
//! new slots, but the retiring generation's workers still send requests by the old ones
//! until they drain: an instance is marked ready or not in both, and what it has in flight
//! is the sum, so a recycle never stops an instance a retiring worker still waits on. Old
//! slots are dropped once nothing else holds them (their generation is gone).

use std::sync::Arc;

use crate::shield::slots::Slots;

#[derive(Default)]
pub struct Gens {
    live: Option<Arc<Slots>>,
    old: Vec<Arc<Slots>>,
}

impl Gens {
    /// The live generation's slots are now `s` (a reload kept them, or made new ones).
    pub fn adopt(&mut self, s: Option<Arc<Slots>>) {
        if let Some(l) = self.live.take()
            && !s.as_ref().is_some_and(|n| Arc::ptr_eq(n, &l))
        {
            self.old.push(l);
        }
        self.live = s;
        self.prune();
    }

    /// Forgets the slots no generation holds any more.
    pub fn prune(&mut self) {
        self.old.retain(|s| Arc::strong_count(s) > 1);
    }

    fn all(&self) -> impl Iterator<Item = &Slots> {
        self.live.iter().chain(&self.old).map(|s| &**s)
    }

    pub fn mark(&self, n: usize, ready: bool) {
        self.all().for_each(|s| s.set_ready(n, ready));
    }

    pub fn in_flight(&self, n: usize) -> u32 {
        self.all().map(|s| s.in_flight(n)).sum()
    }

    /// Whether any generation's worker asked for instance `n` to be killed.
    pub fn take_kill(&self, n: usize) -> bool {
        self.all().fold(false, |k, s| s.take_kill(n) | k)
    }

    /// Requests the instance finished (the live generation counts them from its start).
    pub fn served(&self, n: usize) -> u64 {
        self.live.as_ref().map_or(0, |s| s.served(n))
    }

    /// A new instance in slot `n`: its own count, its limit, no kill meant for the last.
    pub fn renew(&self, n: usize, limit: u64) {
        for s in self.all() {
            s.reset_served(n);
            s.take_kill(n);
            s.set_limit(n, limit);
        }
    }

    pub fn set_limit(&self, n: usize, limit: u64) {
        self.all().for_each(|s| s.set_limit(n, limit));
    }

    /// When a worker last saw requests wait for the app (µs on `shield::epoch`'s clock).
    pub fn waiting_at(&self) -> u64 {
        self.all().map(Slots::waiting_at).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_slots_count_until_their_generation_is_gone() {
        let (a, b) = (Arc::new(Slots::not_ready(2)), Arc::new(Slots::not_ready(2)));
        let mut g = Gens::default();
        g.adopt(Some(a.clone()));
        g.mark(0, true);
        assert!(a.take(0, 1));
        g.adopt(Some(b.clone()));
        g.mark(0, true);
        assert!(b.take(0, 1));
        assert_eq!(g.in_flight(0), 2, "both generations' requests");
        g.mark(0, false);
        assert!(!a.is_ready(0) && !b.is_ready(0));
        a.request_kill(0);
        assert!(g.take_kill(0) && !g.take_kill(0));
        drop(a);
        g.prune();
        assert_eq!(g.in_flight(0), 1, "the old generation is gone");
        g.adopt(Some(b.clone()));
        assert_eq!(
            g.in_flight(0),
            1,
            "the same slots again are not counted twice"
        );
    }
}
