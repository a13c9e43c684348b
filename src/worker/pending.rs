//! Responses queued but not yet handed to the kernel, in order. The first entry is kept
//! inline: a keep-alive connection has one response in flight at a time (a pipelined batch
//! shares one entry), so the common case never allocates, and an idle connection holds no
//! heap for it. Deeper queues (pipelined requests to different routes) spill to a deque.

use std::collections::VecDeque;

/// A response queued but not yet fully handed to the kernel: its latency is recorded when
/// the send queue's `sent` offset passes `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    pub end: u64,
    pub start_us: u64,
    pub route: Option<u16>,
    /// Status class (2..=5) of the responses: errors per second on the dashboard.
    pub class: u8,
    /// Responses in this entry: a pipelined batch shares start time and route, so it is
    /// tracked and recorded once (`record_n`), not once per request.
    pub count: u32,
}

#[derive(Default)]
pub struct PendingQueue {
    first: Option<Pending>,
    rest: VecDeque<Pending>,
}

impl PendingQueue {
    pub fn front(&self) -> Option<&Pending> {
        self.first.as_ref()
    }

    pub fn back_mut(&mut self) -> Option<&mut Pending> {
        match self.rest.back_mut() {
            Some(p) => Some(p),
            None => self.first.as_mut(),
        }
    }

    pub fn push_back(&mut self, p: Pending) {
        if self.first.is_none() {
            self.first = Some(p);
        } else {
            self.rest.push_back(p);
        }
    }

    pub fn pop_front(&mut self) -> Option<Pending> {
        let p = self.first.take();
        self.first = self.rest.pop_front();
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(end: u64) -> Pending {
        Pending {
            end,
            start_us: 0,
            route: None,
            class: 2,
            count: 1,
        }
    }

    #[test]
    fn keeps_order_and_spills_only_past_one() {
        let mut q = PendingQueue::default();
        assert_eq!(q.front(), None);
        q.push_back(p(1));
        assert_eq!(q.rest.capacity(), 0, "one entry stays inline");
        q.back_mut().unwrap().count += 1;
        q.push_back(p(2));
        q.push_back(p(3));
        assert_eq!(q.back_mut().unwrap().end, 3);
        assert_eq!(q.pop_front().map(|x| (x.end, x.count)), Some((1, 2)));
        assert_eq!(q.front().map(|x| x.end), Some(2));
        assert_eq!(q.pop_front().map(|x| x.end), Some(2));
        assert_eq!(q.pop_front().map(|x| x.end), Some(3));
        assert_eq!(q.pop_front(), None);
        assert_eq!(q.front(), None);
    }
}
