//! The admin dashboard page. With scripts, `assets/dashboard.js` draws time series
//! (requests/s, errors, p50/p99/p99.9 second by second) and the spectrum of the chosen
//! window, route and worker with uPlot, polling the admin JSON; it refreshes the overview
//! below from this same page. Without scripts the page is that overview alone: headline
//! counters, an inline SVG percentile plot and per-worker and per-route tables, reloaded by
//! a `<noscript>` meta refresh. Everything it loads comes from `/_uringd/assets/` (the
//! Content-Security-Policy allows nothing else, inline code included).

use std::fmt::Write;

use super::summary::{self, Latency};
use crate::apps::report::AppRows;
use crate::stats::{Counters, Snapshot, View, Window, WorkerSnapshot};

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// 1234567 -> "1,234,567".
fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A latency in microseconds, in the unit that reads best.
fn latency(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.2} ms", us as f64 / 1e3)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{}d {h}h", int(d)),
    }
}

fn window_text(w: Window) -> &'static str {
    match w {
        Window::All => "since start",
        Window::Last10s => "last 10 s",
        Window::Last60s => "last 60 s",
    }
}

/// Line colors: the total in near-black, routes from a palette that stays apart.
const TOTAL_COLOR: &str = "#111827";
const PALETTE: [&str; 8] = [
    "#2563eb", "#ea580c", "#16a34a", "#7c3aed", "#0891b2", "#db2777", "#ca8a04", "#65a30d",
];

/// Two table cells, p50 and p99 (dashes with no data).
fn p50_p99_cells(l: &Latency) -> String {
    if l.count == 0 {
        "<td>–</td>".repeat(2)
    } else {
        format!("<td>{}</td><td>{}</td>", latency(l.p50), latency(l.p99))
    }
}

/// Per worker: TLS handshakes by kind and version, failures, handshake latency. Shown
/// once there has been TLS traffic.
fn tls_panel(out: &mut String, s: &Snapshot) {
    let busy = |w: &WorkerSnapshot| {
        let t = &w.counters.tls;
        t.full > 0 || t.resumed > 0 || t.failed() > 0
    };
    if !s.workers.iter().any(busy) {
        return;
    }
    out.push_str("<section class=\"panel\">\n<h2>TLS</h2>\n<table class=\"grid\">\n");
    out.push_str(
        "<tr><th>worker</th><th>full</th><th>resumed</th><th>TLS 1.3</th><th>TLS 1.2</th>\
         <th>failed</th><th>plain HTTP</th><th>handshake p50</th><th>p99</th></tr>\n",
    );
    for w in &s.workers {
        let t = &w.counters.tls;
        let lat = p50_p99_cells(&summary::latency(&w.handshakes));
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}{}{lat}</tr>",
            w.id,
            int(t.full),
            int(t.resumed),
            int(t.tls13),
            int(t.tls12),
            warn_cell(t.failed()),
            warn_cell(t.failures[0]),
        );
    }
    out.push_str("</table>\n</section>\n");
}

/// Shielding: requests refused by limits, and each max_conns pool's queue (waiting now,
/// wait p50/p99 per worker). Shown once anything was limited, queued or spilled.
fn shield_panel(out: &mut String, s: &Snapshot) {
    let mut c = Counters::default();
    for w in &s.workers {
        c.add(&w.counters);
    }
    let queues = s.workers.iter().any(|w| !w.queues.is_empty());
    if !queues && c.limited == 0 && c.ip_refused == 0 && c.spilled_responses == 0 {
        return;
    }
    out.push_str("<section class=\"panel\">\n<h2>Shielding the backends</h2>\n");
    let _ = writeln!(
        out,
        "<p class=\"note\">rate-limited (429) {} · refused per address (503) {} · queued {} · queue timeouts (503) {} · responses spilled to a file {} · bodies held in a file {}</p>",
        int(c.limited),
        int(c.ip_refused),
        int(c.queued),
        int(c.timeouts.queue),
        int(c.spilled_responses),
        int(c.spooled_bodies)
    );
    if queues {
        out.push_str(
            "<table class=\"grid\">\n<tr><th>pool</th><th>worker</th><th>waiting</th>\
             <th>waited</th><th>wait p50</th><th>p99</th></tr>\n",
        );
        for w in &s.workers {
            for q in &w.queues {
                let l = summary::latency(&q.wait);
                let lat = p50_p99_cells(&l);
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td>{}<td>{}</td>{lat}</tr>",
                    esc(&q.pool),
                    w.id,
                    warn_cell(q.waiting),
                    int(l.count)
                );
            }
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
}

/// The `[[app]]` instances (`/_uringd/apps`'s rows), when there are any.
fn apps_panel(out: &mut String, apps: &[AppRows]) {
    if apps.is_empty() {
        return;
    }
    out.push_str("<section class=\"panel\">\n<h2>Apps</h2>\n<table class=\"grid\">\n");
    out.push_str(
        "<tr><th>app</th><th>instance</th><th>pid</th><th>state</th><th>requests</th>\
         <th>in flight</th><th>memory</th><th>up</th><th>respawns</th><th>harakiri</th></tr>\n",
    );
    for a in apps {
        for i in &a.rows {
            let state = match i.state {
                "dead" | "recycling" => format!("<td class=\"bad\">{}</td>", i.state),
                s => format!("<td>{s}</td>"),
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td>{state}<td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td>{}{}</tr>",
                esc(&a.name),
                i.n,
                if i.pid == 0 {
                    "–".into()
                } else {
                    i.app_pid.unwrap_or(i.pid).to_string()
                },
                int(i.requests),
                i.in_flight,
                a.concurrency,
                bytes(i.rss_kib * 1024),
                duration(i.uptime_s as u64),
                warn_cell(i.respawns),
                warn_cell(i.harakiri_kills)
            );
        }
    }
    out.push_str("</table>\n</section>\n");
}

fn route_color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// The class of `route_color(i)` in dashboard.css.
fn route_class(i: usize) -> &'static str {
    ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"][i % PALETTE.len()]
}

// Plot geometry, in SVG user units.
const W: f64 = 900.0;
const H: f64 = 390.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 44.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 52.0;
const PW: f64 = W - LEFT - RIGHT;
const PH: f64 = H - TOP - BOTTOM;
/// The x axis runs over log10(1/(1-p)) from 0 (0%) to 5 (99.999%).
const DECADES: f64 = 5.0;
const X_LABELS: [&str; 6] = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"];

struct Line<'a> {
    label: &'a str,
    /// `data-route`; `*` for all requests.
    route: &'a str,
    color: &'static str,
    /// The stylesheet class of the same color (legend dots).
    class: &'static str,
    view: &'a View,
    total: bool,
}

/// Percentile plot points (decades, ms), from HdrHistogram's quantile iteration; quantiles
/// beyond the last tick, and 100% itself, sit on the last tick.
fn points(v: &View) -> Vec<(f64, f64)> {
    summary::spectrum(v)
        .into_iter()
        .map(|(p, us)| {
            let x = if p < 1.0 {
                (1.0 / (1.0 - p)).log10().clamp(0.0, DECADES)
            } else {
                DECADES
            };
            (x, us as f64 / 1e3)
        })
        .collect()
}

/// A "nice" y axis for values up to `max`: (step, top), with 4 to 6 tick labels from 0.
fn nice_axis(max: f64) -> (f64, f64) {
    if !(max.is_finite() && max > 0.0) {
        return (0.25, 1.0);
    }
    let mag = 10f64.powf((max / 5.0).log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        let step = m * mag;
        let n = (max / step - 1e-9).ceil().max(1.0);
        if n <= 5.0 {
            return (step, step * n.max(3.0));
        }
    }
    (10.0 * mag, 50.0 * mag)
}

/// A tick label: as many decimals as the step needs, no trailing zeros.
fn tick(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize + 1;
    let s = format!("{v:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn plot(out: &mut String, lines: &[Line]) {
    let series: Vec<(&Line, Vec<(f64, f64)>)> = lines.iter().map(|l| (l, points(l.view))).collect();
    let max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .fold(0.0, f64::max);
    let (step, top) = nice_axis(max);
    let px = |x: f64| LEFT + x / DECADES * PW;
    let py = |y: f64| TOP + PH - (y / top).min(1.0) * PH;

    let _ = writeln!(
        out,
        "<svg id=\"percentile-plot\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" \
         width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"Latency by percentile\">"
    );
    let _ = writeln!(
        out,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{PW}\" height=\"{PH}\" fill=\"#fbfcfd\" stroke=\"#d1d5db\"/>"
    );

    // Horizontal gridlines and latency labels.
    let mut k = 0u32;
    loop {
        let v = step * f64::from(k);
        if v > top * (1.0 + 1e-9) || k > 10 {
            break;
        }
        let y = py(v);
        if k > 0 {
            let _ = writeln!(
                out,
                "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e5e7eb\"/>",
                LEFT + PW
            );
        }
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\" fill=\"#6b7280\">{}</text>",
            LEFT - 8.0,
            y + 4.0,
            tick(v, step)
        );
        k += 1;
    }
    // Vertical gridlines and percentile labels.
    for (i, label) in X_LABELS.iter().enumerate() {
        let x = px(i as f64);
        if i > 0 {
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#e5e7eb\"/>",
                TOP + PH
            );
        }
        let _ = writeln!(
            out,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" fill=\"#6b7280\">{label}</text>",
            TOP + PH + 18.0
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" fill=\"#374151\">percentile</text>",
        LEFT + PW / 2.0,
        H - 10.0
    );
    let _ = writeln!(
        out,
        "<text transform=\"translate(18 {:.1}) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\" fill=\"#374151\">latency (ms)</text>",
        TOP + PH / 2.0
    );

    let any = series.iter().any(|(_, p)| !p.is_empty());
    if !any {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"18\" fill=\"#9ca3af\">no requests yet</text>",
            LEFT + PW / 2.0,
            TOP + PH / 2.0
        );
    } else {
        // Routes first, all requests on top.
        let mut order: Vec<&(&Line, Vec<(f64, f64)>)> = series.iter().collect();
        order.sort_by_key(|(l, _)| l.total);
        for (l, pts) in order {
            if pts.is_empty() {
                continue;
            }
            let mut coords = String::new();
            let mut last = String::new();
            for &(x, y) in pts {
                let c = format!("{:.1},{:.1}", px(x), py(y));
                if c != last {
                    coords.push_str(&c);
                    coords.push(' ');
                    last = c;
                }
            }
            let (width, opacity) = if l.total { (2.5, 1.0) } else { (2.0, 0.9) };
            let _ = writeln!(
                out,
                "<polyline class=\"series\" data-route=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{}\" \
                 stroke-width=\"{width}\" stroke-opacity=\"{opacity}\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>",
                esc(l.route),
                coords.trim_end(),
                l.color
            );
        }
    }

    out.push_str("</svg>\n");
    // The legend below the plot, never over the curves.
    out.push_str("<ul class=\"legend\">");
    for (l, p) in &series {
        let name = truncate(l.label, 48);
        let (class, off, note) = if p.is_empty() && !l.total {
            ("c-none", " class=\"off\"", " (no requests)")
        } else {
            (l.class, "", "")
        };
        let _ = write!(
            out,
            "<li{off}><span class=\"dot {class}\"></span>{}{note}</li>",
            esc(&name)
        );
    }
    out.push_str("</ul>\n");
}

/// A card of one or more (label, value, alarming) figures side by side.
fn card(out: &mut String, stats: &[(&str, String, bool)]) {
    let wide = if stats.len() > 1 { " wide" } else { "" };
    let _ = write!(out, "<div class=\"card{wide}\">");
    for (key, value, bad) in stats {
        let class = if *bad { " bad" } else { "" };
        let _ = write!(
            out,
            "<div><div class=\"k\">{}</div><div class=\"v{class}\">{}</div></div>",
            esc(key),
            esc(value)
        );
    }
    out.push_str("</div>\n");
}

/// A count that deserves attention when it is not zero.
fn warn_cell(n: u64) -> String {
    if n == 0 {
        "<td>0</td>".to_string()
    } else {
        format!("<td class=\"bad\">{}</td>", int(n))
    }
}

pub fn dashboard_html(s: &Snapshot, refresh_secs: u32, apps: &[AppRows]) -> String {
    let total = summary::merged_total(s);
    let counters = summary::merged_counters(s);
    let names = summary::route_names(s);
    let routes: Vec<(String, View)> = names
        .into_iter()
        .map(|n| {
            let v = summary::merged_route(s, &n).unwrap_or_else(View::empty);
            (n, v)
        })
        .collect();
    let active = s
        .workers
        .iter()
        .fold(0u64, |a, w| a.saturating_add(w.active));

    let mut out = String::with_capacity(16 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    if refresh_secs > 0 {
        // The script keeps the page current by itself; only without it does it reload.
        let _ = writeln!(
            out,
            "<noscript><meta http-equiv=\"refresh\" content=\"{refresh_secs}\"></noscript>"
        );
    }
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<title>uringd</title>\n");
    for css in ["uPlot.min.css", "dashboard.css"] {
        let _ = writeln!(
            out,
            "<link rel=\"stylesheet\" href=\"/_uringd/assets/{css}\">"
        );
    }
    for js in ["uPlot.iife.min.js", "dashboard.js"] {
        let _ = writeln!(out, "<script src=\"/_uringd/assets/{js}\" defer></script>");
    }
    out.push_str("</head>\n<body>\n<main>\n");

    let refresh = if refresh_secs > 0 {
        format!(" · refreshes every {refresh_secs} s")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "<header><h1>uringd</h1><p class=\"sub\">up {} · latency window: {} ({}) · {} worker{}{refresh}</p></header>",
        duration(s.uptime_s),
        esc(s.window.name()),
        window_text(s.window),
        s.workers.len(),
        if s.workers.len() == 1 { "" } else { "s" }
    );

    live_section(&mut out, s, &names_for_controls(s));
    out.push_str("<div id=\"overview\">\n<section class=\"cards\">\n");
    let c = &counters;
    card(&mut out, &[("requests", int(c.requests), false)]);
    card(&mut out, &[("active conns", int(active), false)]);
    card(&mut out, &[("accepts", int(c.accepts), false)]);
    card(
        &mut out,
        &[
            ("2xx", int(c.status_2xx), false),
            ("3xx", int(c.status_3xx), false),
            ("4xx", int(c.status_4xx), false),
            ("5xx", int(c.status_5xx), c.status_5xx > 0),
        ],
    );
    card(&mut out, &[("rejected", int(c.rejected), false)]);
    card(
        &mut out,
        &[
            ("timeouts", int(c.timeouts.total()), false),
            ("idle closes", int(c.idle_closes), false),
        ],
    );
    card(
        &mut out,
        &[("accept errors", int(c.accept_errors), c.accept_errors > 0)],
    );
    card(
        &mut out,
        &[(
            "upstream errors",
            int(c.upstream_errors),
            c.upstream_errors > 0,
        )],
    );
    card(&mut out, &[("received", bytes(c.bytes_in), false)]);
    card(&mut out, &[("sent", bytes(c.bytes_out), false)]);
    out.push_str("</section>\n");

    out.push_str("<section class=\"panel fallback-plot\">\n<h2>Latency by percentile</h2>\n");
    let l = summary::latency(&total);
    if l.count > 0 {
        let _ = writeln!(
            out,
            "<p class=\"note\">{} requests · p50 {} · p99 {} · p99.9 {} · max {}</p>",
            int(l.count),
            latency(l.p50),
            latency(l.p99),
            latency(l.p999),
            latency(l.max)
        );
    }
    let mut lines = vec![Line {
        label: "all requests",
        route: "*",
        color: TOTAL_COLOR,
        class: "c-total",
        view: &total,
        total: true,
    }];
    for (i, (name, v)) in routes.iter().enumerate() {
        lines.push(Line {
            label: name,
            route: name,
            color: route_color(i),
            class: route_class(i),
            view: v,
            total: false,
        });
    }
    plot(&mut out, &lines);
    out.push_str("</section>\n");

    out.push_str("<section class=\"panel\">\n<h2>Workers</h2>\n<table class=\"grid\">\n");
    out.push_str(
        "<tr><th>worker</th><th>cpu</th><th>requests</th><th>active conns</th><th>accepts</th>\
         <th>p50</th><th>p99</th><th>max</th><th>ENOBUFS</th><th>CQ overflow</th></tr>\n",
    );
    for w in &s.workers {
        let l = summary::latency(&w.total);
        let lat = if l.count == 0 {
            "<td>–</td>".repeat(3)
        } else {
            [l.p50, l.p99, l.max]
                .iter()
                .map(|&us| format!("<td>{}</td>", latency(us)))
                .collect()
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{lat}{}{}</tr>",
            w.id,
            w.cpu,
            int(w.counters.requests),
            int(w.active),
            int(w.counters.accepts),
            warn_cell(w.counters.enobufs),
            warn_cell(u64::from(w.ring.cq_overflow))
        );
    }
    out.push_str("</table>\n</section>\n");
    tls_panel(&mut out, s);
    shield_panel(&mut out, s);
    apps_panel(&mut out, apps);

    out.push_str("<section class=\"panel\">\n<h2>Routes</h2>\n<table class=\"grid\">\n");
    out.push_str(
        "<tr><th>route</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>\n",
    );
    for (i, (name, v)) in routes.iter().enumerate() {
        let Latency {
            count,
            p50,
            p90,
            p99,
            p999,
            max,
            ..
        } = summary::latency(v);
        let cells = if count == 0 {
            "<td>–</td>".repeat(5)
        } else {
            [p50, p90, p99, p999, max]
                .iter()
                .map(|&us| format!("<td>{}</td>", latency(us)))
                .collect()
        };
        let _ = writeln!(
            out,
            "<tr><td><span class=\"dot {}\"></span>{}</td><td>{}</td>{cells}</tr>",
            route_class(i),
            esc(name),
            int(count)
        );
    }
    out.push_str("</table>\n</section>\n</div>\n</main>\n</body>\n</html>\n");
    out
}

/// Route names and worker ids for the selectors.
fn names_for_controls(s: &Snapshot) -> (Vec<String>, Vec<usize>) {
    (
        summary::route_names(s),
        s.workers.iter().map(|w| w.id).collect(),
    )
}

/// The part the script shows and fills: the selectors and the chart containers.
fn live_section(out: &mut String, s: &Snapshot, (routes, workers): &(Vec<String>, Vec<usize>)) {
    out.push_str("<section id=\"live\" hidden>\n<div class=\"controls\">\n");
    out.push_str("<label>window <select id=\"window\">");
    for (value, text) in [
        ("10s", "last 10 s"),
        ("60s", "last 60 s"),
        ("all", "since start"),
    ] {
        let sel = if value == s.window.name() {
            " selected"
        } else {
            ""
        };
        let _ = write!(out, "<option value=\"{value}\"{sel}>{text}</option>");
    }
    out.push_str("</select></label>\n<label>route <select id=\"route\"><option value=\"\">all routes</option>");
    for r in routes {
        let _ = write!(out, "<option value=\"{0}\">{0}</option>", esc(r));
    }
    out.push_str("</select></label>\n<label>worker <select id=\"worker\"><option value=\"\">all workers</option>");
    for w in workers {
        let _ = write!(out, "<option value=\"{w}\">worker {w}</option>");
    }
    out.push_str("</select></label>\n<span id=\"status\"></span>\n</div>\n");
    out.push_str("<div id=\"now\" class=\"cards\"></div>\n");
    for (id, title) in [
        ("chart-rate", "Requests and errors per second"),
        ("chart-latency", "Latency over time (p50, p99, p99.9)"),
    ] {
        let _ = writeln!(
            out,
            "<section class=\"panel\"><h2>{title}</h2><div id=\"{id}\" class=\"chart\"></div></section>"
        );
    }
    out.push_str(
        "<section class=\"panel\"><h2>Latency by percentile, for the window</h2>\
         <p id=\"spectrum-note\" class=\"note\"></p><div id=\"chart-spectrum\" class=\"chart\"></div></section>\n</section>\n",
    );
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{empty, huge, sample, snapshot, view, worker};
    use super::*;

    /// (data-route, number of points) of every plotted series.
    fn series(html: &str) -> Vec<(String, usize)> {
        html.split("<polyline ")
            .skip(1)
            .map(|p| {
                assert!(p.starts_with("class=\"series\""), "{p}");
                let attr = |name: &str| {
                    let start = p.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                    let len = p[start..].find('"').unwrap();
                    p[start..start + len].to_string()
                };
                let points = attr("points");
                for pt in points.split(' ') {
                    let (x, y) = pt.split_once(',').unwrap();
                    let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                    assert!((LEFT..=LEFT + PW).contains(&x), "{pt}");
                    assert!((TOP..=TOP + PH).contains(&y), "{pt}");
                }
                (attr("data-route"), points.split(' ').count())
            })
            .collect()
    }

    #[test]
    fn plots_every_series_with_data() {
        let html = dashboard_html(&sample(), 2, &[]);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<title>uringd</title>"));
        // Reloaded only without scripts; the script polls instead.
        assert!(html.contains("<noscript><meta http-equiv=\"refresh\" content=\"2\"></noscript>"));
        assert!(html.contains("<svg"));
        assert!(html.contains("id=\"percentile-plot\""));
        // Nothing inline and nothing from elsewhere: the CSP allows only our own files.
        assert!(!html.contains("<style") && !html.contains("style=") && !html.contains("url("));
        assert_eq!(html.matches("<script").count(), 2);
        for attr in ["src=\"", "href=\""] {
            for at in html.match_indices(attr).map(|(i, _)| i + attr.len()) {
                let url = &html[at..at + html[at..].find('"').unwrap()];
                let name = url.strip_prefix("/_uringd/assets/").expect(url);
                assert!(
                    crate::admin::assets::find(name.as_bytes()).is_some(),
                    "{url}"
                );
            }
        }
        assert!(html.contains("<section id=\"live\" hidden>"));
        for id in [
            "window",
            "route",
            "worker",
            "chart-rate",
            "chart-latency",
            "chart-spectrum",
            "now",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(html.contains("<option value=\"api\">api</option>"));
        assert!(html.contains("<option value=\"1\">worker 1</option>"));
        let s = series(&html);
        let routes: Vec<&str> = s.iter().map(|(r, _)| r.as_str()).collect();
        // The empty route "idle" gets a legend entry but no line.
        assert_eq!(routes, vec!["api", "static", "*"]);
        for (r, n) in &s {
            assert!(*n >= 10, "{r}: {n} points");
        }
        for label in X_LABELS {
            assert!(html.contains(&format!(">{label}</text>")), "{label}");
        }
        assert!(html.contains("idle (no requests)"));
        assert!(!html.contains("no requests yet"));
        // Tables: a row per worker (workers, then TLS, then queues) and per route.
        assert_eq!(html.matches("<tr>").count(), 1 + 2 + 1 + 2 + 1 + 2 + 1 + 3);
        assert!(html.contains("<h2>TLS</h2>"));
        assert!(html.contains("1,500"));
    }

    #[test]
    fn the_shield_panel_shows_queues_and_limits() {
        let html = dashboard_html(&sample(), 2, &[]);
        assert!(html.contains("Shielding the backends"), "{html}");
        assert!(html.contains("<td>app</td>"));
        let mut quiet = worker(0, &[("r", &[1, 2])]);
        quiet.queues.clear();
        quiet.counters.limited = 0;
        quiet.counters.ip_refused = 0;
        quiet.counters.spilled_responses = 0;
        let html = dashboard_html(&snapshot(vec![quiet]), 2, &[]);
        assert!(!html.contains("Shielding the backends"), "nothing to show");
    }

    #[test]
    fn escapes_route_names() {
        let evil = "<script>alert('x')</script>&\"";
        let s = snapshot(vec![worker(0, &[(evil, &(1..=500).collect::<Vec<_>>())])]);
        let html = dashboard_html(&s, 0, &[]);
        assert!(!html.contains("<script>"));
        assert!(!html.contains("alert('x')"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"));
        assert!(!html.contains("http-equiv"));
        let s = series(&html);
        assert_eq!(
            s[0].0,
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn empty_snapshots_show_axes_and_a_note() {
        for s in [empty(), snapshot(vec![worker(0, &[("a", &[])])])] {
            let html = dashboard_html(&s, 5, &[]);
            assert!(html.contains("id=\"percentile-plot\""));
            assert!(html.contains("no requests yet"));
            assert!(html.contains(">99.999%</text>"));
            assert!(series(&html).is_empty());
        }
    }

    #[test]
    fn huge_values_render() {
        let html = dashboard_html(&huge(), u32::MAX, &[]);
        assert!(html.contains(&int(u64::MAX)));
        assert_eq!(series(&html).len(), 2);
        let mut w = worker(0, &[("one", &[7])]);
        w.total = view(&[7]);
        let html = dashboard_html(&snapshot(vec![w]), 1, &[]);
        assert_eq!(series(&html).len(), 2);
    }

    #[test]
    fn the_apps_panel_shows_each_instance_only_when_there_are_apps() {
        use crate::apps::report::{AppRows, Row};
        assert!(!dashboard_html(&sample(), 2, &[]).contains("<h2>Apps</h2>"));
        let row = |n, pid, state| Row {
            n,
            pid,
            app_pid: Some(pid + 1),
            state,
            requests: 1234,
            in_flight: 1,
            rss_kib: 51_200,
            uptime_s: 75.0,
            respawns: n as u64,
            harakiri_kills: 0,
        };
        let apps = [AppRows {
            name: "web<1>".into(),
            concurrency: 1,
            min_processes: 1,
            max_processes: 2,
            rows: vec![row(0, 40, "busy"), row(1, 0, "stopped")],
        }];
        let html = dashboard_html(&sample(), 2, &apps);
        let panel = html.split("<h2>Apps</h2>").nth(1).unwrap();
        assert!(panel.contains("<td>web&lt;1&gt;</td><td>0</td><td>41</td><td>busy</td><td>1,234</td><td>1/1</td><td>50.0 MiB</td><td>1m 15s</td>"), "{panel}");
        assert!(
            panel.contains("<td>1</td><td>–</td><td>stopped</td>"),
            "{panel}"
        );
        assert!(
            panel.contains("<td class=\"bad\">1</td>"),
            "a respawn stands out"
        );
        let overview = html.split("<div id=\"overview\">").nth(1).unwrap();
        assert!(
            overview.contains("<h2>Apps</h2>"),
            "refreshed with the overview"
        );
    }

    #[test]
    fn axis_and_number_formatting() {
        for max in [
            0.001, 0.0123, 0.9, 1.0, 1.01, 3.7, 12.0, 99.0, 100.0, 640.0, 6e5,
        ] {
            let (step, top) = nice_axis(max);
            let labels = (top / step).round() as usize + 1;
            assert!((4..=6).contains(&labels), "{max}: {step} {top}");
            assert!(top >= max, "{max}");
            assert!(top - max < 2.0 * step + 1e-9, "{max}");
        }
        assert_eq!(nice_axis(0.0), (0.25, 1.0));
        assert_eq!(tick(2.5, 0.5), "2.5");
        assert_eq!(tick(20.0, 5.0), "20");
        assert_eq!(tick(0.0004, 0.0002), "0.0004");
        assert_eq!(int(0), "0");
        assert_eq!(int(1234567), "1,234,567");
        assert_eq!(int(999), "999");
        assert_eq!(latency(999), "999 µs");
        assert_eq!(latency(1_500), "1.50 ms");
        assert_eq!(latency(2_500_000), "2.50 s");
        assert_eq!(bytes(10), "10 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(duration(3725), "1h 2m");
        assert_eq!(duration(59), "59s");
        assert!(!duration(u64::MAX).is_empty());
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
