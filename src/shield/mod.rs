//! What protects the backends from clients (issue 17): rate limits per route (`gcra.rs`,
//! the decision; `table.rs`, the shared tables it runs on) and connection caps per client
//! address. Pure decisions and shared tables: no sockets here.

pub mod gcra;
pub mod slots;
pub mod table;

use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Instant;

use crate::config::Config;
use slots::Slots;
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
    /// Per pool with `max_conns`: its servers' requests in flight.
    pub slots: Vec<Option<Arc<Slots>>>,
    /// The `[[app]]` instances as the supervisor last saw them (`/_uringd/apps`), one list
    /// for the process: handed on by every reload.
    pub apps: crate::apps::report::Shared,
}

impl Shield {
    /// The tables for `cfg`. On a reload `previous` is the running config: a route of the
    /// same name with the same limit keeps its table, and the same per-address cap keeps
    /// its counts, so a reload (a certificate renewal, say) neither resets what clients
    /// have used nor forgets the connections the retiring workers still hold.
    pub fn new(cfg: &Config, previous: Option<&Config>) -> Shield {
        let kept = |r: &crate::config::Route| {
            let p = previous?;
            let i = p.routes.iter().position(|o| o.name == r.name)?;
            let (old, new) = (p.routes[i].limit.as_ref()?, r.limit.as_ref()?);
            let same = old.rate == new.rate && old.key == new.key;
            same.then(|| p.shield.limits.get(i).cloned().flatten())?
        };
        Shield {
            apps: previous.map(|p| p.shield.apps.clone()).unwrap_or_default(),
            limits: cfg
                .routes
                .iter()
                .map(|r| {
                    let l = r.limit.as_ref()?;
                    Some(kept(r).unwrap_or_else(|| Arc::new(RateTable::new(l.rate, LIMIT_SLOTS))))
                })
                .collect(),
            conns: cfg.limits.max_connections_per_ip.map(|n| {
                previous
                    .and_then(|p| p.shield.conns.clone())
                    .filter(|t| t.max() == n)
                    .unwrap_or_else(|| Arc::new(ConnTable::new(n, CONN_BUCKETS)))
            }),
            slots: cfg
                .pools
                .iter()
                .map(|p| {
                    p.shield.max_conns?;
                    // The same pool name with the same servers: the same backend capacity,
                    // and the retiring workers' requests to it are still in flight.
                    let same = |o: &&crate::config::upstream::Pool| {
                        o.name == p.name
                            && o.servers.len() == p.servers.len()
                            && o.servers
                                .iter()
                                .zip(&p.servers)
                                .all(|(a, b)| a.url == b.url)
                    };
                    let old = previous.and_then(|c| {
                        let i = c.pools.iter().position(|o| same(&o))?;
                        c.shield.slots.get(i).cloned().flatten()
                    });
                    // An app's instances are not ready until its supervisor says so.
                    let fresh = || match p.app {
                        Some(_) => Slots::not_ready(p.servers.len()),
                        None => Slots::new(p.servers.len()),
                    };
                    Some(old.unwrap_or_else(|| Arc::new(fresh())))
                })
                .collect(),
        }
    }
}
