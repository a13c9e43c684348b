//! Bytes held on a proxied exchange's behalf: a request body read whole before a server is
//! chosen, or a response taken from the server faster than the client reads it. Memory up
//! to a budget, then an unlinked temporary file (O_TMPFILE: no name ever appears in the
//! directory, and the space is freed when the last descriptor closes, whatever ends the
//! request). File ranges go out as `OutQueue` file segments, so the kernel does the copy.
//!
//! Writes are synchronous `pwrite`s in batches of at least the memory budget: they land
//! in the page cache, and only the bytes past the budget ever take this path.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::driver::outq::OutQueue;

/// Why bytes could not be held.
#[derive(Debug)]
pub enum SpoolError {
    /// Past the cap (`max_body_bytes`, `max_temp_file`).
    TooLarge,
    /// The temporary file could not be made or written (a full disk: ENOSPC).
    Io(io::Error),
}

impl SpoolError {
    /// For the error log.
    pub fn why(&self) -> String {
        match self {
            SpoolError::TooLarge => "over the temporary file cap".into(),
            SpoolError::Io(e) => format!("temporary file: {e}"),
        }
    }

    /// The disk is full (or over quota): 507 for a request body.
    pub fn disk_full(&self) -> bool {
        matches!(self, SpoolError::Io(e)
            if matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)))
    }
}

/// Creates an unlinked temporary file in `dir`.
pub fn temp_file(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .open(dir)
}

/// Checks that `dir` takes temporary files, for the config check: the reason if not.
pub fn probe(dir: &Path) -> Result<(), String> {
    temp_file(dir).map(drop).map_err(|e| e.to_string())
}

pub struct Spool {
    /// Names this spool's ranges in a queue (`OutQueue::extend_file`).
    tag: u64,
    /// Bytes not yet in the file (all of them while the file is not needed).
    mem: Vec<u8>,
    file: Option<File>,
    /// Bytes in the file.
    written: u64,
    /// Bytes handed out as file segments (`drain_into`).
    queued: u64,
    budget: usize,
    max: u64,
}

impl Spool {
    /// Memory up to `budget`, at most `max` bytes in all.
    pub fn new(budget: usize, max: u64) -> Spool {
        static TAGS: AtomicU64 = AtomicU64::new(1);
        Spool {
            tag: TAGS.fetch_add(1, Ordering::Relaxed),
            mem: Vec::new(),
            file: None,
            written: 0,
            queued: 0,
            budget,
            max,
        }
    }

    pub fn len(&self) -> u64 {
        self.written + self.mem.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file was needed.
    pub fn on_disk(&self) -> bool {
        self.file.is_some()
    }

    /// Appends `d`; past the budget, the memory goes to the file (made in `dir` on first need).
    pub fn push(&mut self, d: &[u8], dir: &Path) -> Result<(), SpoolError> {
        if self.len() + d.len() as u64 > self.max {
            return Err(SpoolError::TooLarge);
        }
        self.mem.extend_from_slice(d);
        if self.mem.len() > self.budget {
            self.write_out(dir)?;
        }
        Ok(())
    }

    /// Moves the memory part to the file.
    fn write_out(&mut self, dir: &Path) -> Result<(), SpoolError> {
        if self.mem.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            self.file = Some(temp_file(dir).map_err(SpoolError::Io)?);
        }
        let f = self.file.as_ref().expect("made above");
        f.write_all_at(&self.mem, self.written)
            .map_err(SpoolError::Io)?;
        self.written += self.mem.len() as u64;
        self.mem.clear();
        Ok(())
    }

    /// Everything held (a complete request body), queued on `out` in order: the file from
    /// its start, then what is still in memory. The spool keeps its bytes (a retry sends
    /// them again).
    pub fn copy_into(&self, out: &mut OutQueue) -> io::Result<()> {
        if let Some(f) = &self.file {
            out.push_file(OwnedFd::from(f.try_clone()?), 0, self.written);
        }
        if !self.mem.is_empty() {
            out.bytes().extend_from_slice(&self.mem);
            out.commit(self.mem.len());
        }
        Ok(())
    }

    /// A response's spilled bytes: once at least `batch` are in memory (or with `all`),
    /// they go to the file and the new range is queued on `out` as a file segment.
    pub fn drain_into(
        &mut self,
        out: &mut OutQueue,
        dir: &Path,
        all: bool,
    ) -> Result<(), SpoolError> {
        if all || self.mem.len() >= self.budget {
            self.write_out(dir)?;
        }
        if let Some(f) = self.file.as_ref().filter(|_| self.written > self.queued) {
            // While the client is behind, the range still queued grows: one descriptor
            // per response, not one per batch.
            let (at, n) = (self.queued, self.written - self.queued);
            if !out.extend_file(self.tag, at, n) {
                let fd = OwnedFd::from(f.try_clone().map_err(SpoolError::Io)?);
                out.push_file_tagged(fd, at, n, self.tag);
            }
            self.queued = self.written;
        }
        Ok(())
    }

    /// The bytes still in memory, given up (a spill that failed: they go out from memory).
    pub fn take_mem(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.mem)
    }
}

/// Where a buffered response's body goes: the client's queue, or, once the response is
/// past `response_buffer` there, the spill (whose batches join the queue as file ranges).
/// A spill that cannot go on (max_temp_file, a disk error) hands what it holds to the
/// queue in order and stops; the rest goes to the queue (with back-pressure).
pub struct ToClientBody<'a> {
    pub out: &'a mut OutQueue,
    pub spill: &'a mut Option<Box<Spool>>,
    pub dir: &'a Path,
    /// Why the spill stopped, if it did.
    pub stopped: Option<SpoolError>,
}

impl ToClientBody<'_> {
    pub fn put(&mut self, d: &[u8]) {
        if let Some(s) = self.spill.as_mut() {
            match s.push(d, self.dir) {
                Ok(()) => return,
                // The bytes are in the spool's memory: stopping hands them on.
                Err(e @ SpoolError::Io(_)) => return self.stop(e),
                Err(e) => self.stop(e),
            }
        }
        self.out.bytes().extend_from_slice(d);
        self.out.commit(d.len());
    }

    /// Queues full batches of the spill as file ranges.
    pub fn drain(&mut self) {
        if let Some(s) = self.spill.as_mut()
            && let Err(e) = s.drain_into(self.out, self.dir, false)
        {
            self.stop(e);
        }
    }

    fn stop(&mut self, why: SpoolError) {
        self.finish();
        self.stopped = Some(why);
    }

    /// The response is complete (or cut): everything held joins the queue.
    pub fn finish(&mut self) {
        if let Some(mut s) = self.spill.take()
            && s.drain_into(self.out, self.dir, true).is_err()
        {
            let m = s.take_mem();
            self.out.bytes().extend_from_slice(&m);
            self.out.commit(m.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> std::path::PathBuf {
        std::env::temp_dir()
    }

    #[test]
    fn memory_until_the_budget_then_the_file() {
        let mut s = Spool::new(8, 100);
        s.push(b"hello", &dir()).unwrap();
        assert!(!s.on_disk());
        s.push(b" world", &dir()).unwrap();
        assert!(s.on_disk());
        s.push(b"!", &dir()).unwrap();
        assert_eq!(s.len(), 12);
        let mut out = OutQueue::default();
        s.copy_into(&mut out).unwrap();
        let mut got = Vec::new();
        out.take_front(100, &mut |d| got.extend_from_slice(d))
            .unwrap();
        assert_eq!(got, b"hello world!");
        // Kept for a retry.
        let mut again = OutQueue::default();
        s.copy_into(&mut again).unwrap();
        assert_eq!(again.len(), 12);
    }

    #[test]
    fn the_cap_is_kept() {
        let mut s = Spool::new(4, 10);
        s.push(b"0123456789", &dir()).unwrap();
        assert!(matches!(s.push(b"x", &dir()), Err(SpoolError::TooLarge)));
    }

    #[test]
    fn drained_ranges_follow_each_other() {
        let mut s = Spool::new(4, 100);
        let mut out = OutQueue::default();
        s.push(b"ab", &dir()).unwrap();
        s.drain_into(&mut out, &dir(), false).unwrap();
        assert_eq!(out.len(), 0, "under the batch: nothing yet");
        s.push(b"cdef", &dir()).unwrap();
        s.drain_into(&mut out, &dir(), false).unwrap();
        s.push(b"gh", &dir()).unwrap();
        s.drain_into(&mut out, &dir(), true).unwrap();
        assert_eq!(out.segments(), 1, "the growing range is one segment");
        let mut got = Vec::new();
        out.take_front(100, &mut |d| got.extend_from_slice(d))
            .unwrap();
        assert_eq!(got, b"abcdefgh");
    }

    #[test]
    fn a_spill_past_its_cap_keeps_the_order() {
        let mut out = OutQueue::default();
        let mut spill = Some(Box::new(Spool::new(2, 4)));
        let mut to = ToClientBody {
            out: &mut out,
            spill: &mut spill,
            dir: &dir(),
            stopped: None,
        };
        to.put(b"abc");
        to.drain();
        to.put(b"de"); // past the cap of 4: the spill stops, in order
        to.put(b"f");
        to.finish();
        assert!(matches!(to.stopped, Some(SpoolError::TooLarge)));
        assert!(spill.is_none());
        let mut got = Vec::new();
        out.take_front(100, &mut |d| got.extend_from_slice(d))
            .unwrap();
        assert_eq!(got, b"abcdef");
    }

    #[test]
    fn a_directory_that_cannot_hold_them_is_named() {
        assert!(probe(Path::new("/nonexistent/dir")).is_err());
        assert!(probe(&dir()).is_ok());
    }
}
