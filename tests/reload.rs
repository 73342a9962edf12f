//! Live reload of `switchyard up` (`switchyard reload CONFIG` and `SIGHUP`): an unchanged
//! tenant keeps its sessions, a changed policy decides new lookups at once, a pool's new size
//! takes effect with its sessions kept, tenants come and go, a config with errors changes
//! nothing (and the errors come back to `reload`), and `/healthz` and `/metrics` show the
//! config generation.

mod support;

#[path = "../pooler/tests/support/mariadb.rs"]
#[allow(dead_code)] // shared with the pooler's tests; this one uses part of it
mod mariadb;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use mysql_async::prelude::*;
use support::{Switchyard, echo_tenant, free_port, guest, request, server_pool};

/// The config's parts that a test changes between reloads.
struct Version<'a> {
    grow_max: u32,
    grow_allowed: &'a str,
    tenants: &'a [String],
    broken: &'a str,
    /// grow's pool's checkout_timeout, in seconds (a change that rebuilds the tenant).
    grow_checkout: u32,
}

struct Addrs {
    admin: SocketAddr,
    ingress: SocketAddr,
    keep: SocketAddr,
    grow: SocketAddr,
    /// The removed tenant's own ingress address.
    gone: SocketAddr,
    backend: SocketAddr,
}

fn config(addrs: &Addrs, keep: &mariadb::Tenant, grow: &mariadb::Tenant, version: &Version) -> String {
    let pool = |db: &mariadb::Tenant, publish: SocketAddr, max: u32, checkout: u32| {
        let keys = [
            format!("max_connections: {max}"),
            format!("checkout_timeout: {checkout}s"),
            format!("publish: \"{publish}\""),
        ];
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        format!("\n{}", server_pool(addrs.backend, &db.database, &db.user, &keys).trim_end())
    };
    let mut yaml = format!(
        r#"
version: 1
admin: {{ listen: "{admin}" }}
dns:
  hosts:
    api.test: [127.0.0.1]
tenants:
  - name: keep
    allowed_hosts: ["mysql://{backend}"]{keep_pool}
    components:
      - name: echo
        kind: service
        wasm: {echo}
  - name: grow
    allowed_hosts: ["mysql://{backend}"{grow_allowed}]{grow_pool}
    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}", host: grow.localhost }}{broken}
"#,
        admin = addrs.admin,
        ingress = addrs.ingress,
        backend = addrs.backend,
        keep_pool = pool(keep, addrs.keep, 2, 30),
        grow_allowed = version.grow_allowed,
        grow_pool = pool(grow, addrs.grow, version.grow_max, version.grow_checkout),
        broken = version.broken,
        echo = guest("echo-service.wasm"),
        gateway = guest("http_gateway.wasm"),
    );
    for tenant in version.tenants {
        yaml.push_str(tenant);
    }
    yaml
}

/// Runs `switchyard reload` on `switchyard`'s config: exit code, stdout, stderr.
fn reload(switchyard: &Switchyard) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("reload")
        .arg(switchyard.config_path())
        .output()
        .expect("run switchyard reload");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn metrics(switchyard: &Switchyard) -> String {
    let (status, body) = request(switchyard.admin, "admin", "GET", "/metrics", b"").await;
    assert_eq!(status, 200);
    body
}

async fn generation(switchyard: &Switchyard) -> String {
    let body = switchyard.healthz().await.1;
    body.lines().find(|l| l.starts_with("config generation")).unwrap_or_default().to_owned()
}

/// An HTTP/1.1 connection to `addr` kept open across requests.
async fn kept_alive(
    addr: SocketAddr,
) -> hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    sender
}

/// POSTs `hi` to `path` on a kept-alive connection: status and body, or `None` if the
/// connection is gone.
async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>>,
    host: &str,
    path: &str,
) -> Option<(u16, String)> {
    use http_body_util::BodyExt;
    sender.ready().await.ok()?;
    let request = hyper::Request::post(path)
        .header("host", host)
        .body(http_body_util::Full::new(hyper::body::Bytes::from_static(b"hi")))
        .expect("request");
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

fn opts(db: &mariadb::Tenant, addr: SocketAddr) -> mysql_async::Opts {
    let url = format!("mysql://{}:{}@{addr}/{}", db.user, db.password, db.database);
    mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&url).expect("url"))
        .prefer_socket(false)
        .into()
}

/// A session inside a transaction, with a user variable set: what a reload must not end.
async fn held_session(db: &mariadb::Tenant, addr: SocketAddr) -> (mysql_async::Conn, u64) {
    let mut conn = mysql_async::Conn::new(opts(db, addr)).await.expect("connect through the pool");
    conn.query_drop("SET @held = 42").await.expect("set");
    conn.query_drop("BEGIN").await.expect("begin");
    let id: u64 = conn.query_first("SELECT CONNECTION_ID()").await.expect("id").expect("a row");
    (conn, id)
}

/// Checks that `conn` is the same session on the same backend connection, then commits.
async fn still_held(conn: &mut mysql_async::Conn, id: u64, what: &str) {
    let row: Option<(u64, u64)> =
        conn.query_first("SELECT CONNECTION_ID(), @held").await.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(row, Some((id, 42)), "{what}: the session or its transaction did not survive the reload");
    conn.query_drop("COMMIT").await.unwrap_or_else(|e| panic!("{what}: commit: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_changes_and_keeps_what_did_not_change() {
    let server = mariadb::server();
    let db = server.tenant("e2e_reload", "pw-e2e-reload");
    // Its own user, so that the server's count of its connections is the grow pool's alone.
    let grow_db = server.tenant("e2e_reload_grow", &db.password);
    let addrs = Addrs {
        admin: SocketAddr::from(([127, 0, 0, 1], free_port())),
        ingress: SocketAddr::from(([127, 0, 0, 1], free_port())),
        keep: SocketAddr::from(([127, 0, 0, 1], free_port())),
        grow: SocketAddr::from(([127, 0, 0, 1], free_port())),
        gone: SocketAddr::from(([127, 0, 0, 1], free_port())),
        backend: server.addr,
    };
    let v1 = Version {
        grow_max: 1,
        grow_allowed: "",
        tenants: &[echo_tenant("gone", addrs.gone)],
        broken: "",
        grow_checkout: 30,
    };
    let env = [("E2E_POOL_PASSWORD", db.password.as_str())];
    let switchyard =
        Switchyard::start_with("reload", addrs.admin, &config(&addrs, &db, &grow_db, &v1), &env, &[]);
    switchyard.wait_for_log("switchyard is up", Duration::from_secs(60));
    switchyard.wait_for_log_count("service running", 2, Duration::from_secs(30));
    assert_eq!(generation(&switchyard).await, "config generation 1");
    assert!(metrics(&switchyard).await.contains("switchyard_config_generation 1\n"));

    let (mut keep, keep_id) = held_session(&db, addrs.keep).await;
    let (mut grow, grow_id) = held_session(&grow_db, addrs.grow).await;
    // A client of the tenant about to be removed keeps its connection alive.
    let mut gone_client = kept_alive(addrs.gone).await;
    assert_eq!(send(&mut gone_client, "gone.localhost", "/echo").await, Some((200, "gone:hi".into())));
    assert_eq!(request(addrs.ingress, "fresh.localhost", "POST", "/echo", b"hi").await.0, 404);
    // grow's policy does not cover api.test yet: the lookup is denied.
    assert_eq!(request(addrs.ingress, "grow.localhost", "GET", "/lookup/api.test", b"").await.0, 502);

    // Version 2: grow's pool 1 → 3 and api.test allowed; gone removed, fresh added.
    let v2 = Version {
        grow_max: 3,
        grow_allowed: r#", "http://api.test:8000""#,
        tenants: &[echo_tenant("fresh", addrs.ingress)],
        broken: "",
        grow_checkout: 30,
    };
    std::fs::write(switchyard.config_path(), config(&addrs, &db, &grow_db, &v2)).expect("write v2");
    let (code, out, err) = reload(&switchyard);
    assert_eq!(code, 0, "reload failed:\n{out}{err}\nlog:\n{}", switchyard.log());
    assert!(
        out.contains("config generation 2: added fresh; removed gone; restarted none; changed in place grow; unchanged 1"),
        "{out}"
    );
    assert_eq!(generation(&switchyard).await, "config generation 2");

    // Both held sessions go on, on their own backend connections, inside their transactions.
    still_held(&mut keep, keep_id, "the unchanged tenant's session").await;
    still_held(&mut grow, grow_id, "the resized pool's session").await;
    // The new policy decides new lookups.
    assert_eq!(
        request(addrs.ingress, "grow.localhost", "GET", "/lookup/api.test", b"").await,
        (200, "127.0.0.1\n".into())
    );
    switchyard.wait_for_log("egress policy changed", Duration::from_secs(5));
    // The new cap: grow's held session (pinned by its user variable) and two transactions at
    // once (with the old cap of 1 they would wait out the 30 s checkout_timeout).
    let two = async {
        let mut conns = Vec::new();
        for _ in 0..2 {
            let mut conn = mysql_async::Conn::new(opts(&grow_db, addrs.grow)).await.expect("connect");
            conn.query_drop("BEGIN").await.expect("begin");
            conn.query_drop("SELECT 1").await.expect("select");
            conns.push(conn);
        }
        conns
    };
    let conns = tokio::time::timeout(Duration::from_secs(10), two)
        .await
        .expect("three connections at once after growing to 3");
    for mut conn in conns {
        conn.query_drop("COMMIT").await.expect("commit");
        conn.disconnect().await.expect("quit");
    }
    let text = metrics(&switchyard).await;
    assert!(
        text.contains("switchyard_pool_backend_connections_limit{tenant=\"grow\",pool=\"main\"} 3\n"),
        "{text}"
    );
    assert!(text.contains("switchyard_config_generation 2\n"));
    assert!(text.contains("switchyard_config_reloads_total{outcome=\"applied\"} 1\n"));
    assert!(!text.contains("tenant=\"gone\""), "a removed tenant is still in /metrics");
    // Tenants came and went.
    assert_eq!(
        request(addrs.ingress, "fresh.localhost", "POST", "/echo", b"hi").await,
        (200, "fresh:hi".into())
    );
    // The removed tenant's address no longer listens, and its kept-alive client reaches nothing.
    assert!(
        tokio::net::TcpStream::connect(addrs.gone).await.is_err(),
        "the removed tenant's address listens"
    );
    let after = send(&mut gone_client, "gone.localhost", "/echo").await;
    assert!(
        matches!(after, None | Some((404, _))),
        "a kept-alive client reached a removed tenant: {after:?}"
    );

    // A config with an error: `reload` gets the error with its key, nothing changes.
    let broken = Version { broken: "\n    limits: { max_instancez: 3 }", ..v2 };
    std::fs::write(switchyard.config_path(), config(&addrs, &db, &grow_db, &broken))
        .expect("write the broken config");
    let (code, out, err) = reload(&switchyard);
    assert_eq!(code, 1, "a broken config was not rejected:\n{out}{err}");
    assert!(
        err.contains("max_instancez") && err.contains("the config in force is unchanged (generation 2)"),
        "{err}"
    );
    assert_eq!(generation(&switchyard).await, "config generation 2");
    switchyard.wait_for_log("reload rejected", Duration::from_secs(5));
    let (mut keep2, keep2_id) = held_session(&db, addrs.keep).await;
    assert!(metrics(&switchyard).await.contains("switchyard_config_reloads_total{outcome=\"rejected\"} 1\n"));

    // A config `check` accepts that cannot be built: a new tenant publishes its pool on an
    // address another process holds. Rejected whole, naming the key; the rest runs on.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = squatter.local_addr().expect("addr");
    let late = format!(
        "\n  - name: late\n    allowed_hosts: [\"mysql://{}\"]\n{}",
        addrs.backend,
        server_pool(addrs.backend, &db.database, &db.user, &[&format!("publish: \"{taken}\"")]).trim_end()
    );
    let unbuildable = Version { tenants: &[echo_tenant("fresh", addrs.ingress), late], ..v2 };
    std::fs::write(switchyard.config_path(), config(&addrs, &db, &grow_db, &unbuildable)).expect("write");
    let (code, out, err) = reload(&switchyard);
    assert_eq!(code, 1, "an unbuildable config was not rejected:\n{out}{err}");
    assert!(err.contains("tenants[late].pools[0].publish") && err.contains(&taken.to_string()), "{err}");
    assert_eq!(generation(&switchyard).await, "config generation 2");
    assert_eq!(
        request(addrs.ingress, "fresh.localhost", "POST", "/echo", b"hi").await,
        (200, "fresh:hi".into())
    );
    drop(squatter);

    // SIGHUP: fresh's service gets a new greeting and grow's pool a new checkout_timeout, so
    // both are rebuilt (grow's published listener passes to its new pool); keep stays.
    let fresh2 = echo_tenant("fresh", addrs.ingress)
        .replace("ECHO_GREETING: \"fresh:\"", "ECHO_GREETING: \"fresh2:\"");
    let before = server.connections_of(&grow_db.user);
    assert!(before >= 2, "grow's pool holds {before} backend connections before its rebuild");
    let v3 = Version { tenants: &[fresh2], grow_checkout: 29, ..v2 };
    std::fs::write(switchyard.config_path(), config(&addrs, &db, &grow_db, &v3)).expect("write v3");
    let hup = Command::new("kill").arg("-HUP").arg(switchyard.pid().to_string()).status().expect("kill -HUP");
    assert!(hup.success());
    switchyard.wait_for_log("restarted grow, fresh", Duration::from_secs(30));
    assert_eq!(generation(&switchyard).await, "config generation 3");
    let mut answer = (0, String::new());
    for _ in 0..200 {
        answer = request(addrs.ingress, "fresh.localhost", "POST", "/echo", b"hi").await;
        if answer == (200, "fresh2:hi".to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(answer, (200, "fresh2:hi".into()), "the restarted tenant does not answer with its new env");
    still_held(&mut keep2, keep2_id, "the unchanged tenant's session across SIGHUP").await;
    // The rebuilt tenant's sessions ended and its old pool's connections closed (the new pool
    // opens one at start); its published address serves its new pool.
    assert!(grow.query_drop("SELECT 1").await.is_err(), "a session of a rebuilt tenant survived");
    let mut open = usize::MAX;
    for _ in 0..200 {
        open = server.connections_of(&grow_db.user);
        if open <= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(open <= 1, "the rebuilt tenant's old pool still holds {open} backend connections");
    let (mut regrown, id) = held_session(&grow_db, addrs.grow).await;
    still_held(&mut regrown, id, "a session of the rebuilt pool").await;

    for conn in [keep, keep2, regrown] {
        conn.disconnect().await.expect("quit");
    }
    let (status, log) = switchyard.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");
}

/// Replaces `path`'s content at once, as the kubelet swaps a ConfigMap volume's files.
fn replace_file(path: &std::path::Path, text: &str) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, text).expect("write the new config");
    std::fs::rename(&staged, path).expect("swap the config in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_config_reloads_a_changed_file_and_tries_a_rejected_one_only_once() {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let head = format!("version: 1\nadmin: {{ listen: \"{admin}\" }}\ntenants:");
    let one = format!("{head}{}", echo_tenant("first", ingress));
    let switchyard = Switchyard::start_with("reload_watch", admin, &one, &[], &["--watch-config"]);
    switchyard.wait_for_log("switchyard is up", Duration::from_secs(60));

    let two = format!("{one}{}", echo_tenant("second", ingress));
    replace_file(&switchyard.config_path(), &two);
    switchyard.wait_for_log("added second", Duration::from_secs(30));
    assert_eq!(generation(&switchyard).await, "config generation 2");
    let mut answer = (0, String::new());
    for _ in 0..200 {
        answer = request(ingress, "second.localhost", "POST", "/echo", b"hi").await;
        if answer.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(answer, (200, "second:hi".into()));

    // A broken file is rejected once, then left alone until it changes again.
    replace_file(&switchyard.config_path(), &format!("{two}    limits: {{ max_instancez: 3 }}\n"));
    switchyard.wait_for_log("reload rejected: the config in force is unchanged", Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(5)).await; // two more checks of the file
    let log = switchyard.log();
    assert_eq!(log.matches("reload rejected: the config in force is unchanged").count(), 1, "{log}");
    assert_eq!(generation(&switchyard).await, "config generation 2");
    let (status, log) = switchyard.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");
}
