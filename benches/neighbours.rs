//! A well-behaved tenant's request latency beside each hostile tenant of `tests/fair_share.rs`,
//! against the same tenant alone, in the same run (THREATS.md invariant 2; goal: p99 at most 2×
//! idle and under 20 ms on the 2-core machine).
//!
//! `cargo bench --bench neighbours` after the guests are built (`bash scripts/test.sh` builds
//! them). Each scenario starts the release `switchyard up --shards 1` (so the neighbour and the
//! attacker share one shard), waits until both run, then times `BENCH_REQUESTS` (default 2,000, so a run spans a throttled attacker's on and off
//! halves of each second; `BENCH_SCENARIOS=idle,spin` runs some)
//! sequential `POST /echo` requests of the neighbour through its gateway and echo service.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::{Switchyard, echo_tenant, free_port, guest, request};

/// The neighbour, and the attacking tenant's section (empty for the idle run).
fn config(admin: SocketAddr, ingress: SocketAddr, attacker: &str) -> String {
    format!(
        "version: 1\nadmin: {{ listen: \"{admin}\" }}\ntenants:{}{attacker}",
        echo_tenant("good", ingress)
    )
}

fn hog(mode: &str) -> String {
    format!(
        r#"  - name: attacker
    allowed_hosts: []
    components:
      - name: hog
        kind: service
        wasm: {hog}
        env: {{ HOG_MODE: {mode}, HOG_HOLD_SECONDS: "600" }}
"#,
        hog = guest("socket-hog.wasm")
    )
}

fn slow_handlers(ingress: SocketAddr) -> String {
    format!(
        r#"  - name: attacker
    allowed_hosts: []
    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}", host: attacker.localhost }}
"#,
        gateway = guest("http_gateway.wasm")
    )
}

/// Times `count` sequential echo requests of the neighbour; the sorted latencies.
async fn neighbour_latencies(ingress: SocketAddr, count: usize) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(count);
    for i in 0..count {
        let body = format!("ping {i}");
        let started = Instant::now();
        let answer = request(ingress, "good.localhost", "POST", "/echo", body.as_bytes()).await;
        latencies.push(started.elapsed());
        assert_eq!(answer, (200, format!("good:{body}")), "request {i}");
    }
    latencies.sort();
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("neighbours: skipped (run with `cargo bench --bench neighbours`)");
        return;
    }
    let count: usize = std::env::var("BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    // BENCH_SCENARIOS=idle,deny runs only those (idle first, for the ratio).
    let chosen = std::env::var("BENCH_SCENARIOS").ok();
    let wanted =
        |scenario: &str| chosen.as_deref().is_none_or(|list| list.split(',').any(|s| s.trim() == scenario));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mut idle_p99 = None;
        for scenario in ["idle", "spin", "pingpong", "churn", "shout", "deny", "slow handlers"] {
            if !wanted(scenario) {
                continue;
            }
            let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let attacker = match scenario {
                "idle" => String::new(),
                "slow handlers" => slow_handlers(ingress),
                mode => hog(mode),
            };
            let name = format!("bench_neighbours_{}", scenario.replace(' ', "_"));
            let switchyard = Switchyard::start_with_args(
                &name,
                admin,
                &config(admin, ingress, &attacker),
                &["--shards", "1"],
            );
            switchyard.wait_for_log("echo-service: listening on", Duration::from_secs(60));
            if scenario != "idle" && scenario != "slow handlers" {
                switchyard.wait_for_log(&format!("socket-hog: {scenario}: started"), Duration::from_secs(60));
            }
            let mut background = Vec::new();
            if scenario == "slow handlers" {
                // As many slow requests as the attacker may run (limits.max_instances), and more.
                for _ in 0..150 {
                    background.push(tokio::spawn(async move {
                        request(ingress, "attacker.localhost", "GET", "/sleep/25", b"").await
                    }));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            // Warm-up, then the timed requests.
            neighbour_latencies(ingress, 20).await;
            let sorted = neighbour_latencies(ingress, count).await;
            let (p50, p99) = (percentile(&sorted, 0.5), percentile(&sorted, 0.99));
            let ratio = idle_p99.map_or(String::new(), |idle: Duration| {
                format!(" (p99 {:.1}× idle)", p99.as_secs_f64() / idle.as_secs_f64())
            });
            println!(
                "{scenario:>14}: neighbour p50 {:6.2} ms, p99 {:6.2} ms, max {:6.2} ms{ratio}",
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3,
                sorted[sorted.len() - 1].as_secs_f64() * 1e3,
            );
            if scenario == "idle" {
                idle_p99 = Some(p99);
            }
            for task in background {
                task.abort();
            }
            drop(switchyard);
        }
    });
}
