//! Latency histograms and counters: recorded per worker on the hot path without locks,
//! merged on demand when the admin endpoint asks every worker for a snapshot.

pub mod counters;
pub mod history;
pub mod recorder;
pub mod render;
pub mod series;
pub mod snapshot;

pub use counters::{Counters, Timeouts};
pub use recorder::Recorder;
pub use series::{Hist, Series, View, Window};
pub use snapshot::{PoolQueue, RingInfo, Snapshot, Want, WorkerSnapshot};
