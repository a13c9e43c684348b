//! Upstream servers and pools: `http://127.0.0.1:8000`, `https://127.0.0.1:8443`,
//! `http://unix:/run/app.sock`, `uwsgi://127.0.0.1:3031`, `uwsgi+unix:/run/app.sock`, or the
//! name of an [upstream.NAME].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::read::Table;
use super::units::{DurationValue, SizeValue, parse_duration, parse_size};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Http,
    Uwsgi,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

#[derive(Clone, Debug)]
pub struct Server {
    pub url: String,
    pub proto: Proto,
    pub addr: Addr,
    /// `https://`: HTTP over TLS.
    pub tls: bool,
}

/// How a pool's `https://` servers are spoken to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    /// The name sent as SNI and checked against the certificate (default: the server's IP
    /// address, which the certificate must then cover).
    pub server_name: Option<String>,
    /// PEM roots to verify the servers against (default: the system's).
    pub ca: Option<PathBuf>,
    /// A client certificate and key to present (PEM).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    LeastConn,
    /// The lowest-numbered server that can take it (an `[[app]]`'s instances: the last
    /// ones go idle first, so cheaper mode can stop them, and the first stay warm).
    First,
}

#[derive(Clone, Debug)]
pub struct Pool {
    pub name: String,
    pub servers: Vec<Server>,
    pub balance: Balance,
    /// Idle keep-alive connections kept per server, per worker.
    pub keepalive: usize,
    pub keepalive_requests: u64,
    pub keepalive_timeout: Duration,
    pub connect_timeout: Duration,
    pub send_timeout: Duration,
    pub read_timeout: Duration,
    /// Passive health: this many failures within `fail_timeout` mark a server down for
    /// `fail_timeout` (nginx's max_fails / fail_timeout). 0 disables.
    pub max_fails: u32,
    pub fail_timeout: Duration,
    /// Extra attempts on another server (or a fresh connection) where that is safe.
    pub retries: u32,
    /// Active health checks every interval (with jitter): `GET health_path` for HTTP
    /// pools, a uwsgi ping for uwsgi pools. None: passive health only.
    pub health_interval: Option<Duration>,
    pub health_path: String,
    /// The servers speak TLS (`https://`), with these settings.
    pub tls: Option<UpstreamTls>,
    /// What shields the servers from slow clients and from more requests than they can
    /// take (see `Shielding`).
    pub shield: Shielding,
    /// The `[[app]]` (index in `Config::apps`) whose instances these servers are.
    pub app: Option<usize>,
}

/// A pool's buffering and admission (issue 17): nginx's proxy_request_buffering,
/// proxy_buffering and HAProxy's maxconn with its queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shielding {
    /// The whole request body is read before a server is chosen.
    pub request_buffering: bool,
    /// In memory up to this per request, then in an unlinked temporary file.
    pub body_buffer: usize,
    /// The response is read as fast as the server sends it.
    pub response_buffering: bool,
    /// Response bytes queued towards the client in memory before a temporary file takes
    /// the rest.
    pub response_buffer: usize,
    /// The largest temporary file a response may take; past it the response streams.
    pub max_temp_file: u64,
    /// Where the temporary files go (O_TMPFILE: never a name in it).
    pub temp_dir: PathBuf,
    /// Requests in flight to each server, counted over every worker (None: no cap).
    pub max_conns: Option<u32>,
    /// How long a request may wait for a free slot before its 503.
    pub queue_timeout: Duration,
}

impl Default for Shielding {
    fn default() -> Shielding {
        Shielding {
            request_buffering: true,
            body_buffer: 64 * 1024,
            response_buffering: true,
            response_buffer: 256 * 1024,
            max_temp_file: 1 << 30,
            temp_dir: std::env::temp_dir(),
            max_conns: None,
            queue_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Default, Debug, Clone)]
pub struct RawPool {
    pub servers: Option<Vec<String>>,
    pub balance: Option<String>,
    pub keepalive: Option<usize>,
    pub keepalive_requests: Option<u64>,
    pub keepalive_timeout: Option<DurationValue>,
    pub connect_timeout: Option<DurationValue>,
    pub send_timeout: Option<DurationValue>,
    pub read_timeout: Option<DurationValue>,
    pub max_fails: Option<u32>,
    pub fail_timeout: Option<DurationValue>,
    pub retries: Option<u32>,
    pub health_interval: Option<DurationValue>,
    pub health_path: Option<String>,
    pub tls_server_name: Option<String>,
    pub tls_ca: Option<String>,
    pub tls_client_cert: Option<String>,
    pub tls_client_key: Option<String>,
    pub request_buffering: Option<bool>,
    pub body_buffer: Option<SizeValue>,
    pub response_buffering: Option<bool>,
    pub response_buffer: Option<SizeValue>,
    pub max_temp_file: Option<SizeValue>,
    pub temp_dir: Option<String>,
    pub max_conns: Option<u32>,
    pub queue_timeout: Option<DurationValue>,
}

impl RawPool {
    pub fn read(t: &Table) -> RawPool {
        RawPool {
            servers: t.get("servers"),
            balance: t.get("balance"),
            keepalive: t.get("keepalive"),
            keepalive_requests: t.get("keepalive_requests"),
            keepalive_timeout: t.get("keepalive_timeout"),
            connect_timeout: t.get("connect_timeout"),
            send_timeout: t.get("send_timeout"),
            read_timeout: t.get("read_timeout"),
            max_fails: t.get("max_fails"),
            fail_timeout: t.get("fail_timeout"),
            retries: t.get("retries"),
            health_interval: t.get("health_interval"),
            health_path: t.get("health_path"),
            tls_server_name: t.get("tls_server_name"),
            tls_ca: t.get("tls_ca"),
            tls_client_cert: t.get("tls_client_cert"),
            tls_client_key: t.get("tls_client_key"),
            request_buffering: t.get("request_buffering"),
            body_buffer: t.get("body_buffer"),
            response_buffering: t.get("response_buffering"),
            response_buffer: t.get("response_buffer"),
            max_temp_file: t.get("max_temp_file"),
            temp_dir: t.get("temp_dir"),
            max_conns: t.get("max_conns"),
            queue_timeout: t.get("queue_timeout"),
        }
    }
}

/// Parses one server URL; `key` names the config key in errors.
pub fn parse_server(url: &str, key: &str) -> Result<Server, String> {
    let bad = |why: &str| {
        format!(
            "{key}: `{url}` {why}; write http://127.0.0.1:8000, https://127.0.0.1:8443, http://unix:/run/app.sock, uwsgi://127.0.0.1:3031 or uwsgi+unix:/run/app.sock"
        )
    };
    let (proto, rest, unix, tls) = if let Some(r) = url.strip_prefix("http://unix:") {
        (Proto::Http, r, true, false)
    } else if let Some(r) = url.strip_prefix("uwsgi+unix:") {
        (Proto::Uwsgi, r, true, false)
    } else if let Some(r) = url.strip_prefix("http://") {
        (Proto::Http, r, false, false)
    } else if let Some(r) = url.strip_prefix("https://") {
        (Proto::Http, r, false, true)
    } else if let Some(r) = url.strip_prefix("uwsgi://") {
        (Proto::Uwsgi, r, false, false)
    } else {
        return Err(bad("is not an upstream URL"));
    };
    let addr = if unix {
        if !rest.starts_with('/') {
            return Err(bad("needs an absolute socket path"));
        }
        if rest.len() >= 108 {
            return Err(bad(
                "has a socket path longer than the 107 bytes Unix sockets allow",
            ));
        }
        Addr::Unix(PathBuf::from(rest))
    } else {
        let hostport = rest.trim_end_matches('/');
        match hostport.parse::<SocketAddr>() {
            Ok(a) => Addr::Tcp(a),
            Err(_) => return Err(bad("needs an IP address and port (names are not resolved)")),
        }
    };
    Ok(Server {
        url: url.to_string(),
        proto,
        addr,
        tls,
    })
}

fn dur(v: &Option<DurationValue>, key: String, default: Duration) -> Result<Duration, String> {
    match v {
        None => Ok(default),
        Some(v) => parse_duration(v).map_err(|m| format!("{key}: {m}")),
    }
}

/// Builds a pool from its table (or, with `raw` None, the defaults for a single URL).
pub fn build_pool(name: &str, raw: &RawPool, servers: Vec<Server>) -> Result<Pool, String> {
    let key = |k: &str| format!("upstream.{name}.{k}");
    let balance = match raw.balance.as_deref() {
        None | Some("round_robin") => Balance::RoundRobin,
        Some("least_conn") => Balance::LeastConn,
        Some(b) => {
            return Err(format!(
                "{}: `{b}` is not round_robin or least_conn",
                key("balance")
            ));
        }
    };
    if servers.is_empty() {
        return Err(format!("{}: list at least one server", key("servers")));
    }
    if servers
        .iter()
        .any(|s| s.proto != servers[0].proto || s.tls != servers[0].tls)
    {
        return Err(format!(
            "{}: mixes http, https and uwsgi servers; a pool speaks one protocol (make two pools)",
            key("servers")
        ));
    }
    let tls = pool_tls(raw, servers[0].tls, &key)?;
    let shield = shielding(raw, &key)?;
    Ok(Pool {
        name: name.to_string(),
        servers,
        balance,
        keepalive: raw.keepalive.unwrap_or(128),
        keepalive_requests: raw.keepalive_requests.unwrap_or(1000),
        keepalive_timeout: dur(
            &raw.keepalive_timeout,
            key("keepalive_timeout"),
            Duration::from_secs(60),
        )?,
        connect_timeout: dur(
            &raw.connect_timeout,
            key("connect_timeout"),
            Duration::from_secs(5),
        )?,
        send_timeout: dur(
            &raw.send_timeout,
            key("send_timeout"),
            Duration::from_secs(60),
        )?,
        read_timeout: dur(
            &raw.read_timeout,
            key("read_timeout"),
            Duration::from_secs(60),
        )?,
        max_fails: raw.max_fails.unwrap_or(1),
        fail_timeout: dur(
            &raw.fail_timeout,
            key("fail_timeout"),
            Duration::from_secs(10),
        )?,
        retries: raw.retries.unwrap_or(1),
        health_interval: match &raw.health_interval {
            None => None,
            Some(v) => {
                let d =
                    parse_duration(v).map_err(|m| format!("{}: {m}", key("health_interval")))?;
                if d < Duration::from_millis(100) {
                    return Err(format!("{}: use at least 100ms", key("health_interval")));
                }
                Some(d)
            }
        },
        health_path: match &raw.health_path {
            None => "/".into(),
            Some(p) if p.starts_with('/') && !p.bytes().any(|b| b <= 0x20 || b == 0x7f) => {
                p.clone()
            }
            Some(p) => {
                return Err(format!(
                    "{}: `{p}` must start with '/' and have no spaces",
                    key("health_path")
                ));
            }
        },
        tls,
        shield,
        app: None,
    })
}

/// The buffering and admission keys of a pool.
fn shielding(raw: &RawPool, key: &dyn Fn(&str) -> String) -> Result<Shielding, String> {
    let d = Shielding::default();
    let size = |v: &Option<SizeValue>, k: &str, default: u64, min: u64, max: u64| match v {
        None => Ok(default),
        Some(v) => {
            let n = parse_size(v).map_err(|m| format!("{}: {m}", key(k)))?;
            if n < min || n > max {
                return Err(format!("{}: use {} to {} bytes", key(k), min, max));
            }
            Ok(n)
        }
    };
    let temp_dir = match raw.temp_dir.as_deref() {
        None => d.temp_dir.clone(),
        Some(p) if p.starts_with('/') => PathBuf::from(p),
        Some(p) => {
            return Err(format!(
                "{}: `{p}` must be an absolute directory path",
                key("temp_dir")
            ));
        }
    };
    if raw.max_conns == Some(0) {
        return Err(format!(
            "{}: 0 would admit nothing; leave it out for no cap",
            key("max_conns")
        ));
    }
    Ok(Shielding {
        request_buffering: raw.request_buffering.unwrap_or(d.request_buffering),
        body_buffer: size(
            &raw.body_buffer,
            "body_buffer",
            d.body_buffer as u64,
            4096,
            64 << 20,
        )? as usize,
        response_buffering: raw.response_buffering.unwrap_or(d.response_buffering),
        response_buffer: size(
            &raw.response_buffer,
            "response_buffer",
            d.response_buffer as u64,
            4096,
            256 << 20,
        )? as usize,
        max_temp_file: size(
            &raw.max_temp_file,
            "max_temp_file",
            d.max_temp_file,
            0,
            1 << 40,
        )?,
        temp_dir,
        max_conns: raw.max_conns,
        queue_timeout: dur(&raw.queue_timeout, key("queue_timeout"), d.queue_timeout)?,
    })
}

/// The `tls_*` keys of a pool: only for https:// servers, a key only with its certificate.
fn pool_tls(
    raw: &RawPool,
    https: bool,
    key: &dyn Fn(&str) -> String,
) -> Result<Option<UpstreamTls>, String> {
    let given = [
        ("tls_server_name", raw.tls_server_name.is_some()),
        ("tls_ca", raw.tls_ca.is_some()),
        ("tls_client_cert", raw.tls_client_cert.is_some()),
        ("tls_client_key", raw.tls_client_key.is_some()),
    ];
    if !https {
        if let Some((k, _)) = given.iter().find(|(_, g)| *g) {
            return Err(format!(
                "{}: the servers are not https://; TLS settings need https:// servers",
                key(k)
            ));
        }
        return Ok(None);
    }
    let path = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(PathBuf::from);
    let client_cert = match (path(&raw.tls_client_cert), path(&raw.tls_client_key)) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(format!(
                "{}: missing; a client certificate needs its private key",
                key("tls_client_key")
            ));
        }
        (None, Some(_)) => {
            return Err(format!(
                "{}: missing; a client key needs its certificate",
                key("tls_client_cert")
            ));
        }
    };
    if let Some(n) = &raw.tls_server_name
        && rustls::pki_types::ServerName::try_from(n.as_str()).is_err()
    {
        return Err(format!(
            "{}: `{n}` is not a DNS name or IP address",
            key("tls_server_name")
        ));
    }
    Ok(Some(UpstreamTls {
        server_name: raw.tls_server_name.clone(),
        ca: path(&raw.tls_ca),
        client_cert,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let s = parse_server("http://127.0.0.1:8000", "k").unwrap();
        assert_eq!(
            (s.proto, s.addr),
            (Proto::Http, Addr::Tcp("127.0.0.1:8000".parse().unwrap()))
        );
        let s = parse_server("uwsgi+unix:/run/a.sock", "k").unwrap();
        assert_eq!(
            (s.proto, s.addr),
            (Proto::Uwsgi, Addr::Unix("/run/a.sock".into()))
        );
        assert_eq!(
            parse_server("http://unix:/x.sock", "k").unwrap().addr,
            Addr::Unix("/x.sock".into())
        );
        assert!(
            parse_server("http://localhost:80", "k")
                .unwrap_err()
                .contains("IP address")
        );
        assert!(parse_server("ftp://x", "k").is_err());
        assert!(parse_server("http://unix:rel.sock", "k").is_err());
    }
}
