//! The admin dashboard in a real browser: headless Chromium (scripts/setup installs it)
//! loads it against a server under load. With scripts, the time series and the spectrum
//! are drawn and their figures move between two samples, above the server-rendered
//! overview (percentile plot, tables) that is the whole page without scripts.

mod common;

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

fn chromium(args: &[&str], profile: &TempDir) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1100,1500",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .args(args)
        .output()
        .expect("chromium is not installed: run scripts/setup (scripts/test does)")
}

/// The rendered DOM after the page's scripts ran for `ms` of virtual time.
fn dom(url: &str, ms: u32, profile: &TempDir) -> String {
    let budget = format!("--virtual-time-budget={ms}");
    let out = chromium(&[&budget, "--dump-dom", url], profile);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `name="value"` of the element with `id`.
fn attr(html: &str, id: &str, name: &str) -> Option<u64> {
    let tag = &html[html.find(&format!("id=\"{id}\""))?..];
    let tag = &tag[..tag.find('>')?];
    let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
    tag[at..at + tag[at..].find('"')?].parse().ok()
}

/// Keeps requests going on two routes until dropped (bounded: at most 60 s).
struct Load(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Load {
    fn start(s: &Server) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let mut c = s.connect();
        let h = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(60);
            let mut i = 0u64;
            while !flag.load(Ordering::Relaxed) && Instant::now() < end {
                let p = if i.is_multiple_of(3) { "/api/x" } else { "/" };
                write!(c, "GET {p} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
                read_response(&mut c, false);
                i += 1;
                if i.is_multiple_of(50) {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        Load(stop, Some(h))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(h) = self.1.take() {
            let _ = h.join();
        }
    }
}

#[test]
fn dashboard_draws_moving_time_series_in_chromium() {
    let cfg = "[[route]]\nname=\"root\"\nprefix=\"/\"\nreturn={body=\"hi\"}\n[[route]]\nname=\"api\"\nprefix=\"/api/\"\nreturn={body=\"{}\"}\n";
    let s = Server::start(Some(cfg), &["--admin", "127.0.0.1:0", "--workers", "2"]);
    let admin = s.admin.unwrap();
    let _load = Load::start(&s);
    // A few finished seconds of history first.
    std::thread::sleep(Duration::from_millis(2500));
    let url = format!("http://{admin}/_uringd/");
    let profile = TempDir::new("chromium");

    let first = dom(&url, 3000, &profile);
    assert!(
        first.contains("<section id=\"live\">"),
        "the script shows the live part:\n{first}"
    );
    assert_eq!(
        first.matches("class=\"uplot").count(),
        3,
        "three charts:\n{first}"
    );
    for label in ["requests/s", "5xx/s", "p50", "p99", "p99.9", "latency"] {
        assert!(
            first.contains(&format!("class=\"u-label\">{label}<")),
            "series {label} drawn:\n{first}"
        );
    }
    let (t1, n1) = (
        attr(&first, "now", "data-t"),
        attr(&first, "now", "data-requests"),
    );
    assert!(t1.is_some_and(|t| t > 1_700_000_000), "{first}");
    assert!(n1.is_some_and(|n| n > 0), "requests in the series: {first}");
    assert!(
        first.contains("data-route=\"api\""),
        "the overview stays below"
    );

    std::thread::sleep(Duration::from_millis(2200));
    let second = dom(&url, 3000, &profile);
    let (t2, n2) = (
        attr(&second, "now", "data-t"),
        attr(&second, "now", "data-requests"),
    );
    assert!(t2 > t1, "the newest second moved on: {t1:?} -> {t2:?}");
    assert_ne!(n1, n2, "the counts moved between two samples");

    // The server-rendered overview under the charts, which is the whole page without
    // scripts (Chromium cannot dump a page with scripts off, so that case is the unit
    // tests' `dashboard_html`): fetched again by the script, percentile plot and tables in.
    assert!(second.contains("id=\"percentile-plot\""), "{second}");
    assert!(
        second.matches("class=\"series\"").count() >= 3,
        "all + 2 routes: {second}"
    );
    assert!(second.contains("<h2>Workers</h2>") && second.contains("<h2>Routes</h2>"));

    // And a screenshot a person can look at (kept in the target dir).
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &[
            "--virtual-time-budget=3000",
            &format!("--screenshot={}", shot.display()),
            &url,
        ],
        &profile,
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[1..4], b"PNG");
    assert!(
        png.len() > 40_000,
        "a blank page compresses to almost nothing: {} bytes",
        png.len()
    );
}
