//! What frees and renews a pool's backend connections, against a real MariaDB.
//!
//! Time-outs: a client idle inside a transaction past `idle_transaction_timeout` is rolled back,
//! told and closed; a client that stops reading its result set is given up after
//! `client_write_timeout` and its connection drained and released; a client that leaves in the
//! middle of a result set costs no connection. In each case a client waiting for the pool's only
//! connection is then served.
//!
//! Upkeep, run the way the host runs it (`Pooler::maintain` every few milliseconds here):
//! `min_idle` connections are opened, idle ones past `idle_timeout` and old ones past
//! `max_lifetime` are closed (counted on the server), a connection idle past
//! `health_check_after` is pinged before use, and a pool whose backend was down at start becomes
//! ready by itself once the backend is back, with no client traffic.

mod support;

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use support::mariadb::MariaDb;
use support::{config, publish, publish_on, server};
use switchyard_pooler::protocol::framing::Sequence;
use switchyard_pooler::stats::ErrorKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_idle_in_a_transaction_is_rolled_back_and_its_connection_freed() {
    let tenant = server().tenant("idle_tx", "pw-idle-tx");
    let mut cfg = config(&tenant, 1);
    cfg.idle_transaction_timeout = Duration::from_millis(500);
    cfg.pool.checkout_timeout = Duration::from_secs(30);
    let published = publish(tenant.clone(), cfg).await;
    let mut setup = published.conn().await;
    setup.query_drop("CREATE OR REPLACE TABLE t (v INT)").await.expect("table");
    setup.disconnect().await.expect("quit");

    let mut idle = published.conn().await;
    idle.query_drop("BEGIN").await.expect("begin");
    idle.query_drop("INSERT INTO t VALUES (1)").await.expect("insert");
    // The client list shows it idle in its transaction.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !published.pooler.pool().clients().rows().iter().any(|c| c.idle_in_transaction_since.is_some()) {
        assert!(Instant::now() < deadline, "never listed as idle in a transaction");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // A second client waits for the only connection, and gets it once the idle one is closed.
    let mut waiter = published.conn().await;
    let rows: Option<i64> = waiter.query_first("SELECT COUNT(*) FROM t").await.expect("served");
    assert_eq!(rows, Some(0), "the idle client's insert was rolled back");
    let err = idle.query_drop("SELECT 1").await.expect_err("the idle client was closed");
    assert!(
        err.to_string().contains("idle_transaction_timeout") || matches!(err, mysql_async::Error::Io(_)),
        "{err}"
    );
    assert_eq!(published.pooler.pool().snapshot().errors_of(ErrorKind::IdleTransaction), 1);
    waiter.disconnect().await.expect("quit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_given_up_and_its_connection_released() {
    let tenant = server().tenant("slow_reader", "pw-slow");
    let mut cfg = config(&tenant, 1);
    cfg.client_write_timeout = Duration::from_millis(500);
    cfg.pool.checkout_timeout = Duration::from_secs(30);
    let published = publish(tenant.clone(), cfg).await;

    // 64 MiB of rows, far more than socket buffers hold; the client never reads a byte.
    let mut raw = published.raw_login().await;
    let query = b"\x03SELECT REPEAT('x', 1048576) FROM seq_1_to_64";
    raw.send(&mut Sequence::new(), query).await.expect("send the query");

    let started = Instant::now();
    let mut waiter = published.conn().await;
    let one: Option<i64> = waiter.query_first("SELECT 1").await.expect("served");
    assert_eq!(one, Some(1));
    println!("the waiting client was served {:?} after the reader stopped", started.elapsed());
    assert_eq!(published.pooler.pool().snapshot().errors_of(ErrorKind::SlowClient), 1);
    // The connection was drained, not dropped: the pool opened only the one.
    assert_eq!(published.pooler.pool().snapshot().connects, 1);
    waiter.disconnect().await.expect("quit");
    drop(raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_in_the_middle_of_a_result_set_frees_its_connection() {
    let tenant = server().tenant("leaver", "pw-leaver");
    let mut cfg = config(&tenant, 1);
    cfg.pool.checkout_timeout = Duration::from_secs(30);
    let published = publish(tenant.clone(), cfg).await;

    let mut raw = published.raw_login().await;
    let query = b"\x03SELECT REPEAT('x', 1048576) FROM seq_1_to_64";
    raw.send(&mut Sequence::new(), query).await.expect("send the query");
    // It reads the first packet of the answer, then goes away.
    let mut seq = Sequence::at(1);
    raw.read_packet(&mut seq).await.expect("the answer starts").expect("a packet");
    drop(raw);

    let mut next = published.conn().await;
    let one: Option<i64> = next.query_first("SELECT 1").await.expect("served");
    assert_eq!(one, Some(1));
    let snapshot = published.pooler.pool().snapshot();
    assert_eq!(snapshot.connects, 1, "the pool opened a second connection: {snapshot:?}");
    next.disconnect().await.expect("quit");
}

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
