//! TOML file + CLI flags -> one validated [`Config`]. Every error names the key and the fix.

mod raw;
mod suggest;
pub mod units;
pub mod upstream;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub use raw::{RawConfig, RawReturn, RawRoute};
pub use units::{DurationValue, SizeValue};

pub const DEFAULT_TOML: &str = include_str!("../default.toml");

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: Vec<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub workers: usize,
    /// One CPU per worker (worker i is pinned to cpus[i]).
    pub cpus: Vec<usize>,
    pub server_header: String,
    pub sockets: SocketConfig,
    pub drain_timeout: Duration,
    /// A knob the kernel lacks is a start-up error instead of a warning and a fallback.
    pub strict: bool,
    /// The I/O backend asked for (auto: io_uring, else epoll).
    pub backend: crate::driver::Backend,
    pub ring: RingConfig,
    pub limits: Limits,
    pub routes: Vec<Route>,
    /// Bearer token the admin endpoint requires (read from a file, never from the CLI).
    pub admin_token: Option<String>,
    pub access_log: Option<std::path::PathBuf>,
    /// Record latency histograms (off only for measuring their cost).
    pub histograms: bool,
    pub pools: Vec<upstream::Pool>,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Proxied response bodies with a Content-Length at least this large are spliced
    /// upstream socket -> pipe -> client socket instead of copied through uringd.
    pub splice_threshold: u64,
}

#[derive(Clone, Debug)]
pub struct RingConfig {
    pub entries: u32,
    pub sqpoll: bool,
    pub sqpoll_cpu: Option<u32>,
    pub defer_taskrun: Option<bool>,
    pub buffer_size: u32,
    pub buffers: u16,
    pub send_zc_threshold: usize,
    pub sqpoll_idle_ms: u32,
    /// IORING_REGISTER_NAPI busy-poll timeout, microseconds.
    pub napi_busy_poll_us: Option<u32>,
    /// Accepted connections as registered (direct) descriptors.
    pub fixed_files: bool,
}

/// Socket-level knobs, applied to the listeners (accepted sockets inherit them).
#[derive(Clone, Debug, PartialEq)]
pub struct SocketConfig {
    pub backlog: u32,
    pub tcp_nodelay: bool,
    /// SO_BUSY_POLL, microseconds.
    pub busy_poll_us: Option<u32>,
    pub steering: Steering,
}

/// How the kernel picks a worker for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steering {
    /// SO_REUSEPORT's default: a hash of the 4-tuple.
    Hash,
    /// A classic BPF program returns the receiving CPU: the connection is accepted by the
    /// worker pinned to the CPU that took its packets.
    Cpu,
}

#[derive(Clone, Debug)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub send_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_target_bytes: usize,
    pub max_body_bytes: u64,
    pub max_connections: usize,
}

#[derive(Clone, Debug)]
pub struct Route {
    /// Label in metrics and `?route=`; defaults to the prefix.
    pub name: String,
    pub prefix: String,
    pub action: Action,
}

#[derive(Clone, Debug)]
pub enum Action {
    Return {
        status: u16,
        body: String,
        content_type: String,
    },
    /// Proxy to `pools[pool]`.
    Upstream { pool: usize },
    /// Serve files under `dir`.
    Static {
        dir: std::path::PathBuf,
        index: String,
        confine: bool,
    },
}

/// Overrides from the command line; `None` keeps the file's (or default) value.
#[derive(Default, Debug, Clone)]
pub struct Overrides {
    pub listen: Vec<String>,
    pub admin: Option<String>,
    pub workers: Option<usize>,
    pub cpus: Option<String>,
    pub sqpoll: bool,
    pub sqpoll_cpu: Option<u32>,
    pub admin_token_file: Option<String>,
    /// `--upstream URL`: proxy every path there (replaces the file's routes).
    pub upstream: Option<String>,
    /// `--static PREFIX=DIR` (repeatable): static routes added in front of the others.
    pub statics: Vec<String>,
    pub knobs: KnobOverrides,
}

/// Tuning flags of `uringd serve`; each overrides the [server] key of the same name.
#[derive(Default, Debug, Clone)]
pub struct KnobOverrides {
    pub ring_entries: Option<u32>,
    pub sqpoll_idle: Option<String>,
    pub defer_taskrun: Option<bool>,
    pub buffer_size: Option<String>,
    pub buffers: Option<u32>,
    pub send_zc_threshold: Option<String>,
    pub napi_busy_poll: Option<u32>,
    pub busy_poll: Option<u32>,
    pub reuseport_steering: Option<String>,
    pub backlog: Option<u32>,
    pub tcp_nodelay: Option<bool>,
    pub fixed_files: Option<bool>,
    pub backend: Option<String>,
    pub strict: bool,
}

#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// Parses TOML text; `origin` names the file in messages.
pub fn parse_toml(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str::<RawConfig>(text).map_err(|e| {
        let msg = e.message().trim().to_string();
        let msg = suggest::rewrite_unknown_field(&msg).unwrap_or(msg);
        let (line, col, table) = match e.span() {
            Some(span) => locate(text, span.start),
            None => (0, 0, String::new()),
        };
        let table = if table.is_empty() {
            String::new()
        } else {
            format!(" in [{table}]")
        };
        if line > 0 {
            ConfigError(format!("{origin}:{line}:{col}: {msg}{table}"))
        } else {
            ConfigError(format!("{origin}: {msg}{table}"))
        }
    })
}

/// 1-based line and column of a byte offset, and the table header in force there.
fn locate(text: &str, offset: usize) -> (usize, usize, String) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').to_string())
        .unwrap_or_default();
    (line, col, table)
}

/// Loads a config file, or the embedded default when `path` is None, then applies overrides.
pub fn load(path: Option<&Path>, ov: &Overrides) -> Result<Config, ConfigError> {
    let raw = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                ConfigError(format!("cannot read config file {}: {e}", p.display()))
            })?;
            parse_toml(&text, &p.display().to_string())?
        }
        None => parse_toml(DEFAULT_TOML, "embedded default")?,
    };
    validate(raw, ov)
}

pub fn available_cpus() -> Vec<usize> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if ids.is_empty() {
        ids.push(0);
    }
    ids
}

/// "0-3,6" -> [0,1,2,3,6]. CPU numbers must be below CPU_SETSIZE (1024), the
/// most an affinity mask can name, so a range never expands to more than that.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    const MAX_CPUS: usize = libc::CPU_SETSIZE as usize;
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad =
            || format!("`{part}` is not a CPU number or range (write e.g. \"0,1\" or \"0-3\")");
        let cpu = |n: &str| match n.trim().parse::<usize>() {
            Ok(c) if c < MAX_CPUS => Ok(c),
            Ok(_) => Err(format!("`{part}`: CPU numbers go up to {}", MAX_CPUS - 1)),
            Err(_) => Err(bad()),
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (cpu(a)?, cpu(b)?);
                if a > b {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(cpu(part)?),
        }
    }
    if out.is_empty() {
        return Err("the CPU list is empty".into());
    }
    Ok(out)
}

fn parse_addr(s: &str, key: &str) -> Result<SocketAddr, ConfigError> {
    s.parse::<SocketAddr>().map_err(|_| {
        ConfigError(format!(
            "{key}: `{s}` is not an address with a port; write it like \"127.0.0.1:8080\" or \"[::1]:8080\""
        ))
    })
}

fn dur(v: &Option<DurationValue>, key: &str, default: Duration) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) => units::parse_duration(v).map_err(|m| ConfigError(format!("{key}: {m}"))),
    }
}

fn size(v: &Option<SizeValue>, key: &str, default: u64) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) => units::parse_size(v).map_err(|m| ConfigError(format!("{key}: {m}"))),
    }
}

pub fn validate(mut raw: RawConfig, ov: &Overrides) -> Result<Config, ConfigError> {
    if let Some(u) = &ov.upstream {
        raw.route = vec![RawRoute {
            name: Some("upstream".into()),
            prefix: Some("/".into()),
            ret: None,
            upstream: Some(u.clone()),
            static_dir: None,
            index: None,
            follow_symlinks_outside: None,
        }];
    }
    for (i, s) in ov.statics.iter().enumerate() {
        let Some((prefix, dir)) = s.split_once('=') else {
            return err(format!(
                "--static `{s}`: write it as PREFIX=DIR, e.g. --static /assets/=/srv/www"
            ));
        };
        raw.route.insert(
            i,
            RawRoute {
                name: None,
                prefix: Some(prefix.to_string()),
                ret: None,
                upstream: None,
                static_dir: Some(dir.to_string()),
                index: None,
                follow_symlinks_outside: None,
            },
        );
    }
    let mut pools = Vec::new();
    for (name, rp) in &raw.upstream {
        let key = format!("upstream.{name}.servers");
        let servers = rp
            .servers
            .iter()
            .flatten()
            .map(|u| upstream::parse_server(u, &key))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ConfigError)?;
        pools.push(upstream::build_pool(name, rp, servers).map_err(ConfigError)?);
    }
    let mut trusted_proxies = Vec::new();
    for t in raw.trusted_proxies.iter().flatten() {
        trusted_proxies
            .push(t.parse().map_err(|_| {
                ConfigError(format!("trusted_proxies: `{t}` is not an IP address"))
            })?);
    }
    let s = &raw.server;
    let listen_strs: Vec<String> = if !ov.listen.is_empty() {
        ov.listen.clone()
    } else {
        s.listen
            .clone()
            .unwrap_or_else(|| vec!["127.0.0.1:8080".into()])
    };
    if listen_strs.is_empty() {
        return err(
            "server.listen is empty; give at least one address, e.g. listen = [\"127.0.0.1:8080\"]",
        );
    }
    let mut listen = Vec::new();
    for l in &listen_strs {
        let a = parse_addr(l, "server.listen")?;
        if a.port() != 0 && listen.contains(&a) {
            return err(format!(
                "server.listen: `{l}` is listed twice; list each address once"
            ));
        }
        listen.push(a);
    }
    let admin_str = ov.admin.clone().or_else(|| s.admin.clone());
    let admin = match admin_str.as_deref() {
        None => Some("127.0.0.1:9180".parse().expect("valid literal")),
        Some("" | "off" | "none") => None,
        Some(a) => Some(parse_addr(a, "server.admin")?),
    };
    // Port 0 means "any free port": distinct every time, never a clash.
    if let Some(a) = admin
        && a.port() != 0
        && listen.contains(&a)
    {
        return err(format!(
            "server.admin: {a} is also in server.listen; the admin endpoint needs its own address"
        ));
    }

    let avail = available_cpus();
    let cpus_explicit = match &ov.cpus {
        Some(list) => Some(parse_cpu_list(list).map_err(|m| ConfigError(format!("--cpus: {m}")))?),
        None => s.cpus.clone(),
    };
    let workers = ov.workers.or(s.workers).unwrap_or_else(|| {
        cpus_explicit
            .as_ref()
            .map(|c| c.len())
            .unwrap_or(avail.len())
    });
    if workers == 0 || workers > 1024 {
        return err(format!(
            "server.workers = {workers}: use 1 to 1024 (default: one per CPU)"
        ));
    }
    let cpus = match cpus_explicit {
        Some(c) => {
            if c.len() != workers {
                return err(format!(
                    "server.cpus lists {} CPU(s) but server.workers = {workers}; list one CPU per worker",
                    c.len()
                ));
            }
            for cpu in &c {
                if !avail.contains(cpu) {
                    return err(format!(
                        "server.cpus: CPU {cpu} is not available to this process (available: {avail:?})"
                    ));
                }
            }
            c
        }
        // More workers than CPUs (useful for experiments): pin round-robin.
        None => (0..workers).map(|i| avail[i % avail.len()]).collect(),
    };

    let k = &ov.knobs;
    let ring_entries = k.ring_entries.or(s.ring_entries).unwrap_or(1024);
    if !(8..=32768).contains(&ring_entries) {
        return err(format!(
            "server.ring_entries = {ring_entries}: use 8 to 32768"
        ));
    }
    let buffers = k.buffers.or(s.buffers).unwrap_or(1024);
    if !buffers.is_power_of_two() || !(8..=32768).contains(&buffers) {
        return err(format!(
            "server.buffers = {buffers}: must be a power of two from 8 to 32768 (e.g. 1024)"
        ));
    }
    let buffer_size = size(
        &k.buffer_size
            .clone()
            .map(SizeValue::Text)
            .or(s.buffer_size.clone()),
        "server.buffer_size",
        4096,
    )?;
    if !(512..=1 << 20).contains(&buffer_size) {
        return err(format!(
            "server.buffer_size = {buffer_size}: use 512 bytes to 1MiB"
        ));
    }
    let send_zc_threshold = match k.send_zc_threshold.as_deref() {
        Some("off") => u64::MAX,
        Some(t) => size(&Some(SizeValue::Text(t.into())), "--send-zc-threshold", 0)?,
        None => size(&s.send_zc_threshold, "server.send_zc_threshold", 1 << 20)?,
    };
    let sqpoll_idle = dur(
        &k.sqpoll_idle
            .clone()
            .map(DurationValue::Text)
            .or(s.sqpoll_idle.clone()),
        "server.sqpoll_idle",
        Duration::from_secs(1),
    )?;
    let napi_busy_poll = k.napi_busy_poll.or(s.napi_busy_poll).filter(|&u| u > 0);
    let busy_poll = k.busy_poll.or(s.busy_poll).filter(|&u| u > 0);
    for (v, key) in [(napi_busy_poll, "napi_busy_poll"), (busy_poll, "busy_poll")] {
        if v.is_some_and(|u| u > 1_000_000) {
            return err(format!(
                "server.{key}: microseconds of busy polling per wait; use 1 to 1000000 (50 is typical)"
            ));
        }
    }
    let steering = match k
        .reuseport_steering
        .as_deref()
        .or(s.reuseport_steering.as_deref())
        .unwrap_or("hash")
    {
        "hash" => Steering::Hash,
        "cpu" => Steering::Cpu,
        other => {
            return err(format!(
                "server.reuseport_steering = \"{other}\": use \"hash\" (the kernel's default) or \"cpu\""
            ));
        }
    };
    let server_header = s.server_header.clone().unwrap_or_else(|| "uringd".into());
    if server_header.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return err("server.server_header must not contain control characters");
    }
    let sqpoll = ov.sqpoll || s.sqpoll.unwrap_or(false);
    let sqpoll_cpu = ov.sqpoll_cpu.or(s.sqpoll_cpu);
    if sqpoll_cpu.is_some() && !sqpoll {
        return err("server.sqpoll_cpu is set but sqpoll is off; add --sqpoll (or sqpoll = true)");
    }
    let defer_taskrun = k.defer_taskrun.or(s.defer_taskrun);
    if sqpoll && defer_taskrun == Some(true) {
        return err(
            "server.defer_taskrun = true cannot be combined with sqpoll (the kernel refuses it); drop one",
        );
    }
    let fixed_files = k.fixed_files.or(s.fixed_files).unwrap_or(false);
    let backend = match k.backend.as_deref().or(s.backend.as_deref()) {
        None => crate::driver::Backend::Auto,
        Some(v) => match crate::driver::Backend::parse(v) {
            Some(b) => b,
            None => {
                return err(format!(
                    "server.backend: `{v}` is not a backend; use auto (io_uring, else epoll), io_uring or epoll"
                ));
            }
        },
    };
    if backend == crate::driver::Backend::Epoll && fixed_files {
        return err(
            "server.fixed_files: registered descriptors are an io_uring feature, and server.backend is epoll; turn one of them off",
        );
    }
    if steering == Steering::Cpu && cpus.iter().enumerate().any(|(i, &c)| i != c) {
        return err(format!(
            "server.reuseport_steering = \"cpu\" hands a connection to worker N when CPU N received it, so workers must be pinned to CPUs 0..{} in order (server.cpus is {cpus:?})",
            workers - 1
        ));
    }

    let l = &raw.limits;
    let limits = Limits {
        header_timeout: dur(
            &l.header_timeout,
            "limits.header_timeout",
            Duration::from_secs(10),
        )?,
        body_timeout: dur(
            &l.body_timeout,
            "limits.body_timeout",
            Duration::from_secs(30),
        )?,
        keepalive_timeout: dur(
            &l.keepalive_timeout,
            "limits.keepalive_timeout",
            Duration::from_secs(75),
        )?,
        send_timeout: dur(
            &l.send_timeout,
            "limits.send_timeout",
            Duration::from_secs(30),
        )?,
        max_header_bytes: size(&l.max_header_bytes, "limits.max_header_bytes", 64 * 1024)? as usize,
        max_headers: l.max_headers.unwrap_or(100),
        max_target_bytes: size(&l.max_target_bytes, "limits.max_target_bytes", 8 * 1024)? as usize,
        max_body_bytes: size(&l.max_body_bytes, "limits.max_body_bytes", 1 << 20)?,
        max_connections: l.max_connections.unwrap_or(20000),
    };
    for (key, d) in [
        ("limits.header_timeout", limits.header_timeout),
        ("limits.body_timeout", limits.body_timeout),
        ("limits.keepalive_timeout", limits.keepalive_timeout),
        ("limits.send_timeout", limits.send_timeout),
    ] {
        if d < Duration::from_millis(100) {
            return err(format!("{key}: {d:?} is too short; use at least 100ms"));
        }
    }
    if limits.max_header_bytes < 1024 || limits.max_header_bytes > 1 << 20 {
        return err("limits.max_header_bytes: use 1KiB to 1MiB (default 64KiB)");
    }
    if limits.max_headers == 0 || limits.max_headers > 10_000 {
        return err("limits.max_headers: use 1 to 10000 (default 100)");
    }
    if limits.max_target_bytes < 16 || limits.max_target_bytes >= limits.max_header_bytes {
        return err(
            "limits.max_target_bytes: use at least 16 and less than max_header_bytes (default 8KiB)",
        );
    }
    if limits.max_connections == 0 {
        return err("limits.max_connections must be at least 1 (it is per worker)");
    }

    let mut routes: Vec<Route> = Vec::new();
    for (i, r) in raw.route.iter().enumerate() {
        let r = validate_route(i, r, &mut pools)?;
        if routes.iter().any(|o| o.prefix == r.prefix) {
            return err(format!(
                "route[{i}].prefix = \"{}\" is used by an earlier route; each prefix once",
                r.prefix
            ));
        }
        if routes.iter().any(|o| o.name == r.name) {
            return err(format!(
                "route[{i}].name = \"{}\" is used by an earlier route; names must be unique",
                r.name
            ));
        }
        routes.push(r);
    }
    if routes.is_empty() {
        return err(
            "no [[route]] is configured; add one, e.g. [[route]] prefix = \"/\" return = { status = 200, body = \"ok\" }",
        );
    }
    // Longest prefix first, so the first match is the longest.
    routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));

    if fixed_files && (s.access_log.as_ref().is_some_and(|p| !p.is_empty()) || !pools.is_empty()) {
        return err(
            "server.fixed_files: a registered (direct) descriptor has no getpeername, so the client address for the access log and X-Forwarded-For would be unknown; turn fixed_files off, or drop the access log and upstream routes",
        );
    }
    Ok(Config {
        listen,
        admin,
        workers,
        cpus,
        server_header,
        sockets: SocketConfig {
            backlog: k.backlog.or(s.backlog).unwrap_or(4096),
            tcp_nodelay: k.tcp_nodelay.or(s.tcp_nodelay).unwrap_or(true),
            busy_poll_us: busy_poll,
            steering,
        },
        strict: k.strict || s.strict.unwrap_or(false),
        backend,
        drain_timeout: dur(
            &s.drain_timeout,
            "server.drain_timeout",
            Duration::from_secs(10),
        )?,
        ring: RingConfig {
            entries: ring_entries,
            sqpoll,
            sqpoll_cpu,
            defer_taskrun,
            buffer_size: buffer_size as u32,
            buffers: buffers as u16,
            send_zc_threshold: usize::try_from(send_zc_threshold).unwrap_or(usize::MAX),
            sqpoll_idle_ms: sqpoll_idle.as_millis().min(u32::MAX as u128) as u32,
            napi_busy_poll_us: napi_busy_poll,
            fixed_files,
        },
        limits,
        routes,
        admin_token: load_token(
            ov.admin_token_file
                .as_deref()
                .or(s.admin_token_file.as_deref()),
        )?,
        access_log: s
            .access_log
            .as_ref()
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from),
        histograms: s.histograms.unwrap_or(true),
        pools,
        trusted_proxies,
        splice_threshold: size(&s.splice_threshold, "server.splice_threshold", 256 * 1024)?,
    })
}

/// Reads the admin token: first line of the file, trimmed. The token never comes from the
/// command line (it would show in `ps`) and is never logged.
fn load_token(path: Option<&str>) -> Result<Option<String>, ConfigError> {
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("server.admin_token_file: cannot read {path}: {e}")))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.len() < 16 {
        return err(format!(
            "server.admin_token_file: the token in {path} is shorter than 16 characters; use a long random one (e.g. head -c 32 /dev/urandom | base64)"
        ));
    }
    if token.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
        return err(format!(
            "server.admin_token_file: the token in {path} must be printable ASCII without spaces"
        ));
    }
    Ok(Some(token))
}

fn validate_route(
    i: usize,
    r: &RawRoute,
    pools: &mut Vec<upstream::Pool>,
) -> Result<Route, ConfigError> {
    let key = format!("route[{i}]");
    let prefix = r
        .prefix
        .clone()
        .ok_or_else(|| ConfigError(format!("{key}: missing `prefix` (e.g. prefix = \"/\")")))?;
    if !prefix.starts_with('/') || prefix.bytes().any(|b| b <= 0x20 || b == 0x7f) {
        return err(format!(
            "{key}.prefix = \"{prefix}\": must start with '/' and contain no spaces or control characters"
        ));
    }
    let name = r.name.clone().unwrap_or_else(|| prefix.clone());
    if name.is_empty() || name.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return err(format!(
            "{key}.name must be non-empty without control characters"
        ));
    }
    if let Some(dir) = &r.static_dir {
        if r.ret.is_some() || r.upstream.is_some() {
            return err(format!(
                "{key} (prefix \"{prefix}\"): give one of `return`, `upstream` or `static`"
            ));
        }
        let path = std::path::PathBuf::from(dir);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return err(format!("{key}.static = \"{dir}\" is not a directory")),
            Err(e) => return err(format!("{key}.static = \"{dir}\": {e}")),
        }
        let index = r.index.clone().unwrap_or_else(|| "index.html".into());
        if index.is_empty() || index.contains('/') {
            return err(format!("{key}.index must be a file name without '/'"));
        }
        return Ok(Route {
            name,
            prefix,
            action: Action::Static {
                dir: path,
                index,
                confine: !r.follow_symlinks_outside.unwrap_or(false),
            },
        });
    }
    let ret = match (&r.ret, &r.upstream) {
        (Some(_), Some(_)) => {
            return err(format!(
                "{key} (prefix \"{prefix}\"): give either `return` or `upstream`, not both"
            ));
        }
        (None, Some(u)) => {
            let pool = match pools.iter().position(|p| &p.name == u) {
                Some(p) => p,
                None if u.contains("://") || u.contains(':') => {
                    let server = upstream::parse_server(u, &format!("{key}.upstream"))
                        .map_err(ConfigError)?;
                    let p = upstream::build_pool(u, &Default::default(), vec![server])
                        .map_err(ConfigError)?;
                    pools.push(p);
                    pools.len() - 1
                }
                None => {
                    let known: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
                    return err(format!(
                        "{key}.upstream = \"{u}\" is neither a URL nor a defined [upstream.NAME] (defined: {known:?})"
                    ));
                }
            };
            return Ok(Route {
                name,
                prefix,
                action: Action::Upstream { pool },
            });
        }
        (Some(ret), None) => ret,
        (None, None) => {
            return err(format!(
                "{key} (prefix \"{prefix}\"): say what the route does, e.g. return = {{ status = 200, body = \"ok\" }} or upstream = \"http://127.0.0.1:8000\""
            ));
        }
    };
    let status = ret.status.unwrap_or(200);
    if !(200..=599).contains(&status) {
        return err(format!(
            "{key}.return.status = {status}: use a final status from 200 to 599"
        ));
    }
    let body = ret.body.clone().unwrap_or_default();
    if (status == 204 || status == 304) && !body.is_empty() {
        return err(format!(
            "{key}.return: status {status} cannot carry a body; remove `body`"
        ));
    }
    let content_type = ret
        .content_type
        .clone()
        .unwrap_or_else(|| "text/plain".into());
    if content_type.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return err(format!(
            "{key}.return.content_type must not contain control characters"
        ));
    }
    Ok(Route {
        name,
        prefix,
        action: Action::Return {
            status,
            body,
            content_type,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(s: &str) -> Result<Config, ConfigError> {
        validate(parse_toml(s, "t.toml")?, &Overrides::default())
    }

    #[test]
    fn embedded_default_is_valid() {
        let c = load(None, &Overrides::default()).unwrap();
        assert_eq!(c.listen, vec!["127.0.0.1:8080".parse().unwrap()]);
        assert_eq!(c.routes.len(), 1);
    }

    #[test]
    fn unknown_key_names_it_and_the_fix() {
        let e = load_str("[limits]\nheader_timout = \"1s\"\n[[route]]\nprefix=\"/\"\nreturn={}\n")
            .unwrap_err();
        assert!(e.0.contains("header_timout"), "{e}");
        assert!(e.0.contains("did you mean `header_timeout`"), "{e}");
        assert!(e.0.contains("t.toml:2"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = load_str("[server]\nlisten=[\"nope\"]\n").unwrap_err();
        assert!(e.0.contains("server.listen"), "{e}");
        let e = load_str("[server]\nworkers=0\n").unwrap_err();
        assert!(e.0.contains("server.workers"), "{e}");
        let e = load_str("[[route]]\nprefix=\"x\"\nreturn={}\n").unwrap_err();
        assert!(e.0.contains("route[0].prefix"), "{e}");
        let e = load_str("[limits]\nheader_timeout=\"5 parsecs\"\n").unwrap_err();
        assert!(e.0.contains("limits.header_timeout"), "{e}");
    }

    #[test]
    fn routes_sorted_longest_first() {
        let c = load_str(
            "[[route]]\nprefix=\"/\"\nreturn={}\n[[route]]\nprefix=\"/health\"\nreturn={body=\"ok\"}\n",
        )
        .unwrap();
        assert_eq!(c.routes[0].prefix, "/health");
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_cpu_list("2-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        // Found while writing the config_loader fuzz target: a huge range was
        // expanded element by element (an 8 TB allocation for this one).
        assert!(
            parse_cpu_list("0-999999999999")
                .unwrap_err()
                .contains("go up to 1023")
        );
        assert!(parse_cpu_list("1024").is_err());
        assert_eq!(
            parse_cpu_list("1020-1023").unwrap(),
            vec![1020, 1021, 1022, 1023]
        );
    }
}
