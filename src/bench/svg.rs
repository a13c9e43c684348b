//! Small hand-drawn SVG line plots: the percentile spectrum, and latency against rate for a
//! sweep. No plotting crate: two chart shapes do not justify one.

use std::fmt::Write;

use crate::stats::series::Hist;

const W: f64 = 800.0;
const H: f64 = 480.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

pub struct Plot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Tick positions with their labels (x in data units).
    pub x_ticks: Vec<(f64, String)>,
    pub series: Vec<Series>,
    /// A horizontal reference line (value, label), e.g. the SLO.
    pub hline: Option<(f64, String)>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" axis maximum: 1, 2 or 5 times a power of ten, at or above `v`.
fn nice_ceil(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * p)
}

pub fn render(p: &Plot) -> String {
    let xs = p.series.iter().flat_map(|s| s.points.iter().map(|q| q.0));
    let x_min = xs
        .clone()
        .fold(f64::INFINITY, f64::min)
        .min(p.x_ticks.first().map_or(f64::INFINITY, |t| t.0));
    let x_max = xs
        .fold(f64::NEG_INFINITY, f64::max)
        .max(p.x_ticks.last().map_or(f64::NEG_INFINITY, |t| t.0));
    let (x_min, x_max) = if x_min.is_finite() && x_max > x_min {
        (x_min, x_max)
    } else {
        (0.0, 1.0)
    };
    let y_top = p
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|q| q.1))
        .chain(p.hline.as_ref().map(|h| h.0))
        .fold(0.0, f64::max);
    let y_max = nice_ceil(y_top * 1.05);
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let sx = |x: f64| LEFT + (x - x_min) / (x_max - x_min) * pw;
    let sy = |y: f64| TOP + ph - y / y_max * ph;

    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="16">{}</text>"#,
        W / 2.0,
        esc(&p.title)
    );
    // Grid and y ticks.
    for k in 0..=5 {
        let y = y_max * k as f64 / 5.0;
        let py = sy(y);
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            py + 4.0,
            trim(y)
        );
    }
    for (x, label) in &p.x_ticks {
        let px = sx(*x);
        let _ = writeln!(
            o,
            r##"<line x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{}" stroke="#eee"/><text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"##,
            TOP + ph,
            TOP + ph + 18.0,
            esc(label)
        );
    }
    let _ = writeln!(
        o,
        r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        H - 15.0,
        esc(&p.x_label)
    );
    let _ = writeln!(
        o,
        r#"<text transform="translate(20 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + ph / 2.0,
        esc(&p.y_label)
    );
    if let Some((v, label)) = &p.hline {
        let py = sy(*v);
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#c00" stroke-dasharray="2 4"/><text x="{}" y="{:.1}" text-anchor="end" fill="#c00">{}</text>"##,
            W - RIGHT,
            W - RIGHT - 4.0,
            py - 4.0,
            esc(label)
        );
    }
    for (k, s) in p.series.iter().enumerate() {
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            o,
            r#"<polyline fill="none" stroke="{}" stroke-width="2"{dash} points="{}"/>"#,
            s.color,
            pts.join(" ")
        );
        let ly = TOP + 16.0 + 16.0 * k as f64;
        let _ = writeln!(
            o,
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            LEFT + 12.0,
            LEFT + 36.0,
            s.color,
            LEFT + 42.0,
            ly + 4.0,
            esc(&s.name)
        );
    }
    o.push_str("</svg>\n");
    o
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Percentile spectrum points: x = log10(1/(1-q)) (so 90%, 99%, 99.9% are evenly spaced),
/// y in milliseconds.
pub fn spectrum(h: &Hist) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(5)
        .map(|v| {
            let q = v.quantile_iterated_to().min(0.999_999);
            (
                (1.0 / (1.0 - q)).log10(),
                v.value_iterated_to() as f64 / 1000.0,
            )
        })
        .collect()
}

pub fn percentile_ticks() -> Vec<(f64, String)> {
    ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"]
        .iter()
        .enumerate()
        .map(|(k, l)| (k as f64, l.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::series::new_hist;

    #[test]
    fn draws_a_valid_looking_plot() {
        let mut h = new_hist();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let p = Plot {
            title: "a < b".into(),
            x_label: "percentile".into(),
            y_label: "ms".into(),
            x_ticks: percentile_ticks(),
            series: vec![Series {
                name: "corrected".into(),
                color: "#1f77b4",
                dashed: false,
                points: spectrum(&h),
            }],
            hline: Some((5.0, "SLO 5ms".into())),
        };
        let svg = render(&p);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &lt; b"));
        assert!(svg.contains("99.99%"));
        assert!(svg.contains("<polyline"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        assert_eq!(nice_ceil(10.5), 20.0);
        assert_eq!(nice_ceil(0.3), 0.5);
    }
}
