//! TOML file + CLI flags -> one validated [`Config`]. Every error names the key and the fix.

pub mod app;
pub mod edge;
mod raw;
mod read;
mod suggest;
pub mod tls;
pub mod units;
pub mod upstream;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub use edge::{RealIp, RouteEdge, Vhost};
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
    /// Peers believed about the client (X-Forwarded-For, a PROXY header).
    pub trusted_proxies: crate::edge::cidr::CidrSet,
    pub real_ip: RealIp,
    /// Listeners whose connections start with a PROXY protocol header.
    pub proxy_protocol_listen: Vec<SocketAddr>,
    /// The sites (`[[vhost]]`); one implicit default site when none is configured.
    pub vhosts: Vec<Vhost>,
    /// The app servers uringd runs (`[[app]]`), each behind the pool `app:NAME`.
    pub apps: Vec<app::App>,
    /// Proxied response bodies with a Content-Length at least this large are spliced
    /// upstream socket -> pipe -> client socket instead of copied through uringd.
    pub splice_threshold: u64,
    /// Forward request header names that hold an underscore (off: dropped, as nginx's
    /// `underscores_in_headers off`: a WSGI server reads `X_Real_IP` as `X-Real-IP`).
    pub underscores_in_headers: bool,
    /// TLS listeners and certificates (`[tls]`), if any.
    pub tls: Option<tls::TlsConfig>,
    /// The certificates read and made ready (`crate::tls::build`): set by `serve` when it
    /// starts a generation, None until then.
    pub tls_acceptor: Option<crate::tls::Acceptor>,
    /// Per pool, the client config of its https:// servers (set with `tls_acceptor`).
    pub upstream_tls: Vec<Option<std::sync::Arc<rustls::ClientConfig>>>,
    /// The tables every worker of a generation shares (rate limits, connections per
    /// address): made by `serve` with the acceptor, empty until then.
    pub shield: crate::shield::Shield,
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
    /// The whole request body must arrive within this (body_timeout is the longest gap).
    pub body_deadline: Duration,
    pub keepalive_timeout: Duration,
    pub send_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_target_bytes: usize,
    pub max_body_bytes: u64,
    pub max_connections: usize,
    /// Open connections per client address, over all workers (None: no cap).
    pub max_connections_per_ip: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Route {
    /// Label in metrics and `?route=`; defaults to the prefix.
    pub name: String,
    pub prefix: String,
    pub action: Action,
    /// `limit`: a rate per client (address or header).
    pub limit: Option<RouteLimit>,
    /// The site (`Config::vhosts`) it belongs to.
    pub vhost: usize,
    pub edge: RouteEdge,
}

/// A route's `limit`.
#[derive(Clone, Debug)]
pub struct RouteLimit {
    pub rate: crate::shield::gcra::Rate,
    pub key: LimitKey,
    /// As written (`"10/s"`, burst), for messages.
    pub text: String,
}

/// What a limit counts requests by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitKey {
    /// The client's address.
    Addr,
    /// This request header's value (lowercase name); a request without it counts by its
    /// address, so leaving the header out is no way around the limit.
    Header(Vec<u8>),
}

#[derive(Clone, Debug)]
pub enum Action {
    Return {
        status: u16,
        body: String,
        content_type: String,
    },
    /// Proxy to `pools[pool]`; `upgrades` are the protocols (lowercase) an `Upgrade`
    /// may ask for.
    Upstream { pool: usize, upgrades: Vec<Vec<u8>> },
    /// Answer with `status` and a Location built from `to` for this request.
    Redirect {
        status: u16,
        to: crate::http::redirect::Template,
    },
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
    /// `--proxy-protocol-listen ADDR` (repeatable): replaces [server] proxy_protocol_listen.
    pub proxy_protocol_listen: Vec<String>,
    /// `--tls-listen ADDR` (repeatable): replaces [tls] listen.
    pub tls_listen: Vec<String>,
    /// `--tls-cert PEM --tls-key PEM` pairs: replace the [[tls.cert]] list.
    pub tls_certs: Vec<(String, String)>,
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

/// Every problem found in a config, one per line, each naming its key and the fix.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl ConfigError {
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.0.lines()
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The errors found while validating: each is recorded and checking goes on, so one run
/// of `uringd check` shows all of them.
#[derive(Default)]
struct Errors(Vec<String>);

impl Errors {
    fn add(&mut self, msg: impl Into<String>) {
        self.0.push(msg.into());
    }

    /// The value, or `fallback` after recording the error.
    fn or<T>(&mut self, r: Result<T, String>, fallback: T) -> T {
        r.unwrap_or_else(|m| {
            self.add(m);
            fallback
        })
    }

    fn into_result<T>(self, ok: T) -> Result<T, ConfigError> {
        if self.0.is_empty() {
            Ok(ok)
        } else {
            Err(ConfigError(self.0.join("\n")))
        }
    }
}

/// Parses TOML text; `origin` names the file in messages. Every syntax error, wrong type
/// and unknown key of the file is reported, each with its line.
pub fn parse_toml(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    let doc = read::Doc::new(text, origin);
    let raw = read::parse(&doc, text).map(|root| {
        let t = read::Table::new(&doc, String::new(), root.get_ref());
        let raw = RawConfig::read(&t);
        t.finish();
        raw
    });
    let errors = doc.into_errors();
    match raw {
        Some(raw) if errors.is_empty() => Ok(raw),
        _ => Err(ConfigError(errors.join("\n"))),
    }
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
        None => {
            let mut raw = parse_toml(DEFAULT_TOML, "embedded default")?;
            // `serve --static P=DIR` alone serves those files (other paths 404), not the
            // embedded default's catch-all beside them.
            if !ov.statics.is_empty() {
                raw.route.clear();
            }
            raw
        }
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

fn parse_addr(s: &str, key: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>().map_err(|_| {
        format!(
            "{key}: `{s}` is not an address with a port; write it like \"127.0.0.1:8080\" or \"[::1]:8080\""
        )
    })
}

fn dur(v: &Option<DurationValue>, key: &str, default: Duration) -> Result<Duration, String> {
    match v {
        None => Ok(default),
        Some(v) => units::parse_duration(v).map_err(|m| format!("{key}: {m}")),
    }
}

fn size(v: &Option<SizeValue>, key: &str, default: u64) -> Result<u64, String> {
    match v {
        None => Ok(default),
        Some(v) => units::parse_size(v).map_err(|m| format!("{key}: {m}")),
    }
}

/// The routes the command line adds or replaces: `--upstream` replaces the file's routes,
/// each `--static` is put in front of them.
fn apply_route_overrides(raw: &mut RawConfig, ov: &Overrides, e: &mut Errors) {
    if !raw.vhost.is_empty() && (ov.upstream.is_some() || !ov.statics.is_empty()) {
        e.add(
            "--upstream/--static add top-level routes, and this config's routes belong to its [[vhost]] sites; add the route to a site instead",
        );
        return;
    }
    if let Some(u) = &ov.upstream {
        raw.route = vec![RawRoute {
            name: Some("upstream".into()),
            prefix: Some("/".into()),
            upstream: Some(u.clone()),
            ..Default::default()
        }];
    }
    let mut statics = Vec::new();
    for s in &ov.statics {
        match s.split_once('=') {
            Some((prefix, dir)) => statics.push(RawRoute {
                prefix: Some(prefix.to_string()),
                static_dir: Some(dir.to_string()),
                ..Default::default()
            }),
            None => e.add(format!(
                "--static `{s}`: write it as PREFIX=DIR, e.g. --static /assets/=/srv/www"
            )),
        }
    }
    statics.append(&mut raw.route);
    raw.route = statics;
}

pub fn validate(mut raw: RawConfig, ov: &Overrides) -> Result<Config, ConfigError> {
    let mut e = Errors::default();
    apply_route_overrides(&mut raw, ov, &mut e);
    let mut pools = Vec::new();
    for (name, rp) in &raw.upstream {
        let key = format!("upstream.{name}.servers");
        let servers: Vec<_> = rp
            .servers
            .iter()
            .flatten()
            .filter_map(|u| upstream::parse_server(u, &key).map_err(|m| e.add(m)).ok())
            .collect();
        if servers.len() != rp.servers.as_ref().map_or(0, Vec::len) {
            continue; // a bad server was reported
        }
        match upstream::build_pool(name, rp, servers) {
            Ok(p) => {
                let s = &p.shield;
                if (s.request_buffering || s.response_buffering)
                    && let Err(why) = crate::worker::spool::probe(&s.temp_dir)
                {
                    e.add(format!(
                        "upstream.{name}.temp_dir: cannot make a temporary file in {} ({why}); name a writable directory on a filesystem with O_TMPFILE (ext4, xfs, btrfs, tmpfs), or turn request_buffering and response_buffering off",
                        s.temp_dir.display()
                    ));
                }
                pools.push(p)
            }
            Err(m) => e.add(m),
        }
    }
    let mut apps = Vec::new();
    let app_dir = app::runtime_dir();
    for (i, ra) in raw.app.iter().enumerate() {
        match app::validate(i, ra, &app_dir) {
            Ok((a, mut p)) => {
                if apps.iter().any(|o: &app::App| o.name == a.name) {
                    e.add(format!(
                        "app[{i}].name = \"{}\" is used by an earlier app; names must be unique",
                        a.name
                    ));
                    continue;
                }
                p.app = Some(apps.len());
                apps.push(a);
                pools.push(p);
            }
            Err(m) => e.add(m),
        }
    }
    let trusted_proxies = e.or(
        crate::edge::cidr::CidrSet::parse(raw.trusted_proxies.as_deref().unwrap_or(&[]))
            .map_err(|m| format!("trusted_proxies: {m}")),
        Default::default(),
    );
    let s = &raw.server;
    let listen_strs: Vec<String> = if !ov.listen.is_empty() {
        ov.listen.clone()
    } else {
        s.listen
            .clone()
            .unwrap_or_else(|| vec!["127.0.0.1:8080".into()])
    };
    if listen_strs.is_empty() {
        e.add(
            "server.listen is empty; give at least one address, e.g. listen = [\"127.0.0.1:8080\"]",
        );
    }
    let mut listen = Vec::new();
    for l in &listen_strs {
        let Some(a) = e.or(parse_addr(l, "server.listen").map(Some), None) else {
            continue;
        };
        if a.port() != 0 && listen.contains(&a) {
            e.add(format!(
                "server.listen: `{l}` is listed twice; list each address once"
            ));
        }
        listen.push(a);
    }
    let admin_str = ov.admin.clone().or_else(|| s.admin.clone());
    let admin = match admin_str.as_deref() {
        None => Some("127.0.0.1:9180".parse().expect("valid literal")),
        Some("" | "off" | "none") => None,
        Some(a) => e.or(parse_addr(a, "server.admin").map(Some), None),
    };
    // Port 0 means "any free port": distinct every time, never a clash.
    if let Some(a) = admin
        && a.port() != 0
        && listen.contains(&a)
    {
        e.add(format!(
            "server.admin: {a} is also in server.listen; the admin endpoint needs its own address"
        ));
    }

    let pp_strs = if ov.proxy_protocol_listen.is_empty() {
        s.proxy_protocol_listen.clone().unwrap_or_default()
    } else {
        ov.proxy_protocol_listen.clone()
    };
    let mut proxy_protocol_listen = Vec::new();
    for l in &pp_strs {
        let Some(a) = e.or(
            parse_addr(l, "server.proxy_protocol_listen").map(Some),
            None,
        ) else {
            continue;
        };
        if a.port() != 0
            && (listen.contains(&a) || admin == Some(a) || proxy_protocol_listen.contains(&a))
        {
            e.add(format!(
                "server.proxy_protocol_listen: {a} is also another listener; a listener either expects the PROXY header or does not"
            ));
        }
        proxy_protocol_listen.push(a);
    }
    let real_ip = edge::real_ip(
        raw.real_ip.as_deref(),
        &trusted_proxies,
        proxy_protocol_listen.len(),
        &mut e.0,
    );
    let avail = available_cpus();
    let cpus_explicit = match &ov.cpus {
        Some(list) => e.or(
            parse_cpu_list(list)
                .map(Some)
                .map_err(|m| format!("--cpus: {m}")),
            None,
        ),
        None => s.cpus.clone(),
    };
    let mut workers = ov.workers.or(s.workers).unwrap_or_else(|| {
        cpus_explicit
            .as_ref()
            .map(|c| c.len())
            .unwrap_or(avail.len())
    });
    if workers == 0 || workers > 1024 {
        e.add(format!(
            "server.workers = {workers}: use 1 to 1024 (default: one per CPU)"
        ));
        workers = 1;
    }
    let round_robin = || (0..workers).map(|i| avail[i % avail.len()]).collect();
    let cpus: Vec<usize> = match cpus_explicit {
        Some(c) if c.len() != workers => {
            e.add(format!(
                "server.cpus lists {} CPU(s) but server.workers = {workers}; list one CPU per worker",
                c.len()
            ));
            round_robin()
        }
        Some(c) => {
            for cpu in c.iter().filter(|c| !avail.contains(c)) {
                e.add(format!(
                    "server.cpus: CPU {cpu} is not available to this process (available: {avail:?})"
                ));
            }
            c
        }
        // More workers than CPUs (useful for experiments): pin round-robin.
        None => round_robin(),
    };

    let k = &ov.knobs;
    let ring_entries = k.ring_entries.or(s.ring_entries).unwrap_or(1024);
    if !(8..=32768).contains(&ring_entries) {
        e.add(format!(
            "server.ring_entries = {ring_entries}: use 8 to 32768"
        ));
    }
    let buffers = k.buffers.or(s.buffers).unwrap_or(1024);
    if !buffers.is_power_of_two() || !(8..=32768).contains(&buffers) {
        e.add(format!(
            "server.buffers = {buffers}: must be a power of two from 8 to 32768 (e.g. 1024)"
        ));
    }
    let buffer_size = e.or(
        size(
            &k.buffer_size
                .clone()
                .map(SizeValue::Text)
                .or(s.buffer_size.clone()),
            "server.buffer_size",
            4096,
        ),
        4096,
    );
    if !(512..=1 << 20).contains(&buffer_size) {
        e.add(format!(
            "server.buffer_size = {buffer_size}: use 512 bytes to 1MiB"
        ));
    }
    let send_zc_threshold = match k.send_zc_threshold.as_deref() {
        Some("off") => u64::MAX,
        Some(t) => e.or(
            size(&Some(SizeValue::Text(t.into())), "--send-zc-threshold", 0),
            u64::MAX,
        ),
        None => e.or(
            size(&s.send_zc_threshold, "server.send_zc_threshold", 1 << 20),
            1 << 20,
        ),
    };
    let sqpoll_idle = e.or(
        dur(
            &k.sqpoll_idle
                .clone()
                .map(DurationValue::Text)
                .or(s.sqpoll_idle.clone()),
            "server.sqpoll_idle",
            Duration::from_secs(1),
        ),
        Duration::from_secs(1),
    );
    let napi_busy_poll = k.napi_busy_poll.or(s.napi_busy_poll).filter(|&u| u > 0);
    let busy_poll = k.busy_poll.or(s.busy_poll).filter(|&u| u > 0);
    for (v, key) in [(napi_busy_poll, "napi_busy_poll"), (busy_poll, "busy_poll")] {
        if v.is_some_and(|u| u > 1_000_000) {
            e.add(format!(
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
            e.add(format!(
                "server.reuseport_steering = \"{other}\": use \"hash\" (the kernel's default) or \"cpu\""
            ));
            Steering::Hash
        }
    };
    let server_header = s.server_header.clone().unwrap_or_else(|| "uringd".into());
    if server_header.bytes().any(|b| b < 0x20 || b == 0x7f) {
        e.add("server.server_header must not contain control characters");
    }
    let sqpoll = ov.sqpoll || s.sqpoll.unwrap_or(false);
    let sqpoll_cpu = ov.sqpoll_cpu.or(s.sqpoll_cpu);
    if sqpoll_cpu.is_some() && !sqpoll {
        e.add("server.sqpoll_cpu is set but sqpoll is off; add --sqpoll (or sqpoll = true)");
    }
    let defer_taskrun = k.defer_taskrun.or(s.defer_taskrun);
    if sqpoll && defer_taskrun == Some(true) {
        e.add(
            "server.defer_taskrun = true cannot be combined with sqpoll (the kernel refuses it); drop one",
        );
    }
    let fixed_files = k.fixed_files.or(s.fixed_files).unwrap_or(false);
    let backend = match k.backend.as_deref().or(s.backend.as_deref()) {
        None => crate::driver::Backend::Auto,
        Some(v) => crate::driver::Backend::parse(v).unwrap_or_else(|| {
            e.add(format!(
                "server.backend: `{v}` is not a backend; use auto (io_uring, else epoll), io_uring or epoll"
            ));
            crate::driver::Backend::Auto
        }),
    };
    if backend == crate::driver::Backend::Epoll && fixed_files {
        e.add(
            "server.fixed_files: registered descriptors are an io_uring feature, and server.backend is epoll; turn one of them off",
        );
    }
    if steering == Steering::Cpu && cpus.iter().enumerate().any(|(i, &c)| i != c) {
        e.add(format!(
            "server.reuseport_steering = \"cpu\" hands a connection to worker N when CPU N received it, so workers must be pinned to CPUs 0..{} in order (server.cpus is {cpus:?})",
            workers - 1
        ));
    }

    let l = &raw.limits;
    let mut timeout = |v: &Option<DurationValue>, key: &str, default: u64| {
        let d = e.or(
            dur(v, key, Duration::from_secs(default)),
            Duration::from_secs(default),
        );
        if d < Duration::from_millis(100) {
            e.add(format!("{key}: {d:?} is too short; use at least 100ms"));
        }
        d
    };
    let header_timeout = timeout(&l.header_timeout, "limits.header_timeout", 10);
    let body_timeout = timeout(&l.body_timeout, "limits.body_timeout", 30);
    let body_deadline = timeout(&l.body_deadline, "limits.body_deadline", 60);
    let keepalive_timeout = timeout(&l.keepalive_timeout, "limits.keepalive_timeout", 75);
    let send_timeout = timeout(&l.send_timeout, "limits.send_timeout", 30);
    let mut bytes =
        |v: &Option<SizeValue>, key: &str, default: u64| e.or(size(v, key, default), default);
    let limits = Limits {
        header_timeout,
        body_timeout,
        body_deadline,
        keepalive_timeout,
        send_timeout,
        max_header_bytes: bytes(&l.max_header_bytes, "limits.max_header_bytes", 64 * 1024) as usize,
        max_headers: l.max_headers.unwrap_or(100),
        max_target_bytes: bytes(&l.max_target_bytes, "limits.max_target_bytes", 8 * 1024) as usize,
        max_body_bytes: bytes(&l.max_body_bytes, "limits.max_body_bytes", 1 << 20),
        max_connections: l.max_connections.unwrap_or(20000),
        max_connections_per_ip: l.max_connections_per_ip,
    };
    if limits.max_connections_per_ip == Some(0) {
        e.add("limits.max_connections_per_ip: 0 would refuse everyone; leave it out for no cap");
    }
    if limits.max_header_bytes < 1024 || limits.max_header_bytes > 1 << 20 {
        e.add("limits.max_header_bytes: use 1KiB to 1MiB (default 64KiB)");
    }
    if limits.max_headers == 0 || limits.max_headers > 10_000 {
        e.add("limits.max_headers: use 1 to 10000 (default 100)");
    }
    if limits.max_target_bytes < 16 || limits.max_target_bytes >= limits.max_header_bytes {
        e.add(
            "limits.max_target_bytes: use at least 16 and less than max_header_bytes (default 8KiB)",
        );
    }
    if limits.max_connections == 0 {
        e.add("limits.max_connections must be at least 1 (it is per worker)");
    }

    let (vhosts, placed) = edge::sites(&raw, &mut e.0);
    let mut routes: Vec<Route> = Vec::new();
    for p in &placed {
        let Some(mut r) = e.or(validate_route(&p.key, p.raw, &mut pools).map(Some), None) else {
            continue;
        };
        r.limit = e.or(route_limit(&p.key, p.raw.limit.as_ref()), None);
        r.edge = e.or(edge::route_edge(p), RouteEdge::default());
        r.vhost = p.site;
        if p.raw.name.is_none() && !raw.vhost.is_empty() {
            let site = vhosts[p.site]
                .names
                .first()
                .map_or("default", |n| n.as_str());
            r.name = format!("{site}{}", r.prefix);
        }
        if routes
            .iter()
            .any(|o| o.prefix == r.prefix && o.vhost == r.vhost)
        {
            e.add(format!(
                "{}.prefix = \"{}\" is used by an earlier route of the site; each prefix once",
                p.key, r.prefix
            ));
        }
        if routes.iter().any(|o| o.name == r.name) {
            e.add(format!(
                "{}.name = \"{}\" is used by an earlier route; names must be unique",
                p.key, r.name
            ));
        }
        routes.push(r);
    }
    if raw.route.is_empty() && raw.vhost.is_empty() {
        e.add(
            "no [[route]] is configured; add one, e.g. [[route]] prefix = \"/\" return = { status = 200, body = \"ok\" }",
        );
    }
    // Longest prefix first, so the first match is the longest.
    routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));

    if fixed_files && (s.access_log.as_ref().is_some_and(|p| !p.is_empty()) || !pools.is_empty()) {
        e.add(
            "server.fixed_files: a registered (direct) descriptor has no getpeername, so the client address for the access log and X-Forwarded-For would be unknown; turn fixed_files off, or drop the access log and upstream routes",
        );
    }
    let drain_timeout = e.or(
        dur(
            &s.drain_timeout,
            "server.drain_timeout",
            Duration::from_secs(10),
        ),
        Duration::from_secs(10),
    );
    let splice_threshold = e.or(
        size(&s.splice_threshold, "server.splice_threshold", 256 * 1024),
        256 * 1024,
    );
    let admin_token = e.or(
        load_token(
            ov.admin_token_file
                .as_deref()
                .or(s.admin_token_file.as_deref()),
        ),
        None,
    );
    let access_log = s
        .access_log
        .as_ref()
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from);
    if let Some(p) = &access_log {
        check_log_path(p, &mut e);
    }
    if fixed_files
        && (limits.max_connections_per_ip.is_some() || routes.iter().any(|r| r.limit.is_some()))
    {
        e.add(
            "server.fixed_files: a registered (direct) descriptor has no getpeername, so limits by client address (a route's limit, limits.max_connections_per_ip) could not count; turn fixed_files off",
        );
    }
    let tls = tls::validate(&raw.tls, &ov.tls_listen, &ov.tls_certs, &listen, &mut e.0);
    if let (Some(t), Some(a)) = (&tls, admin)
        && a.port() != 0
        && t.listen.contains(&a)
    {
        e.add(format!(
            "tls.listen: {a} is also server.admin; the admin endpoint needs its own address"
        ));
    }
    let cfg = Config {
        tls,
        tls_acceptor: None,
        upstream_tls: Vec::new(),
        shield: Default::default(),
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
        drain_timeout,
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
        admin_token,
        access_log,
        histograms: s.histograms.unwrap_or(true),
        pools,
        trusted_proxies,
        real_ip,
        proxy_protocol_listen,
        vhosts,
        apps,
        splice_threshold,
        underscores_in_headers: s.underscores_in_headers.unwrap_or(false),
    };
    e.into_result(cfg)
}

/// What `serve` would refuse about the access log, found at check time: its directory
/// must exist (the file itself is created at start).
fn check_log_path(p: &Path, e: &mut Errors) {
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => e.add(format!(
            "server.access_log = \"{}\": {} is not a directory",
            p.display(),
            dir.display()
        )),
        Err(err) => e.add(format!(
            "server.access_log = \"{}\": its directory {}: {err}; create it or point access_log elsewhere",
            p.display(),
            dir.display()
        )),
    }
}

/// Reads the admin token: first line of the file, trimmed. The token never comes from the
/// command line (it would show in `ps`) and is never logged.
fn load_token(path: Option<&str>) -> Result<Option<String>, String> {
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("server.admin_token_file: cannot read {path}: {e}"))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.len() < 16 {
        return Err(format!(
            "server.admin_token_file: the token in {path} is shorter than 16 characters; use a long random one (e.g. head -c 32 /dev/urandom | base64)"
        ));
    }
    if token.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
        return Err(format!(
            "server.admin_token_file: the token in {path} must be printable ASCII without spaces"
        ));
    }
    Ok(Some(token))
}

/// Upgrade protocols a route tunnels: websocket unless the route says otherwise; h2c
/// never (an h2c tunnel hands the connection to the backend's HTTP/2 session, where
/// every later request escapes uringd's routing: the h2c smuggling attack).
fn upgrades(key: &str, list: Option<&Vec<String>>) -> Result<Vec<Vec<u8>>, String> {
    let Some(list) = list else {
        return Ok(vec![b"websocket".to_vec()]);
    };
    let mut out = Vec::new();
    for p in list {
        let name = p.split('/').next().unwrap_or("");
        if name.is_empty()
            || !p
                .bytes()
                .all(|b| crate::http::parser::is_tchar(b) || b == b'/')
        {
            return Err(format!(
                "{key}.upgrades: `{p}` is not a protocol name (e.g. \"websocket\")"
            ));
        }
        if name.eq_ignore_ascii_case("h2c") {
            return Err(format!(
                "{key}.upgrades: h2c cannot be tunnelled: after the upgrade the backend's HTTP/2 session takes requests uringd never routes (h2c smuggling); remove it"
            ));
        }
        out.push(p.to_ascii_lowercase().into_bytes());
    }
    Ok(out)
}

/// `limit = { rate = "10/s", burst = 20, key = "header:X-Api-Key" }`.
fn route_limit(route: &str, l: Option<&raw::RawLimit>) -> Result<Option<RouteLimit>, String> {
    let Some(l) = l else { return Ok(None) };
    let key = format!("{route}.limit");
    let text = l
        .rate
        .as_deref()
        .ok_or_else(|| format!("{key}: missing `rate`, e.g. rate = \"10/s\" or \"600/m\""))?;
    let bad = || {
        format!(
            "{key}.rate = \"{text}\": write requests per second or minute, e.g. \"10/s\" or \"600/m\""
        )
    };
    let (n, unit) = text.split_once('/').ok_or_else(bad)?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    let per_us = match unit.trim() {
        "s" => 1_000_000,
        "m" => 60_000_000,
        _ => return Err(bad()),
    };
    let burst = l.burst.unwrap_or(0);
    if burst > 1_000_000 {
        return Err(format!("{key}.burst = {burst}: at most 1000000"));
    }
    let rate = crate::shield::gcra::Rate::new(n, per_us, burst).ok_or_else(bad)?;
    let key = match l.key.as_deref() {
        None | Some("ip") | Some("addr") => LimitKey::Addr,
        Some(k) => match k.strip_prefix("header:") {
            Some(h) if !h.is_empty() && h.bytes().all(crate::http::parser::is_tchar) => {
                LimitKey::Header(h.to_ascii_lowercase().into_bytes())
            }
            _ => {
                return Err(format!(
                    "{key}.key = \"{k}\": use \"ip\" (the default) or \"header:NAME\", e.g. \"header:X-Api-Key\""
                ));
            }
        },
    };
    Ok(Some(RouteLimit {
        rate,
        key,
        text: format!("{text}, burst {burst}"),
    }))
}

fn validate_route(
    key: &str,
    r: &RawRoute,
    pools: &mut Vec<upstream::Pool>,
) -> Result<Route, String> {
    let prefix = r
        .prefix
        .clone()
        .ok_or_else(|| format!("{key}: missing `prefix` (e.g. prefix = \"/\")"))?;
    if !prefix.starts_with('/') || prefix.bytes().any(|b| b <= 0x20 || b == 0x7f) {
        return Err(format!(
            "{key}.prefix = \"{prefix}\": must start with '/' and contain no spaces or control characters"
        ));
    }
    let mut normalized = Vec::new();
    match crate::http::path::normalize(prefix.as_bytes(), &mut normalized) {
        // Routing reads %2F as a slash, so a prefix must spell it as one.
        Ok(n) if n.encoded_slash => {
            return Err(format!(
                "{key}.prefix = \"{prefix}\": requests are routed with %2F read as '/'; write the prefix with '/'"
            ));
        }
        Ok(_) if normalized == prefix.as_bytes() => {}
        _ => {
            return Err(format!(
                "{key}.prefix = \"{prefix}\": requests are routed on normalized paths (no `.` or `..` segments, no `//`, unreserved characters unescaped), so this prefix would never match; write it as \"{}\"",
                String::from_utf8_lossy(&normalized)
            ));
        }
    }
    let name = r.name.clone().unwrap_or_else(|| prefix.clone());
    if name.is_empty() || name.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(format!(
            "{key}.name must be non-empty without control characters"
        ));
    }
    if r.upgrades.is_some() && r.upstream.is_none() {
        return Err(format!(
            "{key}.upgrades: only an upstream route tunnels upgrades; remove it or add upstream = \"...\""
        ));
    }
    let kinds = [
        r.ret.is_some(),
        r.upstream.is_some(),
        r.static_dir.is_some(),
        r.redirect.is_some(),
    ];
    if kinds.iter().filter(|&&k| k).count() > 1 {
        return Err(format!(
            "{key} (prefix \"{prefix}\"): give one of `return`, `redirect`, `upstream` or `static`"
        ));
    }
    if let Some(rd) = &r.redirect {
        let to = rd.to.as_deref().ok_or_else(|| {
            format!("{key}.redirect: missing `to` (e.g. to = \"https://$host$request_uri\")")
        })?;
        let to = crate::http::redirect::Template::parse(to)
            .map_err(|e| format!("{key}.redirect.to = \"{to}\" {e}"))?;
        let status = rd.status.unwrap_or(301);
        if !crate::http::redirect::status_allowed(status) {
            return Err(format!(
                "{key}.redirect.status = {status}: use 301 or 308 (permanent), 302 or 307 (temporary)"
            ));
        }
        return Ok(Route {
            name,
            prefix,
            limit: None,
            vhost: 0,
            edge: RouteEdge::default(),
            action: Action::Redirect { status, to },
        });
    }
    if let Some(dir) = &r.static_dir {
        let path = std::path::PathBuf::from(dir);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(format!("{key}.static = \"{dir}\" is not a directory")),
            Err(e) => return Err(format!("{key}.static = \"{dir}\": {e}")),
        }
        let index = r.index.clone().unwrap_or_else(|| "index.html".into());
        if index.is_empty() || index.contains('/') {
            return Err(format!("{key}.index must be a file name without '/'"));
        }
        return Ok(Route {
            name,
            prefix,
            limit: None,
            vhost: 0,
            edge: RouteEdge::default(),
            action: Action::Static {
                dir: path,
                index,
                confine: !r.follow_symlinks_outside.unwrap_or(false),
            },
        });
    }
    let ret = match (&r.ret, &r.upstream) {
        (None, Some(u)) => {
            let pool = match pools.iter().position(|p| &p.name == u) {
                Some(p) => p,
                None if u.starts_with("app:") => {
                    let known: Vec<&str> = pools
                        .iter()
                        .filter_map(|p| p.name.strip_prefix("app:"))
                        .collect();
                    return Err(format!(
                        "{key}.upstream = \"{u}\": no [[app]] is named \"{}\" (apps: {known:?})",
                        &u[4..]
                    ));
                }
                None if u.contains("://") || u.contains(':') => {
                    let server = upstream::parse_server(u, &format!("{key}.upstream"))?;
                    let p = upstream::build_pool(u, &Default::default(), vec![server])?;
                    pools.push(p);
                    pools.len() - 1
                }
                None => {
                    let known: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
                    return Err(format!(
                        "{key}.upstream = \"{u}\" is neither a URL nor a defined [upstream.NAME] (defined: {known:?})"
                    ));
                }
            };
            return Ok(Route {
                name,
                prefix,
                limit: None,
                vhost: 0,
                edge: RouteEdge::default(),
                action: Action::Upstream {
                    pool,
                    upgrades: upgrades(key, r.upgrades.as_ref())?,
                },
            });
        }
        (Some(ret), _) => ret,
        (None, None) => {
            return Err(format!(
                "{key} (prefix \"{prefix}\"): say what the route does, e.g. return = {{ status = 200, body = \"ok\" }}, upstream = \"http://127.0.0.1:8000\" or redirect = {{ to = \"https://$host$request_uri\" }}"
            ));
        }
    };
    let status = ret.status.unwrap_or(200);
    if !(200..=599).contains(&status) {
        return Err(format!(
            "{key}.return.status = {status}: use a final status from 200 to 599"
        ));
    }
    let body = ret.body.clone().unwrap_or_default();
    if (status == 204 || status == 304) && !body.is_empty() {
        return Err(format!(
            "{key}.return: status {status} cannot carry a body; remove `body`"
        ));
    }
    let content_type = ret
        .content_type
        .clone()
        .unwrap_or_else(|| "text/plain".into());
    if content_type.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(format!(
            "{key}.return.content_type must not contain control characters"
        ));
    }
    Ok(Route {
        name,
        prefix,
        limit: None,
        vhost: 0,
        edge: RouteEdge::default(),
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
    fn wrong_types_name_the_key_what_was_expected_and_what_was_found() {
        let e = load_str("[server]\nworkers = \"two\"\n").unwrap_err();
        assert_eq!(
            e.0,
            "t.toml:2:11: server.workers: expected a whole number, e.g. workers = 4, found the string \"two\""
        );
        let e = load_str("[limits]\nheader_timeout = true\n").unwrap_err();
        assert!(
            e.0.contains("limits.header_timeout: expected a duration"),
            "{e}"
        );
        let e = load_str("[server]\nbacklog = -1\n").unwrap_err();
        assert!(e.0.contains("server.backlog: must not be negative"), "{e}");
        let e = load_str("[server]\nbacklog = 99999999999\n").unwrap_err();
        assert!(e.0.contains("too large (at most 4294967295)"), "{e}");
        let e = load_str("server = 3\n").unwrap_err();
        assert!(e.0.contains("server: expected a table"), "{e}");
        let e = load_str("route = { prefix = \"/\" }\n").unwrap_err();
        assert!(
            e.0.contains("route: expected tables written [[route]]"),
            "{e}"
        );
    }

    #[test]
    fn flag_spellings_are_accepted_in_the_file() {
        let c = load_str(
            "[server]\nlisten = \"127.0.0.1:8081\"\nworkers = 1\ncpus = \"0\"\n[[route]]\nprefix=\"/\"\nreturn={}\n",
        )
        .unwrap();
        assert_eq!(c.listen, vec!["127.0.0.1:8081".parse().unwrap()]);
        assert_eq!(c.cpus, vec![0]);
        let e = load_str("[server]\ncpus = \"0-x\"\n").unwrap_err();
        assert!(
            e.0.contains("server.cpus: `0-x` is not a CPU number"),
            "{e}"
        );
    }

    #[test]
    fn every_error_of_a_file_is_reported_in_file_order() {
        let e = load_str(
            "[server]\nworkers = \"two\"\nlisen = [\"x\"]\n[limits]\nmax_headers = \"many\"\n[[route]]\nprefix = 1\n",
        )
        .unwrap_err();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 4, "{e}");
        assert!(lines[0].starts_with("t.toml:2:") && lines[0].contains("server.workers"));
        assert!(lines[1].starts_with("t.toml:3:") && lines[1].contains("did you mean `listen`"));
        assert!(lines[2].starts_with("t.toml:5:") && lines[2].contains("limits.max_headers"));
        assert!(lines[3].starts_with("t.toml:7:") && lines[3].contains("route[0].prefix"));
        // Values that read fine but do not validate: all of them too.
        let e = load_str("[server]\nworkers = 0\nbuffers = 1000\nring_entries = 1\n").unwrap_err();
        let lines: Vec<&str> = e.lines().collect();
        assert!(lines.iter().any(|l| l.contains("server.workers")), "{e}");
        assert!(lines.iter().any(|l| l.contains("server.buffers")), "{e}");
        assert!(
            lines.iter().any(|l| l.contains("server.ring_entries")),
            "{e}"
        );
        assert!(lines.iter().any(|l| l.contains("no [[route]]")), "{e}");
    }

    #[test]
    fn what_serve_would_refuse_is_caught_by_check() {
        let e = load_str(
            "[server]\naccess_log = \"/nonexistent-dir-uringd/a.log\"\n[[route]]\nprefix=\"/\"\nreturn={}\n",
        )
        .unwrap_err();
        assert!(
            e.0.contains("server.access_log") && e.0.contains("create it"),
            "{e}"
        );
        let e = load_str(
            "[[route]]\nprefix=\"/\"\nupstream=\"http://127.0.0.1:1\"\nupgrades=[\"websocket\", \"h2c\"]\n",
        )
        .unwrap_err();
        assert!(
            e.0.contains("route[0].upgrades: h2c cannot be tunnelled"),
            "{e}"
        );
        let e = load_str("[[route]]\nprefix=\"/a/../b\"\nreturn={}\n").unwrap_err();
        assert!(e.0.contains("write it as \"/b\""), "{e}");
        let e = load_str("[[route]]\nprefix=\"/a%2Fb\"\nreturn={}\n").unwrap_err();
        assert!(e.0.contains("write the prefix with '/'"), "{e}");
        // A file of limits only, with --upstream from the command line: fine.
        let raw = parse_toml("[limits]\nmax_body_bytes = \"2MiB\"\n", "t.toml").unwrap();
        let ov = Overrides {
            upstream: Some("http://127.0.0.1:8000".into()),
            ..Default::default()
        };
        let c = validate(raw, &ov).unwrap();
        assert_eq!(c.limits.max_body_bytes, 2 << 20);
        assert_eq!(c.routes.len(), 1);
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
