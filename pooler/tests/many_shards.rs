//! One pool served from several shards: each shard a single-threaded runtime on a thread of its
//! own that accepts clients and runs their sessions, as `switchyard up` runs a tenant spread over
//! shards. The backend connections, the cap, the FIFO queue and the stats stay the pool's one.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::prelude::*;
use support::{TcpConnector, Tenant, config, server, watch_connections};
use switchyard_pooler::Pooler;
use tokio::net::TcpListener;

/// Serves `pooler` on `count` shards; the address of each shard's listener.
fn serve_on_shards(pooler: &Pooler, count: usize) -> Vec<SocketAddr> {
    (0..count)
        .map(|i| {
            let (pooler, (tx, rx)) = (pooler.clone(), std::sync::mpsc::channel());
            std::thread::Builder::new()
                .name(format!("test-shard-{i}"))
                .spawn(move || {
                    let runtime =
                        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                    runtime.block_on(async move {
                        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                        tx.send(listener.local_addr().expect("addr")).expect("send the address");
                        while let Ok((stream, peer)) = listener.accept().await {
                            let pooler = pooler.clone();
                            tokio::spawn(async move { pooler.serve(stream, &peer.to_string()).await });
                        }
                    });
                })
                .expect("shard thread");
            rx.recv().expect("the shard's address")
        })
        .collect()
}

fn opts(tenant: &Tenant, addr: SocketAddr) -> mysql_async::Opts {
    let url = format!("mysql://{}:{}@{addr}/{}", tenant.user, tenant.password, tenant.database);
    mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&url).expect("url"))
        .prefer_socket(false)
        .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_and_the_stats_hold_across_shards() {
    let tenant = server().tenant("shards_cap", "pw-shards-cap");
    let pooler = Pooler::new(config(&tenant, 2), Arc::new(TcpConnector(server().addr)));
    let shards = serve_on_shards(&pooler, 2);
    // The first login reads the server's settings once.
    mysql_async::Conn::new(opts(&tenant, shards[0]))
        .await
        .expect("warm up")
        .disconnect()
        .await
        .expect("quit");
    let before = pooler.pool().snapshot();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_connections(tenant.user.clone(), stop.clone(), Duration::from_millis(5));
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..24 {
        let opts = opts(&tenant, shards[i % 2]);
        clients.spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.expect("connect");
            for _ in 0..3 {
                conn.query_drop("DO SLEEP(0.01)").await.expect("query");
            }
            conn.disconnect().await.expect("quit");
        });
    }
    while let Some(done) = clients.join_next().await {
        done.expect("client");
    }
    stop.store(true, Ordering::Relaxed);
    assert!(watcher.await.expect("watcher") <= 2, "more backend connections than the pool's cap");
    let after = pooler.pool().snapshot();
    assert_eq!(after.checkouts - before.checkouts, 72, "one checkout per statement, counted once");
    assert_eq!(after.queries - before.queries, 72);
    assert_eq!(after.clients_total - before.clients_total, 24);
    assert!(after.connects <= 2, "{} connections opened for a pool of 2", after.connects);
    assert_eq!((after.clients, after.waiting), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_on_different_shards_are_served_in_the_order_they_came() {
    let tenant = server().tenant("shards_fifo", "pw-shards-fifo");
    let pooler = Pooler::new(config(&tenant, 1), Arc::new(TcpConnector(server().addr)));
    let shards = serve_on_shards(&pooler, 2);
    let mut holder = mysql_async::Conn::new(opts(&tenant, shards[0])).await.expect("holder");
    holder.query_drop("BEGIN").await.expect("begin");
    holder.query_drop("DO 1").await.expect("hold the only connection");
    let served = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = tokio::task::JoinSet::new();
    for i in 0..6usize {
        // Alternate shards; each waiter queues before the next one comes.
        let mut conn = mysql_async::Conn::new(opts(&tenant, shards[(i + 1) % 2])).await.expect("waiter");
        let served = served.clone();
        waiters.spawn(async move {
            conn.query_drop("DO SLEEP(0.02)").await.expect("waiter's query");
            served.lock().expect("order").push(i);
            conn.disconnect().await.expect("quit");
        });
        for _ in 0..500 {
            if pooler.pool().snapshot().waiting == i as u64 + 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(pooler.pool().snapshot().waiting, i as u64 + 1, "waiter {i} did not queue");
    }
    holder.query_drop("COMMIT").await.expect("commit: the connection goes to the head waiter");
    while let Some(done) = waiters.join_next().await {
        done.expect("waiter");
    }
    assert_eq!(*served.lock().expect("order"), [0, 1, 2, 3, 4, 5], "not first come, first served");
    holder.disconnect().await.expect("quit");
    assert_eq!(pooler.pool().snapshot().connects, 1);
}
