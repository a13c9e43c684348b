//! One app as it runs: its instances, the slots they are counted in, and what changes them
//! as a whole: a rolling reload (touch_reload or SIGHUP: one instance at a time, the next
//! only once every other is serving), the memory and touch checks, cheaper mode's starts
//! and stops, a reload's new settings, and its retirement when a reload removes it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::gens::Gens;
use super::instance::Instance;
use super::scale::{self, Seen, Step};
use super::{report, sys};
use crate::config::app::App;
use crate::shield::slots::Slots;

/// How often memory (max_rss) and the touch_reload file are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Requests count as waiting while a worker noted them this recently (workers note it
/// every loop turn, about every millisecond, while any wait).
const WAITING_FRESH_US: u64 = 20_000;

pub struct Run {
    pub app: App,
    pub gens: Gens,
    pub instances: Vec<Instance>,
    /// `touch_reload`'s file's modification time when last looked at.
    touched: Option<std::time::SystemTime>,
    /// Instances still to be replaced by a rolling reload, one at a time, and why.
    roll: Vec<usize>,
    roll_why: &'static str,
    next_check: Instant,
    /// Since when requests have waited without a break (cheaper mode).
    waiting_since: Option<Instant>,
    /// A reload removed it: its instances stop, then it is dropped.
    pub retiring: bool,
}

fn mtime(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl Run {
    /// Makes every socket (one per `max_processes`) and starts `processes` instances.
    pub fn start(app: &App, exe: &Path, slots: Option<Arc<Slots>>) -> Result<Run, String> {
        let program = &app.command[0];
        if sys::find_program(program).is_none() {
            return Err(format!(
                "app {}: cannot start `{program}`: no such program (looked in PATH)",
                app.name
            ));
        }
        if let Some(ids) = &app.ids {
            let me = nix::unistd::geteuid().as_raw();
            if me != 0 && (ids.uid != me || ids.gid != nix::unistd::getegid().as_raw()) {
                return Err(format!(
                    "app {}: user/group \"{}\" needs uringd started as root (it runs as uid {me}); leave user and group out to run the app as uringd's user",
                    app.name, ids.name
                ));
            }
        }
        let mut run = Run {
            app: app.clone(),
            gens: Gens::default(),
            instances: Vec::new(),
            touched: app.touch_reload.as_deref().and_then(mtime),
            roll: Vec::new(),
            roll_why: "",
            next_check: Instant::now() + CHECK_EVERY,
            waiting_since: None,
            retiring: false,
        };
        run.gens.adopt(slots);
        for n in 0..app.max_processes {
            run.instances.push(Instance::new(app, n)?);
        }
        for i in run.instances.iter_mut().take(app.processes) {
            i.start(exe, app, &run.gens)
                .map_err(|e| format!("app {}: {e}", app.name))?;
        }
        Ok(run)
    }

    /// The live generation's slots, and what they must say of each instance.
    pub fn adopt(&mut self, slots: Option<Arc<Slots>>) {
        self.gens.adopt(slots);
        for i in &self.instances {
            self.gens.set_limit(i.n, i.limit());
            self.gens.mark(i.n, i.serving());
        }
    }

    /// A reload's settings (SIGHUP): instances added or retired to the new counts, and
    /// every one running replaced one at a time by the new command and settings.
    pub fn update(&mut self, app: &App, exe: &Path) {
        let old = self.wanted();
        self.app = app.clone();
        // Back in the config while it was still stopping: it runs again.
        self.retiring = false;
        let target = if app.min_processes == app.max_processes {
            app.processes
        } else {
            old.len().clamp(app.min_processes, app.max_processes)
        };
        for n in self.instances.len()..app.max_processes {
            match Instance::new(app, n) {
                Ok(i) => self.instances.push(i),
                Err(e) => crate::say!("uringd: {e}"),
            }
        }
        let (app, gens) = (&self.app, &self.gens);
        for i in &mut self.instances {
            if i.n >= target && i.wanted {
                i.retire(app, gens, "is not in the new config's processes");
            } else if i.n < target && !i.wanted && i.running() {
                i.wanted = true; // on its way out: started again once it is
            } else if i.n < target
                && !i.wanted
                && let Err(e) = i.start(exe, app, gens)
            {
                crate::say!("uringd: app {}: {e}", app.name);
            }
        }
        self.roll = old.into_iter().filter(|&n| n < target).collect();
        self.roll_why = "is replaced (reload)";
        crate::say!(
            "uringd: app {}: reloaded: replacing its {} running instances one at a time",
            self.app.name,
            self.roll.len()
        );
    }

    /// The instances meant to run, by number: what a rolling reload replaces.
    fn wanted(&self) -> Vec<usize> {
        self.instances
            .iter()
            .filter(|i| i.wanted)
            .map(|i| i.n)
            .collect()
    }

    /// Removed by a reload: every instance stops once what it has in flight is done.
    pub fn retire(&mut self) {
        self.retiring = true;
        self.roll.clear();
        let (app, gens) = (&self.app, &self.gens);
        for i in &mut self.instances {
            i.retire(app, gens, "belongs to an app the new config removed");
        }
    }

    /// Something may happen at any moment: poll often.
    pub fn busy(&self) -> bool {
        let a = &self.app;
        a.harakiri.is_some()
            || a.max_requests.is_some()
            || a.max_rss.is_some()
            || a.touch_reload.is_some()
            || a.min_processes < a.max_processes
            || self.retiring
            || !self.roll.is_empty()
            || self.instances.iter().any(|i| i.wanted && !i.serving())
    }

    /// One look: checks, a rolling reload's next step, cheaper mode, every instance.
    pub fn poll(&mut self, exe: &Path, now: Instant, rss: &mut Option<RssMap>) {
        self.gens.prune();
        if now >= self.next_check {
            self.next_check = now + CHECK_EVERY;
            self.check(rss);
        }
        self.roll_on();
        if self.app.min_processes < self.app.max_processes && !self.retiring {
            self.scale(exe, now);
        }
        for i in &mut self.instances {
            i.poll(exe, &self.app, &self.gens, now);
        }
        // Slots a reload took away, once their instance is gone.
        while self
            .instances
            .last()
            .is_some_and(|i| i.n >= self.app.max_processes && !i.running())
        {
            if let Some(i) = self.instances.pop() {
                i.remove();
            }
        }
    }

    /// Retired and every instance gone.
    pub fn finished(&self) -> bool {
        self.retiring && self.instances.iter().all(|i| !i.running())
    }

    /// Once a second: the touch_reload file (a change starts a rolling replacement of
    /// every instance) and each instance's memory against max_rss.
    fn check(&mut self, rss: &mut Option<RssMap>) {
        let app = &self.app;
        if let Some(p) = &app.touch_reload {
            let m = mtime(p);
            // A file made after the start counts as a touch too (uWSGI's touch-reload).
            if m.is_some() && m != self.touched {
                crate::say!(
                    "uringd: app {}: {} was touched: replacing its instances one at a time",
                    app.name,
                    p.display()
                );
                self.roll = self.wanted();
                self.roll_why = "is replaced (touch_reload)";
                self.touched = m;
            }
        }
        if let Some(max) = app.max_rss {
            let by_group = rss.get_or_insert_with(report::rss_by_group);
            for i in &mut self.instances {
                let used = report::child_pid(i.pid)
                    .and_then(|g| by_group.get(&g).copied())
                    .unwrap_or(0)
                    * 1024;
                if i.serving() && used > max {
                    let why = format!("uses {} MiB (max_rss {} MiB)", used >> 20, max >> 20);
                    i.recycle(app, &self.gens, &why);
                }
            }
        }
    }

    /// A rolling reload's next step: one instance at a time, and only while every other
    /// is serving, so capacity never drops below processes - 1 and each new instance is
    /// ready before the next old one stops.
    fn roll_on(&mut self) {
        if self.roll.is_empty() {
            return;
        }
        let settled = self
            .instances
            .iter()
            .filter(|i| i.wanted)
            .all(Instance::serving);
        if !settled {
            return;
        }
        let n = self.roll.remove(0);
        if let Some(i) = self.instances.get_mut(n).filter(|i| i.wanted) {
            i.recycle(&self.app, &self.gens, self.roll_why);
        }
        if self.roll.is_empty() {
            crate::say!(
                "uringd: app {}: the last instance of the rolling reload is being replaced",
                self.app.name
            );
        }
    }

    /// Cheaper mode: another instance while requests keep waiting, one fewer once the
    /// highest has been idle for idle_timeout.
    fn scale(&mut self, exe: &Path, now: Instant) {
        let now_us = u64::try_from(
            now.saturating_duration_since(crate::shield::epoch())
                .as_micros(),
        )
        .unwrap_or(0);
        let at = self.gens.waiting_at();
        let waiting = at > 0 && now_us.saturating_sub(at) < WAITING_FRESH_US;
        if !waiting {
            self.waiting_since = None;
        } else if self.waiting_since.is_none() {
            self.waiting_since = Some(now);
        }
        let gens = &self.gens;
        let seen: Vec<Seen> = self
            .instances
            .iter_mut()
            .map(|i| Seen {
                wanted: i.wanted,
                ready: i.serving(),
                idle: i.idle(gens, now),
            })
            .collect();
        let waited = self.waiting_since.map(|t| now.duration_since(t));
        let (app, min, max) = (&self.app, self.app.min_processes, self.app.max_processes);
        // A rolling reload stops instances of its own: no scaling down meanwhile.
        let waited_or_rolling = if self.roll.is_empty() {
            waited
        } else {
            waited.or(Some(Duration::ZERO))
        };
        match scale::decide(&seen, min, max, waited_or_rolling, app.idle_timeout) {
            Step::Start(n) => {
                crate::say!(
                    "uringd: app {}: requests have waited {:?}: starting instance {n}",
                    app.name,
                    waited.unwrap_or_default()
                );
                if let Err(e) = self.instances[n].start(exe, app, gens) {
                    crate::say!("uringd: app {}: {e}", app.name);
                }
            }
            Step::Stop(n) => {
                let why = format!("had no request for {:?} (idle_timeout)", app.idle_timeout);
                self.instances[n].retire(app, gens, &why);
            }
            Step::Hold => {}
        }
    }
}

/// Resident memory by process group, read once per look at most.
pub type RssMap = std::collections::HashMap<u32, u64>;
