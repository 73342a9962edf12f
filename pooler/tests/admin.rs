//! The SQL admin interface, asked with the `mariadb` command-line client while a session holds
//! a backend connection in a transaction.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use mysql_async::prelude::*;
use support::{config, publish, server};
use switchyard_pooler::admin::{Admin, AdminPool};
use tokio::net::TcpListener;

fn ask(addr: SocketAddr, password: &str, sql: &str) -> (bool, String) {
    let out = Command::new("mariadb")
        .args(["--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "--batch", "-u", "admin"])
        .arg(format!("-P{}", addr.port()))
        .arg(format!("-p{password}"))
        .args(["-e", sql])
        .output()
        .expect("run mariadb");
    let text = if out.status.success() { out.stdout } else { out.stderr };
    (out.status.success(), String::from_utf8_lossy(&text).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_pools_clients_servers_and_stats() {
    let tenant = server().tenant("pool_admin", "pw-admin");
    let published = publish(tenant.clone(), config(&tenant, 2)).await;
    let admin = Admin::new(
        vec![AdminPool { tenant: "acme".into(), name: "main".into(), pool: published.pooler.pool().clone() }],
        "admin".into(),
        b"admin-pw".to_vec(),
        Duration::from_secs(5),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let admin = admin.clone();
            tokio::spawn(async move { admin.serve(stream, &peer.to_string()).await });
        }
    });

    let mut holder = published.conn().await;
    holder.query_drop("BEGIN").await.expect("begin");
    let id: Option<u64> = holder.query_first("SELECT CONNECTION_ID()").await.expect("id");
    let id = id.expect("an id").to_string();
    let mut idle = published.conn().await;
    idle.query_drop("SET @pinned = 1").await.expect("pin");

    let run = |sql: &'static str| tokio::task::spawn_blocking(move || ask(addr, "admin-pw", sql));
    let (ok, pools) = run("SHOW POOLS").await.expect("join");
    assert!(ok, "{pools}");
    let mut lines = pools.lines();
    assert_eq!(
        lines.next(),
        Some("tenant\tpool\tclients\twaiting\tbackend_in_use\tbackend_idle\tbackend_max")
    );
    assert_eq!(lines.next(), Some("acme\tmain\t2\t0\t2\t0\t2"), "{pools}");

    let (ok, clients) = run("show clients;").await.expect("join");
    assert!(ok, "{clients}");
    assert_eq!(clients.lines().count(), 3, "{clients}");
    assert!(
        clients.lines().next().is_some_and(|h| h.ends_with("\tpinned\tidle_in_transaction_s")),
        "{clients}"
    );
    // The holder holds {id}, unpinned, idle in its transaction for a few seconds at most.
    assert!(
        clients.lines().any(|l| l.contains(&format!("\t{id}\tNULL\t"))
            && l.rsplit('\t').next().is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s < 60))),
        "the holder holds {id}: {clients}"
    );
    assert!(clients.lines().any(|l| l.ends_with("\tuser_variable\tNULL")), "{clients}");

    let (ok, servers) = run("SHOW SERVERS").await.expect("join");
    assert!(ok, "{servers}");
    assert!(
        servers.lines().any(|l| l.contains(&format!("\t{id}\t")) && l.contains("\tin_use\t")),
        "{servers}"
    );

    let (ok, stats) = run("SHOW STATS").await.expect("join");
    assert!(ok, "{stats}");
    let row: Vec<&str> = stats.lines().nth(1).expect("a row").split('\t').collect();
    assert_eq!(&row[..3], ["acme", "main", "2"], "{stats}");
    assert_eq!(row[7], "1", "one pin: {stats}");

    let (ok, error) = run("SELECT * FROM secrets").await.expect("join");
    assert!(!ok && error.contains("answers SHOW POOLS"), "{error}");
    let (ok, error) =
        tokio::task::spawn_blocking(move || ask(addr, "wrong", "SHOW POOLS")).await.expect("join");
    assert!(!ok && error.contains("Access denied"), "{error}");
    holder.query_drop("COMMIT").await.expect("commit");
}
