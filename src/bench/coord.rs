//! The coordinator: starts the threads, adds up their one-second reports as they arrive
//! (interval log, live progress line) and returns the totals.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::hlog::HlogWriter;
use super::tally::Tally;
use super::worker::{self, Gate, GenStats, Report, RunPlan};

pub struct Outcome {
    pub total: Tally,
    pub gens: Vec<GenStats>,
    /// Length of the measured window actually run (shorter if interrupted).
    pub duration_ns: u64,
    pub interrupted: bool,
}

/// Blocks SIGINT and SIGTERM in this thread (the workers inherit the mask), so that
/// Ctrl-C ends the run with a report instead of killing it.
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to a live sigset_t.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    set
}

fn signal_pending(set: &libc::sigset_t) -> bool {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointers; a zero timeout only polls.
    unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &zero) > 0 }
}

struct Progress {
    on: bool,
    total: Tally,
}

impl Progress {
    fn show(&mut self, second: u64, interval: &Tally) {
        if !self.on {
            return;
        }
        self.total.merge(interval);
        let p99 = self.total.corrected.value_at_quantile(0.99) as f64 / 1000.0;
        let errors = self.total.errors.total();
        let mut e = std::io::stderr().lock();
        let _ = write!(
            e,
            "\r\x1b[K  {:>4}s  {:>10.0} req/s  p99 {p99:.2}ms  errors {errors}",
            second + 1,
            interval.completed
        );
        let _ = e.flush();
    }

    fn clear(&self) {
        if self.on {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

pub fn run(
    plan: Arc<RunPlan>,
    mut hlog: Option<HlogWriter>,
    progress: bool,
) -> Result<Outcome, String> {
    let sigs = block_signals();
    let stop = Arc::new(AtomicBool::new(false));
    let gate = Arc::new(Gate::new(plan.threads));
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut handles = Vec::new();
    for t in 0..plan.threads {
        let h = worker::spawn(plan.clone(), t, gate.clone(), stop.clone(), tx.clone())
            .map_err(|e| format!("cannot start thread {t}: {e}"))?;
        handles.push(h);
    }
    drop(tx);

    let threads = plan.threads;
    let mut reported: Vec<Option<u64>> = vec![None; threads];
    let mut done = vec![false; threads];
    let mut pending: BTreeMap<u64, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut gens = Vec::new();
    let mut failure = None;
    let mut interrupted = false;
    let mut progress = Progress {
        on: progress && std::io::stderr().is_terminal(),
        total: Tally::default(),
    };
    let mut finish_ready = |pending: &mut BTreeMap<u64, Tally>,
                            reported: &[Option<u64>],
                            done: &[bool],
                            all: bool,
                            total: &mut Tally,
                            hlog: &mut Option<HlogWriter>|
     -> Result<(), String> {
        while let Some((&index, _)) = pending.first_key_value() {
            let complete = (0..threads).all(|t| done[t] || reported[t].is_some_and(|r| r >= index));
            if !complete && !all {
                break;
            }
            let Some((index, tally)) = pending.pop_first() else {
                break;
            };
            if let Some(h) = hlog.as_mut() {
                h.interval(index, &tally)
                    .map_err(|e| format!("--hlog: cannot write: {e}"))?;
            }
            progress.show(index, &tally);
            total.merge(&tally);
        }
        Ok(())
    };

    while done.iter().any(|d| !d) {
        if !interrupted && signal_pending(&sigs) {
            interrupted = true;
            stop.store(true, Ordering::Relaxed);
        }
        let report = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(r) => r,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        match report {
            Report::Interval {
                thread,
                index,
                tally,
            } => {
                pending.entry(index).or_default().merge(&tally);
                reported[thread] = Some(index);
            }
            Report::Done {
                thread,
                index,
                tally,
                stats,
            } => {
                if !tally.is_empty() {
                    pending.entry(index).or_default().merge(&tally);
                }
                reported[thread] = Some(index);
                done[thread] = true;
                gens.push(*stats);
            }
            Report::Failed { thread, error } => {
                failure.get_or_insert(format!("thread {thread}: {error}"));
                done[thread] = true;
                stop.store(true, Ordering::Relaxed);
            }
        }
        finish_ready(&mut pending, &reported, &done, false, &mut total, &mut hlog)?;
    }
    finish_ready(&mut pending, &reported, &done, true, &mut total, &mut hlog)?;
    progress.clear();
    for h in handles {
        let _ = h.join();
    }
    if let Some(h) = hlog.as_mut() {
        h.finish()
            .map_err(|e| format!("--hlog: cannot write: {e}"))?;
    }
    if let Some(f) = failure {
        return Err(f);
    }
    let duration_ns = gens.iter().map(|g| g.wall_ns).max().unwrap_or(1).max(1);
    Ok(Outcome {
        total,
        gens,
        duration_ns,
        interrupted,
    })
}
