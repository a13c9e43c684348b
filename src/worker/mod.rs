//! Workers: spawn one pinned thread per CPU, each with its own listeners, ring and slab.

mod accept;
mod accesslog;
mod clients;
mod conn;
mod ctx;
#[cfg(debug_assertions)]
mod debug_hook;
mod drain;
mod encode;
mod errlog;
mod event_loop;
mod flow;
mod gathers;
pub mod listener;
mod pending;
mod pools;
mod proxy_req;
mod queue;
mod request;
mod router;
pub mod spool;
mod timer;
mod tls;
mod upconn;
mod upstream;
mod upstreams;

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::config::Config;
use crate::driver::append::AppendFile;
use crate::driver::bufring::BufRing;
use crate::driver::uring::SetupOptions;
use crate::driver::wake::{WakeFd, Waker};
use crate::driver::{Driver, Io, Kind};
use crate::http::parser;
use crate::http::response::ErrorPages;
use crate::stats::{Counters, Recorder, Want, WorkerSnapshot};
use router::Router;

/// What a worker can be told (read at loop boundaries after an eventfd wake), by the
/// supervisor or by another worker gathering an admin page.
pub enum Msg {
    /// Stop: stop accepting, close idle connections now, finish the rest (SIGTERM).
    Shutdown,
    /// Hand over to a newer set of workers (reload, upgrade): stop accepting, answer each
    /// connection's next request with `Connection: close`, and close idle ones after a short
    /// grace, so a busy client never meets a close it did not hear announced.
    Retire,
    /// Cancel and re-arm the accepts. Sent after other workers sharing these listening
    /// sockets stopped accepting: a wake-up the kernel gave to their cancelled accept
    /// (accept waits are exclusive) would otherwise leave a connection queued until the
    /// next one arrives.
    Rearm,
    /// Every worker's address, sent once after all have started.
    Peers(Vec<Peer>),
    Scrape {
        from: usize,
        id: u64,
        want: Want,
    },
    ScrapeReply {
        id: u64,
        snap: Box<WorkerSnapshot>,
    },
    Reset,
    ReopenLog,
}

/// A way to message a worker and wake its ring.
#[derive(Clone)]
pub struct Peer {
    pub tx: Sender<Msg>,
    pub waker: Waker,
}

impl Peer {
    pub fn send(&self, m: Msg) {
        if self.tx.send(m).is_ok() {
            self.waker.wake();
        }
    }
}

pub struct Handle {
    pub id: usize,
    pub cpu: usize,
    pub peer: Peer,
    pub thread: JoinHandle<()>,
}

impl Handle {
    pub fn send(&self, m: Msg) {
        self.peer.send(m);
    }
}

/// What a worker reports once its ring is up (or why it could not start).
pub type Ready = Result<String, String>;

pub fn setup_options(cfg: &Config) -> SetupOptions {
    SetupOptions {
        entries: cfg.ring.entries,
        sqpoll: cfg.ring.sqpoll,
        sqpoll_cpu: cfg.ring.sqpoll_cpu,
        sqpoll_idle_ms: cfg.ring.sqpoll_idle_ms,
        // Asked for: required under --strict, otherwise preferred with a fallback.
        defer_taskrun: match cfg.ring.defer_taskrun {
            Some(true) if !cfg.strict => None,
            other => other,
        },
    }
}

/// Applies the ring-level knobs the kernel may lack. Returns notes for the start-up line;
/// a missing feature is a warning and a fallback, or an error under `strict`.
fn apply_ring_knobs(d: &mut Driver, cfg: &Config) -> Result<(Vec<String>, bool), String> {
    let mut notes = Vec::new();
    let mut fixed = false;
    let strict = cfg.strict;
    let lacking = |notes: &mut Vec<String>, what: String| -> Result<(), String> {
        if strict {
            Err(format!("{what} (and --strict is set)"))
        } else {
            notes.push(format!("warning: {what}; continuing without it"));
            Ok(())
        }
    };
    let Some(ring) = d.ring() else {
        // epoll: the io_uring-only knobs have nothing to act on.
        let r = &cfg.ring;
        let asked = [
            (r.sqpoll, "sqpoll"),
            (r.defer_taskrun == Some(true), "defer_taskrun"),
            (r.napi_busy_poll_us.is_some(), "napi_busy_poll"),
            (r.fixed_files, "fixed_files"),
        ];
        for (on, name) in asked {
            if on {
                lacking(
                    &mut notes,
                    format!("{name} is an io_uring knob and the backend is epoll"),
                )?;
            }
        }
        return Ok((notes, false));
    };
    if cfg.ring.defer_taskrun == Some(true) && !ring.features.defer_taskrun {
        lacking(
            &mut notes,
            "this kernel refused IORING_SETUP_DEFER_TASKRUN (Linux 6.1+)".into(),
        )?;
    }
    if let Some(us) = cfg.ring.napi_busy_poll_us {
        match ring.register_napi(us) {
            Ok(()) => notes.push(format!("napi_busy_poll {us}us")),
            Err(e) => lacking(
                &mut notes,
                format!("IORING_REGISTER_NAPI failed: {e} (NAPI busy polling needs Linux 6.9+)"),
            )?,
        }
    }
    if cfg.ring.fixed_files {
        // One slot per connection this worker may hold, plus room for accepts in flight.
        // The kernel caps a table at RLIMIT_NOFILE; past the table's end accepts fail with
        // ENFILE, which pauses accepting like running out of descriptors does.
        let slots = (cfg.limits.max_connections as u64 + 64)
            .min(crate::driver::uring::soft_rlimit(libc::RLIMIT_NOFILE).unwrap_or(1024))
            .min(1 << 20) as u32;
        match ring.register_fixed_table(slots) {
            Ok(()) => {
                fixed = true;
                notes.push(format!("fixed_files {slots} slots"));
            }
            Err(e) => lacking(
                &mut notes,
                format!(
                    "cannot register a file table for --fixed-files: {e} (Linux 5.19+; RLIMIT_NOFILE must allow {slots})"
                ),
            )?,
        }
    }
    Ok((notes, fixed))
}

/// Starts worker `id` pinned to `cpu`, owning `listeners`. Reports on `ready` once running.
pub fn spawn(
    id: usize,
    cpu: usize,
    cfg: Arc<Config>,
    listeners: Vec<(OwnedFd, listener::ListenKind)>,
    ready: Sender<(usize, Ready)>,
) -> std::io::Result<Handle> {
    let (tx, rx): (Sender<Msg>, Receiver<Msg>) = crossbeam_channel::unbounded();
    let (waker_tx, waker_rx) = crossbeam_channel::bounded::<Waker>(1);
    let thread = std::thread::Builder::new()
        .name(format!("uringd-w{id}"))
        .spawn(move || {
            let pinned = core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
            let built = build(id, cpu, cfg, rx, listeners);
            match built {
                Ok((worker, waker, summary)) => {
                    let _ = waker_tx.send(waker);
                    let note = if pinned {
                        format!("cpu {cpu}, {summary}")
                    } else {
                        format!("unpinned (cpu {cpu} refused), {summary}")
                    };
                    let _ = ready.send((id, Ok(note)));
                    worker.run();
                }
                Err(e) => {
                    drop(waker_tx);
                    let _ = ready.send((id, Err(e)));
                }
            }
        })?;
    // A worker that failed to build drops its sender; use a dead waker then (never woken).
    let waker = match waker_rx.recv() {
        Ok(w) => w,
        Err(_) => WakeFd::new()?.waker(),
    };
    Ok(Handle {
        id,
        cpu,
        peer: Peer { tx, waker },
        thread,
    })
}

fn build(
    id: usize,
    cpu: usize,
    cfg: Arc<Config>,
    rx: Receiver<Msg>,
    listeners: Vec<(OwnedFd, listener::ListenKind)>,
) -> Result<(event_loop::Worker, Waker, String), String> {
    let mut ring = Driver::new(cfg.backend.kind(), &setup_options(&cfg))?;
    let (notes, fixed_files) = apply_ring_knobs(&mut ring, &cfg)?;
    let bufs = BufRing::new(0, cfg.ring.buffers, cfg.ring.buffer_size)
        .map_err(|e| format!("cannot map the receive buffers: {e}"))?;
    let wake = WakeFd::new().map_err(|e| format!("eventfd: {e}"))?;
    let waker = wake.waker();
    let mut summary = match ring.kind() {
        Kind::IoUring => format!("{}, ring {}", ring.summary(), ring.sq_entries()),
        Kind::Epoll => ring.summary(),
    };
    summary.push_str(&format!(
        ", buffers {}x{}",
        cfg.ring.buffers, cfg.ring.buffer_size
    ));
    for n in notes {
        summary.push_str(", ");
        summary.push_str(&n);
    }
    let l = &cfg.limits;
    let http = request::HttpCtx {
        router: Router::new(&cfg).map_err(|e| format!("cannot open a static root: {e}"))?,
        errors: ErrorPages::new(&cfg.server_header),
        limits: parser::Limits {
            max_header_bytes: l.max_header_bytes,
            max_headers: l.max_headers,
            max_target_bytes: l.max_target_bytes,
        },
        max_body: l.max_body_bytes,
        headers: Vec::with_capacity(l.max_headers.min(128)),
        path: Vec::with_capacity(256),
        route_key: Vec::new(),
        scratch: Vec::new(),
        date: [b' '; 29],
        zc_threshold: cfg.ring.send_zc_threshold,
        draining: false,
        now_tick: 0,
        now_us: 0,
        unix_s: 0,
        stats: Counters {
            limited_by_route: vec![0; cfg.routes.len()],
            ..Counters::default()
        },
        shield: cfg.shield.clone(),
        limit_keys: cfg
            .routes
            .iter()
            .map(|r| r.limit.as_ref().map(|l| l.key.clone()))
            .collect(),
        clock_base_us: u64::try_from(
            std::time::Instant::now()
                .saturating_duration_since(crate::shield::epoch())
                .as_micros(),
        )
        .unwrap_or(0),
        recorder: Recorder::new(
            cfg.histograms,
            cfg.routes.iter().map(|r| r.name.clone()).collect(),
            &cfg.routes
                .iter()
                .map(|r| matches!(r.action, crate::config::Action::Upstream { .. }))
                .collect::<Vec<_>>(),
        )
        .with_queues(
            cfg.pools
                .iter()
                .map(|p| (p.name.clone(), p.shield.max_conns.is_some()))
                .collect(),
        ),
        server_header: cfg.server_header.clone(),
        admin_token: cfg.admin_token.as_ref().map(|t| t.as_bytes().to_vec()),
        pools_proto: cfg.pools.iter().map(|p| p.servers[0].proto).collect(),
        pools_shield: cfg.pools.iter().map(|p| p.shield.clone()).collect(),
        pools_names: cfg.pools.iter().map(|p| p.name.clone()).collect(),
        trusted_proxies: cfg.trusted_proxies.clone(),
        real_ip: cfg.real_ip,
        worker_id: id,
        errlog: Default::default(),
        handshake_budget: tls::handshakes_per_turn(),
        underscores_in_headers: cfg.underscores_in_headers,
        log: match &cfg.access_log {
            Some(p) => Some(accesslog::AccessLog::new(
                AppendFile::open(p).map_err(|e| format!("access log {}: {e}", p.display()))?,
            )),
            None => None,
        },
    };
    let io = Io::new(ring, bufs).map_err(|e| {
        format!("cannot register the receive buffer ring: {e} (kernel 5.19 or newer is needed)")
    })?;
    let parts = event_loop::Parts {
        io,
        wake,
        rx,
        listeners,
        http,
        fixed_files,
    };
    let w = event_loop::Worker::new(id, cpu, cfg, parts);
    Ok((w, waker, summary))
}
