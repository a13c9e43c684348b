//! scripts/tune-matrix end to end on a small matrix: every configuration measured, the CSV,
//! SVG and Markdown table written, a broken configuration reported rather than fatal.

mod common;

use std::process::Command;

use common::*;

#[test]
fn tune_matrix_measures_each_configuration() {
    let d = TempDir::new("tune");
    let matrix = d.0.join("m.txt");
    std::fs::write(
        &matrix,
        "# a small matrix\nbaseline:\nring-256: --ring-entries 256\nbusy-poll: --busy-poll 50\nbroken: --ring-entries 3\n",
    )
    .unwrap();
    let out_dir = d.0.join("out");
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(format!("{root}/scripts/tune-matrix"))
        .args(["--matrix", matrix.to_str().unwrap(), "--bin", BIN, "--out"])
        .arg(&out_dir)
        .args(["--duration", "1", "--rounds", "1", "--rate", "2000"])
        .output()
        .expect("python3 runs scripts/tune-matrix");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("| baseline |") && stdout.contains("| ring-256 |"),
        "{stdout}"
    );

    let csv = std::fs::read_to_string(out_dir.join("results.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0][..4],
        ["name", "flags", "status", "req_per_sec"],
        "{csv}"
    );
    assert_eq!(rows.len(), 5, "{csv}");
    for r in &rows[1..4] {
        assert_eq!(r[2], "ok", "{csv}");
        let rps: f64 = r[3].parse().unwrap();
        assert!(rps > 1000.0, "{csv}");
    }
    assert!(rows[4][2].starts_with("failed"), "{csv}");
    assert!(
        csv.contains("server.ring_entries = 3"),
        "the reason is kept: {csv}"
    );
    let svg = std::fs::read_to_string(out_dir.join("results.svg")).unwrap();
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{svg}");
    assert!(svg.contains("ring-256") && svg.contains("failed"));
}
