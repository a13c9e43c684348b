//! An append-only file written through the ring (the access log): lines are gathered in a
//! buffer and written with IORING_OP_WRITE, double-buffered, so logging never blocks the
//! worker. The buffer handed to the kernel is not touched until its CQE.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{Completion, Driver, Token};

/// Above this many buffered bytes a write starts at once (else at the next tick).
const FLUSH_AT: usize = 32 * 1024;
/// If the disk cannot keep up, drop lines rather than grow without bound (counted).
const MAX_BUFFERED: usize = 4 * 1024 * 1024;

pub struct AppendFile {
    path: PathBuf,
    fd: OwnedFd,
    buf: Vec<u8>,
    writing: Vec<u8>,
    off: usize,
    in_flight: bool,
    reopen: bool,
    pub dropped_lines: u64,
    pub errors: u64,
}

pub fn open_append(path: &Path) -> io::Result<OwnedFd> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // SAFETY: c is a valid NUL-terminated path; the result is checked.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is fresh and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl AppendFile {
    pub fn open(path: &Path) -> io::Result<AppendFile> {
        Ok(AppendFile {
            path: path.to_path_buf(),
            fd: open_append(path)?,
            buf: Vec::with_capacity(FLUSH_AT * 2),
            writing: Vec::with_capacity(FLUSH_AT * 2),
            off: 0,
            in_flight: false,
            reopen: false,
            dropped_lines: 0,
            errors: 0,
        })
    }

    /// The buffer to append one whole line to, or None when the backlog is full.
    pub fn line(&mut self) -> Option<&mut Vec<u8>> {
        if self.buf.len() >= MAX_BUFFERED {
            self.dropped_lines += 1;
            return None;
        }
        Some(&mut self.buf)
    }

    pub fn wants_flush(&self) -> bool {
        self.buf.len() >= FLUSH_AT
    }

    /// Reopens the file by path once no write is in flight (logrotate moved it away).
    pub fn request_reopen(&mut self) {
        self.reopen = true;
    }

    /// Starts a write of everything buffered, if none is in flight.
    pub fn flush(&mut self, d: &mut Driver, token: Token) {
        if self.in_flight {
            return;
        }
        if self.reopen {
            self.reopen = false;
            match open_append(&self.path) {
                Ok(fd) => self.fd = fd,
                Err(e) => {
                    self.errors += 1;
                    crate::say!(
                        "uringd: cannot reopen access log {}: {e}",
                        self.path.display()
                    );
                }
            }
        }
        if self.off >= self.writing.len() {
            if self.buf.is_empty() {
                return;
            }
            std::mem::swap(&mut self.buf, &mut self.writing);
            self.buf.clear();
            self.off = 0;
        }
        let data = &self.writing[self.off..];
        let len = data.len().min(u32::MAX as usize) as u32;
        // SAFETY: `writing` is not touched while in_flight; Drop leaks it if the driver
        // still has it.
        unsafe { d.write(self.fd.as_raw_fd(), data.as_ptr(), len, token) };
        self.in_flight = true;
    }

    /// A write is with the kernel (its buffer must not be touched).
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// Writes everything still buffered with plain blocking writes: the last step of a
    /// worker that stops, so no answered request is missing from the log. Does nothing
    /// while a write is in flight (its completion must come first, or lines would be
    /// reordered or the kernel's buffer reused).
    pub fn write_rest_blocking(&mut self) {
        if self.in_flight {
            return;
        }
        let rest = self.writing.get(self.off..).unwrap_or(&[]);
        let result = self.fd.try_clone().and_then(|fd| {
            let mut f = std::fs::File::from(fd);
            io::Write::write_all(&mut f, rest)?;
            io::Write::write_all(&mut f, &self.buf)
        });
        if result.is_err() {
            self.errors += 1;
        }
        self.writing.clear();
        self.off = 0;
        self.buf.clear();
    }

    pub fn complete(&mut self, c: &Completion) {
        self.in_flight = false;
        if c.result < 0 {
            self.errors += 1;
            self.off = self.writing.len(); // drop this batch rather than retry forever
        } else {
            self.off += c.result as usize;
        }
        if self.off >= self.writing.len() {
            self.writing.clear();
            self.off = 0;
        }
    }
}

impl Drop for AppendFile {
    fn drop(&mut self) {
        if self.in_flight {
            std::mem::forget(std::mem::take(&mut self.writing));
        }
    }
}
