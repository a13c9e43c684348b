//! A worker's latency recorder: one series per route plus one for requests no route
//! answered (404s, rejections). Each request touches exactly one series; the total is
//! merged from all of them when a scrape asks.

use super::history::{Second, Timeline};
use super::series::{Series, View, Window};

/// A second's worth of one series' history, named by route (None: no route answered).
pub type RouteHistory = (Option<String>, Vec<Second>);

pub struct Recorder {
    pub enabled: bool,
    routes: Vec<Series>,
    unrouted: Series,
    /// Per route, then the unrouted one last: the per-second history for the dashboard.
    timelines: Vec<Timeline>,
    names: Vec<String>,
    /// Per route, for proxied routes only: [connect, first byte, whole] upstream times.
    upstream: Vec<Option<Box<[Series; 3]>>>,
    /// TLS handshakes, accept to Finished.
    handshakes: Series,
    /// Per pool with max_conns (by name): time waited in its queue.
    queues: Vec<(String, Option<Box<Series>>)>,
}

impl Recorder {
    /// `proxied[i]` says whether route i proxies (and so has upstream timings).
    pub fn new(enabled: bool, route_names: Vec<String>, proxied: &[bool]) -> Recorder {
        Recorder {
            enabled,
            routes: route_names.iter().map(|_| Series::default()).collect(),
            unrouted: Series::default(),
            timelines: (0..=route_names.len())
                .map(|_| Timeline::default())
                .collect(),
            upstream: proxied.iter().map(|&p| p.then(Box::default)).collect(),
            names: route_names,
            handshakes: Series::default(),
            queues: Vec::new(),
        }
    }

    /// Pools by name, and whether each has a queue (max_conns) whose waits are recorded.
    pub fn with_queues(mut self, pools: Vec<(String, bool)>) -> Recorder {
        self.queues = pools
            .into_iter()
            .map(|(n, q)| (n, q.then(Box::default)))
            .collect();
        self
    }

    /// A request left `pool`'s queue after `us` microseconds (admitted or timed out).
    pub fn record_queue(&mut self, pool: usize, us: u64, now_s: u64) {
        if self.enabled
            && let Some((_, Some(s))) = self.queues.get_mut(pool)
        {
            s.record(us, 1, now_s);
        }
    }

    /// Per pool with a queue: its name and the waits in the window.
    pub fn queues(&self, w: Window, now_s: u64) -> Vec<(String, View)> {
        self.queues
            .iter()
            .filter_map(|(n, s)| Some((n.clone(), s.as_ref()?.view(w, now_s))))
            .collect()
    }

    /// One completed TLS handshake, in microseconds.
    pub fn record_handshake(&mut self, us: u64, now_s: u64) {
        if self.enabled {
            self.handshakes.record(us, 1, now_s);
        }
    }

    pub fn handshakes(&self, w: Window, now_s: u64) -> View {
        self.handshakes.view(w, now_s)
    }

    /// One proxied exchange: microseconds to connect, to the first response byte, and to
    /// the end of the response, each from the start of the attempt.
    pub fn record_upstream(&mut self, route: usize, us: [u64; 3], now_s: u64) {
        if !self.enabled {
            return;
        }
        if let Some(Some(s)) = self.upstream.get_mut(route) {
            for (series, v) in s.iter_mut().zip(us) {
                series.record(v, 1, now_s);
            }
        }
    }

    pub fn upstream(&self, w: Window, now_s: u64) -> Vec<(String, [View; 3])> {
        self.names
            .iter()
            .zip(&self.upstream)
            .filter_map(|(n, s)| {
                let s = s.as_ref()?;
                Some((
                    n.clone(),
                    [
                        s[0].view(w, now_s),
                        s[1].view(w, now_s),
                        s[2].view(w, now_s),
                    ],
                ))
            })
            .collect()
    }

    /// `n` requests of the same latency in microseconds; `route` None for errors and 404s.
    /// `now_s` is worker time (the windows), `at` the Unix second and status class of
    /// the responses (the history).
    pub fn record(&mut self, route: Option<usize>, us: u64, n: u32, now_s: u64, at: (u64, u8)) {
        if !self.enabled {
            return;
        }
        let route = route.filter(|&r| r < self.routes.len());
        match route {
            Some(r) => self.routes[r].record(us, n, now_s),
            None => self.unrouted.record(us, n, now_s),
        }
        let t = route.unwrap_or(self.routes.len());
        self.timelines[t].record(us, n, at.0, at.1);
    }

    /// Every series' finished seconds after `since`, as of Unix second `now`.
    pub fn history(&mut self, since: u64, now: u64) -> Vec<RouteHistory> {
        let names = self.names.iter().cloned().map(Some).chain([None]);
        names
            .zip(self.timelines.iter_mut())
            .map(|(n, t)| (n, t.seconds(since, now)))
            .collect()
    }

    pub fn total(&self, w: Window, now_s: u64) -> View {
        let mut v = self.unrouted.view(w, now_s);
        for s in &self.routes {
            s.add_view(w, now_s, &mut v);
        }
        v
    }

    pub fn routes(&self, w: Window, now_s: u64) -> Vec<(String, View)> {
        self.names
            .iter()
            .cloned()
            .zip(self.routes.iter().map(|s| s.view(w, now_s)))
            .collect()
    }

    pub fn reset(&mut self) {
        self.unrouted.reset();
        self.handshakes.reset();
        self.timelines.iter_mut().for_each(Timeline::reset);
        for s in &mut self.routes {
            s.reset();
        }
        for s in self.upstream.iter_mut().flatten() {
            s.iter_mut().for_each(Series::reset);
        }
        for (_, s) in &mut self.queues {
            if let Some(s) = s {
                s.reset();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_is_routes_plus_unrouted() {
        let mut r = Recorder::new(true, vec!["a".into(), "b".into()], &[false, true]);
        r.record(Some(0), 10, 1, 0, (0, 2));
        r.record(Some(1), 20, 1, 0, (0, 2));
        r.record(None, 30, 1, 0, (0, 4));
        r.record(Some(7), 40, 1, 0, (0, 2)); // unknown index: counted as unrouted, not lost
        let t = r.total(Window::All, 0);
        assert_eq!(t.hist.len(), 4);
        assert_eq!(t.sum_us, 100);
        assert_eq!(r.routes(Window::All, 0)[1].1.hist.len(), 1);
        // Buckets that age out of the 60 s ring still count since start.
        r.record(Some(0), 50, 1, 100, (100, 2));
        assert_eq!(r.total(Window::All, 100).hist.len(), 5);
        assert_eq!(r.total(Window::Last60s, 100).hist.len(), 1);
        // The history: per route, then the unrouted series, by Unix second.
        r.record(None, 30, 2, 100, (5000, 4));
        r.record(Some(1), 30, 1, 100, (5001, 2));
        let h = r.history(4000, 5002);
        assert_eq!(h.len(), 3);
        assert_eq!((h[1].0.as_deref(), h[2].0.as_deref()), (Some("b"), None));
        assert_eq!(
            h[2].1
                .iter()
                .map(|s| (s.t, s.count, s.e4))
                .collect::<Vec<_>>(),
            [(5000, 2, 2)]
        );
        assert_eq!(h[1].1.iter().map(|s| s.t).collect::<Vec<_>>(), [5001]);
        // Upstream timings exist for proxied routes only.
        r.record_upstream(0, [1, 2, 3], 0);
        r.record_upstream(1, [10, 20, 30], 0);
        let up = r.upstream(Window::All, 0);
        assert_eq!(up.len(), 1);
        assert_eq!(
            (up[0].0.as_str(), up[0].1[1].hist.len(), up[0].1[2].sum_us),
            ("b", 1, 30)
        );
    }
}
