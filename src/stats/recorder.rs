//! A worker's latency recorder: one series for all requests and one per route.

use super::series::{Series, View, Window};

pub struct Recorder {
    pub enabled: bool,
    total: Series,
    routes: Vec<Series>,
    names: Vec<String>,
}

impl Recorder {
    pub fn new(enabled: bool, route_names: Vec<String>) -> Recorder {
        Recorder {
            enabled,
            total: Series::default(),
            routes: route_names.iter().map(|_| Series::default()).collect(),
            names: route_names,
        }
    }

    /// One request's latency in microseconds; `route` None for errors and 404s.
    pub fn record(&mut self, route: Option<usize>, us: u64, now_s: u64) {
        if !self.enabled {
            return;
        }
        self.total.record(us, now_s);
        if let Some(s) = route.and_then(|r| self.routes.get_mut(r)) {
            s.record(us, now_s);
        }
    }

    pub fn total(&self, w: Window, now_s: u64) -> View {
        self.total.view(w, now_s)
    }

    pub fn routes(&self, w: Window, now_s: u64) -> Vec<(String, View)> {
        self.names
            .iter()
            .cloned()
            .zip(self.routes.iter().map(|s| s.view(w, now_s)))
            .collect()
    }

    pub fn reset(&mut self) {
        self.total.reset();
        for s in &mut self.routes {
            s.reset();
        }
    }
}
