//! Pool upkeep against a real MariaDB, run the way the host runs it (`Pooler::maintain` every
//! few milliseconds here): `min_idle` connections are opened, idle ones past `idle_timeout` and
//! old ones past `max_lifetime` are closed (counted on the server), and a pool whose backend was
//! down at start becomes ready by itself once the backend is back, with no client traffic.

mod support;

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use support::mariadb::MariaDb;
use support::{config, publish, publish_on, server};

/// Waits until `done` holds (checked every 10 ms, for at most 30 s); `what` names it on failure.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_idle_is_kept_and_idle_and_old_connections_are_closed() {
    let tenant = server().tenant("upkeep", "pw-upkeep");
    let mut cfg = config(&tenant, 3);
    cfg.pool.min_idle = 2;
    cfg.pool.idle_timeout = Duration::from_millis(300);
    cfg.pool.max_lifetime = Duration::from_secs(3600);
    let published = publish(tenant.clone(), cfg).await;
    let upkeep = published.pooler.clone();
    tokio::spawn(async move { upkeep.maintain(Duration::from_millis(20)).await });

    // min_idle: two connections open with no client at all.
    wait_until("two idle connections", || published.pooler.pool().snapshot().backend_idle == 2).await;
    assert_eq!(server().connections_of(&tenant.user), 2);

    // Three sessions in transactions at once: a third connection; idle_timeout closes it after.
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let mut conn = published.conn().await;
        conn.query_drop("BEGIN").await.expect("begin");
        conn.query_drop("SELECT 1").await.expect("hold");
        sessions.push(conn);
    }
    assert_eq!(published.pooler.pool().snapshot().backend_open, 3);
    for mut conn in sessions {
        conn.query_drop("COMMIT").await.expect("commit");
        conn.disconnect().await.expect("quit");
    }
    wait_until("back to min_idle", || published.pooler.pool().snapshot().backend_open == 2).await;
    wait_until("the server sees two", || server().connections_of(&tenant.user) == 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_max_lifetime_are_replaced() {
    let tenant = server().tenant("upkeep_life", "pw-upkeep-life");
    let mut cfg = config(&tenant, 2);
    cfg.pool.min_idle = 1;
    cfg.pool.max_lifetime = Duration::from_millis(500);
    let published = publish(tenant.clone(), cfg).await;
    let upkeep = published.pooler.clone();
    tokio::spawn(async move { upkeep.maintain(Duration::from_millis(20)).await });
    let mut client = published.conn().await;
    let first: Option<u64> = client.query_first("SELECT CONNECTION_ID()").await.expect("id");
    // The connection ages out (while idle between statements) and another takes its place.
    let mut later = first;
    let deadline = Instant::now() + Duration::from_secs(30);
    while later == first {
        assert!(Instant::now() < deadline, "connection {first:?} outlived max_lifetime");
        tokio::time::sleep(Duration::from_millis(50)).await;
        later = client.query_first("SELECT CONNECTION_ID()").await.expect("id");
    }
    assert!(published.pooler.pool().snapshot().connects >= 2);
    client.disconnect().await.expect("quit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_whose_backend_was_down_at_start_becomes_ready_by_itself() {
    let backend = std::sync::Arc::new(
        tokio::task::spawn_blocking(|| MariaDb::start("mariadb-upkeep"))
            .await
            .expect("join")
            .expect("a MariaDB"),
    );
    let tenant = backend.tenant("upkeep_ready", "pw-upkeep-ready");
    let killer = backend.clone();
    tokio::task::spawn_blocking(move || killer.kill()).await.expect("kill");
    let mut cfg = config(&tenant, 2);
    cfg.pool.min_idle = 0;
    let published = publish_on(backend.addr, tenant.clone(), cfg).await;
    // As the host does at start: one connection, which finds the backend down.
    published.pooler.pool().server_version().await.expect_err("the backend is down");
    assert!(published.pooler.pool().backend_problem().is_some(), "not ready while the backend is down");
    let upkeep = published.pooler.clone();
    tokio::spawn(async move { upkeep.maintain(Duration::from_millis(20)).await });

    let restarter = backend.clone();
    tokio::task::spawn_blocking(move || restarter.restart()).await.expect("restart");
    // No client: upkeep alone finds the backend again.
    wait_until("ready again", || published.pooler.pool().backend_problem().is_none()).await;
    assert_eq!(published.pooler.pool().snapshot().clients_total, 0, "no client helped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_idle_past_health_check_after_is_pinged_before_use() {
    let tenant = server().tenant("upkeep_ping", "pw-upkeep-ping");
    let mut cfg = config(&tenant, 1);
    cfg.pool.health_check_after = Duration::from_millis(300);
    let published = publish(tenant.clone(), cfg).await;
    let mut client = published.conn().await;
    // COM_PING counts as an admin command on the one backend connection.
    let pings = "SHOW SESSION STATUS LIKE 'Com_admin_commands'";
    let mut count = async || -> u64 {
        let row: Option<(String, String)> = client.query_first(pings).await.expect("status");
        row.and_then(|(_, v)| v.parse().ok()).expect("a count")
    };
    let first = count().await;
    let soon = count().await;
    assert_eq!(soon, first, "a connection used a moment ago was pinged");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = count().await;
    assert_eq!(later, first + 1, "a connection idle past health_check_after was not pinged once");
    client.disconnect().await.expect("quit");
}
