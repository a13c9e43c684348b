//! `[[app]]`: app server processes uringd runs and supervises (issue 19). Each becomes a
//! pool named `app:NAME` whose servers are its instances' Unix sockets, one request in
//! flight per `concurrency`, so a route says `upstream = "app:NAME"`.

use std::path::PathBuf;
use std::time::Duration;

use super::read::{StringMap, Table};
use super::units::DurationValue;
use super::upstream::{self, Pool, Proto, RawPool};

#[derive(Default, Debug, Clone)]
pub struct RawApp {
    pub name: Option<String>,
    pub command: Option<Vec<String>>,
    pub processes: Option<u32>,
    pub concurrency: Option<u32>,
    pub protocol: Option<String>,
    pub env: Option<StringMap>,
    pub cwd: Option<String>,
    pub kill_timeout: Option<DurationValue>,
    pub ready_path: Option<String>,
    pub ready_timeout: Option<DurationValue>,
    pub queue_timeout: Option<DurationValue>,
    pub harakiri: Option<DurationValue>,
    pub max_requests: Option<u64>,
    pub max_rss: Option<super::units::SizeValue>,
    pub touch_reload: Option<String>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub min_processes: Option<u32>,
    pub max_processes: Option<u32>,
    pub idle_timeout: Option<DurationValue>,
}

impl RawApp {
    pub fn read(t: &Table) -> RawApp {
        RawApp {
            name: t.get("name"),
            command: t.get("command"),
            processes: t.get("processes"),
            concurrency: t.get("concurrency"),
            protocol: t.get("protocol"),
            env: t.get("env"),
            cwd: t.get("cwd"),
            kill_timeout: t.get("kill_timeout"),
            ready_path: t.get("ready_path"),
            ready_timeout: t.get("ready_timeout"),
            queue_timeout: t.get("queue_timeout"),
            harakiri: t.get("harakiri"),
            max_requests: t.get("max_requests"),
            max_rss: t.get("max_rss"),
            touch_reload: t.get("touch_reload"),
            user: t.get("user"),
            group: t.get("group"),
            min_processes: t.get("min_processes"),
            max_processes: t.get("max_processes"),
            idle_timeout: t.get("idle_timeout"),
        }
    }
}

/// Who an app's instances run as (`user`, `group`): set in the instance after fork.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ids {
    /// As written in the config, for messages.
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the user's (as initgroups would set), or just `gid`.
    pub groups: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    pub name: String,
    /// The command and its arguments, `{socket}` not yet expanded.
    pub command: Vec<String>,
    /// Instances started at start-up.
    pub processes: usize,
    /// Never fewer running (cheaper mode: `min_processes` below `max_processes`).
    pub min_processes: usize,
    /// Never more; one socket each.
    pub max_processes: usize,
    /// An instance above min_processes with no request this long is stopped.
    pub idle_timeout: Duration,
    pub concurrency: u32,
    pub protocol: Proto,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// After SIGTERM, how long an instance may take before SIGKILL.
    pub kill_timeout: Duration,
    /// Ready once this path answers 2xx (None: once any answer comes back).
    pub ready_path: Option<String>,
    /// An instance not ready within this is a failed start.
    pub ready_timeout: Duration,
    /// The instances' sockets, one per instance.
    pub sockets: Vec<PathBuf>,
    /// A request without an answer this long: 504, and its instance is killed.
    pub harakiri: Option<Duration>,
    /// An instance is recycled after about this many requests (+-10%).
    pub max_requests: Option<u64>,
    /// An instance whose process group's memory grows past this (bytes) is recycled.
    pub max_rss: Option<u64>,
    /// A change of this file's modification time replaces the instances one at a time.
    pub touch_reload: Option<PathBuf>,
    /// Run as this user and group (None: as uringd).
    pub ids: Option<Ids>,
}

/// Where this process keeps its apps' sockets: a directory of its own (mode 0700).
pub fn runtime_dir() -> PathBuf {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    base.join(format!("uringd-{}-apps", std::process::id()))
}

/// Validates one `[[app]]` and makes its pool.
pub fn validate(i: usize, r: &RawApp, dir: &std::path::Path) -> Result<(App, Pool), String> {
    let key = format!("app[{i}]");
    let name = r
        .name
        .clone()
        .ok_or_else(|| format!("{key}: missing `name` (e.g. name = \"web\")"))?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "{key}.name = \"{name}\": use letters, digits, '-' and '_'"
        ));
    }
    let command = r.command.clone().unwrap_or_default();
    if command.is_empty() || command[0].is_empty() {
        return Err(format!(
            "{key}.command: give the program and its arguments, e.g. command = [\"gunicorn\", \"--bind\", \"unix:{{socket}}\", \"mysite.wsgi\"]"
        ));
    }
    let (processes, min_processes, max_processes) = counts(r, &key)?;
    let concurrency = r.concurrency.unwrap_or(1);
    if !(1..=10_000).contains(&concurrency) {
        return Err(format!(
            "{key}.concurrency = {concurrency}: use 1 (a sync worker) to 10000"
        ));
    }
    let protocol = match r.protocol.as_deref() {
        None | Some("http") => Proto::Http,
        Some("uwsgi") => Proto::Uwsgi,
        Some(p) => {
            return Err(format!(
                "{key}.protocol = \"{p}\": use \"http\" or \"uwsgi\""
            ));
        }
    };
    let dur = |v: &Option<DurationValue>, k: &str, d: u64| -> Result<Duration, String> {
        match v {
            None => Ok(Duration::from_secs(d)),
            Some(v) => super::units::parse_duration(v).map_err(|m| format!("{key}.{k}: {m}")),
        }
    };
    let kill_timeout = dur(&r.kill_timeout, "kill_timeout", 10)?;
    let harakiri = match &r.harakiri {
        None => None,
        Some(v) => {
            let d = super::units::parse_duration(v).map_err(|m| format!("{key}.harakiri: {m}"))?;
            if d < Duration::from_millis(100) {
                return Err(format!(
                    "{key}.harakiri: {d:?} is too short; use at least 100ms"
                ));
            }
            Some(d)
        }
    };
    let max_rss = match &r.max_rss {
        None => None,
        Some(v) => {
            let n = super::units::parse_size(v).map_err(|m| format!("{key}.max_rss: {m}"))?;
            if n < 1 << 20 {
                return Err(format!(
                    "{key}.max_rss: use at least 1MiB (e.g. \"512MiB\")"
                ));
            }
            Some(n)
        }
    };
    if r.max_requests == Some(0) {
        return Err(format!(
            "{key}.max_requests = 0 would recycle instances at once; leave it out for no limit"
        ));
    }
    let ready_timeout = dur(&r.ready_timeout, "ready_timeout", 30)?;
    if let Some(p) = &r.ready_path
        && (!p.starts_with('/') || p.bytes().any(|b| b <= 0x20 || b == 0x7f))
    {
        return Err(format!(
            "{key}.ready_path = \"{p}\": a path starting with '/' (e.g. \"/health\")"
        ));
    }
    let cwd = r.cwd.as_ref().map(PathBuf::from);
    if let Some(d) = &cwd
        && !d.is_dir()
    {
        return Err(format!(
            "{key}.cwd = \"{}\" is not a directory",
            d.display()
        ));
    }
    let env = r.env.clone().unwrap_or_default().0;
    if let Some((k, _)) = env.iter().find(|(k, _)| k.is_empty() || k.contains('=')) {
        return Err(format!("{key}.env: \"{k}\" is not a variable name"));
    }
    let idle_timeout = dur(&r.idle_timeout, "idle_timeout", 30)?;
    let ids = ids(r, &key)?;
    let sockets: Vec<PathBuf> = (0..max_processes)
        .map(|n| dir.join(format!("{name}-{n}.sock")))
        .collect();
    let scheme = match protocol {
        Proto::Http => "http://unix:",
        Proto::Uwsgi => "uwsgi+unix:",
    };
    let pool_name = format!("app:{name}");
    let servers = sockets
        .iter()
        .map(|s| upstream::parse_server(&format!("{scheme}{}", s.display()), &key))
        .collect::<Result<Vec<_>, _>>()?;
    let raw = RawPool {
        max_conns: Some(concurrency),
        queue_timeout: r.queue_timeout.clone(),
        // Harakiri is the longest an instance may take to answer.
        read_timeout: r.harakiri.clone(),
        // The supervisor knows which instances can take requests; a failure says nothing
        // more (it gives a 502 and the instance is respawned).
        max_fails: Some(0),
        ..Default::default()
    };
    let mut pool = upstream::build_pool(&pool_name, &raw, servers)?;
    pool.app = Some(i);
    pool.balance = upstream::Balance::First;
    let app = App {
        name,
        command,
        processes,
        min_processes,
        max_processes,
        idle_timeout,
        concurrency,
        protocol,
        env,
        cwd,
        kill_timeout,
        ready_path: r.ready_path.clone(),
        ready_timeout,
        sockets,
        harakiri,
        max_requests: r.max_requests,
        max_rss,
        touch_reload: r.touch_reload.as_ref().map(PathBuf::from),
        ids,
    };
    Ok((app, pool))
}

/// `processes` (started at start-up), `min_processes` and `max_processes`: either given
/// alone fixes the others to it, as uWSGI's `processes` does without `cheaper`.
fn counts(r: &RawApp, key: &str) -> Result<(usize, usize, usize), String> {
    let min = r.min_processes.or(r.processes).unwrap_or(1);
    let start = r.processes.unwrap_or(min);
    let max = r.max_processes.unwrap_or(start.max(min));
    for (k, v) in [
        ("processes", start),
        ("min_processes", min),
        ("max_processes", max),
    ] {
        if !(1..=64).contains(&v) {
            return Err(format!("{key}.{k} = {v}: use 1 to 64"));
        }
    }
    if !(min <= start && start <= max) {
        return Err(format!(
            "{key}: min_processes ({min}) <= processes ({start}) <= max_processes ({max}) does not hold; processes is how many start, between the two"
        ));
    }
    Ok((start as usize, min as usize, max as usize))
}

/// `user` and `group`, by name or number, looked up now so a typo is a config error.
fn ids(r: &RawApp, key: &str) -> Result<Option<Ids>, String> {
    use nix::unistd::{Gid, Group, Uid, User};
    if r.user.is_none() && r.group.is_none() {
        return Ok(None);
    }
    let user = match &r.user {
        None => None,
        Some(u) => {
            let found = match u.parse::<u32>() {
                Ok(n) => User::from_uid(Uid::from_raw(n)),
                Err(_) => User::from_name(u),
            };
            Some(
                found
                    .ok()
                    .flatten()
                    .ok_or_else(|| format!("{key}.user = \"{u}\": no such user on this machine"))?,
            )
        }
    };
    let gid = match &r.group {
        Some(g) => {
            let found = match g.parse::<u32>() {
                Ok(n) => Group::from_gid(Gid::from_raw(n)),
                Err(_) => Group::from_name(g),
            };
            found
                .ok()
                .flatten()
                .ok_or_else(|| format!("{key}.group = \"{g}\": no such group on this machine"))?
                .gid
                .as_raw()
        }
        None => user.as_ref().map_or(0, |u| u.gid.as_raw()),
    };
    let groups = match &user {
        Some(u) => std::ffi::CString::new(u.name.as_str())
            .ok()
            .and_then(|n| nix::unistd::getgrouplist(&n, Gid::from_raw(gid)).ok())
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_else(|| vec![gid]),
        None => vec![gid],
    };
    let uid = match &user {
        Some(u) => u.uid.as_raw(),
        None => nix::unistd::geteuid().as_raw(),
    };
    let name = match (&r.user, &r.group) {
        (Some(u), Some(g)) => format!("{u}:{g}"),
        (Some(u), None) => u.clone(),
        (None, Some(g)) => format!(":{g}"),
        (None, None) => String::new(),
    };
    Ok(Some(Ids {
        name,
        uid,
        gid,
        groups,
    }))
}
