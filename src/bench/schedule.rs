//! The open-loop schedule: request k of the whole run is due at k/RATE seconds (constant),
//! or at the arrivals of a Poisson process. Thread i of T takes requests i, i+T, i+2T, ...
//! of the constant series, or runs its own Poisson process at RATE/T (a sum of independent
//! Poisson processes is a Poisson process at the summed rate). No per-thread or
//! per-connection rate is ever rounded, so any RATE works with any thread count, even
//! fewer requests per second than threads (wrk2 rounds those to zero).
//!
//! The schedule is an iterator, not a queue: requests that are due but not yet sent are
//! "everything from `peek()` up to now", so a long server stall costs no memory.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    Constant,
    Poisson,
}

pub struct Schedule {
    arrival: Arrival,
    /// Total requests per second across all threads.
    rate: f64,
    thread: u64,
    threads: u64,
    /// Index of the next request among this thread's.
    k: u64,
    /// Poisson: the next arrival in seconds since the schedule started.
    t: f64,
    rng: u64,
    next_ns: u64,
}

impl Schedule {
    pub fn new(arrival: Arrival, rate: f64, thread: usize, threads: usize, seed: u64) -> Schedule {
        let mut s = Schedule {
            arrival,
            rate,
            thread: thread as u64,
            threads: threads.max(1) as u64,
            k: 0,
            t: 0.0,
            // splitmix64 needs any non-zero state; mix the thread in so threads differ.
            rng: seed ^ (thread as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            next_ns: 0,
        };
        if arrival == Arrival::Poisson {
            s.t = s.gap();
        }
        s.next_ns = s.compute();
        s
    }

    /// When the next request is due, in nanoseconds since the schedule started.
    pub fn peek(&self) -> u64 {
        self.next_ns
    }

    pub fn advance(&mut self) {
        self.k += 1;
        if self.arrival == Arrival::Poisson {
            self.t += self.gap();
        }
        self.next_ns = self.compute();
    }

    fn compute(&self) -> u64 {
        let secs = match self.arrival {
            Arrival::Constant => (self.thread + self.k * self.threads) as f64 / self.rate,
            Arrival::Poisson => self.t,
        };
        (secs * 1e9) as u64
    }

    /// An exponential gap at this thread's share of the rate.
    fn gap(&mut self) -> f64 {
        // splitmix64: tiny, fast and good enough for arrival times.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // Uniform in (0, 1]: never ln(0).
        let u = ((z >> 11) + 1) as f64 / (1u64 << 53) as f64;
        -u.ln() * self.threads as f64 / self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due_before(s: &mut Schedule, ns: u64) -> u64 {
        let mut n = 0;
        while s.peek() < ns {
            n += 1;
            s.advance();
        }
        n
    }

    #[test]
    fn constant_rate_is_exact_for_any_thread_count() {
        for (rate, threads) in [(20_000.0, 2), (1.0, 4), (3.0, 8), (7.5, 3)] {
            let mut total = 0;
            let mut firsts = Vec::new();
            for t in 0..threads {
                let mut s = Schedule::new(Arrival::Constant, rate, t, threads, 1);
                firsts.push(s.peek());
                total += due_before(&mut s, 10_000_000_000);
            }
            assert_eq!(total, (rate * 10.0) as u64, "rate {rate} threads {threads}");
            // Threads are offset, not bunched: their first requests differ.
            firsts.sort();
            firsts.dedup();
            assert_eq!(firsts.len(), threads);
        }
    }

    #[test]
    fn poisson_rate_is_right_on_average() {
        let mut total = 0;
        for t in 0..4 {
            let mut s = Schedule::new(Arrival::Poisson, 10_000.0, t, 4, 42);
            total += due_before(&mut s, 10_000_000_000);
        }
        // 100k expected, standard deviation ~316.
        assert!((98_500..=101_500).contains(&total), "{total}");
        // Below one request per second per thread it still delivers: 0.5/s over two
        // threads is 0.25/s for this one, 100 expected in 400 s.
        let mut s = Schedule::new(Arrival::Poisson, 0.5, 0, 2, 7);
        let n = due_before(&mut s, 400_000_000_000);
        assert!((60..=140).contains(&n), "{n}");
    }
}
