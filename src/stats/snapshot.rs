//! What a scrape collects from each worker, and the merged view the admin pages render.

use super::counters::Counters;
use super::recorder::RouteHistory;
use super::series::{View, Window};

/// What a scrape asks each worker for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    pub window: Window,
    /// The per-second history after this Unix second (the dashboard's time series); None
    /// for pages that do not draw it.
    pub history_since: Option<u64>,
}

/// Ring facts for `/_uringd/workers` (like uWSGI's stats server).
#[derive(Clone, Debug, Default)]
pub struct RingInfo {
    /// "io_uring" or "epoll".
    pub backend: &'static str,
    pub sq_entries: u32,
    pub cq_entries: u32,
    pub cq_overflow: u32,
    pub buffers: u16,
    pub buffer_size: u32,
    pub features: String,
}

#[derive(Clone)]
pub struct PoolQueue {
    pub pool: String,
    pub waiting: u64,
    pub wait: View,
}

#[derive(Clone)]
pub struct WorkerSnapshot {
    pub id: usize,
    pub cpu: usize,
    pub counters: Counters,
    /// Connections open right now.
    pub active: u64,
    pub ring: RingInfo,
    /// All requests in the chosen window.
    pub total: View,
    /// Per route, by route name, in config order.
    pub routes: Vec<(String, View)>,
    /// Proxied routes only: upstream time as [connect, first byte, whole exchange].
    pub upstream: Vec<(String, [View; 3])>,
    /// TLS handshakes in the window.
    pub handshakes: View,
    /// Pools with max_conns: requests waiting now, and the waits in the window.
    pub queues: Vec<PoolQueue>,
    /// Finished seconds per series (routes, then the unrouted one), when asked for.
    pub history: Vec<RouteHistory>,
}

pub struct Snapshot {
    pub window: Window,
    pub uptime_s: u64,
    /// Unix time of the gather (the newest second a history may hold is the one before).
    pub now_unix: u64,
    /// Sorted by worker id.
    pub workers: Vec<WorkerSnapshot>,
}
