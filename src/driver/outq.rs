//! A connection's outgoing bytes, and the rule that the kernel's view of them stays valid.
//!
//! Responses are appended to the back segment while the front segment is with the kernel.
//! A segment handed to a send is never touched again until its completion (and, for SEND_ZC,
//! its notification). One loop turn's responses for a connection go out in one send.
//! Large shared bodies (e.g. a route's fixed body) are their own segment and go out with
//! SEND_ZC when they are at least `zc_threshold` bytes, without a copy into the queue.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use super::{Completion, Driver, Sock, Token};

enum Seg {
    Bytes(Vec<u8>),
    Shared(Arc<[u8]>),
    /// A file range, or the next bytes of a socket (`seekable` false: a proxied body),
    /// moved source -> pipe -> socket by the kernel (splice): no userspace copy.
    File {
        fd: OwnedFd,
        pos: u64,
        end: u64,
        seekable: bool,
        /// Names the file a growing range belongs to (`extend_file`); 0: none.
        tag: u64,
    },
}

impl Seg {
    /// The bytes of a memory segment (empty for a file segment).
    fn as_slice(&self) -> &[u8] {
        match self {
            Seg::Bytes(v) => v,
            Seg::Shared(a) => a,
            Seg::File { .. } => &[],
        }
    }
}

/// The pipe a connection splices file data through, and what is in it.
struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
    filled: u32,
    cap: u32,
}

impl Pipe {
    fn new() -> std::io::Result<Pipe> {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 writes two descriptors into the array we pass.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both descriptors are fresh and owned by nobody else.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // A bigger pipe means fewer splice round trips; the default (64 KiB) if refused.
        // SAFETY: fcntl on a pipe we own.
        let got = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
        let cap = if got > 0 { got as u32 } else { 64 * 1024 };
        Ok(Pipe {
            r,
            w,
            filled: 0,
            cap,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum Stage {
    #[default]
    Send,
    /// file -> pipe
    SpliceIn,
    /// pipe -> socket
    SpliceOut,
}

/// Bodies at least this large are sent from their shared buffer rather than copied: below
/// it, one memcpy is cheaper than a second send op for the same response.
const SHARED_SEGMENT_MIN: usize = 64 * 1024;

/// Sent response buffers go back to a pool of their thread (each worker and bench thread is
/// one thread, so no lock), not to their connection: steady keep-alive traffic does not
/// allocate, and an idle connection holds no buffer at all (10k idle connections stay cheap).
mod pool {
    use std::cell::RefCell;

    /// Buffers kept per thread; more than that are freed.
    const MAX: usize = 64;
    /// A buffer that grew past this is freed rather than kept.
    const MAX_CAPACITY: usize = 64 * 1024;

    thread_local! {
        static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    pub fn take() -> Vec<u8> {
        FREE.with_borrow_mut(|f| f.pop())
            .unwrap_or_else(|| Vec::with_capacity(4096))
    }

    pub fn give(mut v: Vec<u8>) {
        if v.capacity() <= MAX_CAPACITY {
            v.clear();
            FREE.with_borrow_mut(|f| {
                if f.len() < MAX {
                    f.push(v);
                }
            });
        }
    }
}

thread_local! {
    /// File bytes on their way to a layer above (`take_front`), one buffer per thread.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads at `pos` into `buf`: bytes read (0 at the end of the file).
fn pread(fd: &OwnedFd, buf: &mut [u8], pos: u64) -> std::io::Result<usize> {
    // SAFETY: reads into a live buffer of exactly buf.len() bytes.
    let n = unsafe {
        libc::pread(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            pos as libc::off_t,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}

#[derive(Default)]
pub struct OutQueue {
    segs: VecDeque<Seg>,
    /// Bytes of the front segment already sent.
    off: usize,
    /// A send of the front segment is with the kernel.
    in_flight: bool,
    /// SEND_ZC notifications still owed; `zc_hold` keeps their buffers alive until then.
    zc_pending: u32,
    zc_hold: Vec<Arc<[u8]>>,
    /// Total queued and not yet acknowledged as sent.
    queued: usize,
    /// Stream offsets: bytes ever queued, and ever acknowledged sent. A response whose last
    /// byte is at offset E has been handed to the kernel once `sent >= E`.
    committed: u64,
    sent: u64,
    /// What the op in flight is (a send, or one half of a splice).
    stage: Stage,
    pipe: Option<Pipe>,
}

/// What a send completion meant for the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum SendResult {
    /// Progress; the queue may have more to send (call `flush`).
    Progress,
    /// The peer is gone or the socket failed.
    Failed(i32),
    /// A SEND_ZC notification; nothing else changed.
    Notif,
}

impl OutQueue {
    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Bytes waiting to be sent (for back-pressure decisions).
    pub fn len(&self) -> usize {
        self.queued
    }

    /// Something is still with the kernel: the connection's slot must not be reused yet.
    pub fn busy(&self) -> bool {
        self.in_flight || self.zc_pending > 0
    }

    /// The byte buffer to append the next response to.
    pub fn bytes(&mut self) -> &mut Vec<u8> {
        let back_free = match self.segs.back() {
            Some(Seg::Bytes(_)) => !(self.in_flight && self.segs.len() == 1),
            _ => false,
        };
        if !back_free {
            self.segs.push_back(Seg::Bytes(pool::take()));
        }
        match self.segs.back_mut() {
            Some(Seg::Bytes(v)) => v,
            _ => unreachable!("a byte segment was just ensured"),
        }
    }

    /// Records bytes appended through `bytes()` (kept separate so callers can write freely).
    pub fn commit(&mut self, n: usize) {
        self.queued += n;
        self.committed += n as u64;
    }

    /// Stream offset just past everything queued so far.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Stream offset just past everything the kernel has taken.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Appends a shared body: copied when small; its own segment (no userspace copy) when
    /// large, sent with SEND_ZC when at least `zc_threshold`.
    pub fn push_shared(&mut self, body: &Arc<[u8]>, zc_threshold: usize) {
        if body.len() >= zc_threshold.min(SHARED_SEGMENT_MIN) {
            self.segs.push_back(Seg::Shared(body.clone()));
            self.queued += body.len();
            self.committed += body.len() as u64;
        } else {
            self.bytes().extend_from_slice(body);
            self.commit(body.len());
        }
    }

    /// Queues `len` bytes of a file from `pos` (the file is closed when sent).
    pub fn push_file(&mut self, fd: OwnedFd, pos: u64, len: u64) {
        self.push_file_tagged(fd, pos, len, 0);
    }

    /// `push_file` for a file that grows (a spill): later ranges right after this one can
    /// join it with `extend_file(tag, ..)` instead of a descriptor each.
    pub fn push_file_tagged(&mut self, fd: OwnedFd, pos: u64, len: u64, tag: u64) {
        self.segs.push_back(Seg::File {
            fd,
            pos,
            end: pos + len,
            seekable: true,
            tag,
        });
        self.queued += len as usize;
        self.committed += len;
    }

    /// Grows the last segment by `len` if it is the range of file `tag` ending at `pos`
    /// (a splice in flight reads its length when it starts, so this is safe any time).
    pub fn extend_file(&mut self, tag: u64, pos: u64, len: u64) -> bool {
        match self.segs.back_mut() {
            Some(Seg::File {
                end,
                tag: t,
                seekable: true,
                ..
            }) if tag != 0 && *t == tag && *end == pos => {
                *end += len;
                self.queued += len as usize;
                self.committed += len;
                true
            }
            _ => false,
        }
    }

    /// Queues the next `len` bytes read from a socket (a proxied body), spliced through.
    pub fn push_stream(&mut self, fd: OwnedFd, len: u64) {
        self.segs.push_back(Seg::File {
            fd,
            pos: 0,
            end: len,
            seekable: false,
            tag: 0,
        });
        self.queued += len as usize;
        self.committed += len;
    }

    /// Segments queued (for tests of what joins what).
    pub fn segments(&self) -> usize {
        self.segs.len()
    }

    /// A socket segment is still queued (the proxied body is not through yet).
    pub fn has_stream(&self) -> bool {
        self.segs.iter().any(|s| {
            matches!(
                s,
                Seg::File {
                    seekable: false,
                    ..
                }
            )
        })
    }

    /// Starts the next splice step for a file segment at the front.
    fn flush_file(&mut self, d: &mut Driver, sock: Sock, token: Token) -> bool {
        if self.pipe.is_none() {
            match Pipe::new() {
                Ok(p) => self.pipe = Some(p),
                Err(_) => return self.file_to_bytes(),
            }
        }
        let (
            Some(pipe),
            Some(Seg::File {
                fd,
                pos,
                end,
                seekable,
                ..
            }),
        ) = (&self.pipe, self.segs.front())
        else {
            return false;
        };
        // The file and pipe descriptors stay open while the op is in flight (they are owned
        // here, and nothing drops them while in_flight is set).
        if pipe.filled > 0 {
            self.stage = Stage::SpliceOut;
            d.splice_out(pipe.r.as_raw_fd(), sock, pipe.filled, token);
        } else if pos < end {
            self.stage = Stage::SpliceIn;
            let len = (end - pos).min(u64::from(pipe.cap)) as u32;
            let off = if *seekable { *pos as i64 } else { -1 };
            d.splice_in(fd.as_raw_fd(), off, pipe.w.as_raw_fd(), len, token);
        } else {
            return false;
        }
        self.in_flight = true;
        true
    }

    /// Fallback when no pipe can be had (fd exhaustion): read the file into memory.
    fn file_to_bytes(&mut self) -> bool {
        let Some(Seg::File {
            fd,
            pos,
            end,
            seekable: true,
            ..
        }) = self.segs.front()
        else {
            // A socket cannot be re-read: without a pipe it waits (its timeout will cut it).
            return false;
        };
        let mut v = vec![0u8; (end - pos) as usize];
        let mut got = 0;
        while got < v.len() {
            match pread(fd, &mut v[got..], *pos + got as u64) {
                Ok(n) if n > 0 => got += n,
                _ => break,
            }
        }
        v.resize(v.len().max(got), 0);
        if let Some(front) = self.segs.front_mut() {
            *front = Seg::Bytes(v);
        }
        false
    }

    /// Hands up to `max` bytes from the front to `f`, in order and in one or more slices,
    /// and counts them as sent: for a layer that moves them on itself (TLS encrypts them).
    /// File ranges are read into a scratch buffer (no splice: the bytes must pass through
    /// user space); a socket segment is never queued on such a connection.
    pub fn take_front(&mut self, max: usize, f: &mut dyn FnMut(&[u8])) -> std::io::Result<()> {
        debug_assert!(!self.busy(), "a queue read from above never sends itself");
        let mut left = max;
        while left > 0 {
            let Some(front) = self.segs.front_mut() else {
                break;
            };
            let (n, done) = match front {
                Seg::Bytes(_) | Seg::Shared(_) => {
                    let d = &front.as_slice()[self.off..];
                    let n = d.len().min(left);
                    if n > 0 {
                        f(&d[..n]);
                    }
                    self.off += n;
                    (n, self.off >= front.as_slice().len())
                }
                Seg::File {
                    fd,
                    pos,
                    end,
                    seekable: true,
                    ..
                } => {
                    let want = (*end - *pos).min(left as u64) as usize;
                    let n = SCRATCH.with_borrow_mut(|buf| {
                        buf.resize(want.max(buf.len()), 0);
                        let n = pread(fd, &mut buf[..want], *pos)?;
                        if n == 0 && want > 0 {
                            // The file shrank under us: the promised length cannot be met.
                            return Err(std::io::ErrorKind::UnexpectedEof.into());
                        }
                        f(&buf[..n]);
                        Ok::<usize, std::io::Error>(n)
                    })?;
                    *pos += n as u64;
                    (n, *pos >= *end)
                }
                Seg::File { .. } => {
                    debug_assert!(false, "a spliced socket body on a queue read from above");
                    return Err(std::io::ErrorKind::Unsupported.into());
                }
            };
            left -= n;
            self.queued = self.queued.saturating_sub(n);
            self.sent += n as u64;
            if done {
                self.off = 0;
                if let Some(Seg::Bytes(v)) = self.segs.pop_front() {
                    self.recycle(v);
                }
            }
        }
        Ok(())
    }

    /// Starts a send of the front segment if none is in flight. Returns true if one started.
    pub fn flush(
        &mut self,
        d: &mut Driver,
        fd: impl Into<Sock>,
        token: Token,
        zc_threshold: usize,
    ) -> bool {
        let fd: Sock = fd.into();
        if self.in_flight {
            return false;
        }
        if matches!(self.segs.front(), Some(Seg::File { .. })) {
            if self.flush_file(d, fd, token) {
                return true;
            }
            if matches!(self.segs.front(), Some(Seg::File { .. })) {
                return false;
            }
        }
        // Drop empty byte segments left at the front.
        while let Some(Seg::Bytes(v)) = self.segs.front() {
            if !v.is_empty() || self.segs.len() == 1 {
                break;
            }
            if let Some(Seg::Bytes(v)) = self.segs.pop_front() {
                self.recycle(v);
            }
        }
        let Some(front) = self.segs.front() else {
            return false;
        };
        let data = &front.as_slice()[self.off..];
        if data.is_empty() {
            return false;
        }
        let len = data.len().min(u32::MAX as usize) as u32;
        let zc =
            d.features().send_zc && matches!(front, Seg::Shared(_)) && data.len() >= zc_threshold;
        // SAFETY: the front segment is not mutated, moved out of its heap allocation or
        // dropped while in_flight is set (and its Arc is held in zc_hold until the ZC
        // notification), and Drop leaks it if the queue goes first.
        unsafe { d.send(fd, data.as_ptr(), len, zc, token) };
        self.in_flight = true;
        self.stage = Stage::Send;
        true
    }

    /// Applies the completion of one splice step.
    fn complete_splice(&mut self, c: &Completion) -> SendResult {
        let stage = std::mem::take(&mut self.stage);
        if c.result < 0 {
            return SendResult::Failed(c.result);
        }
        let n = c.result as u32;
        let (Some(pipe), Some(Seg::File { pos, end, .. })) =
            (&mut self.pipe, self.segs.front_mut())
        else {
            return SendResult::Failed(-libc::EIO);
        };
        if stage == Stage::SpliceIn {
            if n == 0 {
                // The file shrank under us, or the upstream closed before the whole body.
                return SendResult::Failed(-libc::EIO);
            }
            pipe.filled = n;
            *pos += u64::from(n);
            return SendResult::Progress;
        }
        if n == 0 {
            return SendResult::Failed(-libc::EPIPE);
        }
        pipe.filled -= n.min(pipe.filled);
        self.sent += u64::from(n);
        self.queued = self.queued.saturating_sub(n as usize);
        if pipe.filled == 0 && *pos >= *end {
            self.segs.pop_front();
        }
        SendResult::Progress
    }

    /// Applies a send completion (or a SEND_ZC notification).
    pub fn complete(&mut self, c: &Completion) -> SendResult {
        if c.is_notif() {
            self.zc_pending = self.zc_pending.saturating_sub(1);
            if self.zc_pending == 0 {
                self.zc_hold.clear();
            }
            return SendResult::Notif;
        }
        self.in_flight = false;
        if self.stage != Stage::Send {
            return self.complete_splice(c);
        }
        let zc_more = c.more();
        if zc_more {
            // A notification will follow: the front buffer must outlive it.
            self.zc_pending += 1;
            if let Some(Seg::Shared(a)) = self.segs.front() {
                self.zc_hold.push(a.clone());
            }
        }
        if c.result < 0 {
            return SendResult::Failed(c.result);
        }
        if c.result == 0 {
            return SendResult::Failed(-libc::EPIPE);
        }
        let n = c.result as usize;
        self.off += n;
        self.queued = self.queued.saturating_sub(n);
        self.sent += n as u64;
        let done = self
            .segs
            .front()
            .is_some_and(|f| self.off >= f.as_slice().len());
        if done {
            self.off = 0;
            if let Some(Seg::Bytes(v)) = self.segs.pop_front() {
                self.recycle(v);
            }
        }
        SendResult::Progress
    }

    fn recycle(&mut self, v: Vec<u8>) {
        pool::give(v);
    }

    /// Forgets everything queued. Only valid when nothing is with the kernel.
    pub fn clear(&mut self) {
        debug_assert!(!self.busy());
        if self.busy() {
            return;
        }
        self.segs.clear();
        self.off = 0;
        self.queued = 0;
        self.committed = 0;
        self.sent = 0;
        self.stage = Stage::Send;
        self.pipe = None; // it may hold bytes of a response that will never be sent
    }

    /// Releases memory held for reuse (an idle connection should hold none).
    pub fn shrink(&mut self) {
        if !self.busy() && self.queued == 0 {
            self.segs.clear();
            self.pipe = None; // an idle connection holds no pipe either
        }
    }
}

impl Drop for OutQueue {
    fn drop(&mut self) {
        if self.busy() {
            // The kernel may still read these buffers: leak them rather than free them early.
            let segs = std::mem::take(&mut self.segs);
            let hold = std::mem::take(&mut self.zc_hold);
            std::mem::forget(segs);
            std::mem::forget(hold);
        }
    }
}
