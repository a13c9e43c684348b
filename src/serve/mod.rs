//! `uringd serve`: take the listening sockets (bound, or inherited), start a generation of
//! workers, then supervise: signals (stop, reload, upgrade, reopen logs), restarts of
//! workers that panic, and the hand-over to a new generation or a new binary.

mod generation;
mod inherit;
mod notify;
mod signals;
mod sockets;
mod upgrade;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{self, Config, Overrides};
use crate::worker::Msg;
use crate::worker::listener::ListenKind;
use generation::Generation;
use notify::notify;
use sockets::Sockets;
use upgrade::{Progress, Upgrade};

/// Where the config came from, to read it again on SIGHUP.
pub struct Source {
    pub path: Option<PathBuf>,
    pub overrides: Overrides,
}

fn check_access_log(cfg: &Config) -> Result<(), String> {
    match &cfg.access_log {
        Some(p) => crate::driver::append::open_append(p)
            .map(drop)
            .map_err(|e| format!("cannot open the access log {}: {e}", p.display())),
        None => Ok(()),
    }
}

/// Runs the server until SIGTERM/SIGINT (or until a new binary took over); returns the
/// process exit code.
pub fn run(mut cfg: Config, source: Source) -> i32 {
    let sigs = signals::block();
    // Resolved now: after an upgrade replaced the file, /proc/self/exe reads "(deleted)".
    let exe = std::env::current_exe().ok();
    if let Err(e) = check_access_log(&cfg) {
        crate::say!("uringd: error: {e}");
        return 1;
    }
    let mut inherited = match inherit::take_from_env() {
        Ok(i) => i,
        Err(e) => {
            crate::say!("uringd: error: {e}");
            return 1;
        }
    };
    let ready_pipe = inherited.ready_pipe.take();
    let upgraded = ready_pipe.is_some();
    let (sockets, notes) = match Sockets::open(&cfg, inherited) {
        Ok(s) => s,
        Err(e) => {
            crate::say!("uringd: error: {e}");
            return 1;
        }
    };
    for n in notes {
        crate::say!("uringd: {n}");
    }
    let mut file_cfg = cfg.clone();
    // One backend per process: decided here, before any worker starts, and said once.
    match crate::driver::choose(cfg.backend, &crate::worker::setup_options(&cfg)) {
        Ok(c) => {
            crate::say!("uringd: backend {}: {}", c.kind.name(), c.reason);
            cfg.backend = c.kind.into();
        }
        Err(e) => {
            crate::say!("uringd: error: {e}");
            return 1;
        }
    }
    if let Err(e) = make_ready(&mut cfg, None) {
        crate::say!("uringd: error: {e}");
        return 1;
    }
    // The apps first: their routes are served once an instance of each is ready.
    let mut apps = match start_apps(&cfg, exe.as_deref()) {
        Ok(a) => a,
        Err(e) => {
            crate::say!("uringd: error: {e}");
            return 1;
        }
    };
    let first = match Generation::start(Arc::new(cfg), &sockets) {
        Ok(g) => g,
        Err(e) => {
            crate::say!("uringd: error: {e}");
            return 1;
        }
    };
    announce(&sockets, &first.cfg);
    let mut live = Some(first);
    if let Some(p) = ready_pipe {
        // The previous process retires its workers when it reads this.
        let _ = std::io::Write::write_all(&mut std::fs::File::from(p), b"ready\n");
    }
    notify(&if upgraded {
        format!("MAINPID={}\nREADY=1", std::process::id())
    } else {
        "READY=1".into()
    });

    let mut retiring: Vec<Generation> = Vec::new();
    let mut upgrade: Option<Upgrade> = None;
    // When to tell the live workers to re-arm their accepts: after others sharing the
    // sockets stop accepting (a retired generation here, or the previous process).
    let mut kicks: Vec<Instant> = Vec::new();
    if upgraded {
        kicks = kick_schedule(Duration::from_secs(3));
    }
    let mut code = 0;
    loop {
        let tick = if upgrade.is_some() || !kicks.is_empty() || apps.busy() {
            50
        } else {
            500
        };
        match signals::wait(&sigs, Duration::from_millis(tick)) {
            Some(libc::SIGTERM) | Some(libc::SIGINT) => {
                let t = live
                    .as_ref()
                    .map_or(file_cfg.drain_timeout, |g| g.cfg.drain_timeout);
                crate::say!("uringd: stopping: finishing in-flight requests (up to {t:?})");
                notify("STOPPING=1");
                break;
            }
            // logrotate moved the access log away: every worker reopens it by path.
            Some(libc::SIGUSR1) => {
                for g in live.iter().chain(&retiring) {
                    g.send_all(|| Msg::ReopenLog);
                }
            }
            Some(libc::SIGHUP) => match live.as_mut() {
                Some(g) => {
                    if let Some(old) = reload(&source, &mut file_cfg, g, &sockets) {
                        retiring.push(old);
                        kicks = kick_schedule(Duration::from_secs(1));
                        apps.adopt(&g.cfg, true);
                    }
                }
                None => crate::say!("uringd: reload ignored: this process has handed over"),
            },
            Some(libc::SIGUSR2) => match (&upgrade, &exe) {
                (Some(u), _) => crate::say!(
                    "uringd: upgrade ignored: one is under way (new process {})",
                    u.pid()
                ),
                _ if live.is_none() => {
                    crate::say!("uringd: upgrade ignored: this process has handed over")
                }
                (None, None) => crate::say!("uringd: upgrade failed: cannot find our own binary"),
                (None, Some(exe)) => match upgrade::begin(exe, &sockets, sigs) {
                    Ok(u) => {
                        crate::say!(
                            "uringd: upgrade: started {} (pid {}); waiting for it to serve",
                            exe.display(),
                            u.pid()
                        );
                        upgrade = Some(u);
                    }
                    Err(e) => crate::say!("uringd: upgrade failed: {e}; still serving"),
                },
            },
            _ => {}
        }
        apps.poll();
        if let Some(u) = &mut upgrade {
            match u.poll() {
                Progress::Pending => {}
                Progress::Ready(pid) => {
                    crate::say!(
                        "uringd: upgrade: process {pid} is serving; process {} drains and exits",
                        std::process::id()
                    );
                    if let Some(g) = live.take() {
                        g.send_all(|| Msg::Retire);
                        retiring.push(g);
                    }
                    upgrade = None;
                }
                Progress::Failed(e) => {
                    crate::say!("uringd: upgrade failed: {e}; still serving");
                    upgrade = None;
                }
            }
        }
        let (done, busy): (Vec<_>, Vec<_>) = retiring.into_iter().partition(|g| g.finished());
        retiring = busy;
        if !done.is_empty() {
            kicks.push(Instant::now());
        }
        for g in done {
            g.join();
        }
        let now = Instant::now();
        if kicks.iter().any(|&k| k <= now) {
            kicks.retain(|&k| k > now);
            if let Some(g) = &live {
                g.send_all(|| Msg::Rearm);
            }
        }
        match live.as_mut() {
            None if retiring.is_empty() => break,
            None => {}
            Some(g) => {
                if let Err(e) = g.restart_dead(&sockets) {
                    crate::say!("uringd: error: {e}");
                    code = 1;
                    break;
                }
            }
        }
    }
    for g in live.iter().chain(&retiring) {
        g.send_all(|| Msg::Shutdown);
    }
    for g in live.into_iter().chain(retiring) {
        if !g.join() {
            code = 1;
        }
    }
    apps.stop();
    crate::say!("uringd: stopped");
    code
}

/// Starts the `[[app]]` instances and waits until each app has a ready one (a failed start
/// stops the others and is the error).
fn start_apps(cfg: &Config, exe: Option<&std::path::Path>) -> Result<crate::apps::Apps, String> {
    let exe = exe.ok_or("cannot find our own binary to run the apps' shim")?;
    let mut apps = crate::apps::Apps::start(cfg, exe)?;
    apps.adopt(cfg, false);
    if let Err(e) = apps.wait_ready() {
        apps.stop();
        return Err(e);
    }
    Ok(apps)
}

/// Makes a validated config ready to run: the certificates `cfg.tls` names read (as the
/// files are now) into its acceptor and logged with their names and expiry, the upstream
/// pools' TLS client configs, and the tables the generation's workers share (`shield`).
pub fn make_ready(cfg: &mut Config, previous: Option<&Config>) -> Result<(), String> {
    cfg.shield = crate::shield::Shield::new(cfg, previous);
    cfg.upstream_tls = cfg
        .pools
        .iter()
        .map(|p| {
            p.tls
                .as_ref()
                .map(|t| crate::tls::client::upstream(&p.name, t))
                .transpose()
        })
        .collect::<Result<_, _>>()?;
    let Some(t) = &cfg.tls else {
        return Ok(());
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (acceptor, notes) = crate::tls::build(t, now)?;
    for n in notes {
        crate::say!("uringd: {n}");
    }
    cfg.tls_acceptor = Some(acceptor);
    Ok(())
}

/// Re-arm times from now up to `last`: soon, then spaced out.
fn kick_schedule(last: Duration) -> Vec<Instant> {
    let now = Instant::now();
    [50, 250, 1000, 3000]
        .into_iter()
        .map(Duration::from_millis)
        .filter(|d| *d <= last)
        .map(|d| now + d)
        .collect()
}

/// The "listening on" lines; admin first, so a script that waits for "listening on" knows
/// both are up.
fn announce(sockets: &Sockets, cfg: &Config) {
    for g in sockets
        .groups
        .iter()
        .filter(|g| g.kind == ListenKind::Admin)
    {
        let auth = if cfg.admin_token.is_some() {
            "bearer token required"
        } else {
            "no token"
        };
        crate::say!("uringd: admin on http://{}/_uringd/ ({auth})", g.actual);
    }
    // What the routes do with requests, so `serve --upstream URL` says where it proxies.
    for r in &cfg.routes {
        match &r.action {
            crate::config::Action::Upstream { pool, .. } => {
                let urls: Vec<&str> = cfg.pools[*pool]
                    .servers
                    .iter()
                    .map(|s| s.url.as_str())
                    .collect();
                crate::say!("uringd: route {}: proxied to {}", r.prefix, urls.join(", "));
            }
            crate::config::Action::Static { dir, .. } => {
                crate::say!("uringd: route {}: files from {}", r.prefix, dir.display());
            }
            crate::config::Action::Redirect { status, .. } => {
                crate::say!("uringd: route {}: redirected ({status})", r.prefix);
            }
            crate::config::Action::Return { .. } => {}
        }
    }
    for g in sockets.groups.iter() {
        let scheme = match g.kind {
            ListenKind::Admin => continue,
            ListenKind::Http => "http",
            ListenKind::Tls => "https",
            ListenKind::Proxied => "http",
        };
        let note = if g.kind == ListenKind::Proxied {
            ", PROXY protocol header expected"
        } else {
            ""
        };
        crate::say!(
            "uringd: listening on {scheme}://{} ({} workers{note})",
            g.actual,
            cfg.workers
        );
    }
}

/// SIGHUP: reads and validates the config again. If it is good, starts a new generation of
/// workers with it on the same sockets and returns the old one, now retiring; otherwise the
/// running config stays and the log says why. Settings tied to the listening sockets
/// (addresses, worker count and CPUs, socket options) cannot change without new sockets:
/// they keep their running values, with a warning naming them.
fn reload(
    source: &Source,
    file_cfg: &mut Config,
    live: &mut Generation,
    sockets: &Sockets,
) -> Option<Generation> {
    notify("RELOADING=1");
    let what = source
        .path
        .as_ref()
        .map_or("the built-in config".into(), |p| p.display().to_string());
    let result = next_generation(source, file_cfg, live, sockets);
    notify("READY=1");
    match result {
        Ok(g) => {
            crate::say!(
                "uringd: reloaded {what}: {} new workers serving; the previous ones finish their requests and exit",
                g.cfg.workers
            );
            let old = std::mem::replace(live, g);
            old.send_all(|| Msg::Retire);
            Some(old)
        }
        Err(e) => {
            crate::say!("uringd: reload refused: {e}; still running the previous config");
            None
        }
    }
}

/// The reloaded config, made effective and started.
fn next_generation(
    source: &Source,
    file_cfg: &mut Config,
    live: &Generation,
    sockets: &Sockets,
) -> Result<Generation, String> {
    let new = config::load(source.path.as_deref(), &source.overrides)
        .map_err(|e| format!("config error: {e}"))?;
    let mut eff = new.clone();
    let mut kept = Vec::new();
    let run = &live.cfg;
    if new.listen != file_cfg.listen {
        kept.push("listen");
        eff.listen = run.listen.clone();
    }
    let tls_listen = |c: &Config| c.tls.as_ref().map(|t| t.listen.clone());
    if tls_listen(&new) != tls_listen(file_cfg) {
        kept.push("tls.listen");
        match (&mut eff.tls, &run.tls) {
            (Some(t), Some(r)) => t.listen = r.listen.clone(),
            // TLS is only served where a listener for it was opened at start.
            (t, None) => *t = None,
            (None, Some(_)) => {
                return Err("tls: the running TLS listeners need certificates; keep a [tls] table (or restart without TLS)".into());
            }
        }
    }
    if new.admin != file_cfg.admin {
        kept.push("admin");
        eff.admin = run.admin;
    }
    if new.workers != file_cfg.workers || new.cpus != file_cfg.cpus {
        kept.push("workers/cpus");
        eff.workers = run.workers;
        eff.cpus = run.cpus.clone();
    }
    if new.sockets != file_cfg.sockets {
        kept.push("socket options (backlog, tcp_nodelay, busy_poll, reuseport_steering)");
        eff.sockets = run.sockets.clone();
    }
    // The backend was decided once for the process (auto resolved at start).
    eff.backend = run.backend;
    if new.backend != file_cfg.backend {
        crate::say!(
            "uringd: reload: warning: backend changed; it is chosen once per process, so {} stays until a restart or an upgrade (SIGUSR2)",
            run.backend.name()
        );
    }
    if !kept.is_empty() {
        crate::say!(
            "uringd: reload: warning: {} changed; that needs new listening sockets, so the running value stays until a restart or an upgrade (SIGUSR2)",
            kept.join(", ")
        );
    }
    check_access_log(&eff)?;
    make_ready(&mut eff, Some(run))?;
    let g = Generation::start(Arc::new(eff), sockets)?;
    *file_cfg = new;
    Ok(g)
}
