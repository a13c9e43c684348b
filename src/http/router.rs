//! Longest-prefix routing over the configured routes (already sorted longest first).

use super::response::Prepared;
use crate::config::{Action, Config};

/// What a matched route does.
pub enum Target {
    Respond(Prepared),
    /// Proxy to the pool with this index in `Config::pools`.
    Upstream(usize),
}

pub struct Router {
    routes: Vec<(Vec<u8>, Target)>,
}

impl Router {
    pub fn new(cfg: &Config) -> Router {
        let routes = cfg
            .routes
            .iter()
            .map(|r| {
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
                    Action::Upstream { pool } => Target::Upstream(*pool),
                };
                (r.prefix.as_bytes().to_vec(), t)
            })
            .collect();
        Router { routes }
    }

    /// The index of the longest route whose prefix the path starts with.
    pub fn find(&self, path: &[u8]) -> Option<usize> {
        self.routes.iter().position(|(p, _)| path.starts_with(p))
    }

    pub fn target(&self, i: usize) -> &Target {
        &self.routes[i].1
    }
}
