//! Provided-buffer ring (IORING_REGISTER_PBUF_RING): the kernel picks a buffer from this ring
//! for each multishot recv completion, so an idle connection holds no receive buffer.
//! Under the epoll backend no kernel reads the ring: the backend takes buffers from it
//! through a [`Consumer`], in the same order and with the same rules.
//!
//! Ownership rule, kept in one place: a buffer id handed out by a CQE is represented by a
//! [`BufId`] (not `Clone`). Its bytes may be read only through that value, and the only way to
//! give the buffer back to the kernel is to consume it in [`BufRing::recycle`].
//!
//! Lifetime rule: a receive op in flight may write into any published buffer, so the
//! mappings must stay until every receive has posted its final completion. [`super::Io`]
//! owns the ring and the driver together and upholds it: it unmaps the buffers only once
//! its owner has declared the receives finished, and leaks them otherwise.

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

use super::types::{BUFFER_SHIFT, F_BUFFER};

/// An anonymous private mapping, unmapped on drop.
pub(super) struct Mapping {
    pub(super) ptr: *mut u8,
    len: usize,
}

impl Mapping {
    /// `populate`: fault every page in now (MAP_POPULATE) rather than on first use.
    pub(super) fn new(len: usize, populate: bool) -> io::Result<Mapping> {
        let flags =
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | if populate { libc::MAP_POPULATE } else { 0 };
        // SAFETY: anonymous private mapping with no address hint; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap and are unmapped once.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// A receive buffer the kernel has filled and handed to us. Not `Clone`: exactly one owner.
#[derive(Debug)]
pub struct BufId {
    bid: u16,
    len: u32,
}

pub struct BufRing {
    // Field order matters only for drop: both mappings outlive every use through `&self`.
    entries: Mapping,
    bufs: Mapping,
    count: u16,
    buf_size: u32,
    tail: u16,
    bgid: u16,
    registered: bool,
}

/// A buffer the owner has published, as the consumer sees it.
pub struct Provided {
    pub bid: u16,
    pub ptr: *mut u8,
    pub len: u32,
}

/// The consuming side of a ring no kernel reads (the epoll backend's view). It holds raw
/// pointers into the [`BufRing`]'s mappings: the BufRing must be unregistered (which drops
/// the consumer) before it is dropped, as with the kernel.
pub struct Consumer {
    entries: *const BufRingEntry,
    mask: u16,
    head: u16,
}

impl Consumer {
    /// The next published buffer, or None when the owner has none to give (ENOBUFS).
    pub fn peek(&self) -> Option<Provided> {
        // SAFETY: the tail lives in entry 0's reserved field (see `publish`); the mapping
        // outlives the consumer (see above), and the owner writes it with a release store.
        let tail = unsafe {
            (*(BufRingEntry::tail(self.entries) as *const AtomicU16)).load(Ordering::Acquire)
        };
        if tail == self.head {
            return None;
        }
        // SAFETY: head & mask < count; entries below the tail were fully written before the
        // release store of the tail that the load above acquired.
        let e = unsafe { &*self.entries.add((self.head & self.mask) as usize) };
        Some(Provided {
            bid: e.bid(),
            ptr: e.addr() as *mut u8,
            len: e.len(),
        })
    }

    /// Takes the buffer `peek` showed: it is the consumer's until a completion names it.
    pub fn consume(&mut self) {
        self.head = self.head.wrapping_add(1);
    }
}

impl BufRing {
    /// Maps `count` buffers of `buf_size` bytes as group `bgid`, every one published.
    /// `Driver::register_buffers` hands the group to the backend.
    pub fn new(bgid: u16, count: u16, buf_size: u32) -> io::Result<BufRing> {
        if !count.is_power_of_two() || count > 32768 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer count must be a power of two no larger than 32768",
            ));
        }
        let page = 4096usize;
        let ring_len = (count as usize * std::mem::size_of::<BufRingEntry>()).div_ceil(page) * page;
        let entries = Mapping::new(ring_len, false)?;
        // The buffers are committed at start: the ring hands them out in order, so the
        // first `count` receives would touch every page anyway. Faulting them in now makes
        // that fixed cost visible at start (not as growth under the first load) and keeps
        // page faults off the first requests.
        let bufs = Mapping::new(count as usize * buf_size as usize, true)?;
        let mut br = BufRing {
            entries,
            bufs,
            count,
            buf_size,
            tail: 0,
            bgid,
            registered: false,
        };
        for bid in 0..count {
            br.push(bid);
        }
        br.publish();
        Ok(br)
    }

    /// The address of the entries ring, for IORING_REGISTER_PBUF_RING.
    pub(super) fn ring_addr(&self) -> u64 {
        self.entries.ptr as u64
    }

    /// A consumer for a backend that takes buffers itself (epoll), starting at the head.
    pub(super) fn consumer(&self) -> Consumer {
        Consumer {
            entries: self.entries.ptr as *const BufRingEntry,
            mask: self.count - 1,
            head: 0,
        }
    }

    pub(super) fn registered(&self) -> bool {
        self.registered
    }

    pub(super) fn set_registered(&mut self, on: bool) {
        self.registered = on;
    }

    pub fn group(&self) -> u16 {
        self.bgid
    }

    pub fn buf_size(&self) -> u32 {
        self.buf_size
    }

    pub fn count(&self) -> u16 {
        self.count
    }

    /// Claims the buffer a recv CQE names, if it names one.
    pub fn take(&self, flags: u32, res: i32) -> Option<BufId> {
        if flags & F_BUFFER == 0 {
            return None;
        }
        let bid = (flags >> BUFFER_SHIFT) as u16;
        if bid >= self.count {
            return None;
        }
        Some(BufId {
            bid,
            len: res.max(0) as u32,
        })
    }

    /// The bytes the kernel wrote into a buffer we own.
    pub fn data(&self, b: &BufId) -> &[u8] {
        let len = b.len.min(self.buf_size) as usize;
        // SAFETY: `b` proves the kernel handed this buffer to us and has not got it back, so
        // nothing writes it while this shared borrow lives; bid < count keeps it in the mapping.
        unsafe {
            std::slice::from_raw_parts(
                self.bufs.ptr.add(b.bid as usize * self.buf_size as usize),
                len,
            )
        }
    }

    /// The same bytes, to change in place (TLS decrypts there).
    pub fn data_mut(&mut self, b: &mut BufId) -> &mut [u8] {
        let len = b.len.min(self.buf_size) as usize;
        // SAFETY: as in `data`, and `&mut self` with the one `&mut BufId` for this buffer make
        // this the only borrow of its bytes.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.bufs.ptr.add(b.bid as usize * self.buf_size as usize),
                len,
            )
        }
    }

    /// Gives a buffer back to the kernel (visible after the next [`publish`](Self::publish)).
    pub fn recycle(&mut self, b: BufId) {
        self.push(b.bid);
    }

    fn push(&mut self, bid: u16) {
        let idx = (self.tail & (self.count - 1)) as usize;
        // SAFETY: idx < count and the mapping holds `count` entries; the kernel reads only
        // entries below the published tail, and this one is at or beyond it.
        unsafe {
            let e = &mut *(self.entries.ptr as *mut BufRingEntry).add(idx);
            e.set_addr(self.bufs.ptr.add(bid as usize * self.buf_size as usize) as u64);
            e.set_len(self.buf_size);
            e.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes recycled buffers to the kernel: one release store per loop turn.
    pub fn publish(&mut self) {
        // SAFETY: the tail lives in the reserved field of entry 0, 2-byte aligned, inside the
        // mapping; the kernel only reads it, so an atomic store is the right access.
        unsafe {
            let tail =
                BufRingEntry::tail(self.entries.ptr as *const BufRingEntry) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    /// Gives up the mappings without unmapping them: for when a receive may still write
    /// into them (see the module's lifetime rule).
    pub(super) fn leak(self) {
        std::mem::forget(self);
    }
}
