//! The config file as written, read key by key (`read.rs`): a key nobody reads is reported
//! as unknown, so a typo is an error, not a silently ignored setting.

use super::read::{CpuList, StringMap, Table};
use super::units::{DurationValue, SizeValue};
use super::upstream::RawPool;

#[derive(Default, Debug, Clone)]
pub struct RawConfig {
    pub server: RawServer,
    pub limits: RawLimits,
    pub route: Vec<RawRoute>,
    pub upstream: std::collections::BTreeMap<String, RawPool>,
    /// Peers whose X-Forwarded-For is extended rather than replaced.
    pub trusted_proxies: Option<Vec<String>>,
    /// Where the client's real address comes from: "x-forwarded-for" or "proxy_protocol".
    pub real_ip: Option<String>,
    pub tls: super::tls::RawTls,
    pub vhost: Vec<RawVhost>,
    pub app: Vec<super::app::RawApp>,
}

/// `[[vhost]]`: a site, by the Host names it answers, with its own routes.
#[derive(Default, Debug, Clone)]
pub struct RawVhost {
    pub names: Option<Vec<String>>,
    pub default: Option<bool>,
    /// Response headers of every response of the site (a route's own win).
    pub headers: Option<StringMap>,
    pub route: Vec<RawRoute>,
}

#[derive(Default, Debug, Clone)]
pub struct RawServer {
    pub listen: Option<Vec<String>>,
    pub admin: Option<String>,
    pub workers: Option<usize>,
    pub cpus: Option<Vec<usize>>,
    pub server_header: Option<String>,
    pub backlog: Option<u32>,
    pub drain_timeout: Option<DurationValue>,
    pub ring_entries: Option<u32>,
    pub sqpoll: Option<bool>,
    pub sqpoll_cpu: Option<u32>,
    pub defer_taskrun: Option<bool>,
    pub buffer_size: Option<SizeValue>,
    pub buffers: Option<u32>,
    pub send_zc_threshold: Option<SizeValue>,
    pub sqpoll_idle: Option<DurationValue>,
    pub napi_busy_poll: Option<u32>,
    pub busy_poll: Option<u32>,
    pub reuseport_steering: Option<String>,
    pub tcp_nodelay: Option<bool>,
    pub fixed_files: Option<bool>,
    pub backend: Option<String>,
    pub strict: Option<bool>,
    pub admin_token_file: Option<String>,
    pub access_log: Option<String>,
    pub histograms: Option<bool>,
    pub splice_threshold: Option<SizeValue>,
    pub underscores_in_headers: Option<bool>,
    /// Listeners whose connections start with a PROXY protocol header.
    pub proxy_protocol_listen: Option<Vec<String>>,
}

#[derive(Default, Debug, Clone)]
pub struct RawLimits {
    pub header_timeout: Option<DurationValue>,
    pub body_timeout: Option<DurationValue>,
    pub body_deadline: Option<DurationValue>,
    pub keepalive_timeout: Option<DurationValue>,
    pub send_timeout: Option<DurationValue>,
    pub max_header_bytes: Option<SizeValue>,
    pub max_headers: Option<usize>,
    pub max_target_bytes: Option<SizeValue>,
    pub max_body_bytes: Option<SizeValue>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<u32>,
}

#[derive(Default, Debug, Clone)]
pub struct RawRoute {
    pub name: Option<String>,
    pub prefix: Option<String>,
    pub ret: Option<RawReturn>,
    pub redirect: Option<RawRedirect>,
    pub limit: Option<RawLimit>,
    pub upstream: Option<String>,
    /// Serve files from this directory.
    pub static_dir: Option<String>,
    pub index: Option<String>,
    /// Allow symlinks under a static root to point outside it (off: they 404).
    pub follow_symlinks_outside: Option<bool>,
    /// Upgrade protocols tunnelled to the upstream (default: websocket).
    pub upgrades: Option<Vec<String>>,
    /// Response headers added (or replacing the same name), on every response.
    pub headers: Option<StringMap>,
    /// Upstream response headers dropped.
    pub hide_headers: Option<Vec<String>>,
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    /// Reachable only through an upstream's X-Accel-Redirect.
    pub internal: Option<bool>,
    /// Codings offered to clients, in order of preference ("zstd", "br", "gzip").
    pub compress: Option<Vec<String>>,
    pub compress_min: Option<SizeValue>,
    /// Compress upstream responses too (BREACH: see docs/security.md).
    pub compress_proxied: Option<bool>,
}

/// `limit = { rate = "10/s", burst = 20, key = "header:X-Api-Key" }`.
#[derive(Default, Debug, Clone)]
pub struct RawLimit {
    pub rate: Option<String>,
    pub burst: Option<u64>,
    pub key: Option<String>,
}

#[derive(Default, Debug, Clone)]
pub struct RawRedirect {
    pub to: Option<String>,
    pub status: Option<u16>,
}

#[derive(Default, Debug, Clone)]
pub struct RawReturn {
    pub status: Option<u16>,
    pub body: Option<String>,
    pub content_type: Option<String>,
}

impl RawConfig {
    pub fn read(t: &Table) -> RawConfig {
        let server = t.table("server").map(|s| {
            let r = RawServer::read(&s);
            s.finish();
            r
        });
        let limits = t.table("limits").map(|s| {
            let r = RawLimits::read(&s);
            s.finish();
            r
        });
        let route = RawRoute::read_all(t);
        let vhost = t
            .tables("vhost")
            .into_iter()
            .map(|v| {
                let r = RawVhost {
                    names: v.get("names"),
                    default: v.get("default"),
                    headers: v.get("headers"),
                    route: RawRoute::read_all(&v),
                };
                v.finish();
                r
            })
            .collect();
        let upstream = t
            .named_tables("upstream")
            .into_iter()
            .map(|(name, p)| {
                let v = RawPool::read(&p);
                p.finish();
                (name, v)
            })
            .collect();
        let tls = t.table("tls").map(|s| {
            let r = super::tls::RawTls::read(&s);
            s.finish();
            r
        });
        RawConfig {
            tls: tls.unwrap_or_default(),
            server: server.unwrap_or_default(),
            limits: limits.unwrap_or_default(),
            route,
            upstream,
            trusted_proxies: t.get("trusted_proxies"),
            real_ip: t.get("real_ip"),
            vhost,
            app: t
                .tables("app")
                .into_iter()
                .map(|a| {
                    let v = super::app::RawApp::read(&a);
                    a.finish();
                    v
                })
                .collect(),
        }
    }
}

impl RawServer {
    fn read(t: &Table) -> RawServer {
        RawServer {
            listen: t.get("listen"),
            admin: t.get("admin"),
            workers: t.get("workers"),
            cpus: t.get::<CpuList>("cpus").map(|c| c.0),
            server_header: t.get("server_header"),
            backlog: t.get("backlog"),
            drain_timeout: t.get("drain_timeout"),
            ring_entries: t.get("ring_entries"),
            sqpoll: t.get("sqpoll"),
            sqpoll_cpu: t.get("sqpoll_cpu"),
            defer_taskrun: t.get("defer_taskrun"),
            buffer_size: t.get("buffer_size"),
            buffers: t.get("buffers"),
            send_zc_threshold: t.get("send_zc_threshold"),
            sqpoll_idle: t.get("sqpoll_idle"),
            napi_busy_poll: t.get("napi_busy_poll"),
            busy_poll: t.get("busy_poll"),
            reuseport_steering: t.get("reuseport_steering"),
            tcp_nodelay: t.get("tcp_nodelay"),
            fixed_files: t.get("fixed_files"),
            backend: t.get("backend"),
            strict: t.get("strict"),
            admin_token_file: t.get("admin_token_file"),
            access_log: t.get("access_log"),
            histograms: t.get("histograms"),
            splice_threshold: t.get("splice_threshold"),
            underscores_in_headers: t.get("underscores_in_headers"),
            proxy_protocol_listen: t.get("proxy_protocol_listen"),
        }
    }
}

impl RawLimits {
    fn read(t: &Table) -> RawLimits {
        RawLimits {
            header_timeout: t.get("header_timeout"),
            body_timeout: t.get("body_timeout"),
            body_deadline: t.get("body_deadline"),
            keepalive_timeout: t.get("keepalive_timeout"),
            send_timeout: t.get("send_timeout"),
            max_header_bytes: t.get("max_header_bytes"),
            max_headers: t.get("max_headers"),
            max_target_bytes: t.get("max_target_bytes"),
            max_body_bytes: t.get("max_body_bytes"),
            max_connections: t.get("max_connections"),
            max_connections_per_ip: t.get("max_connections_per_ip"),
        }
    }
}

impl RawRoute {
    /// The `[[route]]` tables of `t` (the top level, or a `[[vhost]]`).
    fn read_all(t: &Table) -> Vec<RawRoute> {
        t.tables("route")
            .into_iter()
            .map(|r| {
                let v = RawRoute::read(&r);
                r.finish();
                v
            })
            .collect()
    }

    fn read(t: &Table) -> RawRoute {
        RawRoute {
            name: t.get("name"),
            prefix: t.get("prefix"),
            ret: t.table("return").map(|r| {
                let v = RawReturn {
                    status: r.get("status"),
                    body: r.get("body"),
                    content_type: r.get("content_type"),
                };
                r.finish();
                v
            }),
            redirect: t.table("redirect").map(|r| {
                let v = RawRedirect {
                    to: r.get("to"),
                    status: r.get("status"),
                };
                r.finish();
                v
            }),
            limit: t.table("limit").map(|r| {
                let v = RawLimit {
                    rate: r.get("rate"),
                    burst: r.get("burst"),
                    key: r.get("key"),
                };
                r.finish();
                v
            }),
            upstream: t.get("upstream"),
            static_dir: t.get("static"),
            index: t.get("index"),
            follow_symlinks_outside: t.get("follow_symlinks_outside"),
            upgrades: t.get("upgrades"),
            headers: t.get("headers"),
            hide_headers: t.get("hide_headers"),
            allow: t.get("allow"),
            deny: t.get("deny"),
            internal: t.get("internal"),
            compress: t.get("compress"),
            compress_min: t.get("compress_min"),
            compress_proxied: t.get("compress_proxied"),
        }
    }
}
