//! End to end: a tenant's MySQL pool mounted by `switchyard up` on its virtual port 3306 and
//! published on a loopback address, its backend a real MariaDB reached through the tenant's
//! policy. A guest reaches the pooler over the virtual network; a real client runs SQL through
//! the published address; MariaDB never sees more connections than the pool allows.

mod support;

#[path = "../pooler/tests/support/mariadb.rs"]
#[allow(dead_code)] // shared with the pooler's tests; this one uses part of it
mod mariadb;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use mysql_async::prelude::*;
use support::{Switchyard, free_port, guest, request_bytes, server_pool};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_on_the_virtual_network_and_a_published_address() {
    let server = mariadb::server();
    let tenant = server.tenant("e2e_pool", "pw-e2e-pool");
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let publish = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let admin_sql = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let backend = server.addr;
    let gateway = guest("http_gateway.wasm");
    let crud = guest("tenant_crud.wasm");
    let config = format!(
        r#"
version: 1
admin:
  listen: "{admin}"
  sql: {{ listen: "{admin_sql}", user: ops, password: "${{env:E2E_ADMIN_PASSWORD}}" }}
tenants:
  - name: acme
    allowed_hosts: ["mysql://{backend}"]
    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}", host: acme.localhost }}
        env: {{ ECHO_PORT: "3306" }}
      - name: crud
        kind: http
        wasm: {crud}
        ingress: {{ listen: "{ingress}", host: crud.localhost }}
        env: {{ DB_USER: {user}, DB_PASSWORD: {password}, DB_NAME: {db} }}
{pools}  - name: ghost
    allowed_hosts: ["mysql://127.0.0.1:{closed}"]
    pools:
      - name: main
        backend: "mysql://127.0.0.1:{closed}"
        user: nobody
        password: ${{env:E2E_POOL_PASSWORD}}
"#,
        closed = free_port(),
        pools = server_pool(
            backend,
            &tenant.database,
            &tenant.user,
            &["max_connections: 2", &format!("publish: \"{publish}\"")]
        ),
        db = tenant.database,
        user = tenant.user,
        password = tenant.password,
    );
    let switchyard = Switchyard::start_with_env(
        "pool",
        admin,
        &config,
        &[("E2E_POOL_PASSWORD", &tenant.password), ("E2E_ADMIN_PASSWORD", "ops-secret")],
    );
    switchyard.wait_for_log("pool mounted", Duration::from_secs(30));

    // Not ready while a pool cannot reach its backend, and the report says which and why.
    let mut health = (0, String::new());
    for _ in 0..100 {
        health = switchyard.healthz().await;
        if health.1.contains("tenant ghost") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(health.0, 503, "{}", health.1);
    assert!(health.1.contains("tenant ghost: pool main: cannot reach its backend"), "{}", health.1);
    assert!(!health.1.contains("tenant acme"), "{}", health.1);
    // `switchyard status` asks the same and exits 1 (not ready).
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("status")
        .arg(switchyard.config_path())
        .envs([("E2E_POOL_PASSWORD", tenant.password.as_str()), ("E2E_ADMIN_PASSWORD", "ops-secret")])
        .output()
        .expect("switchyard status");
    let report = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(1), "{report}{}", String::from_utf8_lossy(&status.stderr));
    assert!(report.starts_with("not ready") && report.contains("tenant ghost: pool main"), "{report}");

    // A guest connects to 127.0.0.1:3306 on acme's virtual network and hears the pooler's
    // greeting (protocol 10, the backend's version), then leaves.
    let (status, body) = request_bytes(ingress, "acme.localhost", "POST", "/echo", b"").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(body.len() > 5 && body[4] == 10, "not a MySQL greeting: {body:?}");
    assert!(String::from_utf8_lossy(&body).contains("MariaDB"), "{}", String::from_utf8_lossy(&body));

    // A guest with an unmodified MySQL client (mysql_async on wasm32-wasip2): each request is a
    // new instance and a new session through the pooler.
    let (status, body) = support::request(ingress, "crud.localhost", "POST", "/api/items", b"first").await;
    assert_eq!((status, body.as_str()), (201, r#"{"id":1,"name":"first"}"#));
    let (status, body) = support::request(ingress, "crud.localhost", "POST", "/api/items", b"second").await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = support::request(ingress, "crud.localhost", "GET", "/api/items", b"").await;
    assert_eq!((status, body.as_str()), (200, r#"[{"id":1,"name":"first"},{"id":2,"name":"second"}]"#));
    let (status, _) = support::request(ingress, "crud.localhost", "POST", "/api/items/1/delete", b"").await;
    assert_eq!(status, 204);
    let (status, body) = support::request(ingress, "crud.localhost", "GET", "/api/items", b"").await;
    assert_eq!((status, body.as_str()), (200, r#"[{"id":2,"name":"second"}]"#));

    // A real client through the published address.
    let url = format!("mysql://{}:{}@{publish}/{}", tenant.user, tenant.password, tenant.database);
    let opts = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&url).expect("url"))
        .prefer_socket(false);
    let mut conns = Vec::new();
    for _ in 0..6 {
        conns.push(mysql_async::Conn::new(opts.clone()).await.expect("connect through switchyard"));
    }
    for (i, conn) in conns.iter_mut().enumerate() {
        conn.exec_drop("INSERT INTO items (name) VALUES (?)", (format!("item {i}"),)).await.expect("insert");
    }
    let count: Option<i64> = conns[5].query_first("SELECT COUNT(*) FROM items").await.expect("count");
    assert_eq!(count, Some(7), "the guest's item and the six inserted here");
    let user = tenant.user.clone();
    let seen =
        tokio::task::spawn_blocking(move || mariadb::server().connections_of(&user)).await.expect("count");
    assert!(seen <= 2, "MariaDB sees {seen} connections of a pool capped at 2");

    // Its counters on /metrics, labelled by tenant and pool; no secret in them.
    let (status, metrics) = support::request(admin, "localhost", "GET", "/metrics", b"").await;
    assert_eq!(status, 200);
    let queries = metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"switchyard_pool_queries_total{tenant="acme",pool="main"} "#))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(queries.is_some_and(|n| n >= 7), "queries missing or too few:\n{metrics}");
    for line in [
        r#"switchyard_pool_backend_connects_total{tenant="acme",pool="main"}"#,
        r#"switchyard_pool_checkout_wait_seconds_bucket{tenant="acme",pool="main",le="+Inf"}"#,
        r#"switchyard_pool_pins_total{tenant="acme",pool="main",reason="temporary_table"} 0"#,
        r#"switchyard_pool_errors_total{tenant="acme",pool="main",kind="checkout_timeout"} 0"#,
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    assert!(!metrics.contains(&tenant.password));

    // The SQL admin interface, asked with the mariadb client.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("mariadb")
            .args(["--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "--batch", "--skip-column-names"])
            .args([format!("-P{}", admin_sql.port()), "-uops".to_owned(), "-pops-secret".to_owned()])
            .args(["-e", "SHOW POOLS"])
            .output()
            .expect("run mariadb")
    })
    .await
    .expect("join");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pools = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(pools.starts_with("acme\tmain\t6\t0\t"), "six clients on acme/main: {pools}");

    // Virtual port 3306 opened no OS socket: only the admin, ingress and published addresses.
    let expected: BTreeSet<SocketAddr> = [admin, ingress, publish, admin_sql].into_iter().collect();
    assert_eq!(switchyard.listening_sockets(), expected);
    drop(conns);

    let (status, log) = switchyard.terminate();
    assert!(status.success(), "exit status {status} after SIGTERM; log:\n{log}");
    assert!(!log.contains(&tenant.password), "the backend password appears in the log");
    assert!(!log.contains("ops-secret"), "the admin password appears in the log");
}
