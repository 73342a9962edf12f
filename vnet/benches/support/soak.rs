//! The soak verdict of the load benchmarks (`vnet` and `pooler`): the heap, sampled while the
//! load runs, must not keep growing.

/// The most a soak's heap may grow, in percent of its first sample.
const MAX_GROWTH_PERCENT: f64 = 5.0;

/// Prints how `what` (heap bytes sampled in time order, the first once the load is up) grew —
/// the first sample against the largest later one — and says whether it stayed under
/// [`MAX_GROWTH_PERCENT`]. With fewer than 3 samples (a short run) there is no verdict: true.
pub fn heap_growth_ok(what: &str, samples: &[usize]) -> bool {
    if samples.len() < 3 {
        return true;
    }
    let first = samples[0] as f64;
    let later = samples[1..].iter().copied().max().unwrap_or(0) as f64;
    let growth = (later - first) / first * 100.0;
    println!(
        "  soak: {what} {:.1} MiB at the first sample, at most {:.1} MiB after: growth {growth:.1} % (goal < {MAX_GROWTH_PERCENT} %)",
        first / (1 << 20) as f64,
        later / (1 << 20) as f64
    );
    growth < MAX_GROWTH_PERCENT
}
