//! What the epoll backend knows per descriptor: its registration, and the ops waiting for
//! it to become readable or writable (at most one per side: the seam's users never start a
//! second receive, or a second send, on a socket before the first one's final completion).

use std::os::fd::RawFd;

/// An op that would have blocked, kept until its side of the descriptor is ready.
#[derive(Clone, Copy, Debug)]
pub struct Parked {
    pub user_data: u64,
    pub wait: Wait,
}

#[derive(Clone, Copy, Debug)]
pub enum Wait {
    /// Multishot accept.
    Accept,
    /// Receive into a provided buffer; `len` caps a single-shot one.
    Recv {
        multishot: bool,
        len: u32,
    },
    /// Read into the caller's memory (the wake eventfd).
    Read {
        buf: *mut u8,
        len: u32,
    },
    /// Source -> pipe; the source is what may not be ready.
    SpliceIn {
        off: i64,
        pipe_w: RawFd,
        len: u32,
    },
    Send {
        data: *const u8,
        len: u32,
    },
    /// Pipe -> socket; the socket is what may not be ready.
    SpliceOut {
        pipe_r: RawFd,
        len: u32,
    },
    /// A non-blocking connect in progress.
    Connect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Read,
    Write,
}

#[derive(Default)]
pub struct Slot {
    /// Bumped at each registration and reset; an event carrying an older one is stale.
    pub generation: u32,
    pub registered: bool,
    /// Made by this backend's accept: nothing else holds the open file, so close() alone
    /// removes it from the epoll set (no EPOLL_CTL_DEL, as nginx does).
    pub accepted: bool,
    /// May be closed behind the backend's back (a listener, a spliced socket's dup): its
    /// registration is dropped as soon as nothing waits on it.
    pub external: bool,
    /// The peer's FIN (or an error) was signalled: read to the end, even after a short read,
    /// since no further edge will come.
    pub eof: bool,
    pub read: Option<Parked>,
    pub write: Option<Parked>,
}

impl Slot {
    pub fn side(&mut self, side: Side) -> &mut Option<Parked> {
        match side {
            Side::Read => &mut self.read,
            Side::Write => &mut self.write,
        }
    }

    /// Forgets everything but the generation (the descriptor number is free again).
    pub fn reset(&mut self) {
        let generation = self.generation.wrapping_add(1);
        *self = Slot {
            generation,
            ..Slot::default()
        };
    }
}

/// Slots indexed by descriptor number, grown on demand (descriptors are small and dense,
/// but shared by every worker: each worker's table spans them all).
#[derive(Default)]
pub struct Slots {
    v: Vec<Slot>,
}

impl Slots {
    pub fn get(&mut self, fd: RawFd) -> &mut Slot {
        let i = fd.max(0) as usize;
        if i >= self.v.len() {
            // Only up to this descriptor: the Vec's own growth amortizes the reallocation
            // (a large block moves by mremap, uncopied), and slots past the highest
            // descriptor are never written, so their pages are never touched.
            self.v.resize_with(i + 1, Slot::default);
        }
        &mut self.v[i]
    }

    /// A slot only if it exists (events name descriptors that were registered).
    pub fn find(&mut self, fd: RawFd) -> Option<&mut Slot> {
        self.v.get_mut(usize::try_from(fd).ok()?)
    }
}

/// Event user data: the descriptor and its slot's generation.
pub fn pack(fd: RawFd, generation: u32) -> u64 {
    (fd as u32 as u64) | (u64::from(generation) << 32)
}

pub fn unpack(data: u64) -> (RawFd, u32) {
    (data as u32 as RawFd, (data >> 32) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_data_round_trips_and_reset_bumps_the_generation() {
        assert_eq!(unpack(pack(12345, 7)), (12345, 7));
        let mut s = Slots::default();
        let g = s.get(9).generation;
        s.get(9).registered = true;
        s.get(9).reset();
        assert!(!s.get(9).registered);
        assert_eq!(s.get(9).generation, g.wrapping_add(1));
        assert!(s.find(100_000).is_none());
    }
}
