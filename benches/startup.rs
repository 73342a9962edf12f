//! How long `switchyard up` takes to bring up many tenants that run the same component, cold
//! (nothing compiled yet) and on a restart (the compiled component read from `state_dir`), and
//! what each idle tenant then holds resident.
//!
//! `cargo bench --bench startup` after the guests are built (`bash scripts/test.sh` builds them);
//! `BENCH_TENANTS=1000,10000` (default `1000`) sets the sizes. Each tenant is a virtual network
//! with an `echo-service` listening on its 127.0.0.1:7777; a start counts as done when every one
//! of them has printed that it listens.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{Switchyard, echo_service_tenants, free_port};

/// `VmRSS` of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        << 10
}

/// Starts `tenants` tenants on `state_dir`; the time until all listen, and the process's RSS then.
fn start(state_dir: &Path, tenants: usize) -> (Duration, u64, String) {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let started = Instant::now();
    let switchyard = Switchyard::start(
        &format!("bench_startup_{tenants}"),
        admin,
        &echo_service_tenants(admin, state_dir, tenants),
    );
    switchyard.wait_for_log_count("echo-service: listening on", tenants, Duration::from_secs(600));
    let took = started.elapsed();
    // Settled: the services have printed, nothing else runs.
    std::thread::sleep(Duration::from_secs(1));
    let resident = rss(switchyard.pid());
    let log = switchyard.log();
    let loaded = log.lines().find(|l| l.contains("components ready:")).unwrap_or_default().to_owned();
    let (status, log) = switchyard.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");
    (took, resident, loaded)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("startup: skipped (run with `cargo bench --bench startup`)");
        return;
    }
    let sizes = std::env::var("BENCH_TENANTS").unwrap_or_else(|_| "1000".to_owned());
    for tenants in sizes.split(',').filter_map(|n| n.trim().parse::<usize>().ok()) {
        let state_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-startup-state-{tenants}"));
        let _ = std::fs::remove_dir_all(&state_dir);
        for run in ["cold", "restart"] {
            let (took, resident, loaded) = start(&state_dir, tenants);
            let loaded = loaded.split("components ready: ").nth(1).and_then(|l| l.split(" compiled=").next());
            println!(
                "{tenants:>6} tenants, {run:>7}: up in {:6.2} s; RSS {:7.1} MiB ({:5.1} KiB per tenant); components: {}",
                took.as_secs_f64(),
                resident as f64 / (1 << 20) as f64,
                resident as f64 / 1024.0 / tenants as f64,
                loaded.unwrap_or("?"),
            );
        }
    }
}
