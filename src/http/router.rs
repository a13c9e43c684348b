//! Longest-prefix routing over the configured routes (already sorted longest first).

use super::response::Prepared;
use crate::config::{Action, Config};

pub struct Router {
    routes: Vec<(Vec<u8>, Prepared)>,
}

impl Router {
    pub fn new(cfg: &Config) -> Router {
        let routes = cfg
            .routes
            .iter()
            .map(|r| {
                let p = match &r.action {
                    Action::Return {
                        status,
                        body,
                        content_type,
                    } => Prepared::new(
                        *status,
                        &cfg.server_header,
                        content_type,
                        body.as_bytes(),
                        false,
                    ),
                };
                (r.prefix.as_bytes().to_vec(), p)
            })
            .collect();
        Router { routes }
    }

    /// The index of the longest route whose prefix the path starts with.
    pub fn find(&self, path: &[u8]) -> Option<usize> {
        self.routes.iter().position(|(p, _)| path.starts_with(p))
    }

    pub fn response(&self, i: usize) -> &Prepared {
        &self.routes[i].1
    }
}
