//! The admin endpoint's requests: which page, which window, which route. Served by the same
//! workers as traffic; the pages themselves are rendered by `stats::render` from a snapshot
//! gathered from every worker.

pub mod auth;

use crate::stats::{Snapshot, Window, render};

pub const PREFIX: &[u8] = b"/_uringd";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Page {
    Latency { json: bool, route: Option<String> },
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

/// What to do with an admin request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Gather a snapshot from every worker, then render.
    Gather(Ask),
    /// Clear every worker's histograms.
    Reset,
    /// Answer at once with this status and plain-text message.
    Answer(u16, &'static str),
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

pub fn decide(method: &[u8], path: &[u8], query: &[u8], keep_alive: bool) -> Decision {
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Decision::Answer(404, "not found\n");
    };
    let get = method == b"GET" || method == b"HEAD";
    // Prometheus expects cumulative counters: /metrics is always since-start.
    let windowed = rest != b"/metrics";
    let window = match query_param(query, b"window").filter(|_| windowed) {
        None => Window::All,
        Some(w) => match std::str::from_utf8(w).ok().and_then(Window::parse) {
            Some(w) => w,
            None => return Decision::Answer(400, "window must be 10s, 60s or all\n"),
        },
    };
    let page = match rest {
        b"/latency" => {
            let json = match query_param(query, b"format") {
                None => false,
                Some(b"json") => true,
                Some(b"hgrm" | b"text") => false,
                Some(_) => return Decision::Answer(400, "format must be json or hgrm\n"),
            };
            let route = match query_param(query, b"route") {
                None => None,
                Some(r) => match percent_decode(r) {
                    Some(r) => Some(r),
                    None => {
                        return Decision::Answer(400, "route is not valid percent-encoded UTF-8\n");
                    }
                },
            };
            Page::Latency { json, route }
        }
        b"/metrics" => Page::Metrics,
        b"/workers" => Page::Workers,
        b"" | b"/" => Page::Dashboard,
        b"/reset" => {
            return if method == b"POST" {
                Decision::Reset
            } else {
                Decision::Answer(405, "use POST\n")
            };
        }
        _ => return Decision::Answer(404, "not found\n"),
    };
    if !get {
        return Decision::Answer(405, "use GET\n");
    }
    Decision::Gather(Ask {
        page,
        window,
        head_only: method == b"HEAD",
        keep_alive,
    })
}

/// Renders the page for a gathered snapshot: (status, content type, body).
pub fn render_page(ask: &Ask, snap: &Snapshot) -> (u16, &'static str, Vec<u8>) {
    match &ask.page {
        Page::Latency { json: true, route } => match render::latency_json(snap, route.as_deref()) {
            Some(j) => (200, "application/json", j.into_bytes()),
            None => (404, "text/plain", b"no such route\n".to_vec()),
        },
        Page::Latency { json: false, route } => {
            let v = match route {
                Some(r) => render::merged_route(snap, r),
                None => Some(render::merged_total(snap)),
            };
            match v {
                Some(v) => (200, "text/plain", render::hgrm(&v).into_bytes()),
                None => (404, "text/plain", b"no such route\n".to_vec()),
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
            render::dashboard_html(snap, 2).into_bytes(),
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
                    route: None
                },
                window: Window::Last10s,
                ..
            })
        ));
        assert!(matches!(g(b"GET", b"/_uringd/latency", b"route=%2Fapi%2F"),
            Decision::Gather(Ask { page: Page::Latency { route: Some(ref r), .. }, .. }) if r == "/api/"));
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
