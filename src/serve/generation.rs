//! A generation: one set of workers started from one config. A reload starts a new
//! generation on the same listening sockets and retires the old one, which finishes what it
//! has and exits; a worker that panics is restarted within its generation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::sockets::Sockets;
use crate::config::Config;
use crate::worker::{self, Handle, Msg, Ready};

pub struct Generation {
    pub cfg: Arc<Config>,
    handles: Vec<Handle>,
    last_restart: Vec<Option<Instant>>,
    ready_tx: Sender<(usize, Ready)>,
    ready_rx: Receiver<(usize, Ready)>,
}

/// How long a worker may take to build its ring and report.
const START_TIMEOUT: Duration = Duration::from_secs(10);

impl Generation {
    /// Starts every worker and waits until all are running; on any failure the started ones
    /// are stopped again and the first error is returned.
    pub fn start(cfg: Arc<Config>, sockets: &Sockets) -> Result<Generation, String> {
        let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
        let mut g = Generation {
            last_restart: vec![None; cfg.workers],
            cfg,
            handles: Vec::new(),
            ready_tx,
            ready_rx,
        };
        let mut failed = None;
        for id in 0..g.cfg.workers {
            match g.spawn(id, sockets) {
                Ok(h) => g.handles.push(h),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        for _ in 0..g.handles.len() {
            match g.ready_rx.recv_timeout(START_TIMEOUT) {
                Ok((id, Ok(note))) => crate::say!("uringd: worker {id}: {note}"),
                Ok((id, Err(e))) => {
                    failed.get_or_insert(format!("worker {id}: {e}"));
                }
                Err(_) => {
                    failed.get_or_insert("a worker did not start in time".into());
                }
            }
        }
        if let Some(e) = failed {
            g.send_all(|| Msg::Shutdown);
            return Err(e);
        }
        g.send_peers();
        Ok(g)
    }

    fn spawn(&self, id: usize, sockets: &Sockets) -> Result<Handle, String> {
        let fds = sockets
            .for_worker(id)
            .map_err(|e| format!("cannot duplicate worker {id}'s listening sockets: {e}"))?;
        worker::spawn(
            id,
            self.cfg.cpus[id],
            self.cfg.clone(),
            fds,
            self.ready_tx.clone(),
        )
        .map_err(|e| format!("cannot start worker thread {id}: {e}"))
    }

    fn send_peers(&self) {
        let peers: Vec<worker::Peer> = self.handles.iter().map(|h| h.peer.clone()).collect();
        for h in &self.handles {
            h.send(Msg::Peers(peers.clone()));
        }
    }

    pub fn send_all(&self, m: impl Fn() -> Msg) {
        for h in &self.handles {
            h.send(m());
        }
    }

    pub fn finished(&self) -> bool {
        self.handles.iter().all(|h| h.thread.is_finished())
    }

    /// Waits for every worker thread; false if one of them panicked.
    pub fn join(self) -> bool {
        let mut clean = true;
        for h in self.handles {
            clean &= h.thread.join().is_ok();
        }
        clean
    }

    /// Restarts any worker whose thread has ended (a panic: its sockets were closed as it
    /// unwound) on the same CPU with the same listening sockets, as uWSGI's master does; at
    /// most once a second per worker, so a panic on every request cannot spin.
    pub fn restart_dead(&mut self, sockets: &Sockets) -> Result<(), String> {
        while let Some(id) = self.handles.iter().position(|h| h.thread.is_finished()) {
            let cpu = self.handles[id].cpu;
            if let Some(t) = self.last_restart[id] {
                std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
            }
            self.last_restart[id] = Some(Instant::now());
            let new = self.spawn(id, sockets)?;
            let old = std::mem::replace(&mut self.handles[id], new);
            let why = match old.thread.join() {
                Err(p) => format!("panicked: {}", panic_text(p.as_ref())),
                Ok(()) => "stopped".to_string(),
            };
            crate::say!("uringd: worker {id} (cpu {cpu}) {why}; restarting it on cpu {cpu}");
            match self.ready_rx.recv_timeout(START_TIMEOUT) {
                Ok((_, Ok(note))) => crate::say!("uringd: worker {id}: restarted: {note}"),
                Ok((_, Err(e))) => return Err(format!("worker {id} could not restart: {e}")),
                Err(_) => return Err(format!("worker {id} did not restart in time")),
            }
            self.send_peers();
        }
        Ok(())
    }
}

/// What a panic carried, for the log line.
fn panic_text(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
