//! The vnet load tool: many concurrent virtual connections across many workloads, each running
//! 64-byte echo round trips, on a 2-worker tokio runtime. Reports throughput, p50/p99 latency,
//! heap per connection (idle and under load), and the process's OS sockets before, during and
//! after (they must not grow: virtual connections are not OS sockets).
//!
//! `cargo bench -p switchyard-vnet --bench load` — `LOAD_WORKLOADS` (100), `LOAD_CONNECTIONS`
//! (10,000 in all), `LOAD_SECONDS` (10). A soak is the same with a long `LOAD_SECONDS`
//! (`scripts/soak.sh` runs 600): the heap is sampled every `LOAD_SAMPLE_SECONDS` (30) and must
//! not grow more than 5 % after the first sample; any error fails the run (exit 1).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchyard_vnet::{Limits, Network};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "support/counting.rs"]
mod counting;
#[path = "support/histogram.rs"]
mod histogram;
#[path = "support/soak.rs"]
mod soak;

use histogram::Histogram;

const MESSAGE: [u8; 64] = [0x5a; 64];
/// Round trips per connection at most, whatever the duration (every loop is bounded).
const MAX_ROUNDS: u64 = 100_000_000;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Sockets this process has open (from `/proc/self/fd`).
fn os_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// Echoes every connection accepted on `network`'s 127.0.0.1:7000.
fn serve_echo(network: &Arc<Network>, backlog: usize) {
    let listener = network.listen("127.0.0.1:7000".parse().expect("addr"), backlog).expect("listen");
    tokio::spawn(async move {
        loop {
            let mut connection = listener.accept().await;
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                loop {
                    match connection.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if connection.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
}

struct Totals {
    rounds: AtomicU64,
    errors: AtomicU64,
    latency: Histogram,
}

async fn run(workloads: usize, connections: usize, seconds: u64, sample: u64) -> bool {
    let per_workload = connections.div_ceil(workloads);
    let sockets_before = os_sockets();
    let limits = Limits {
        max_sockets: per_workload * 2 + 16,
        max_connections: per_workload + 16,
        ..Limits::default()
    };
    let networks: Vec<Arc<Network>> =
        (0..workloads).map(|i| Network::new(format!("load-{i}"), limits)).collect();
    for network in &networks {
        serve_echo(network, per_workload);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;

    // Open every connection first and hold them: the idle cost.
    let heap_before = counting::allocated();
    let to: SocketAddr = "127.0.0.1:7000".parse().expect("addr");
    let mut opened = Vec::with_capacity(connections);
    for i in 0..connections {
        opened.push(networks[i % workloads].connect(to).expect("virtual connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // the servers accept
    let idle_per = (counting::allocated().saturating_sub(heap_before)) / connections;
    let sockets_open = os_sockets();

    let totals =
        Arc::new(Totals { rounds: AtomicU64::new(0), errors: AtomicU64::new(0), latency: Histogram::new() });
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::with_capacity(connections);
    for mut connection in opened {
        let totals = totals.clone();
        tasks.push(tokio::spawn(async move {
            let mut back = [0u8; 64];
            for _ in 0..MAX_ROUNDS {
                if Instant::now() >= deadline {
                    break;
                }
                let sent = Instant::now();
                let ok = connection.write_all(&MESSAGE).await.is_ok()
                    && connection.read_exact(&mut back).await.is_ok()
                    && back == MESSAGE;
                if !ok {
                    totals.errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                totals.latency.record(sent.elapsed());
                totals.rounds.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // Samples while the load runs: heap and OS sockets.
    let mut samples = Vec::new();
    let mut sockets_max = sockets_open;
    let mut heap_under_load = 0;
    while Instant::now() + Duration::from_secs(sample) <= deadline {
        tokio::time::sleep(Duration::from_secs(sample)).await;
        let heap = counting::allocated().saturating_sub(heap_before);
        heap_under_load = heap_under_load.max(heap);
        sockets_max = sockets_max.max(os_sockets());
        samples.push(heap);
        println!(
            "  {:>5.0}s: {:>12} round trips, heap {:>7.1} MiB, OS sockets {}",
            started.elapsed().as_secs_f64(),
            totals.rounds.load(Ordering::Relaxed),
            heap as f64 / (1 << 20) as f64,
            os_sockets()
        );
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rounds = totals.rounds.load(Ordering::Relaxed);
    let errors = totals.errors.load(Ordering::Relaxed);
    drop(networks);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sockets_after = os_sockets();

    println!(
        "{connections} virtual connections across {workloads} workloads, {seconds}s of 64 B echo round trips:"
    );
    println!("  throughput: {:.0} round trips/s", rounds as f64 / elapsed);
    println!(
        "  latency: p50 {:?}, p99 {:?} (every connection busy at once)",
        totals.latency.quantile(0.50),
        totals.latency.quantile(0.99)
    );
    println!("  heap per connection: {idle_per} B idle, {} B under load", heap_under_load / connections);
    println!(
        "  OS sockets: {sockets_before} before, {sockets_open} with every connection open, at most {sockets_max} \
         under load, {sockets_after} after"
    );
    println!("  errors: {errors}");
    let mut ok = errors == 0 && sockets_max == sockets_before;
    ok &= soak::heap_growth_ok("heap", &samples);
    ok
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("load: skipped (run with `cargo bench -p switchyard-vnet --bench load`)");
        return;
    }
    let workloads = setting("LOAD_WORKLOADS", 100).max(1) as usize;
    let connections = setting("LOAD_CONNECTIONS", 10_000).max(1) as usize;
    let seconds = setting("LOAD_SECONDS", 10).max(1);
    let sample = setting("LOAD_SAMPLE_SECONDS", if seconds >= 60 { 30 } else { 2 }).clamp(1, seconds);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    if !runtime.block_on(run(workloads, connections, seconds, sample)) {
        eprintln!("load: FAILED (errors, OS sockets grew, or the heap grew 5 % or more)");
        std::process::exit(1);
    }
}
