//! Lines to stderr (the error log) and stdout (reports) that can never stop the process.
//!
//! `eprintln!` panics when its write fails, so a server whose stderr reader went away
//! (`uringd serve 2>&1 | head -1`, a crashed log collector) died at its next log line. Here
//! a failed write is counted and the line dropped; a server keeps serving whether or not
//! anyone reads its log. Each line is one `write` call, so lines from different threads do
//! not interleave.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Lines that could not be written to stderr or stdout since the process started.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

fn emit(to: &mut dyn Write, args: fmt::Arguments, newline: bool) {
    // Formatted first, so the line reaches the descriptor in one write (up to the pipe's
    // atomic size) instead of one write per formatting piece.
    let mut line = Vec::with_capacity(160);
    let _ = line.write_fmt(args);
    if newline {
        line.push(b'\n');
    }
    if to.write_all(&line).and_then(|()| to.flush()).is_err() {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Writes one line to stderr; a failure is counted, never a panic.
pub fn err_line(args: fmt::Arguments) {
    emit(&mut std::io::stderr().lock(), args, true);
}

/// Writes to stdout without a newline; a failure (a closed pipe) is counted, never a panic.
pub fn out(args: fmt::Arguments) {
    emit(&mut std::io::stdout().lock(), args, false);
}

/// `say!("uringd: ...")`: one line on stderr that cannot panic (see the module docs).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::log::err_line(format_args!($($arg)*))
    };
}

/// `out!("...")`: text on stdout that cannot panic; `outln!` adds the newline.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::log::out(format_args!($($arg)*))
    };
}

#[macro_export]
macro_rules! outln {
    () => {
        $crate::log::out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::log::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from_raw_os_error(libc::EPIPE))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_is_counted_not_a_panic() {
        let before = dropped();
        emit(&mut Broken, format_args!("x {}", 1), true);
        assert_eq!(dropped(), before + 1);
        let mut v = Vec::new();
        emit(&mut v, format_args!("a {}", 2), true);
        assert_eq!(v, b"a 2\n");
    }
}
