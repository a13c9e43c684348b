//! `uringd serve`: bind, start the workers, then supervise (signals, worker health, drain).

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::config::Config;
use crate::worker::{self, Msg, listener};

fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local; pthread_sigmask affects this thread and,
    // by inheritance, every worker spawned after it, so only the supervisor sees signals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        // A peer that vanished must give EPIPE on a write, not kill the process.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        set
    }
}

/// Waits up to `timeout` for one of the blocked signals.
fn wait_signal(set: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: set and ts are valid for the call; info may be null.
    let s = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (s > 0).then_some(s)
}

type Listeners = [(OwnedFd, bool)];

/// Starts worker `id` on duplicates of its listening sockets.
fn start_worker(
    id: usize,
    cfg: &Arc<Config>,
    listeners: &Listeners,
    ready: &Sender<(usize, worker::Ready)>,
) -> Result<worker::Handle, String> {
    let dups = listeners
        .iter()
        .map(|(fd, admin)| fd.try_clone().map(|d| (d, *admin)))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| format!("cannot duplicate worker {id}'s listening sockets: {e}"))?;
    worker::spawn(id, cfg.cpus[id], cfg.clone(), dups, ready.clone())
        .map_err(|e| format!("cannot start worker thread {id}: {e}"))
}

/// What a panic carried, for the log line.
fn panic_text(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// A worker thread ended on its own: a panic (its sockets were closed as it unwound). Start
/// a new one on the same CPU with the same listening sockets, as uWSGI's master does, at
/// most once a second per worker so a panic on every request cannot spin.
fn restart(
    id: usize,
    cfg: &Arc<Config>,
    listeners: &Listeners,
    handles: &mut [worker::Handle],
    ready_tx: &Sender<(usize, worker::Ready)>,
    ready_rx: &Receiver<(usize, worker::Ready)>,
    last: &mut Option<Instant>,
) -> Result<(), String> {
    let cpu = handles[id].cpu;
    if let Some(t) = *last {
        std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
    }
    *last = Some(Instant::now());
    let new = start_worker(id, cfg, listeners, ready_tx)?;
    let old = std::mem::replace(&mut handles[id], new);
    let why = match old.thread.join() {
        Err(p) => format!("panicked: {}", panic_text(p.as_ref())),
        Ok(()) => "stopped".to_string(),
    };
    eprintln!("uringd: worker {id} (cpu {cpu}) {why}; restarting it on cpu {cpu}");
    match ready_rx.recv_timeout(Duration::from_secs(10)) {
        Ok((_, Ok(note))) => eprintln!("uringd: worker {id}: restarted: {note}"),
        Ok((_, Err(e))) => return Err(format!("worker {id} could not restart: {e}")),
        Err(_) => return Err(format!("worker {id} did not restart within 10 s")),
    }
    let peers: Vec<worker::Peer> = handles.iter().map(|h| h.peer.clone()).collect();
    for h in handles.iter() {
        h.send(Msg::Peers(peers.clone()));
    }
    Ok(())
}

/// Runs the server until SIGTERM/SIGINT; returns the process exit code.
pub fn run(cfg: Config) -> i32 {
    let cfg = Arc::new(cfg);
    let sigs = block_signals();

    if let Some(p) = &cfg.access_log
        && let Err(e) = crate::ring::append::open_append(p)
    {
        eprintln!(
            "uringd: error: cannot open the access log {}: {e}",
            p.display()
        );
        return 1;
    }
    // Bind everything first so a bad address fails before any thread starts.
    let mut per_worker: Vec<Vec<(std::os::fd::OwnedFd, bool)>> =
        (0..cfg.workers).map(|_| Vec::new()).collect();
    let mut bound = Vec::new();
    let admin = cfg.admin.iter().map(|a| (a, true));
    for (addr, is_admin) in cfg.listen.iter().map(|a| (a, false)).chain(admin) {
        match listener::reuseport_group(addr, cfg.workers, &cfg.sockets, !is_admin) {
            Ok((fds, actual)) => {
                for (i, fd) in fds.into_iter().enumerate() {
                    per_worker[i].push((fd, is_admin));
                }
                bound.push((actual, is_admin));
            }
            Err(e) => {
                eprintln!("uringd: error: {}", listener::explain_bind_error(addr, &e));
                return 1;
            }
        }
    }

    // The supervisor keeps the listening sockets; each worker gets duplicates. A worker that
    // dies takes only its duplicates with it, so its sockets stay in their reuseport groups
    // and connections queue in the backlog until the restarted worker accepts them.
    let listeners = per_worker;
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
    let mut handles = Vec::new();
    for (id, fds) in listeners.iter().enumerate() {
        match start_worker(id, &cfg, fds, &ready_tx) {
            Ok(h) => handles.push(h),
            Err(e) => {
                eprintln!("uringd: error: {e}");
                return 1;
            }
        }
    }
    let mut failed = None;
    for _ in 0..handles.len() {
        match ready_rx.recv() {
            Ok((id, Ok(note))) => eprintln!("uringd: worker {id}: {note}"),
            Ok((id, Err(e))) => {
                failed.get_or_insert(format!("worker {id}: {e}"));
            }
            Err(_) => failed = Some("a worker died during start-up".into()),
        }
    }
    if let Some(e) = failed {
        eprintln!("uringd: error: {e}");
        for h in &handles {
            h.send(Msg::Shutdown);
        }
        return 1;
    }
    let peers: Vec<worker::Peer> = handles.iter().map(|h| h.peer.clone()).collect();
    for h in &handles {
        h.send(Msg::Peers(peers.clone()));
    }
    // Admin first, so a test or script that waits for "listening on" knows both are up.
    for (a, is_admin) in bound.iter().rev() {
        if *is_admin {
            let auth = if cfg.admin_token.is_some() {
                "bearer token required"
            } else {
                "no token"
            };
            eprintln!("uringd: admin on http://{a}/_uringd/ ({auth})");
        } else {
            eprintln!("uringd: listening on http://{a} ({} workers)", cfg.workers);
        }
    }

    let mut code = 0;
    let mut last_restart: Vec<Option<Instant>> = vec![None; handles.len()];
    loop {
        match wait_signal(&sigs, Duration::from_millis(500)) {
            Some(libc::SIGTERM) | Some(libc::SIGINT) => {
                eprintln!(
                    "uringd: stopping: finishing in-flight requests (up to {:?})",
                    cfg.drain_timeout
                );
                break;
            }
            Some(libc::SIGUSR1) => {
                // logrotate moved the access log away: every worker reopens it by path.
                for h in &handles {
                    h.send(Msg::ReopenLog);
                }
            }
            Some(_) => {} // SIGHUP: reserved for reload
            None => {
                let Some(id) = handles.iter().position(|h| h.thread.is_finished()) else {
                    continue;
                };
                if let Err(e) = restart(
                    id,
                    &cfg,
                    &listeners[id],
                    &mut handles,
                    &ready_tx,
                    &ready_rx,
                    &mut last_restart[id],
                ) {
                    eprintln!("uringd: error: {e}");
                    code = 1;
                    break;
                }
            }
        }
    }
    for h in &handles {
        h.send(Msg::Shutdown);
    }
    for h in handles {
        if h.thread.join().is_err() {
            code = 1;
        }
    }
    eprintln!("uringd: stopped");
    code
}
