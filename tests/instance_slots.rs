//! The host's instance slots are shared fairly (THREATS.md invariant 2): a tenant allowed many
//! instances (`limits.max_instances` is the operator's choice, so several tenants' caps may add
//! up past what the host holds) fills the shared part of the slots with handlers that never
//! answer, and its neighbours — one on its shard, one on the other — are still served, from the
//! slots reserved for each tenant. Before the reserve, the one pool of 1,000 instances was shared
//! by everyone: the greedy tenant's lingering requests made every tenant's requests fail with
//! `500 maximum concurrent limit of 1000 for component instances reached`.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{Switchyard, assert_echoes, echo_tenant, free_port, gateway_tenant, request};

/// More lingering requests than the host's shared slots.
const GREEDY_REQUESTS: usize = 1_100;

fn config(admin: SocketAddr, ingress: SocketAddr) -> String {
    format!(
        "version: 1\nadmin: {{ listen: \"{admin}\" }}\ntenants:{}{}{}",
        gateway_tenant("greedy", ingress, "max_instances: 2000, request_timeout: 30s, max_memory_mib: 8192"),
        echo_tenant("other-shard", ingress),
        echo_tenant("same-shard", ingress),
    )
}

/// The greedy tenant's http instances alive now, and its requests refused for want of a shared
/// slot so far, from `/metrics`.
async fn greedy_usage(admin: SocketAddr) -> (u64, u64) {
    let (_, metrics) = request(admin, "localhost", "GET", "/metrics", b"").await;
    let value = |prefix: &str| {
        metrics.lines().find_map(|l| l.strip_prefix(prefix)).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    (
        value(r#"switchyard_tenant_instances{tenant="greedy"} "#),
        value(r#"switchyard_tenant_refusals_total{tenant="greedy",budget="shared_slots"} "#),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_filling_the_shared_instance_slots_leaves_its_neighbours_their_reserve() {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let switchyard =
        Switchyard::start_with_args("instance_slots", admin, &config(admin, ingress), &["--shards", "2"]);
    switchyard.wait_for_log_count("echo-service: listening on", 2, Duration::from_secs(60));

    let lingering: Vec<_> = (0..GREEDY_REQUESTS)
        .map(|_| {
            tokio::spawn(async move { request(ingress, "greedy.localhost", "GET", "/sleep/60", b"").await })
        })
        .collect();
    // Wait (bounded) until the greedy tenant holds all it can: a request of its was refused for
    // want of a shared slot (a pause in its growth is not enough on a busy machine: requests
    // still on their way would take the slots the checks below expect to be gone).
    let mut held = 0;
    for _ in 0..600 {
        let (now, refused) = greedy_usage(admin).await;
        held = now;
        if refused > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("the greedy tenant holds {held} instances");
    assert!(held >= 990, "the greedy tenant got only {held} instances: the test did not fill the slots");

    for tenant in ["same-shard", "other-shard"] {
        assert_echoes(ingress, tenant, 10, Duration::from_secs(5)).await;
    }
    // The greedy tenant's requests past the shared slots are refused at once, naming why.
    let (status, body) = request(ingress, "greedy.localhost", "GET", "/sleep/60", b"").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("instance slots"), "{body}");
    let (_, metrics) = request(admin, "localhost", "GET", "/metrics", b"").await;
    assert!(metrics.contains("switchyard_shared_instance_slots 1000\n"), "{metrics}");
    assert!(
        metrics.lines().any(|l| l
            .starts_with(r#"switchyard_tenant_refusals_total{tenant="greedy",budget="shared_slots"} "#)
            && !l.ends_with(" 0")),
        "{metrics}"
    );

    for answer in lingering {
        answer.abort();
    }
    let (status, log) = switchyard.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");
}
