//! The admin dashboard in a real browser: headless Chromium renders the page, and the
//! rendered DOM must hold the percentile plot with its series (scripts/setup installs it).

mod common;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

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
            "--window-size=1000,1200",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .args(args)
        .output()
        .expect("chromium is not installed: run scripts/setup (scripts/test does)")
}

#[test]
fn dashboard_renders_the_percentile_plot_in_chromium() {
    let cfg = "[[route]]\nname=\"root\"\nprefix=\"/\"\nreturn={body=\"hi\"}\n[[route]]\nname=\"api\"\nprefix=\"/api/\"\nreturn={body=\"{}\"}\n";
    let s = Server::start(Some(cfg), &["--admin", "127.0.0.1:0", "--workers", "2"]);
    let admin = s.admin.unwrap();
    let mut c = s.connect();
    for i in 0..300 {
        let p = if i % 3 == 0 { "/api/x" } else { "/" };
        write!(c, "GET {p} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        read_response(&mut c, false);
    }
    std::thread::sleep(Duration::from_millis(100));
    let url = format!("http://{admin}/_uringd/");
    let profile = TempDir::new("chromium");
    let dom = chromium(&["--dump-dom", &url], &profile);
    let html = String::from_utf8_lossy(&dom.stdout);
    assert!(
        html.contains("id=\"percentile-plot\""),
        "no plot in the rendered page:\n{html}"
    );
    let series = html.matches("class=\"series\"").count();
    assert!(
        series >= 3,
        "expected all + 2 routes, found {series} series"
    );
    assert!(html.contains("data-route=\"api\""));
    // And a screenshot a person can look at (kept in the target dir).
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &[&format!("--screenshot={}", shot.display()), &url],
        &profile,
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[1..4], b"PNG");
    assert!(
        png.len() > 20_000,
        "a blank page compresses to almost nothing: {} bytes",
        png.len()
    );
}
