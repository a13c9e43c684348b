//! One instance of an app: its socket (uringd's, kept across the instance's restarts, so
//! connections waiting in its backlog are served by the next one), its shim and app
//! process, its probe, and what the supervisor does with it each look: mark it ready,
//! respawn it with backoff, kill it for harakiri, recycle it gracefully.

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::gens::Gens;
use super::{logs, probe, report, sys};
use crate::config::app::App;

/// The first respawn waits this long; each quick death doubles it, up to `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// An instance that was ready this long before it died starts again at `BACKOFF_MIN`.
const STABLE: Duration = Duration::from_secs(10);

pub struct Instance {
    pub n: usize,
    socket: UnixListener,
    pub path: PathBuf,
    child: Option<Child>,
    pub pid: u32,
    started: Instant,
    /// Set by the probe thread once the instance answered.
    answered: Arc<AtomicBool>,
    /// Tells the probe thread to give up (the instance died).
    gone: Arc<AtomicBool>,
    /// What the slots say now.
    pub ready_since: Option<Instant>,
    backoff: Duration,
    respawn_at: Option<Instant>,
    pub respawns: u64,
    pub tail: logs::Tail,
    last_exit: Option<std::process::ExitStatus>,
    /// Recycled after this many requests (`max_requests` with its jitter).
    limit: Option<u64>,
    /// Taking no new requests; stopped once those in flight are done.
    pub recycling: bool,
    /// It was told to stop (recycled, harakiri): started again at once, no backoff.
    expected: bool,
    /// Meant to run: false once cheaper mode or a reload stopped it (not started again).
    pub wanted: bool,
    pub harakiri_kills: u64,
    /// When it last had a request in flight, and its count of finished ones then.
    busy_at: Instant,
    served_seen: u64,
}

/// The command line, `{socket}` expanded.
pub fn expand(app: &App, socket: &Path) -> Vec<String> {
    let s = socket.display().to_string();
    app.command
        .iter()
        .map(|a| a.replace("{socket}", &s))
        .collect()
}

impl Instance {
    /// Slot `n` of `app`: its socket made (mode 0600, the app's user's), nothing started.
    pub fn new(app: &App, n: usize) -> Result<Instance, String> {
        let path = app.sockets[n].clone();
        let _ = std::fs::remove_file(&path);
        let socket = UnixListener::bind(&path)
            .map_err(|e| format!("app {}: cannot listen on {}: {e}", app.name, path.display()))?;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        if let Some(ids) = &app.ids {
            std::os::unix::fs::chown(&path, Some(ids.uid), Some(ids.gid)).map_err(|e| {
                format!(
                    "app {}: cannot give {} to user {}: {e}",
                    app.name,
                    path.display(),
                    ids.name
                )
            })?;
        }
        let now = Instant::now();
        Ok(Instance {
            n,
            socket,
            path,
            child: None,
            pid: 0,
            started: now,
            answered: Arc::default(),
            gone: Arc::default(),
            ready_since: None,
            backoff: BACKOFF_MIN,
            respawn_at: None,
            respawns: 0,
            tail: Arc::default(),
            last_exit: None,
            limit: None,
            recycling: false,
            expected: false,
            wanted: false,
            harakiri_kills: 0,
            busy_at: now,
            served_seen: 0,
        })
    }

    /// Its max_requests with jitter (0: none).
    pub fn limit(&self) -> u64 {
        self.limit.unwrap_or(0)
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Serving: ready and not on its way out.
    pub fn serving(&self) -> bool {
        self.ready_since.is_some() && !self.recycling && self.child.is_some()
    }

    /// How it last exited, for messages (the shim's status is the app's; 127: the shell
    /// found no such program).
    pub fn exit_text(&self) -> String {
        match self.last_exit {
            Some(st) => st.to_string(),
            None => "it did not start".into(),
        }
    }

    /// Has it failed to start (it exited, or waits to be started again)?
    pub fn failed(&self) -> bool {
        self.respawns > 0 || self.respawn_at.is_some()
    }

    /// Starts it now (cheaper mode, a reload growing the app, start-up).
    pub fn start(&mut self, exe: &Path, app: &App, gens: &Gens) -> Result<(), String> {
        self.wanted = true;
        self.respawn_at = None;
        self.busy_at = Instant::now();
        let r = spawn(exe, app, self);
        gens.renew(self.n, self.limit.unwrap_or(0));
        r
    }

    /// Takes it out of dispatch to be replaced (or, if no longer wanted, stopped) once
    /// what it has in flight is done.
    pub fn recycle(&mut self, app: &App, gens: &Gens, why: &str) {
        if self.recycling || self.child.is_none() {
            return;
        }
        self.recycling = true;
        gens.mark(self.n, false);
        crate::say!(
            "uringd: app {}: instance {} (pid {}) {why}: {}",
            app.name,
            self.n,
            self.pid,
            if self.wanted {
                "recycling it"
            } else {
                "stopping it"
            }
        );
    }

    /// Stops it for good (cheaper mode, a reload shrinking or removing the app): taken
    /// out at once, stopped once idle, not started again.
    pub fn retire(&mut self, app: &App, gens: &Gens, why: &str) {
        self.wanted = false;
        self.respawn_at = None;
        self.recycle(app, gens, why);
    }

    /// What it has been doing: how long since it last had a request.
    pub fn idle(&mut self, gens: &Gens, now: Instant) -> Duration {
        let served = gens.served(self.n);
        if gens.in_flight(self.n) > 0 || served != self.served_seen {
            self.busy_at = now;
            self.served_seen = served;
        }
        now.duration_since(self.busy_at)
    }

    pub fn report(&self) -> report::InstanceReport {
        report::InstanceReport {
            n: self.n,
            pid: if self.child.is_some() { self.pid } else { 0 },
            state: match () {
                _ if self.child.is_none() && !self.wanted => "stopped",
                _ if self.child.is_none() => "dead",
                _ if self.recycling => "recycling",
                _ if self.ready_since.is_some() => "ready",
                _ => "starting",
            },
            started: self.started,
            respawns: self.respawns,
            harakiri_kills: self.harakiri_kills,
        }
    }

    /// SIGTERM to its shim, which stops the app's group and kills it after kill_timeout.
    pub fn terminate(&mut self) {
        self.gone.store(true, Ordering::Release);
        if self.child.is_some() {
            sys::kill_pid(self.pid, libc::SIGTERM);
        }
    }

    /// Waits for it to exit until `deadline`, then kills the shim.
    pub fn reap(&mut self, deadline: Instant) {
        let Some(c) = self.child.as_mut() else { return };
        while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(c.try_wait(), Ok(None)) {
            let _ = c.kill();
        }
        let _ = c.wait();
        self.child = None;
    }

    /// Reaps it if it exited, marks it ready, starts it again when due, kills or
    /// recycles it when asked.
    pub fn poll(&mut self, exe: &Path, app: &App, gens: &Gens, now: Instant) {
        if self.child.is_some() {
            self.poll_running(app, gens, now);
        } else if self.respawn_at.is_some_and(|t| t <= now) {
            self.respawn_at = None;
            self.respawns += 1;
            if let Err(e) = self.start(exe, app, gens) {
                crate::say!("uringd: app {}: {e}", app.name);
                self.respawn_at = Some(now + self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }

    fn poll_running(&mut self, app: &App, gens: &Gens, now: Instant) {
        let n = self.n;
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if let Ok(Some(st)) = child.try_wait() {
            self.exited(app, gens, st, now);
            return;
        }
        if gens.take_kill(n) {
            self.harakiri_kills += 1;
            self.expected = true;
            gens.mark(n, false);
            crate::say!(
                "uringd: app {}: instance {n} (pid {}) killed: a request had no answer within harakiri ({:?})",
                app.name,
                self.pid,
                app.harakiri.unwrap_or_default()
            );
            sys::kill_pid(self.pid, libc::SIGUSR1);
            return;
        }
        if let Some(limit) = self.limit
            && self.ready_since.is_some()
            && !self.recycling
            && gens.served(n) >= limit
        {
            // Graceful: no new requests, then a stop once those in flight are done.
            let why = format!(
                "served {} requests (max_requests {})",
                gens.served(n),
                app.max_requests.unwrap_or(0)
            );
            self.recycle(app, gens, &why);
        }
        if self.recycling && !self.expected && gens.in_flight(n) == 0 {
            self.expected = true;
            sys::kill_pid(self.pid, libc::SIGTERM);
            return;
        }
        if self.recycling {
            return;
        }
        if self.ready_since.is_none() && self.answered.load(Ordering::Acquire) {
            self.ready_since = Some(now);
            gens.mark(n, true);
            crate::say!(
                "uringd: app {}: instance {n} (pid {}) ready in {} ms",
                app.name,
                self.pid,
                now.duration_since(self.started).as_millis()
            );
        } else if self.ready_since.is_none() && now.duration_since(self.started) > app.ready_timeout
        {
            crate::say!(
                "uringd: app {}: instance {n} (pid {}) not ready after {:?}; stopping it",
                app.name,
                self.pid,
                app.ready_timeout
            );
            sys::kill_pid(self.pid, libc::SIGTERM);
            self.started = now; // one stop request per ready_timeout
        }
    }

    fn exited(&mut self, app: &App, gens: &Gens, st: std::process::ExitStatus, now: Instant) {
        self.child = None;
        self.last_exit = Some(st);
        self.gone.store(true, Ordering::Release);
        gens.mark(self.n, false);
        let stable = self
            .ready_since
            .is_some_and(|t| now.duration_since(t) >= STABLE);
        self.ready_since = None;
        self.recycling = false;
        if !self.wanted {
            self.expected = false;
            return; // stopped for good
        }
        if std::mem::take(&mut self.expected) {
            // Asked to stop: its replacement starts now.
            self.respawn_at = Some(now);
            return;
        }
        if stable {
            self.backoff = BACKOFF_MIN;
        }
        crate::say!(
            "uringd: app {}: instance {} (pid {}) exited ({st}); starting it again in {:?}",
            app.name,
            self.n,
            self.pid,
            self.backoff
        );
        self.respawn_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    /// Removes its socket (it is gone for good).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `max` +-10%, varied per instance so they do not all recycle at once.
fn jittered(max: u64, seed: u32) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(seed);
    let spread = max / 5;
    (max - max / 10 + h.finish() % (spread + 1)).max(1)
}

/// Starts instance `i` through the shim, and its probe.
fn spawn(exe: &Path, app: &App, i: &mut Instance) -> Result<(), String> {
    let ms = app.kill_timeout.as_millis().to_string();
    let mut cmd = Command::new(exe);
    cmd.arg("app-shim").arg("--kill-timeout-ms").arg(&ms);
    if let Some(ids) = &app.ids {
        let groups: Vec<String> = ids.groups.iter().map(u32::to_string).collect();
        cmd.arg("--uid")
            .arg(ids.uid.to_string())
            .arg("--gid")
            .arg(ids.gid.to_string())
            .arg("--groups")
            .arg(groups.join(","));
    }
    cmd.arg("--")
        .args(expand(app, &i.path))
        .envs(app.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = &app.cwd {
        cmd.current_dir(d);
    }
    sys::prepare(
        &mut cmd,
        Some(i.socket.as_raw_fd()),
        Some(libc::SIGTERM),
        None,
    );
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start instance {}: {e}", i.n))?;
    let pid = child.id();
    let prefix = format!("app {}[{pid}]", app.name);
    if let Some(o) = child.stdout.take() {
        logs::relay(o, prefix.clone(), None);
    }
    if let Some(e) = child.stderr.take() {
        if let Ok(mut t) = i.tail.lock() {
            t.clear();
        }
        logs::relay(e, prefix, Some(i.tail.clone()));
    }
    i.child = Some(child);
    i.pid = pid;
    i.started = Instant::now();
    i.limit = app.max_requests.map(|m| jittered(m, pid));
    i.answered = Arc::default();
    i.gone = Arc::default();
    let (answered, gone) = (i.answered.clone(), i.gone.clone());
    let (path, proto, ready, deadline) = (
        i.path.clone(),
        app.protocol,
        app.ready_path.clone(),
        Instant::now() + app.ready_timeout,
    );
    let _ = std::thread::Builder::new()
        .name("uringd-app-probe".into())
        .spawn(move || {
            let stop = || gone.load(Ordering::Acquire);
            if probe::until_ready(&path, proto, ready.as_deref(), deadline, &stop) {
                answered.store(true, Ordering::Release);
            }
        });
    Ok(())
}
