//! A hashed timer wheel with lazy deletion. A connection sits in at most one slot at a time
//! and moving its deadline later is a plain store: the slot entry is re-filed when visited.
//! So a keep-alive request costs no timer work at all.

pub const TICK_MS: u64 = 100;
const SLOTS: usize = 1024;

pub struct Wheel {
    slots: Vec<Vec<(u32, u32)>>,
    /// The last tick whose slot was processed.
    done: u64,
}

impl Wheel {
    pub fn new(now_tick: u64) -> Wheel {
        Wheel {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            done: now_tick,
        }
    }

    /// Files (index, generation) in the slot for `tick`, clamped to the wheel's horizon.
    /// Returns the tick it was actually filed under.
    pub fn schedule(&mut self, tick: u64, index: u32, generation: u32) -> u64 {
        let tick = tick.clamp(self.done + 1, self.done + SLOTS as u64 - 1);
        self.slots[(tick % SLOTS as u64) as usize].push((index, generation));
        tick
    }

    /// Moves every entry filed at ticks up to `now` into `out` as (index, generation, filed_tick).
    pub fn advance(&mut self, now: u64, out: &mut Vec<(u32, u32, u64)>) {
        while self.done < now {
            self.done += 1;
            let t = self.done;
            let slot = &mut self.slots[(t % SLOTS as u64) as usize];
            out.extend(slot.drain(..).map(|(i, g)| (i, g, t)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_order_and_clamps() {
        let mut w = Wheel::new(10);
        assert_eq!(w.schedule(12, 1, 0), 12);
        assert_eq!(w.schedule(5, 2, 0), 11); // past deadlines fire on the next tick
        assert_eq!(w.schedule(10_000, 3, 0), 10 + SLOTS as u64 - 1);
        let mut out = Vec::new();
        w.advance(11, &mut out);
        assert_eq!(out, vec![(2, 0, 11)]);
        out.clear();
        w.advance(12, &mut out);
        assert_eq!(out, vec![(1, 0, 12)]);
    }
}
