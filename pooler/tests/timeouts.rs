//! Time-outs that free backend connections: a client idle inside a transaction past
//! `idle_transaction_timeout` is rolled back, told and closed; a client that stops reading its
//! result set is given up after `client_write_timeout` and its connection drained and released.
//! In both cases a client waiting for the pool's only connection is then served.

mod support;

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use support::{config, publish, server};
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
