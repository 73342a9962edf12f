//! A pool on unix sockets, both ways: its backend a real MariaDB reached through MariaDB's own
//! socket (`mysql+unix://`, allowed by a `unix:/path` entry), and published on a unix socket
//! of its own beside a TCP address, for clients on the same host (the `mariadb` CLI and
//! `mysql_async`). The published socket is owner-only (THREATS.md invariant 7) and replaces a
//! stale one left at its path.

mod support;

#[path = "../pooler/tests/support/mariadb.rs"]
#[allow(dead_code)] // shared with the pooler's tests; this one uses part of it
mod mariadb;

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use mysql_async::prelude::*;
use support::{Switchyard, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_over_unix_sockets_both_ways() {
    let server = mariadb::server();
    let tenant = server.tenant("e2e_unix", "pw-e2e-unix");
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let tcp = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-unix-sockets");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("socket folder");
    let published = dir.join("acme.sock");
    // A socket left behind by a process that is gone.
    drop(std::os::unix::net::UnixListener::bind(&published).expect("a stale socket"));
    let backend = server.socket.display().to_string();
    let config = format!(
        r#"
version: 1
admin: {{ listen: "{admin}" }}
tenants:
  - name: acme
    allowed_hosts: ["unix:{backend}"]
    pools:
      - name: main
        backend: "mysql+unix://{backend}"
        database: {db}
        user: {user}
        password: ${{env:E2E_POOL_PASSWORD}}
        max_connections: 2
        publish: ["unix:{published}", "{tcp}"]
"#,
        published = published.display(),
        db = tenant.database,
        user = tenant.user,
    );
    let env = [("E2E_POOL_PASSWORD", tenant.password.as_str())];
    let switchyard = Switchyard::start_with("unix_sockets", admin, &config, &env, &[]);
    switchyard.wait_for_log("switchyard is up", Duration::from_secs(60));

    let meta = std::fs::metadata(&published).expect("the published socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "the published socket is open to other users");

    // The mariadb CLI over the published socket.
    let cli = Command::new("mariadb")
        .args(["--no-defaults", "--batch", "--skip-column-names"])
        .arg(format!("--socket={}", published.display()))
        .arg(format!("-u{}", tenant.user))
        .arg(format!("-p{}", tenant.password))
        .arg(&tenant.database)
        .args(["-e", "CREATE TABLE t (a INT); INSERT INTO t VALUES (7); SELECT a, DATABASE() FROM t"])
        .output()
        .expect("run mariadb");
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    assert_eq!(String::from_utf8_lossy(&cli.stdout).trim(), "7\te2e_unix");

    // mysql_async over the socket and over TCP: the same pool.
    let socket_opts = mysql_async::OptsBuilder::default()
        .socket(Some(published.display().to_string()))
        .user(Some(&tenant.user))
        .pass(Some(&tenant.password))
        .db_name(Some(&tenant.database));
    let mut over_socket = mysql_async::Conn::new(socket_opts).await.expect("connect over the socket");
    let url = format!("mysql://{}:{}@{tcp}/{}", tenant.user, tenant.password, tenant.database);
    let tcp_opts = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&url).expect("url"))
        .prefer_socket(false);
    let mut over_tcp = mysql_async::Conn::new(tcp_opts).await.expect("connect over TCP");
    for conn in [&mut over_socket, &mut over_tcp] {
        let sum: Option<i64> = conn.query_first("SELECT SUM(a) FROM t").await.expect("select");
        assert_eq!(sum, Some(7));
    }
    // MariaDB sees the pool's connections come in over its socket (host `localhost`).
    let hosts = server.root_sql(&format!(
        "SELECT DISTINCT host FROM information_schema.processlist WHERE user = '{}'",
        tenant.user
    ));
    assert_eq!(hosts.trim(), "localhost", "the pool did not reach MariaDB over its socket");
    over_socket.disconnect().await.expect("quit");
    over_tcp.disconnect().await.expect("quit");

    let (status, log) = switchyard.terminate();
    assert!(status.success(), "{log}");
    assert!(!published.exists(), "the published socket outlived switchyard");
}

#[test]
fn a_socket_backend_needs_its_own_entry_and_a_published_path_must_be_a_socket() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-unix-check");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("folder");
    let config = dir.join("switchyard.yaml");
    let yaml = |allowed: &str, publish: &str| {
        format!(
            "version: 1\ntenants:\n  - name: acme\n    allowed_hosts: [{allowed}]\n    pools:\n      - name: main\n        backend: \"mysql+unix:///run/mysqld/mysqld.sock\"\n        user: app\n        password: ${{env:PW}}\n        publish: \"{publish}\"\n"
        )
    };
    let check = |text: &str| {
        std::fs::write(&config, text).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("check")
            .arg(&config)
            .env("PW", "x")
            .output()
            .expect("switchyard check");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, report) = check(&yaml("\"*\"", "unix:/tmp/acme.sock"));
    assert_eq!(code, Some(2), "{report}");
    assert!(
        report.contains(
            "tenants[0].pools[0].backend: pool backend mysql+unix:///run/mysqld/mysqld.sock is not allowed"
        ) && report.contains("no allowed_hosts entry `unix:/run/mysqld/mysqld.sock`"),
        "{report}"
    );
    let (code, report) = check(&yaml("\"unix:/run/mysqld/mysqld.sock\"", "unix:relative.sock"));
    assert_eq!(code, Some(2), "{report}");
    assert!(
        report.contains(
            "tenants[0].pools[0].publish: invalid unix socket `relative.sock`: the path must be absolute"
        ),
        "{report}"
    );
    let (code, report) = check(&yaml("\"unix:/run/mysqld/mysqld.sock\"", "unix:/tmp/acme.sock"));
    assert_eq!(code, Some(0), "{report}");
}
