//! An eventfd that another thread writes to wake this worker's ring; the worker keeps one
//! read armed on it. The 8-byte read target is boxed so its address is stable while armed.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::{Driver, Token};

/// The writer half, cloned to the supervisor.
#[derive(Clone)]
pub struct Waker {
    fd: Arc<OwnedFd>,
}

impl Waker {
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we own.
        unsafe {
            libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8);
        }
    }
}

pub struct WakeFd {
    fd: Arc<OwnedFd>,
    buf: Box<u64>,
    armed: bool,
}

impl WakeFd {
    pub fn new() -> io::Result<WakeFd> {
        // SAFETY: plain eventfd creation; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(WakeFd {
            fd,
            buf: Box::new(0),
            armed: false,
        })
    }

    pub fn waker(&self) -> Waker {
        Waker {
            fd: self.fd.clone(),
        }
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Arms a read if none is armed. Call again after each Wake completion.
    pub fn arm(&mut self, d: &mut Driver, token: Token) {
        if self.armed {
            return;
        }
        let buf = (&mut *self.buf as *mut u64).cast();
        // SAFETY: the box lives as long as self and nothing else touches it; Drop below
        // leaks it if a read is still armed.
        unsafe { d.read(self.fd.as_raw_fd(), buf, 8, token) };
        self.armed = true;
    }

    pub fn completed(&mut self) {
        self.armed = false;
    }
}

impl Drop for WakeFd {
    fn drop(&mut self) {
        if self.armed {
            // The kernel may still write here until the ring is torn down: never free it early.
            std::mem::forget(std::mem::replace(&mut self.buf, Box::new(0)));
        }
    }
}
