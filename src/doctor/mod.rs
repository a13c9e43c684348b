//! `uringd doctor`: what this kernel and machine offer a socket server, read-only, each
//! finding graded with what it means for uringd and how to change it.

mod facts;
mod findings;
mod render;
mod sys;

use std::path::Path;

pub use facts::{Facts, gather};
pub use findings::{Finding, Grade, judge};

use crate::driver::uring::explain_setup_error;
use crate::driver::uring::probe::probe_kernel;

/// Runs the doctor on this machine; returns the exit code (1 when a problem was found).
pub fn run(as_json: bool) -> i32 {
    let probe = probe_kernel().map_err(|e| explain_setup_error(&e));
    let mut x = gather(&sys::Sys::new(Path::new("/")), probe);
    x.backend = crate::driver::choose(
        crate::driver::Backend::Auto,
        &crate::driver::uring::SetupOptions::default(),
    )
    .ok();
    let found = judge(&x);
    if as_json {
        crate::outln!("{}", render::json(&x, &found));
    } else {
        crate::out!("{}", render::text(&x, &found));
    }
    i32::from(found.iter().any(|f| f.grade == Grade::Problem))
}

#[cfg(test)]
mod tests;
