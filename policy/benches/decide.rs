//! Decision cost at 10 and 10,000 allow-list entries: `cargo bench -p switchyard-policy`.
//!
//! Prints ns per decision for a mix of targets (exact names, suffix hits, addresses in networks,
//! misses). The entries are a realistic mix of exact names, `*.suffix` patterns, addresses and CIDRs.

use std::hint::black_box;
use std::time::Instant;

use switchyard_policy::{AllowedHost, BlockedNetworks, Policy, Target};

fn entries(n: usize) -> Vec<AllowedHost> {
    (0..n)
        .map(|i| {
            let text = match i % 4 {
                0 => format!("https://api{i}.tenant{}.example.com", i % 97),
                1 => format!("tcp://*.svc{i}.cluster.internal:5432"),
                2 => format!("tcp://10.{}.{}.0/24:3306", (i >> 8) & 0xff, i & 0xff),
                _ => format!("tcp://[2001:db8:{:x}::/48]:443", i),
            };
            text.parse().expect("generated entry parses")
        })
        .collect()
}

fn targets(n: usize) -> Vec<Target> {
    let last = n.saturating_sub(1);
    [
        format!("https://api{}.tenant{}.example.com", last - last % 4, (last - last % 4) % 97),
        format!("tcp://db.pod7.svc{}.cluster.internal:5432", 1),
        format!("tcp://10.0.{}.9:3306", 2),
        "tcp://[2001:db8:3::1]:443".to_owned(),
        "https://not-listed.example.org".to_owned(),
        "tcp://192.0.2.55:22".to_owned(),
    ]
    .iter()
    .map(|t| t.parse().expect("target parses"))
    .collect()
}

fn measure(n: usize) -> f64 {
    let policy = Policy::new(entries(n), BlockedNetworks::defaults());
    let targets = targets(n);
    let rounds = 200_000;
    let mut allowed = 0usize;
    for t in &targets {
        allowed += usize::from(policy.decide(t).is_allowed());
    }
    let start = Instant::now();
    for _ in 0..rounds {
        for t in &targets {
            allowed += usize::from(black_box(&policy).decide(black_box(t)).is_allowed());
        }
    }
    let elapsed = start.elapsed();
    black_box(allowed);
    elapsed.as_nanos() as f64 / (rounds * targets.len()) as f64
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent: keep that fast.
    if !std::env::args().any(|a| a == "--bench") {
        println!("decide: skipped (run with `cargo bench -p switchyard-policy`)");
        return;
    }
    let small = measure(10);
    let large = measure(10_000);
    println!("policy decide, 10 entries:     {small:8.1} ns/decision");
    println!("policy decide, 10,000 entries: {large:8.1} ns/decision");
    println!("ratio 10,000 / 10 entries:     {:8.2}x (goal: <= 1 us at 10,000)", large / small);
}
