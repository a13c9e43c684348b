//! HdrHistogram's percentile distribution text (`outputPercentileDistribution`, as wrk2 prints
//! it), which HdrHistogram's plotter and the usual tools read. Values are in milliseconds.

use std::fmt::Write;

use crate::stats::View;

/// Our histograms count microseconds; the text shows milliseconds.
const US_PER_MS: f64 = 1000.0;
/// Quantile ticks per half distance to 100%, as HdrHistogram's own output uses.
const TICKS_PER_HALF: u32 = 5;

pub fn hgrm(v: &View) -> String {
    let h = &v.hist;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );

    if !h.is_empty() {
        let mut cumulative: u64 = 0;
        for it in h.iter_quantiles(TICKS_PER_HALF) {
            cumulative = cumulative.saturating_add(it.count_since_last_iteration());
            let value = it.value_iterated_to() as f64 / US_PER_MS;
            let q = it.quantile_iterated_to();
            let _ = write!(out, "{value:12.3} {q:14.12} {cumulative:10} ");
            if q < 1.0 {
                let _ = writeln!(out, "{:14.2}", 1.0 / (1.0 - q));
            } else {
                let _ = writeln!(out, "{:>14}", "inf");
            }
        }
    }

    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            h.mean() / US_PER_MS,
            h.stdev() / US_PER_MS,
            h.max() as f64 / US_PER_MS,
        )
    };
    // The crate exposes the bucket count but not the sub-bucket count; the counts array holds
    // (buckets + 1) half sub-buckets, so the sub-bucket count follows from its length.
    let buckets = usize::from(h.buckets());
    let sub_buckets = 2 * (h.distinct_values() / (buckets + 1));
    let _ = writeln!(
        out,
        "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:12.3}, Total count    = {:12}]",
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {buckets:12}, SubBuckets     = {sub_buckets:12}]"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::view;
    use super::*;

    fn data_lines(text: &str) -> Vec<&str> {
        text.lines()
            .skip(2)
            .filter(|l| !l.starts_with('#'))
            .collect()
    }

    fn numbers(line: &str) -> Vec<f64> {
        line.split_whitespace()
            .map(|w| {
                if w == "inf" {
                    f64::INFINITY
                } else {
                    w.parse().expect("a number")
                }
            })
            .collect()
    }

    #[test]
    fn distribution_of_one_to_a_thousand() {
        let v = view(&(1..=1000).collect::<Vec<u64>>());
        let text = hgrm(&v);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");

        let data = data_lines(&text);
        assert!(data.len() > 20, "{text}");
        assert_eq!(
            data[0],
            "       0.001 0.000000000000          1           1.00"
        );
        assert_eq!(
            *data.last().unwrap(),
            "       1.000 1.000000000000       1000            inf"
        );

        let mut last = [0.0, 0.0, 0.0];
        for l in &data {
            let n = numbers(l);
            assert_eq!(n.len(), 4, "{l}");
            // Value, percentile and count never go down.
            for i in 0..3 {
                assert!(n[i] >= last[i], "{l}");
            }
            last = [n[0], n[1], n[2]];
            assert!((0.0..=1.0).contains(&n[1]));
            if n[1] < 1.0 {
                assert!((n[3] - 1.0 / (1.0 - n[1])).abs() < 0.01, "{l}");
            }
        }
        let median = data
            .iter()
            .map(|l| numbers(l))
            .find(|n| n[1] >= 0.5)
            .unwrap();
        assert_eq!(median[0], 0.5);
        assert_eq!(median[2], 500.0);

        let footer: Vec<&str> = lines.iter().rev().take(3).rev().copied().collect();
        assert_eq!(
            footer[0],
            "#[Mean    =        0.500, StdDeviation   =        0.289]"
        );
        assert_eq!(
            footer[1],
            "#[Max     =        1.000, Total count    =         1000]"
        );
        assert_eq!(
            footer[2],
            format!(
                "#[Buckets = {:12}, SubBuckets     =         2048]",
                v.hist.buckets()
            )
        );
    }

    #[test]
    fn empty_histogram_has_header_and_zero_footer() {
        let text = hgrm(&View::empty());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].contains("1/(1-Percentile)"));
        assert_eq!(
            lines[2],
            "#[Mean    =        0.000, StdDeviation   =        0.000]"
        );
        assert_eq!(
            lines[3],
            "#[Max     =        0.000, Total count    =            0]"
        );
        assert!(data_lines(&text).is_empty());
    }

    #[test]
    fn one_value_and_huge_values() {
        let text = hgrm(&view(&[42]));
        let data = data_lines(&text);
        assert_eq!(
            *data.last().unwrap(),
            "       0.042 1.000000000000          1            inf"
        );

        let text = hgrm(&view(&[3, u64::MAX]));
        let last = numbers(data_lines(&text).last().unwrap());
        assert!(last[0] >= 600_000.0, "{text}");
        assert!(text.contains("#[Max     =   600309.759,"), "{text}");

        // A saturated total count: the distribution ends where the count saturates, the
        // footer still knows the max.
        let mut v = view(&[u64::MAX]);
        v.hist.saturating_record_n(5, u64::MAX);
        let text = hgrm(&v);
        let last = numbers(data_lines(&text).last().unwrap());
        assert_eq!(last[2], u64::MAX as f64);
        assert!(text.contains(&format!("Total count    = {:12}]", u64::MAX)));
        assert!(text.contains("#[Max     =   600309.759,"), "{text}");
    }
}
