//! Repeated peer comparisons: a ratio from one pair of runs on a shared 2-core VM moves by
//! ±20 % from one run to the next, so the MariaDB benches run each pair `BENCH_ROUNDS` times
//! (default 3), alternating the two sides, and report the median ratio with every round's.

/// Rounds of each comparison: `BENCH_ROUNDS`, at least 1 (default 3).
pub fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1)
}

/// The median of `ratios` (the lower middle one for an even count); NaN if there is none.
pub fn median(ratios: &[f64]) -> f64 {
    let mut sorted = ratios.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[(n - 1) / 2],
    }
}

/// "median 0.84x (rounds: 0.82x, 0.86x, 0.84x)".
pub fn summary(ratios: &[f64]) -> String {
    let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}x")).collect();
    format!("median {:.2}x (rounds: {})", median(ratios), each.join(", "))
}
