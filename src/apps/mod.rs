//! `[[app]]` supervision (issue 19): uringd owns each instance's Unix socket, starts the
//! instance through `uringd app-shim` (which dies with uringd and takes the app's whole
//! process group with it), relays its output, marks it ready in the pool's shared slots
//! once it answers (`probe`), and respawns it with exponential backoff when it exits.
//! Workers only see the slots: an instance not ready reads as full, so requests wait in
//! the pool's queue for a ready one (`shield::slots`). `instance` is one process's life,
//! `run` one app's (rolling reloads, cheaper mode, a reload's changes), `scale` cheaper
//! mode's decision.
//!
//! Runs on the supervisor thread (`serve::run`), which polls it every loop turn.

mod gens;
mod instance;
pub mod logs;
pub mod probe;
pub mod report;
mod run;
mod scale;
pub mod shim;
mod sys;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::Config;
use run::Run;

pub struct Apps {
    runs: Vec<Run>,
    /// What `/_uringd/apps` shows, written every poll.
    report: report::Shared,
    dir: PathBuf,
    /// uringd's own binary, which runs the shim.
    exe: PathBuf,
}

impl Apps {
    /// Creates the sockets and starts the instances of every app (not waiting for them).
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
        make_dir(&dir, cfg)?;
        for app in &cfg.apps {
            match Run::start(app, exe, slots_of(cfg, &app.name)) {
                Ok(run) => apps.runs.push(run),
                Err(e) => {
                    // What started already stops, and the sockets go.
                    apps.stop();
                    return Err(e);
                }
            }
        }
        Ok(apps)
    }

    /// Takes the live generation's slots for each app's pool. On a reload (SIGHUP) each
    /// app the new config keeps is replaced one instance at a time by its new settings,
    /// a new one starts, and one it dropped stops.
    pub fn adopt(&mut self, cfg: &Config, reload: bool) {
        if reload {
            for app in &cfg.apps {
                match self.runs.iter_mut().find(|r| r.app.name == app.name) {
                    Some(r) => r.update(app, &self.exe),
                    None => match make_dir(&self.dir, cfg)
                        .and_then(|()| Run::start(app, &self.exe, None))
                    {
                        Ok(r) => {
                            crate::say!(
                                "uringd: app {}: new in this config: starting it",
                                app.name
                            );
                            self.runs.push(r);
                        }
                        Err(e) => crate::say!(
                            "uringd: error: {e}; its routes answer 503 until a reload fixes it"
                        ),
                    },
                }
            }
            for r in &mut self.runs {
                if !r.retiring && !cfg.apps.iter().any(|a| a.name == r.app.name) {
                    crate::say!(
                        "uringd: app {}: not in the new config: stopping it",
                        r.app.name
                    );
                    r.retire();
                }
            }
        }
        for r in &mut self.runs {
            let s = if r.retiring {
                None
            } else {
                slots_of(cfg, &r.app.name)
            };
            r.adopt(s);
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
            for run in &self.runs {
                if run.instances.iter().any(|i| i.ready_since.is_some()) {
                    continue;
                }
                all = false;
                let app = &run.app;
                if let Some(i) = run.instances.iter().find(|i| i.failed()) {
                    let lines: Vec<String> = i
                        .tail
                        .lock()
                        .map(|t| t.iter().cloned().collect())
                        .unwrap_or_default();
                    return Err(format!(
                        "app {}: `{}` exited before it was ready ({}); its last lines:\n    {}",
                        app.name,
                        instance::expand(app, &i.path).join(" "),
                        i.exit_text(),
                        if lines.is_empty() {
                            "(none)".into()
                        } else {
                            lines.join("\n    ")
                        }
                    ));
                }
                if started.elapsed() > app.ready_timeout {
                    let first = &run.instances[0].path;
                    return Err(format!(
                        "app {}: no instance was ready within ready_timeout ({:?}): `{}` answers nothing on {}{}",
                        app.name,
                        app.ready_timeout,
                        instance::expand(app, first).join(" "),
                        first.display(),
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
    /// killed (harakiri), recycled or added at any moment: poll often.
    pub fn busy(&self) -> bool {
        self.runs.iter().any(Run::busy)
    }

    /// Reaps instances that exited, marks new ones ready, starts the ones due.
    pub fn poll(&mut self) {
        let now = Instant::now();
        let mut rss = None;
        for run in &mut self.runs {
            run.poll(&self.exe, now, &mut rss);
        }
        for r in self.runs.iter().filter(|r| r.finished()) {
            r.instances.iter().for_each(|i| i.remove());
        }
        self.runs.retain(|r| !r.finished());
        self.write_report();
    }

    fn write_report(&self) {
        let list = self
            .runs
            .iter()
            .map(|r| report::AppReport {
                name: r.app.name.clone(),
                concurrency: r.app.concurrency,
                min_processes: r.app.min_processes,
                max_processes: r.app.max_processes,
                instances: r.instances.iter().map(|i| i.report()).collect(),
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
            for i in &mut run.instances {
                run.gens.mark(i.n, false);
                i.terminate();
            }
            wait = wait.max(run.app.kill_timeout);
        }
        let deadline = Instant::now() + wait + Duration::from_secs(1);
        for i in self.runs.iter_mut().flat_map(|r| &mut r.instances) {
            i.reap(deadline);
        }
        for i in self.runs.iter().flat_map(|r| &r.instances) {
            i.remove();
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The apps' socket directory, this process's own. Apps running as another user reach
/// their socket by path through it, so it is then searchable by others (each socket is
/// still mode 0600 and its app user's).
fn make_dir(dir: &Path, cfg: &Config) -> Result<(), String> {
    let mode = if cfg.apps.iter().any(|a| a.ids.is_some()) {
        0o711
    } else {
        0o700
    };
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)))
        .map_err(|e| {
            format!(
                "cannot make the apps' socket directory {}: {e}",
                dir.display()
            )
        })
}

/// The live generation's slots of app `name`'s pool.
fn slots_of(cfg: &Config, name: &str) -> Option<std::sync::Arc<crate::shield::slots::Slots>> {
    let pool = cfg
        .pools
        .iter()
        .position(|p| p.app.is_some() && p.name.strip_prefix("app:") == Some(name))?;
    cfg.shield.slots.get(pool).cloned().flatten()
}
