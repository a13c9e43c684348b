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
    /// Read so they are not unknown keys, and refused: not built yet.
    pub later: Vec<&'static str>,
}

/// Keys of the interface that are not built yet: refused by name rather than
/// accepted and ignored.
const NOT_YET: [&str; 4] = ["user", "group", "min_processes", "max_processes"];

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
            later: NOT_YET
                .into_iter()
                .filter(|k| t.get::<toml_any::Any>(k).is_some())
                .collect(),
        }
    }
}

/// Any value, for keys read only to be refused.
mod toml_any {
    pub struct Any;
    impl super::super::read::FromValue for Any {
        fn from_value(_: &toml::de::DeValue, _: &str) -> Result<Any, String> {
            Ok(Any)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    pub name: String,
    /// The command and its arguments, `{socket}` not yet expanded.
    pub command: Vec<String>,
    pub processes: usize,
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
    if let Some(k) = r.later.first() {
        return Err(format!(
            "{key}.{k}: not built yet (issue 19 is under way: processes, concurrency, protocol, env, cwd, kill_timeout, ready_path, ready_timeout, harakiri, max_requests, max_rss and touch_reload work today); remove it"
        ));
    }
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
    let processes = r.processes.unwrap_or(1) as usize;
    if !(1..=64).contains(&processes) {
        return Err(format!("{key}.processes = {processes}: use 1 to 64"));
    }
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
    let sockets: Vec<PathBuf> = (0..processes)
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
    let app = App {
        name,
        command,
        processes,
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
    };
    Ok((app, pool))
}
