//! `[[app]]` supervision (issue 19): uringd owns each instance's Unix socket (created once,
//! kept across the instance's restarts, so connections waiting in its backlog are served
//! by the next one), starts the instance through `uringd app-shim` (which dies with uringd
//! and takes the app's whole process group with it), relays its output, marks it ready in
//! the pool's shared slots once it answers (`probe`), and respawns it with exponential
//! backoff when it exits. Workers only see the slots: an instance not ready reads as full,
//! so requests wait in the pool's queue for a ready one (`shield::slots`).
//!
//! Runs on the supervisor thread (`serve::run`), which polls it every loop turn.

pub mod logs;
pub mod probe;
pub mod report;
pub mod shim;
mod sys;

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::config::app::App;
use crate::shield::slots::Slots;

/// The first respawn waits this long; each quick death doubles it, up to `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// An instance that was ready this long before it died starts again at `BACKOFF_MIN`.
const STABLE: Duration = Duration::from_secs(10);

struct Instance {
    n: usize,
    socket: UnixListener,
    path: PathBuf,
    child: Option<Child>,
    pid: u32,
    started: Instant,
    /// Set by the probe thread once the instance answered.
    answered: Arc<AtomicBool>,
    /// Tells the probe thread to give up (the instance died).
    gone: Arc<AtomicBool>,
    /// What the slots say now.
    ready_since: Option<Instant>,
    backoff: Duration,
    respawn_at: Option<Instant>,
    respawns: u64,
    tail: logs::Tail,
    last_exit: Option<std::process::ExitStatus>,
    /// Recycled after this many requests (`max_requests` with its jitter).
    limit: Option<u64>,
    /// Taking no new requests; stopped once those in flight are done.
    recycling: bool,
    /// It was told to stop (recycled, harakiri): started again at once, no backoff.
    expected: bool,
    harakiri_kills: u64,
}

struct Run {
    app: App,
    /// The pool's slots the workers read (`app:NAME`'s), from the live generation.
    slots: Option<Arc<Slots>>,
    instances: Vec<Instance>,
    /// `touch_reload`'s file's modification time when last looked at.
    touched: Option<std::time::SystemTime>,
    /// Instances still to be replaced by a rolling reload, one at a time.
    roll: Vec<usize>,
    /// When max_rss and touch_reload are next looked at (once a second).
    next_check: Instant,
}

/// How often memory (max_rss) and the touch_reload file are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

pub struct Apps {
    runs: Vec<Run>,
    /// What `/_uringd/apps` shows, written every poll.
    report: report::Shared,
    dir: PathBuf,
    /// uringd's own binary, which runs the shim.
    exe: PathBuf,
}

/// The command line, `{socket}` expanded.
fn expand(app: &App, socket: &Path) -> Vec<String> {
    let s = socket.display().to_string();
    app.command
        .iter()
        .map(|a| a.replace("{socket}", &s))
        .collect()
}

impl Apps {
    /// Creates the sockets and starts every instance of every app (not waiting for them).
    pub fn start(cfg: &Config, exe: &Path) -> Result<Apps, String> {
        let dir = crate::config::app::runtime_dir();
        let mut apps = Apps {
            report: cfg.shield.apps.clone(),
            runs: Vec::new(),
            dir: dir.clone(),
            exe: exe.to_path_buf(),
        };
        if cfg.apps.is_empty() {
            return Ok(apps);
        }
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)))
            .map_err(|e| {
                format!(
                    "cannot make the apps' socket directory {}: {e}",
                    dir.display()
                )
            })?;
        for app in &cfg.apps {
            let program = &app.command[0];
            if sys::find_program(program).is_none() {
                return Err(format!(
                    "app {}: cannot start `{program}`: no such program (looked in PATH)",
                    app.name
                ));
            }
            let mut run = Run {
                app: app.clone(),
                slots: None,
                instances: Vec::new(),
                touched: app.touch_reload.as_deref().and_then(mtime),
                roll: Vec::new(),
                next_check: Instant::now() + CHECK_EVERY,
            };
            for (n, path) in app.sockets.iter().enumerate() {
                let _ = std::fs::remove_file(path);
                let socket = UnixListener::bind(path).map_err(|e| {
                    format!("app {}: cannot listen on {}: {e}", app.name, path.display())
                })?;
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
                let mut i = Instance {
                    n,
                    socket,
                    path: path.clone(),
                    child: None,
                    pid: 0,
                    started: Instant::now(),
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
                    harakiri_kills: 0,
                };
                spawn(&apps.exe, app, &mut i)?;
                run.instances.push(i);
            }
            apps.runs.push(run);
        }
        Ok(apps)
    }

    /// Takes the live generation's slots for each app's pool, and tells them which
    /// instances are ready (a reload may have made new slots).
    pub fn adopt(&mut self, cfg: &Config) {
        for a in cfg
            .apps
            .iter()
            .filter(|a| !self.runs.iter().any(|r| r.app.name == a.name))
        {
            crate::say!(
                "uringd: app {}: new in this config; it starts at the next start of uringd (a rolling reload is not built yet), and its routes answer 503 until then",
                a.name
            );
        }
        for run in &mut self.runs {
            let pool = cfg
                .pools
                .iter()
                .position(|p| p.app.is_some() && p.name == format!("app:{}", run.app.name));
            let same = cfg.apps.iter().any(|a| a == &run.app);
            if !same {
                crate::say!(
                    "uringd: app {}: its settings changed or it was removed; changes to [[app]] take effect at the next start (a rolling reload is not built yet)",
                    run.app.name
                );
            }
            run.slots = pool.and_then(|p| cfg.shield.slots.get(p).cloned().flatten());
            if let Some(s) = &run.slots {
                for i in &run.instances {
                    s.set_limit(i.n, i.limit.unwrap_or(0));
                    s.set_ready(i.n, i.ready_since.is_some() && !i.recycling);
                }
            }
        }
    }

    /// Blocks until every app has a ready instance; a start that fails (an instance that
    /// exits before it is ready, or none ready within `ready_timeout`) is an error naming
    /// the command, its exit status and the last lines of its stderr.
    pub fn wait_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            self.poll();
            let mut all = true;
            for run in &mut self.runs {
                if run.instances.iter().any(|i| i.ready_since.is_some()) {
                    continue;
                }
                all = false;
                let app = &run.app;
                if let Some(i) = run
                    .instances
                    .iter()
                    .find(|i| i.respawns > 0 || i.respawn_at.is_some())
                {
                    let lines: Vec<String> = i
                        .tail
                        .lock()
                        .map(|t| t.iter().cloned().collect())
                        .unwrap_or_default();
                    return Err(format!(
                        "app {}: `{}` exited before it was ready ({}); its last lines:\n    {}",
                        app.name,
                        expand(app, &i.path).join(" "),
                        exit_text(i),
                        if lines.is_empty() {
                            "(none)".into()
                        } else {
                            lines.join("\n    ")
                        }
                    ));
                }
                if started.elapsed() > app.ready_timeout {
                    return Err(format!(
                        "app {}: no instance was ready within ready_timeout ({:?}): `{}` answers nothing on {}{}",
                        app.name,
                        app.ready_timeout,
                        expand(app, &run.instances[0].path).join(" "),
                        run.instances[0].path.display(),
                        app.ready_path.as_ref().map_or(String::new(), |p| format!(
                            " (ready_path {p} must answer 2xx)"
                        ))
                    ));
                }
            }
            if all {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Some instance is starting or waiting to be started again, or may have to be
    /// killed (harakiri) or recycled at any moment: poll often.
    pub fn busy(&self) -> bool {
        self.runs.iter().any(|r| {
            r.app.harakiri.is_some()
                || r.app.max_requests.is_some()
                || r.app.max_rss.is_some()
                || r.app.touch_reload.is_some()
                || r.instances.iter().any(|i| i.ready_since.is_none())
        })
    }

    /// Reaps instances that exited, marks new ones ready, starts the ones due.
    pub fn poll(&mut self) {
        let now = Instant::now();
        let mut rss = None;
        for run in &mut self.runs {
            if now >= run.next_check {
                run.next_check = now + CHECK_EVERY;
                check(run, &mut rss);
            }
            roll_on(run);
            for i in &mut run.instances {
                poll_one(&self.exe, &run.app, run.slots.as_deref(), i, now);
            }
        }
        self.write_report();
    }

    fn write_report(&self) {
        let list = self
            .runs
            .iter()
            .map(|r| report::AppReport {
                name: r.app.name.clone(),
                concurrency: r.app.concurrency,
                instances: r
                    .instances
                    .iter()
                    .map(|i| report::InstanceReport {
                        n: i.n,
                        pid: i.pid,
                        state: match () {
                            _ if i.child.is_none() => "dead",
                            _ if i.recycling => "recycling",
                            _ if i.ready_since.is_some() => "ready",
                            _ => "starting",
                        },
                        started: i.started,
                        respawns: i.respawns,
                        harakiri_kills: i.harakiri_kills,
                    })
                    .collect(),
            })
            .collect();
        if let Ok(mut r) = self.report.lock() {
            *r = list;
        }
    }

    /// Stops every instance: SIGTERM to its shim, which stops the app's group and kills
    /// it after `kill_timeout`; then removes the sockets.
    pub fn stop(mut self) {
        let mut wait = Duration::ZERO;
        for run in &mut self.runs {
            if let Some(s) = &run.slots {
                for i in &run.instances {
                    s.set_ready(i.n, false);
                }
            }
            for i in &mut run.instances {
                i.gone.store(true, Ordering::Release);
                if i.child.is_some() {
                    sys::kill_pid(i.pid, libc::SIGTERM);
                }
            }
            wait = wait.max(run.app.kill_timeout);
        }
        let deadline = Instant::now() + wait + Duration::from_secs(1);
        for i in self.runs.iter_mut().flat_map(|r| &mut r.instances) {
            let Some(c) = i.child.as_mut() else { continue };
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        for i in self.runs.iter().flat_map(|r| &r.instances) {
            let _ = std::fs::remove_file(&i.path);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// How the instance last exited, for messages (the shim's status is the app's; 127: the
/// shell found no such program).
fn exit_text(i: &Instance) -> String {
    match i.last_exit {
        Some(st) => st.to_string(),
        None => "it did not start".into(),
    }
}

fn mtime(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Takes instance `i` out of dispatch to be replaced once what it has in flight is done.
fn recycle(app: &App, slots: Option<&Slots>, i: &mut Instance, why: &str) {
    if i.recycling || i.child.is_none() {
        return;
    }
    i.recycling = true;
    if let Some(s) = slots {
        s.set_ready(i.n, false);
    }
    crate::say!(
        "uringd: app {}: instance {} (pid {}) {why}: recycling it",
        app.name,
        i.n,
        i.pid
    );
}

/// Once a second: the touch_reload file (a change starts a rolling replacement of every
/// instance) and each instance's memory against max_rss.
fn check(run: &mut Run, rss: &mut Option<std::collections::HashMap<u32, u64>>) {
    let app = &run.app;
    if let Some(p) = &app.touch_reload {
        let m = mtime(p);
        // A file made after the start counts as a touch too (uWSGI's touch-reload).
        if m.is_some() && m != run.touched {
            crate::say!(
                "uringd: app {}: {} was touched: replacing its instances one at a time",
                app.name,
                p.display()
            );
            run.roll = (0..run.instances.len()).collect();
            run.touched = m;
        }
    }
    if let Some(max) = app.max_rss {
        let by_group = rss.get_or_insert_with(report::rss_by_group);
        for i in &mut run.instances {
            let used = report::child_pid(i.pid)
                .and_then(|g| by_group.get(&g).copied())
                .unwrap_or(0)
                * 1024;
            if i.ready_since.is_some() && used > max {
                let why = format!("uses {} MiB (max_rss {} MiB)", used >> 20, max >> 20);
                recycle(app, run.slots.as_deref(), i, &why);
            }
        }
    }
}

/// A rolling reload's next step: one instance at a time, and only while every other is
/// ready, so capacity never drops below processes - 1 and each new instance is ready
/// before the next old one stops.
fn roll_on(run: &mut Run) {
    if run.roll.is_empty() {
        return;
    }
    let settled = run
        .instances
        .iter()
        .all(|i| i.ready_since.is_some() && !i.recycling && i.child.is_some());
    if !settled {
        return;
    }
    let n = run.roll.remove(0);
    if let Some(i) = run.instances.get_mut(n) {
        recycle(
            &run.app,
            run.slots.as_deref(),
            i,
            "is replaced (touch_reload)",
        );
    }
}

fn poll_one(exe: &Path, app: &App, slots: Option<&Slots>, i: &mut Instance, now: Instant) {
    let n = i.n;
    let mark = move |ready: bool| {
        if let Some(s) = slots {
            s.set_ready(n, ready);
        }
    };
    if let Some(child) = i.child.as_mut() {
        if let Ok(Some(st)) = child.try_wait() {
            i.child = None;
            i.last_exit = Some(st);
            i.gone.store(true, Ordering::Release);
            mark(false);
            let stable = i
                .ready_since
                .is_some_and(|t| now.duration_since(t) >= STABLE);
            i.ready_since = None;
            i.recycling = false;
            if std::mem::take(&mut i.expected) {
                // Asked to stop: its replacement starts now.
                i.respawn_at = Some(now);
                return;
            }
            if stable {
                i.backoff = BACKOFF_MIN;
            }
            crate::say!(
                "uringd: app {}: instance {} (pid {}) exited ({st}); starting it again in {:?}",
                app.name,
                i.n,
                i.pid,
                i.backoff
            );
            i.respawn_at = Some(now + i.backoff);
            i.backoff = (i.backoff * 2).min(BACKOFF_MAX);
            return;
        }
        if slots.is_some_and(|s| s.take_kill(i.n)) {
            i.harakiri_kills += 1;
            i.expected = true;
            mark(false);
            crate::say!(
                "uringd: app {}: instance {} (pid {}) killed: a request had no answer within harakiri ({:?})",
                app.name,
                i.n,
                i.pid,
                app.harakiri.unwrap_or_default()
            );
            sys::kill_pid(i.pid, libc::SIGUSR1);
            return;
        }
        if let (Some(s), Some(limit)) = (slots, i.limit)
            && i.ready_since.is_some()
            && !i.recycling
            && s.served(i.n) >= limit
        {
            // Graceful: no new requests, then a stop once those in flight are done.
            let why = format!(
                "served {} requests (max_requests {})",
                s.served(i.n),
                app.max_requests.unwrap_or(0)
            );
            recycle(app, slots, i, &why);
        }
        if i.recycling && !i.expected && slots.is_none_or(|s| s.in_flight(i.n) == 0) {
            i.expected = true;
            sys::kill_pid(i.pid, libc::SIGTERM);
            return;
        }
        if i.recycling {
            return;
        }
        if i.ready_since.is_none() && i.answered.load(Ordering::Acquire) {
            i.ready_since = Some(now);
            mark(true);
            crate::say!(
                "uringd: app {}: instance {} (pid {}) ready in {} ms",
                app.name,
                i.n,
                i.pid,
                now.duration_since(i.started).as_millis()
            );
        } else if i.ready_since.is_none() && now.duration_since(i.started) > app.ready_timeout {
            crate::say!(
                "uringd: app {}: instance {} (pid {}) not ready after {:?}; stopping it",
                app.name,
                i.n,
                i.pid,
                app.ready_timeout
            );
            sys::kill_pid(i.pid, libc::SIGTERM);
            i.started = now; // one stop request per ready_timeout
        }
        return;
    }
    if i.respawn_at.is_some_and(|t| t <= now) {
        i.respawn_at = None;
        i.respawns += 1;
        if let Some(s) = slots {
            // A new instance: its own count, and no kill meant for the last one.
            s.reset_served(i.n);
            s.take_kill(i.n);
        }
        let started = spawn(exe, app, i);
        if let Some(s) = slots {
            s.set_limit(i.n, i.limit.unwrap_or(0));
        }
        if let Err(e) = started {
            crate::say!("uringd: app {}: {e}", app.name);
            i.respawn_at = Some(now + i.backoff);
            i.backoff = (i.backoff * 2).min(BACKOFF_MAX);
        }
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
    cmd.arg("app-shim")
        .arg("--kill-timeout-ms")
        .arg(&ms)
        .arg("--")
        .args(expand(app, &i.path))
        .envs(app.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = &app.cwd {
        cmd.current_dir(d);
    }
    sys::prepare(&mut cmd, Some(i.socket.as_raw_fd()), Some(libc::SIGTERM));
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
