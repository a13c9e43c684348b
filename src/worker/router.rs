//! Sites and longest-prefix routing: the worker's map from a request's Host to its site
//! (`edge::host`), and from a normalized path to the route that answers it (a prepared
//! response, a pool, a static site) with the route's edge rules. Routes are numbered over
//! all sites (stats and limits count by that number); each site keeps its own, longest
//! first. Lives here, not in http/: it knows the config and the static files.

use crate::compress::{Codec, compressible, encoder::compress_all};
use crate::config::{Action, Config, RouteEdge};
use crate::edge::headers::HeaderEdit;
use crate::edge::host::{HostTable, SiteId};
use crate::http::response::Prepared;

/// What a matched route does.
pub enum Target {
    /// A fixed answer, and its bodies precompressed at start-up (`compress`), by coding.
    Respond(Prepared, Vec<(Codec, Prepared)>),
    /// Answer with this status and a Location built for the request.
    Redirect {
        status: u16,
        to: crate::http::redirect::Template,
    },
    /// Proxy to the pool with this index in `Config::pools`, tunnelling these upgrade
    /// protocols (lowercase).
    Upstream { pool: usize, upgrades: Vec<Vec<u8>> },
    /// Serve files; the prefix to strip is kept alongside.
    Static(Box<crate::statics::Site>, usize),
}

pub struct Router {
    routes: Vec<(Vec<u8>, Target)>,
    edges: Vec<RouteEdge>,
    /// Per site, its routes' numbers, longest prefix first.
    sites: Vec<Vec<usize>>,
    /// Per site, the header edits of a response no route answers (its `headers`).
    site_edits: Vec<HeaderEdit>,
    hosts: HostTable,
    /// One site takes every Host (no `[[vhost]]`): no lookup at all.
    single: bool,
    /// Some route serves files.
    statics: bool,
}

/// Whose header edits a response gets: its route's, its site's (nothing matched), none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EditBy {
    #[default]
    None,
    Route(u32),
    Site(SiteId),
}

impl Router {
    pub fn new(cfg: &Config) -> std::io::Result<Router> {
        let routes: Vec<(Vec<u8>, Target)> = cfg
            .routes
            .iter()
            .map(|r| -> std::io::Result<(Vec<u8>, Target)> {
                let t = match &r.action {
                    Action::Return {
                        status,
                        body,
                        content_type,
                    } => fixed(cfg, &r.edge, *status, body.as_bytes(), content_type)?,
                    Action::Redirect { status, to } => Target::Redirect {
                        status: *status,
                        to: to.clone(),
                    },
                    Action::Upstream { pool, upgrades } => Target::Upstream {
                        pool: *pool,
                        upgrades: upgrades.clone(),
                    },
                    Action::Static {
                        dir,
                        index,
                        confine,
                    } => Target::Static(
                        Box::new(
                            crate::statics::Site::open(dir, index, *confine)?
                                .with_compression(&r.edge.compress, r.edge.compress_min),
                        ),
                        r.prefix.len(),
                    ),
                };
                Ok((r.prefix.as_bytes().to_vec(), t))
            })
            .collect::<std::io::Result<_>>()?;
        let mut sites = vec![Vec::new(); cfg.vhosts.len().max(1)];
        for (i, r) in cfg.routes.iter().enumerate() {
            sites[r.vhost].push(i);
        }
        let mut hosts = HostTable::default();
        for (i, v) in cfg.vhosts.iter().enumerate() {
            for n in &v.names {
                hosts.add(n, i as SiteId);
            }
            if v.default {
                hosts.set_default(i as SiteId);
            }
        }
        let site_edits = cfg
            .vhosts
            .iter()
            .map(|v| HeaderEdit::new(&v.headers, &[]))
            .collect();
        Ok(Router {
            statics: routes.iter().any(|(_, t)| matches!(t, Target::Static(..))),
            routes,
            edges: cfg.routes.iter().map(|r| r.edge.clone()).collect(),
            sites,
            site_edits,
            hosts,
            single: cfg.vhosts.len() <= 1
                && cfg
                    .vhosts
                    .first()
                    .is_none_or(|v| v.default && v.names.is_empty()),
        })
    }

    /// The site a request's Host (or absolute-form authority) names; None: 421.
    #[inline]
    pub fn site(&self, host: Option<&[u8]>) -> Option<SiteId> {
        if self.single {
            return Some(0);
        }
        self.hosts.lookup(host)
    }

    /// Sites are configured (`[[vhost]]`): Host and SNI are checked.
    pub fn has_sites(&self) -> bool {
        !self.single
    }

    /// The longest route of `site` whose prefix the path starts with.
    pub fn find(&self, site: SiteId, path: &[u8]) -> Option<usize> {
        let list = self.sites.get(usize::from(site))?;
        list.iter()
            .copied()
            .find(|&i| path.starts_with(&self.routes[i].0))
    }

    /// The site a route belongs to.
    pub fn site_of_route(&self, route: usize) -> SiteId {
        self.sites
            .iter()
            .position(|l| l.contains(&route))
            .unwrap_or(0) as SiteId
    }

    /// Some route serves files (so an upstream's X-Accel-Redirect may name one).
    pub fn has_statics(&self) -> bool {
        self.statics
    }

    pub fn edge(&self, route: usize) -> &RouteEdge {
        &self.edges[route]
    }

    /// The header edits for a response, if there are any.
    #[inline]
    pub fn edit(&self, by: EditBy) -> Option<&HeaderEdit> {
        let e = match by {
            EditBy::None => return None,
            EditBy::Route(r) => &self.edges.get(r as usize)?.edit,
            EditBy::Site(s) => self.site_edits.get(usize::from(s))?,
        };
        (!e.is_empty()).then_some(e)
    }

    pub fn target(&self, i: usize) -> &Target {
        &self.routes[i].1
    }
}

/// A `return` route's answer, with a precompressed body per coding when the route
/// compresses and the body is compressible text of `compress_min` or more: compressed once
/// here, so answering costs no CPU.
fn fixed(
    cfg: &Config,
    edge: &RouteEdge,
    status: u16,
    body: &[u8],
    ctype: &str,
) -> std::io::Result<Target> {
    let server = &cfg.server_header;
    let mut plain = Prepared::new(status, server, ctype, body, false);
    let worth = !edge.compress.is_empty()
        && compressible(ctype.as_bytes())
        && body.len() as u64 >= edge.compress_min.max(1)
        && status != 204
        && status != 304;
    if !worth {
        return Ok(Target::Respond(plain, Vec::new()));
    }
    const VARY: &str = "Vary: Accept-Encoding\r\n";
    plain.add_line(VARY);
    let mut encoded = Vec::new();
    for &c in &edge.compress {
        let mut p = Prepared::new(status, server, ctype, &compress_all(c, body)?, false);
        p.add_line(&format!("Content-Encoding: {}\r\n{VARY}", c.token()));
        encoded.push((c, p));
    }
    Ok(Target::Respond(plain, encoded))
}
