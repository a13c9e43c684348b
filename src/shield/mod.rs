//! What protects the backends from clients (issue 17): rate limits per route (`gcra.rs`,
//! the decision; `table.rs`, the shared tables it runs on) and connection caps per client
//! address. Pure decisions and shared tables: no sockets here.

pub mod gcra;
pub mod table;

use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Instant;

use table::{ConnTable, RateTable};

/// Keys a limit tracks at once (rounded to a power of two; 16 bytes each).
pub const LIMIT_SLOTS: usize = 16 * 1024;
/// Buckets of the per-address connection counts (4 bytes each).
pub const CONN_BUCKETS: usize = 64 * 1024;

/// The process clock the shared tables read: microseconds since the first call. Workers
/// add their own start's offset to their per-turn clock instead of reading it per request.
pub fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

/// The tables a generation shares between its workers.
#[derive(Clone, Debug, Default)]
pub struct Shield {
    /// Per route: its `limit`'s table.
    pub limits: Vec<Option<Arc<RateTable>>>,
    pub conns: Option<Arc<ConnTable>>,
}

impl Shield {
    pub fn new(cfg: &crate::config::Config) -> Shield {
        Shield {
            limits: cfg
                .routes
                .iter()
                .map(|r| {
                    r.limit
                        .as_ref()
                        .map(|l| Arc::new(RateTable::new(l.rate, LIMIT_SLOTS)))
                })
                .collect(),
            conns: cfg
                .limits
                .max_connections_per_ip
                .map(|n| Arc::new(ConnTable::new(n, CONN_BUCKETS))),
        }
    }
}
