//! Longest-prefix routing over the configured routes (already sorted longest first): the
//! worker's map from a normalized path to what answers it (a prepared response, a pool, a
//! static site). Lives here, not in http/: it knows the config and the static files.

use crate::config::{Action, Config};
use crate::http::response::Prepared;

/// What a matched route does.
pub enum Target {
    Respond(Prepared),
    /// Answer with this status and a Location built for the request.
    Redirect {
        status: u16,
        to: crate::http::redirect::Template,
    },
    /// Proxy to the pool with this index in `Config::pools`, tunnelling these upgrade
    /// protocols (lowercase).
    Upstream {
        pool: usize,
        upgrades: Vec<Vec<u8>>,
    },
    /// Serve files; the prefix to strip is kept alongside.
    Static(Box<crate::statics::Site>, usize),
}

pub struct Router {
    routes: Vec<(Vec<u8>, Target)>,
}

impl Router {
    pub fn new(cfg: &Config) -> std::io::Result<Router> {
        let routes = cfg
            .routes
            .iter()
            .map(|r| -> std::io::Result<(Vec<u8>, Target)> {
                let t = match &r.action {
                    Action::Return {
                        status,
                        body,
                        content_type,
                    } => Target::Respond(Prepared::new(
                        *status,
                        &cfg.server_header,
                        content_type,
                        body.as_bytes(),
                        false,
                    )),
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
                        Box::new(crate::statics::Site::open(dir, index, *confine)?),
                        r.prefix.len(),
                    ),
                };
                Ok((r.prefix.as_bytes().to_vec(), t))
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Router { routes })
    }

    /// The index of the longest route whose prefix the path starts with.
    pub fn find(&self, path: &[u8]) -> Option<usize> {
        self.routes.iter().position(|(p, _)| path.starts_with(p))
    }

    pub fn target(&self, i: usize) -> &Target {
        &self.routes[i].1
    }
}
