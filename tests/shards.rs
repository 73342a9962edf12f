//! A tenant spread over shards (`limits.shards: 2`) beside a quiet one, on `switchyard up
//! --shards 2`: the busy tenant's requests run on both shards, its guests reach its one pool from
//! both (the pool's cap holds: MariaDB never sees more connections than it allows), and the
//! quiet tenant's requests all run on its own shard.

mod support;

#[path = "../pooler/tests/support/mariadb.rs"]
#[allow(dead_code)] // shared with the pooler's tests; this one uses part of it
mod mariadb;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use support::{Switchyard, echo_tenant, free_port, guest, request, server_pool};

/// `tenant`'s requests per shard, from `/metrics` text.
fn placed(metrics: &str, tenant: &str) -> Vec<u64> {
    let prefix = format!("switchyard_tenant_requests_total{{tenant=\"{tenant}\",shard=\"");
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(|rest| rest.split_whitespace().last().and_then(|n| n.parse().ok()).expect("a count"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_tenant_spreads_over_its_shards_and_a_quiet_one_stays_on_one() {
    let server = mariadb::server();
    let tenant = server.tenant("e2e_shards", "pw-e2e-shards");
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let backend = server.addr;
    let config = format!(
        r#"
version: 1
admin: {{ listen: "{admin}" }}
tenants:
  - name: busy
    allowed_hosts: ["mysql://{backend}"]
    limits: {{ shards: 2 }}
    components:
      - name: crud
        kind: http
        wasm: {crud}
        ingress: {{ listen: "{ingress}", host: busy.localhost }}
        env: {{ DB_USER: {user}, DB_PASSWORD: {password}, DB_NAME: {db} }}
{pools}{quiet}"#,
        pools = server_pool(backend, &tenant.database, &tenant.user, &["max_connections: 2"]),
        crud = guest("tenant_crud.wasm"),
        db = tenant.database,
        user = tenant.user,
        password = tenant.password,
        quiet = echo_tenant("quiet", ingress),
    );
    let env = [("E2E_POOL_PASSWORD", tenant.password.as_str())];
    let switchyard = Switchyard::start_with("shards", admin, &config, &env, &["--shards", "2"]);
    switchyard.wait_for_log("switchyard is up", Duration::from_secs(60));

    let (status, body) = request(ingress, "busy.localhost", "POST", "/api/items", b"first").await;
    assert_eq!(status, 201, "{body}");
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = server.watch_connections(&tenant.user, stop.clone(), Duration::from_millis(5));
    // 64 requests at once, each a new instance and a new pool session.
    let mut busy = tokio::task::JoinSet::new();
    for _ in 0..64 {
        busy.spawn(request(ingress, "busy.localhost", "GET", "/api/items", b""));
    }
    let mut quiet = tokio::task::JoinSet::new();
    for i in 0..32 {
        quiet.spawn(async move {
            (i, request(ingress, "quiet.localhost", "POST", "/echo", format!("{i}").as_bytes()).await)
        });
    }
    while let Some(answer) = busy.join_next().await {
        let (status, body) = answer.expect("request task");
        assert_eq!((status, body.as_str()), (200, r#"[{"id":1,"name":"first"}]"#));
    }
    while let Some(answer) = quiet.join_next().await {
        let (i, (status, body)) = answer.expect("request task");
        assert_eq!((status, body), (200, format!("quiet:{i}")));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = tokio::task::spawn_blocking(move || watcher.join().expect("watcher")).await.expect("join");
    assert!(seen <= 2, "MariaDB saw {seen} connections of a pool capped at 2, served from two shards");

    let (status, metrics) = request(admin, "localhost", "GET", "/metrics", b"").await;
    assert_eq!(status, 200);
    let busy_placed = placed(&metrics, "busy");
    let quiet_placed = placed(&metrics, "quiet");
    assert_eq!(busy_placed.len(), 2, "{metrics}");
    assert_eq!(busy_placed.iter().sum::<u64>(), 65);
    assert!(busy_placed.iter().all(|&n| n > 0), "the busy tenant ran on one shard only: {busy_placed:?}");
    assert_eq!(quiet_placed.iter().sum::<u64>(), 32);
    assert_eq!(
        quiet_placed.iter().filter(|&&n| n > 0).count(),
        1,
        "the quiet tenant spread: {quiet_placed:?}"
    );
    // One pool for both shards: its counters hold every session's checkouts.
    let checkouts: u64 = metrics
        .lines()
        .find(|l| l.starts_with("switchyard_pool_checkouts_total{") && l.contains("tenant=\"busy\""))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or_else(|| panic!("no checkout count: {metrics}"));
    assert!(checkouts >= 65, "{checkouts} checkouts for 65 requests that each query");
    switchyard.terminate();
}
