//! The admin endpoint's requests: which page, which window, which route. Served by the same
//! workers as traffic; the pages themselves are rendered by `stats::render` from a snapshot
//! gathered from every worker.

pub mod assets;
pub mod auth;

use crate::stats::{Snapshot, Want, Window, render};

pub use assets::Asset;

pub const PREFIX: &[u8] = b"/_uringd";

/// Headers on every admin response: the dashboard runs only its own scripts and styles
/// (no inline code, nothing from elsewhere), talks only to this endpoint, and cannot be
/// framed.
pub const SECURITY_HEADERS: &str = "Content-Security-Policy: default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'\r\nX-Content-Type-Options: nosniff\r\n\
    Referrer-Policy: no-referrer\r\n";

/// Which workers a page covers: one (by id) or all.
pub type WorkerSel = Option<usize>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Page {
    Latency {
        json: bool,
        route: Option<String>,
        worker: WorkerSel,
    },
    /// The per-second time series after Unix second `since`.
    Series {
        route: Option<String>,
        worker: WorkerSel,
        since: u64,
    },
    Metrics,
    Workers,
    Dashboard,
}

/// A parsed admin request that needs a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ask {
    pub page: Page,
    pub window: Window,
    pub head_only: bool,
    pub keep_alive: bool,
}

impl Ask {
    /// What each worker must put in its part of the snapshot.
    pub fn want(&self) -> Want {
        Want {
            window: self.window,
            history_since: match self.page {
                Page::Series { since, .. } => Some(since),
                _ => None,
            },
        }
    }
}

/// What to do with an admin request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Gather a snapshot from every worker, then render.
    Gather(Ask),
    /// Clear every worker's histograms.
    Reset,
    /// Answer at once with this status and plain-text message.
    Answer(u16, &'static str),
    /// A file of the dashboard (its script, styles, the plotting library).
    Asset(&'static Asset),
    /// The `[[app]]` instances (`/_uringd/apps`), rendered from the supervisor's list.
    Apps,
}

fn query_param<'a>(query: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    query.split(|&b| b == b'&').find_map(|kv| {
        let mut it = kv.splitn(2, |&b| b == b'=');
        (it.next()? == key).then(|| it.next().unwrap_or(b""))
    })
}

/// Decodes %XX and '+' in a query value (route names may hold '/').
fn percent_decode(v: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'%' => {
                let h = std::str::from_utf8(v.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `route=NAME` (percent-decoded), absent for all routes.
fn route_param(query: &[u8]) -> Result<Option<String>, Decision> {
    match query_param(query, b"route") {
        None | Some(b"") => Ok(None),
        Some(r) => percent_decode(r).map(Some).ok_or(Decision::Answer(
            400,
            "route is not valid percent-encoded UTF-8\n",
        )),
    }
}

/// `worker=N`, absent (or empty) for all workers.
fn worker_param(query: &[u8]) -> Result<WorkerSel, Decision> {
    match query_param(query, b"worker") {
        None | Some(b"") => Ok(None),
        Some(w) => std::str::from_utf8(w)
            .ok()
            .and_then(|w| w.parse().ok())
            .map(Some)
            .ok_or(Decision::Answer(400, "worker must be a worker number\n")),
    }
}

pub fn decide(method: &[u8], path: &[u8], query: &[u8], keep_alive: bool) -> Decision {
    match decide_page(method, path, query, keep_alive) {
        Ok(d) | Err(d) => d,
    }
}

fn decide_page(
    method: &[u8],
    path: &[u8],
    query: &[u8],
    keep_alive: bool,
) -> Result<Decision, Decision> {
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(Decision::Answer(404, "not found\n"));
    };
    let get = method == b"GET" || method == b"HEAD";
    if let Some(name) = rest.strip_prefix(b"/assets/") {
        return Ok(match assets::find(name) {
            Some(a) if get => Decision::Asset(a),
            Some(_) => Decision::Answer(405, "use GET\n"),
            None => Decision::Answer(404, "not found\n"),
        });
    }
    // Prometheus expects cumulative counters: /metrics is always since-start.
    let windowed = rest != b"/metrics";
    let window = match query_param(query, b"window").filter(|_| windowed) {
        None => Window::All,
        Some(w) => match std::str::from_utf8(w).ok().and_then(Window::parse) {
            Some(w) => w,
            None => return Err(Decision::Answer(400, "window must be 10s, 60s or all\n")),
        },
    };
    let page = match rest {
        b"/latency" => {
            let json = match query_param(query, b"format") {
                None => false,
                Some(b"json") => true,
                Some(b"hgrm" | b"text") => false,
                Some(_) => return Err(Decision::Answer(400, "format must be json or hgrm\n")),
            };
            Page::Latency {
                json,
                route: route_param(query)?,
                worker: worker_param(query)?,
            }
        }
        b"/series" => Page::Series {
            route: route_param(query)?,
            worker: worker_param(query)?,
            since: match query_param(query, b"since") {
                None => 0,
                Some(s) => std::str::from_utf8(s)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(Decision::Answer(
                        400,
                        "since must be a Unix time in seconds\n",
                    ))?,
            },
        },
        b"/metrics" => Page::Metrics,
        b"/workers" => Page::Workers,
        b"/apps" if get => return Ok(Decision::Apps),
        b"/apps" => return Ok(Decision::Answer(405, "use GET\n")),
        b"" | b"/" => Page::Dashboard,
        b"/reset" => {
            return Ok(if method == b"POST" {
                Decision::Reset
            } else {
                Decision::Answer(405, "use POST\n")
            });
        }
        _ => return Ok(Decision::Answer(404, "not found\n")),
    };
    if !get {
        return Ok(Decision::Answer(405, "use GET\n"));
    }
    Ok(Decision::Gather(Ask {
        page,
        window,
        head_only: method == b"HEAD",
        keep_alive,
    }))
}

/// The snapshot restricted to one worker (or all of it).
fn select(snap: &Snapshot, worker: WorkerSel) -> Option<Snapshot> {
    let workers: Vec<_> = snap
        .workers
        .iter()
        .filter(|w| worker.is_none_or(|id| w.id == id))
        .cloned()
        .collect();
    if workers.is_empty() && worker.is_some() {
        return None;
    }
    Some(Snapshot {
        window: snap.window,
        uptime_s: snap.uptime_s,
        now_unix: snap.now_unix,
        workers,
    })
}

/// Renders the page for a gathered snapshot: (status, content type, body).
pub fn render_page(
    ask: &Ask,
    snap: &Snapshot,
    apps: &[crate::apps::report::AppRows],
) -> (u16, &'static str, Vec<u8>) {
    let missing = || (404, "text/plain", b"no such route or worker\n".to_vec());
    match &ask.page {
        Page::Latency {
            json: true,
            route,
            worker,
        } => match select(snap, *worker).and_then(|s| render::latency_json(&s, route.as_deref())) {
            Some(j) => (200, "application/json", j.into_bytes()),
            None => missing(),
        },
        Page::Latency {
            json: false,
            route,
            worker,
        } => {
            let v = select(snap, *worker).and_then(|s| match route {
                Some(r) => render::merged_route(&s, r),
                None => Some(render::merged_total(&s)),
            });
            match v {
                Some(v) => (200, "text/plain", render::hgrm(&v).into_bytes()),
                None => missing(),
            }
        }
        Page::Series { route, worker, .. } => {
            match render::series_json(snap, route.as_deref(), *worker) {
                Some(j) => (200, "application/json", j.into_bytes()),
                None => missing(),
            }
        }
        Page::Metrics => (
            200,
            "text/plain; version=0.0.4",
            render::prometheus(snap).into_bytes(),
        ),
        Page::Workers => (
            200,
            "application/json",
            render::workers_json(snap).into_bytes(),
        ),
        Page::Dashboard => (
            200,
            "text/html; charset=utf-8",
            render::dashboard_html(snap, 2, apps).into_bytes(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decides_pages() {
        let g = |m: &[u8], p: &[u8], q: &[u8]| decide(m, p, q, true);
        assert!(matches!(
            g(b"GET", b"/_uringd/latency", b"format=json&window=10s"),
            Decision::Gather(Ask {
                page: Page::Latency {
                    json: true,
                    route: None,
                    worker: None
                },
                window: Window::Last10s,
                ..
            })
        ));
        assert!(matches!(g(b"GET", b"/_uringd/latency", b"route=%2Fapi%2F"),
            Decision::Gather(Ask { page: Page::Latency { route: Some(ref r), .. }, .. }) if r == "/api/"));
        assert!(matches!(
            g(b"GET", b"/_uringd/series", b"since=1800000000&worker=1&route="),
            Decision::Gather(ref a @ Ask {
                page: Page::Series { route: None, worker: Some(1), since: 1_800_000_000 },
                ..
            }) if a.want().history_since == Some(1_800_000_000)
        ));
        assert!(matches!(
            g(b"GET", b"/_uringd/series", b"worker=x"),
            Decision::Answer(400, _)
        ));
        assert!(matches!(
            g(b"GET", b"/_uringd/series", b"since=-1"),
            Decision::Answer(400, _)
        ));
        assert!(matches!(
            g(b"GET", b"/_uringd/assets/uPlot.iife.min.js", b""),
            Decision::Asset(a) if a.content_type.starts_with("text/javascript")
        ));
        assert!(matches!(
            g(b"GET", b"/_uringd/assets/../../etc/passwd", b""),
            Decision::Answer(404, _)
        ));
        assert!(matches!(
            g(b"POST", b"/_uringd/assets/dashboard.js", b""),
            Decision::Answer(405, _)
        ));
        assert_eq!(
            g(b"GET", b"/_uringd/latency", b"window=5m"),
            Decision::Answer(400, "window must be 10s, 60s or all\n")
        );
        assert_eq!(g(b"POST", b"/_uringd/reset", b""), Decision::Reset);
        assert!(matches!(
            g(b"GET", b"/_uringd/reset", b""),
            Decision::Answer(405, _)
        ));
        assert!(matches!(
            g(b"POST", b"/_uringd/metrics", b""),
            Decision::Answer(405, _)
        ));
        assert!(matches!(
            g(b"GET", b"/_uringd/nope", b""),
            Decision::Answer(404, _)
        ));
        assert!(matches!(
            g(b"GET", b"/other", b""),
            Decision::Answer(404, _)
        ));
        assert!(matches!(
            g(b"GET", b"/_uringd/", b""),
            Decision::Gather(Ask {
                page: Page::Dashboard,
                ..
            })
        ));
    }
}
