//! A latency histogram shared by many tasks: 10 µs buckets up to 1 s, then one overflow bucket
//! (whose samples count as 1 s). Included with `#[path]` by the load tools (`vnet`, `pooler`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BUCKET_US: u64 = 10;
const BUCKETS: usize = 100_000;

/// Counts of round-trip times.
pub struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram { buckets: (0..=BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }

    /// Counts one sample.
    pub fn record(&self, took: Duration) {
        let at = (took.as_micros() as u64 / BUCKET_US).min(BUCKETS as u64) as usize;
        self.buckets[at].fetch_add(1, Ordering::Relaxed);
    }

    /// Samples counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The `q`-quantile (0..1), as the upper edge of its bucket.
    pub fn quantile(&self, q: f64) -> Duration {
        let total = self.count();
        let wanted = ((total as f64) * q).ceil() as u64;
        let mut seen = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= wanted.max(1) {
                return Duration::from_micros((i as u64 + 1) * BUCKET_US);
            }
        }
        Duration::from_secs(1)
    }
}
