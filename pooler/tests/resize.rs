//! A pool's cap changed while it serves (a config reload): growing serves waiting sessions at
//! once, shrinking brings the backend connections down to the new cap as they come back, and
//! neither ends a session or a transaction in progress.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mysql_async::prelude::*;
use support::{config, publish, server, watch_connections};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_the_cap_serves_a_waiting_session_at_once() {
    let tenant = server().tenant("resize_grow", "pw-resize-grow");
    let mut settings = config(&tenant, 1);
    settings.pool.checkout_timeout = Duration::from_secs(30);
    let published = publish(tenant, settings).await;
    let pool = published.pooler.pool().clone();

    let mut holder = published.conn().await;
    holder.query_drop("BEGIN").await.expect("begin");
    let holder_id: u64 = holder.query_first("SELECT CONNECTION_ID()").await.expect("id").expect("a row");

    let mut waiter = published.conn().await;
    let waiting = tokio::spawn(async move {
        let one: Option<u8> = waiter.query_first("SELECT 1").await.expect("query after the resize");
        (waiter, one)
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while pool.snapshot().waiting == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the second session never waited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!waiting.is_finished(), "served past a cap of 1 while the transaction held the connection");

    pool.resize(2).await;
    let (waiter, one) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("served after growing")
        .expect("task");
    assert_eq!(one, Some(1));
    assert_eq!(pool.max_connections(), 2);

    // The transaction in progress went on, on its own connection.
    let still: u64 = holder.query_first("SELECT CONNECTION_ID()").await.expect("id").expect("a row");
    assert_eq!(still, holder_id, "the holder's transaction moved to another connection");
    holder.query_drop("COMMIT").await.expect("commit");
    holder.disconnect().await.expect("quit");
    waiter.disconnect().await.expect("quit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shrinking_the_cap_closes_connections_as_they_come_back_and_ends_no_session() {
    let tenant = server().tenant("resize_shrink", "pw-resize-shrink");
    let user = tenant.user.clone();
    let settings = config(&tenant, 3);
    let published = publish(tenant, settings).await;
    let pool = published.pooler.pool().clone();

    // Three transactions hold the three connections.
    let mut holders = Vec::new();
    for _ in 0..3 {
        let mut conn = published.conn().await;
        conn.query_drop("BEGIN").await.expect("begin");
        conn.query_drop("SELECT 1").await.expect("select");
        holders.push(conn);
    }
    assert_eq!(pool.snapshot().backend_open, 3);

    pool.resize(1).await;
    // Nothing in use is taken away: each transaction still runs, then commits.
    for conn in &mut holders {
        conn.query_drop("SELECT 2").await.expect("a query inside the transaction after the shrink");
        conn.query_drop("COMMIT").await.expect("commit after the shrink");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while pool.snapshot().backend_open > 1 {
        assert!(tokio::time::Instant::now() < deadline, "the pool did not come down to its new cap");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // From now on MariaDB never sees more than one of the pool's connections.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_connections(user, stop.clone(), Duration::from_millis(5));
    let mut clients = tokio::task::JoinSet::new();
    for conn in holders {
        clients.spawn(async move {
            let mut conn = conn;
            for _ in 0..5 {
                conn.query_drop("DO SLEEP(0.005)").await.expect("query on the shrunk pool");
            }
            conn.disconnect().await.expect("quit");
        });
    }
    while let Some(done) = clients.join_next().await {
        done.expect("client");
    }
    stop.store(true, Ordering::Relaxed);
    assert!(watcher.await.expect("watcher") <= 1, "more backend connections than the shrunk cap");
}
