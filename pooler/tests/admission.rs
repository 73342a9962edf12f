//! Who gets in: a session slot is taken only after a client has authenticated, and past
//! `max_client_sessions` a client is refused with 1040 until a session ends.

mod support;

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use support::{config, publish, read_greeting, server};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_client_sessions_a_client_is_refused_and_a_freed_slot_is_reused() {
    let tenant = server().tenant("admit_cap", "pw-admit");
    let mut cfg = config(&tenant, 2);
    cfg.max_client_sessions = 2;
    let published = publish(tenant.clone(), cfg).await;
    // Sockets that never log in take no session slot.
    let mut silent = Vec::new();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(published.addr).await.expect("connect");
        read_greeting(&mut stream).await;
        silent.push(stream);
    }
    let first = published.conn().await;
    let second = published.conn().await;
    let refused = mysql_async::Conn::new(published.opts()).await.expect_err("a third session is refused");
    assert!(matches!(&refused, mysql_async::Error::Server(e) if e.code == 1040), "{refused}");
    assert!(refused.to_string().contains("max_client_sessions"), "{refused}");
    first.disconnect().await.expect("quit");
    // The slot comes back when the session ends (after the pooler has seen the quit).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut third = loop {
        match mysql_async::Conn::new(published.opts()).await {
            Ok(conn) => break conn,
            Err(error) => assert!(Instant::now() < deadline, "the freed slot was never reused: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let one: Option<i64> = third.query_first("SELECT 1").await.expect("served");
    assert_eq!(one, Some(1));
    third.disconnect().await.expect("quit");
    second.disconnect().await.expect("quit");
    drop(silent);
}
