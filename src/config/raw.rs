//! The config file as written: every table denies unknown keys so a typo is an error, not a
//! silently ignored setting.

use serde::Deserialize;

use super::units::{DurationValue, SizeValue};

#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub route: Vec<RawRoute>,
    #[serde(default)]
    pub upstream: std::collections::BTreeMap<String, super::upstream::RawPool>,
    /// Peers whose X-Forwarded-For is extended rather than replaced.
    pub trusted_proxies: Option<Vec<String>>,
}

#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
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
}

#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub header_timeout: Option<DurationValue>,
    pub body_timeout: Option<DurationValue>,
    pub keepalive_timeout: Option<DurationValue>,
    pub send_timeout: Option<DurationValue>,
    pub max_header_bytes: Option<SizeValue>,
    pub max_headers: Option<usize>,
    pub max_target_bytes: Option<SizeValue>,
    pub max_body_bytes: Option<SizeValue>,
    pub max_connections: Option<usize>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Option<String>,
    pub prefix: Option<String>,
    #[serde(rename = "return")]
    pub ret: Option<RawReturn>,
    pub upstream: Option<String>,
    /// Serve files from this directory.
    #[serde(rename = "static")]
    pub static_dir: Option<String>,
    pub index: Option<String>,
    /// Allow symlinks under a static root to point outside it (off: they 404).
    pub follow_symlinks_outside: Option<bool>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawReturn {
    pub status: Option<u16>,
    pub body: Option<String>,
    pub content_type: Option<String>,
}
