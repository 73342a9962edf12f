//! No password leaves Switchyard: neither the pools' backend passwords, nor the SQL admin
//! password, nor a component's secret env value, nor what a client typed as its password
//! appears in `check` errors, `map` (any format), the logs (at debug level), `/metrics`,
//! `/healthz`, the live page, `switchyard status` and `reload`, the SQL admin interface, or the
//! errors clients get.

mod support;

#[path = "../pooler/tests/support/mariadb.rs"]
#[allow(dead_code)] // shared with the pooler's tests; this one uses part of it
mod mariadb;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use mysql_async::prelude::*;
use support::{Switchyard, free_port, guest};

const BACKEND_PASSWORD: &str = "Zq7-backend-secret";
const ADMIN_PASSWORD: &str = "Zq7-admin-secret";
const ENV_SECRET: &str = "Zq7-env-secret";
const WRONG_BACKEND_PASSWORD: &str = "Zq7-wrong-backend";
const CLIENT_TYPED_PASSWORD: &str = "Zq7-typed-by-client";
const SECRETS: [&str; 5] =
    [BACKEND_PASSWORD, ADMIN_PASSWORD, ENV_SECRET, WRONG_BACKEND_PASSWORD, CLIENT_TYPED_PASSWORD];

const ENV: [(&str, &str); 4] = [
    ("SECRETS_POOL_PASSWORD", BACKEND_PASSWORD),
    ("SECRETS_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ("SECRETS_ENV", ENV_SECRET),
    ("SECRETS_WRONG_PASSWORD", WRONG_BACKEND_PASSWORD),
];

/// Panics if `text` (from `what`) contains any secret.
fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} contains the secret {secret:?}:\n{text}");
    }
}

/// Runs the binary with `args` and the secrets in its environment; stdout and stderr.
fn switchyard(args: &[&str]) -> (Option<i32>, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_switchyard")).args(args).envs(ENV).output().expect("run switchyard");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_appears_in_errors_map_logs_metrics_or_admin_answers() {
    let server = mariadb::server();
    let tenant = server.tenant("secrets", BACKEND_PASSWORD);
    let (admin, admin_sql, publish, ingress) = (
        SocketAddr::from(([127, 0, 0, 1], free_port())),
        SocketAddr::from(([127, 0, 0, 1], free_port())),
        SocketAddr::from(([127, 0, 0, 1], free_port())),
        SocketAddr::from(([127, 0, 0, 1], free_port())),
    );
    let backend = server.addr;
    let config = format!(
        r#"
version: 1
admin:
  listen: "{admin}"
  sql: {{ listen: "{admin_sql}", user: ops, password: "${{env:SECRETS_ADMIN_PASSWORD}}" }}
tenants:
  - name: acme
    allowed_hosts: ["mysql://{backend}"]
    components:
      - name: web
        kind: http
        wasm: {crud}
        ingress: {{ listen: "{ingress}", host: acme.localhost }}
        env: {{ DB_USER: secrets, DB_PASSWORD: "${{env:SECRETS_POOL_PASSWORD}}", DB_NAME: secrets, API_KEY: "${{env:SECRETS_ENV}}" }}
    pools:
      - name: main
        backend: "mysql://{backend}"
        database: secrets
        user: secrets
        password: ${{env:SECRETS_POOL_PASSWORD}}
        max_connections: 2
        publish: "{publish}"
      - name: misconfigured
        backend: "mysql://{backend}"
        database: secrets
        user: secrets
        password: ${{env:SECRETS_WRONG_PASSWORD}}
        max_connections: 1
        port: 3307
"#,
        crud = guest("tenant_crud.wasm"),
    );
    assert_eq!(tenant.password, BACKEND_PASSWORD);
    // Debug logs of Switchyard's own crates, where a careless line would most likely be.
    let mut env = ENV.to_vec();
    env.push(("RUST_LOG", "info,switchyard=debug,switchyard_pooler=debug,switchyard_vnet=debug"));
    let running = Switchyard::start_with_env("secrets", admin, &config, &env);
    let path = running.config_path().display().to_string();
    running.wait_for_log("switchyard is up", Duration::from_secs(60));

    // check: valid, and with an error next to the secrets.
    let (code, out) = switchyard(&["check", &path]);
    assert_eq!(code, Some(0), "{out}");
    assert_clean("check", &out);
    let broken_path = running.config_path().with_file_name("broken.yaml");
    std::fs::write(&broken_path, config.replace("max_connections: 2", "max_connections: lots"))
        .expect("write");
    let (code, out) = switchyard(&["check", &broken_path.display().to_string()]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("max_connections"), "{out}");
    assert_clean("check of a broken config", &out);

    // map, every text format.
    for format in ["text", "mermaid", "dot"] {
        let (code, out) = switchyard(&["map", &path, "--format", format]);
        assert_eq!(code, Some(0), "{out}");
        assert_clean(&format!("map --format {format}"), &out);
    }

    // Clients: a wrong password is refused without echoing anything; the right one works.
    let url = |password: &str| format!("mysql://secrets:{password}@{publish}/secrets");
    let opts = |password: &str| {
        mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&url(password)).expect("url"))
            .prefer_socket(false)
    };
    let err =
        mysql_async::Conn::new(opts(CLIENT_TYPED_PASSWORD)).await.expect_err("a wrong password is refused");
    assert!(err.to_string().contains("Access denied"), "{err}");
    assert_clean("the refusal a client gets", &err.to_string());
    let mut conn = mysql_async::Conn::new(opts(BACKEND_PASSWORD)).await.expect("log in through the pooler");
    let one: Option<i64> = conn.query_first("SELECT 1").await.expect("query");
    assert_eq!(one, Some(1));
    // A statement that carries a password: its error, too, is the server's and names no secret.
    let err = conn
        .query_drop(format!("SET PASSWORD FOR 'nobody'@'%' = PASSWORD('{CLIENT_TYPED_PASSWORD}')"))
        .await
        .expect_err("no such user");
    assert!(!err.to_string().is_empty());
    assert_clean("the error of a statement that carries a password", &err.to_string());
    let (status, page) = support::request(ingress, "acme.localhost", "GET", "/", b"").await;
    assert_eq!(status, 200, "{page}");
    assert_clean("a page", &page);

    // The pool with the wrong backend password: not ready, and the report says why without it.
    let mut health = (0, String::new());
    for _ in 0..100 {
        health = running.healthz().await;
        if health.1.contains("misconfigured") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(health.0, 503, "{}", health.1);
    assert!(health.1.contains("pool misconfigured"), "{}", health.1);
    assert_clean("/healthz", &health.1);
    let (code, out) = switchyard(&["status", &path]);
    assert_eq!(code, Some(1), "{out}");
    assert_clean("status", &out);

    let (status, metrics) = support::request(admin, "localhost", "GET", "/metrics", b"").await;
    assert_eq!(status, 200);
    assert_clean("/metrics", &metrics);
    // The live page and what its script reads.
    for page in ["/", "/live.js", "/live.json", "/map.svg"] {
        let (status, body) = support::request(admin, "localhost", "GET", page, b"").await;
        assert_eq!(status, 200, "{page}: {body}");
        assert_clean(page, &body);
    }
    // A reload of the same file: applied, every tenant unchanged, nothing secret in its answer.
    let (code, out) = switchyard(&["reload", &path]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("config generation 2") && out.contains("unchanged 1"), "{out}");
    assert_clean("reload", &out);

    // The SQL admin interface: every listing.
    let out = tokio::task::spawn_blocking(move || {
        Command::new("mariadb")
            .args(["--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "--batch", "-uops"])
            .arg(format!("-P{}", admin_sql.port()))
            .arg(format!("-p{ADMIN_PASSWORD}"))
            .args(["-e", "SHOW POOLS; SHOW CLIENTS; SHOW SERVERS; SHOW STATS"])
            .output()
            .expect("run mariadb")
    })
    .await
    .expect("join");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(listing.contains("misconfigured"), "{listing}");
    assert_clean("the SQL admin interface", &listing);
    drop(conn);

    let (status, log) = running.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");
    assert!(log.contains("Access denied"), "the backend's refusal is logged: {log}");
    assert_clean("the log", &log);
}
