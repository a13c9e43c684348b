//! A driver and the provided-buffer ring it receives into, owned together so that the
//! rule between them holds by construction: the buffers outlive every receive that may
//! write into them.
//!
//! A multishot receive picks a buffer when data arrives and the kernel copies into it, so
//! unmapping the buffers while a receive is armed would let the kernel write into whatever
//! is mapped there next. `Io` unmaps them only when its owner has said that every receive
//! posted its final completion ([`Io::receives_done`]); otherwise (a panic, a drain that
//! gave up on stuck ops) it leaks them, a bounded cost, instead of freeing them early. The
//! group is withdrawn from the backend and the driver dropped before anything is unmapped.

use std::io;
use std::mem::ManuallyDrop;

use super::Driver;
use super::bufring::BufRing;

pub struct Io {
    driver: ManuallyDrop<Driver>,
    bufs: ManuallyDrop<BufRing>,
    /// Every receive has returned: unmapping the buffers is safe.
    quiet: bool,
}

impl Io {
    /// Takes `bufs` and registers it with `driver`.
    pub fn new(mut driver: Driver, mut bufs: BufRing) -> io::Result<Io> {
        driver.register_buffers(&mut bufs)?;
        Ok(Io {
            driver: ManuallyDrop::new(driver),
            bufs: ManuallyDrop::new(bufs),
            quiet: false,
        })
    }

    pub fn driver(&mut self) -> &mut Driver {
        &mut self.driver
    }

    pub fn driver_ref(&self) -> &Driver {
        &self.driver
    }

    pub fn bufs(&mut self) -> &mut BufRing {
        &mut self.bufs
    }

    pub fn bufs_ref(&self) -> &BufRing {
        &self.bufs
    }

    /// A multishot receive into this Io's buffers.
    pub fn recv_multi(&mut self, sock: impl Into<super::Sock>, token: super::Token) {
        let g = self.bufs.group();
        self.driver.recv_multi(sock, g, token);
    }

    /// One receive of at most a buffer's worth into this Io's buffers.
    pub fn recv_single(&mut self, fd: std::os::fd::RawFd, token: super::Token) {
        let (g, len) = (self.bufs.group(), self.bufs.buf_size());
        self.driver.recv_single(fd, g, len, token);
    }

    /// Both at once, for an op that names the buffer group.
    pub fn parts(&mut self) -> (&mut Driver, &mut BufRing) {
        (&mut self.driver, &mut self.bufs)
    }

    /// The owner's word that no receive is armed or in flight any more.
    pub fn receives_done(&mut self) {
        self.quiet = true;
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        self.driver.unregister_buffers(&mut self.bufs);
        // SAFETY: each field is taken exactly once, here, and never used again.
        let (driver, bufs) = unsafe {
            (
                ManuallyDrop::take(&mut self.driver),
                ManuallyDrop::take(&mut self.bufs),
            )
        };
        drop(driver);
        if self.quiet {
            drop(bufs);
        } else {
            bufs.leak();
        }
    }
}
