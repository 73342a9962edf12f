//! TLS for a pool's published clients (MySQL's in-protocol TLS: `SSLRequest`, then the login
//! inside TLS), with real clients: the `mariadb` CLI (`--ssl`), PyMySQL (`ssl_ca=`) and
//! `mysql_async` (rustls). A pool that requires TLS refuses a plain client before it sends its
//! password's scramble, with MySQL's error 3159 naming the pool.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use mysql_async::prelude::*;
use support::{TcpConnector, Tenant, config, server};
use switchyard_pooler::Pooler;
use switchyard_pooler::client_tls::ClientTls;
use tokio::net::TcpListener;

/// A self-signed certificate for `localhost` and `127.0.0.1`, and its key, as PEM files in a
/// folder named after `test`; the certificate's path (it is its own CA) and the key's.
fn certificate(test: &str) -> (PathBuf, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tls-clients").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("folder");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("write the certificate");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write the key");
    (cert, key)
}

/// A pooler for `tenant` with client TLS (`required` or offered), published on a loopback port.
async fn publish_tls(tenant: &Tenant, test: &str, required: bool) -> (SocketAddr, PathBuf) {
    let (cert, key) = certificate(test);
    let mut config = config(tenant, 2);
    config.client_tls = Some(ClientTls::from_pem_files(&cert, &key, required).expect("client TLS"));
    let pooler = Pooler::new(config, Arc::new(TcpConnector(server().addr)));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let pooler = pooler.clone();
            tokio::spawn(async move { pooler.serve_published(stream, &peer.to_string()).await });
        }
    });
    (addr, cert)
}

fn opts(tenant: &Tenant, addr: SocketAddr, ca: Option<&PathBuf>) -> mysql_async::Opts {
    let url = format!("mysql://{}:{}@{addr}/{}", tenant.user, tenant.password, tenant.database);
    let builder = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&url).expect("url"))
        .prefer_socket(false);
    match ca {
        Some(ca) => {
            builder.ssl_opts(mysql_async::SslOpts::default().with_root_certs(vec![ca.clone().into()])).into()
        }
        None => builder.into(),
    }
}

/// The `mariadb` CLI against `addr` with `args` before `-e sql`; (exit ok, stdout, stderr).
fn mariadb_cli(tenant: &Tenant, addr: SocketAddr, args: &[&str], sql: &str) -> (bool, String, String) {
    let out = Command::new("mariadb")
        .args(["--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "--batch", "--skip-column-names"])
        .arg(format!("-P{}", addr.port()))
        .arg(format!("-u{}", tenant.user))
        .arg(format!("-p{}", tenant.password))
        .args(args)
        .arg(&tenant.database)
        .args(["-e", sql])
        .output()
        .expect("run mariadb");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// PyMySQL (Debian's `python3-pymysql`) with `ssl_ca=ca`: the TLS version it used and a query.
fn pymysql_tls(tenant: &Tenant, addr: SocketAddr, ca: &std::path::Path) -> String {
    let script = r#"
import sys, pymysql
host, port, user, password, db, ca = sys.argv[1:7]
c = pymysql.connect(host=host, port=int(port), user=user, password=password, database=db, ssl_ca=ca)
cur = c.cursor(); cur.execute("SELECT 7"); print(c._sock.version(), cur.fetchone()[0]); c.close()
"#;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script, "127.0.0.1", &addr.port().to_string()])
        .args([&tenant.user, &tenant.password, &tenant.database])
        .arg(ca)
        .output()
        .expect("run /usr/bin/python3 (Debian's python3-pymysql; scripts/test.sh installs it)");
    assert!(out.status.success(), "PyMySQL failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_ask_for_tls_get_it_and_plain_ones_still_work_where_it_is_offered() {
    let tenant = server().tenant("tls_offered", "pw-tls-offered");
    let (addr, ca) = publish_tls(&tenant, "offered", false).await;

    let t = tenant.clone();
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || mariadb_cli(&t, addr, &["--ssl"], "SELECT 7; \\s"))
            .await
            .expect("join");
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("7\n"), "{stdout}");
    assert!(stdout.contains("Cipher in use is TLS"), "the CLI did not use TLS:\n{stdout}");

    let (t, c) = (tenant.clone(), ca.clone());
    let python = tokio::task::spawn_blocking(move || pymysql_tls(&t, addr, &c)).await.expect("join");
    assert_eq!(python, "TLSv1.3 7");

    let mut secure =
        mysql_async::Conn::new(opts(&tenant, addr, Some(&ca))).await.expect("mysql_async over TLS");
    let seven: Option<u8> = secure.query_first("SELECT 7").await.expect("query over TLS");
    assert_eq!(seven, Some(7));
    secure.disconnect().await.expect("quit");

    let mut plain =
        mysql_async::Conn::new(opts(&tenant, addr, None)).await.expect("a plain client, TLS only offered");
    plain.query_drop("DO 1").await.expect("query");
    plain.disconnect().await.expect("quit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_that_requires_tls_refuses_plain_clients_with_a_clear_error() {
    let tenant = server().tenant("tls_required", "pw-tls-required");
    let (addr, ca) = publish_tls(&tenant, "required", true).await;

    let error = mysql_async::Conn::new(opts(&tenant, addr, None)).await.expect_err("a plain client");
    let text = error.to_string();
    assert!(text.contains("3159") && text.contains("requires TLS"), "{text}");
    let t = tenant.clone();
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || mariadb_cli(&t, addr, &["--skip-ssl"], "SELECT 7"))
            .await
            .expect("join");
    assert!(!ok && stderr.contains("ERROR 3159") && stderr.contains("requires TLS"), "{ok} {stdout}{stderr}");

    // Clients that start TLS get in. mysql_async sends its TLS ClientHello right behind its
    // SSLRequest: the two often arrive in one read (the handshake failed with "tls handshake
    // eof" until the bytes read past the SSLRequest were handed to TLS).
    for _ in 0..20 {
        let mut secure =
            mysql_async::Conn::new(opts(&tenant, addr, Some(&ca))).await.expect("mysql_async over TLS");
        let seven: Option<u8> = secure.query_first("SELECT 7").await.expect("query over TLS");
        assert_eq!(seven, Some(7));
        secure.disconnect().await.expect("quit");
    }
    let t = tenant.clone();
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || mariadb_cli(&t, addr, &["--ssl"], "SELECT 7"))
            .await
            .expect("join");
    assert!(ok && stdout.trim() == "7", "{stdout}{stderr}");
}
