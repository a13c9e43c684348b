//! HdrHistogram interval logs (`#[Histogram log format version 1.3]`), one compressed
//! histogram per second, as jHiccup and HistogramLogProcessor read them.
//!
//! Values are nanoseconds, the unit those tools assume by default (their output is then in
//! milliseconds). Each second has two lines: the corrected histogram (untagged) and the
//! uncorrected one (`Tag=uncorrected`).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use super::tally::Tally;
use crate::stats::series::{Hist, MAX_US};

/// Interval_Max is printed in milliseconds, as the Java writer does.
const NS_PER_MS: f64 = 1e6;

pub struct HlogWriter {
    out: BufWriter<File>,
    serializer: V2DeflateSerializer,
    ns: Histogram<u64>,
    /// Seconds from the log's StartTime to the start of interval 0 (the warm-up).
    offset: f64,
}

impl HlogWriter {
    pub fn create(path: &Path, command: &str, warmup: Duration) -> io::Result<HlogWriter> {
        let mut out = BufWriter::new(File::create(path)?);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        writeln!(
            out,
            "#[Logged with uringd bench {}: {command}]",
            env!("CARGO_PKG_VERSION")
        )?;
        writeln!(
            out,
            "#[Values in nanoseconds; Interval_Max in milliseconds; uncorrected latencies under Tag=uncorrected]"
        )?;
        writeln!(out, "#[Histogram log format version 1.3]")?;
        writeln!(out, "#[StartTime: {now:.3} (seconds since epoch)]")?;
        writeln!(
            out,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        Ok(HlogWriter {
            out,
            serializer: V2DeflateSerializer::new(),
            ns: Histogram::new_with_bounds(1000, MAX_US * 1000, 3)
                .map_err(|e| io::Error::other(format!("{e:?}")))?,
            offset: warmup.as_secs_f64(),
        })
    }

    /// Writes interval `index` (its second of the measured window).
    pub fn interval(&mut self, index: u64, t: &Tally) -> io::Result<()> {
        let start = Duration::from_secs_f64(self.offset + index as f64);
        self.write(&t.corrected, start, None)?;
        self.write(&t.uncorrected, start, Tag::new("uncorrected"))
    }

    fn write(&mut self, us: &Hist, start: Duration, tag: Option<Tag>) -> io::Result<()> {
        self.ns.reset();
        for v in us.iter_recorded() {
            let _ = self
                .ns
                .record_n(v.value_iterated_to() * 1000, v.count_at_value());
        }
        let mut line = Vec::with_capacity(256);
        let mut w = IntervalLogWriterBuilder::new()
            .with_max_value_divisor(NS_PER_MS)
            .begin_log_with(&mut line, &mut self.serializer)?;
        w.write_histogram(&self.ns, start, Duration::from_secs(1), tag)
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
        // The crate announces the divisor in a comment each time it starts a log; this log
        // already said it once in its header.
        let body = match line.iter().position(|&b| b == b'\n') {
            Some(nl) if line.starts_with(b"#[MaxValueDivisor") => &line[nl + 1..],
            _ => &line[..],
        };
        self.out.write_all(body)
    }

    pub fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
