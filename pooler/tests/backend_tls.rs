//! TLS to the backend: a private MariaDB that refuses insecure transport
//! (`--require-secure-transport`), a certificate made for the test. The pooler starts TLS inside
//! the MySQL handshake (`SSLRequest`), verifies the certificate for the configured name, and logs
//! in over it; without TLS, or with the wrong name, clients get an ERR that says why.

mod support;

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use support::mariadb::MariaDb;
use support::{config, publish_on, server};
use switchyard_pooler::backend::BackendTls;

fn tls_to(cert: &rcgen::CertifiedKey<rcgen::KeyPair>, server_name: &str) -> BackendTls {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).expect("the test certificate as a root");
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    BackendTls {
        connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        server_name: server_name.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pooler_logs_in_over_tls_and_verifies_the_server_name() {
    let cert = rcgen::generate_simple_self_signed(vec!["db.test".to_owned()]).expect("certificate");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tls-certs");
    std::fs::create_dir_all(&dir).expect("cert folder");
    let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
    let options = [
        format!("--ssl-cert={}", cert_path.display()),
        format!("--ssl-key={}", key_path.display()),
        "--require-secure-transport=ON".to_owned(),
    ];
    let server = tokio::task::spawn_blocking(move || MariaDb::start_with("mariadb-tls", &options))
        .await
        .expect("join")
        .expect("a private MariaDB with TLS");
    let tenant = server.tenant("tls_pool", "pw-tls");
    // Over TLS: logged in, and the server says the session is encrypted.
    let mut cfg = config(&tenant, 2);
    cfg.pool.backend.tls = Some(tls_to(&cert, "db.test"));
    let published = publish_on(server.addr, tenant.clone(), cfg).await;
    let mut conn = published.conn().await;
    let row: Option<(String, String)> =
        conn.query_first("SHOW SESSION STATUS LIKE 'Ssl_version'").await.expect("status through the pooler");
    let version = row.map(|(_, v)| v).unwrap_or_default();
    assert!(version.starts_with("TLSv1."), "the backend session is not over TLS: {version:?}");
    conn.query_drop("CREATE TABLE t (a INT)").await.expect("create");
    conn.exec_drop("INSERT INTO t VALUES (?)", (7,)).await.expect("insert");
    let a: Option<i64> = conn.query_first("SELECT a FROM t").await.expect("select");
    assert_eq!(a, Some(7));

    // Without TLS the server refuses the pool's login (MariaDB 10.11 answers 1045 rather than
    // "insecure transport"); the client hears that the pool cannot log in.
    let plain = publish_on(server.addr, tenant.clone(), config(&tenant, 1)).await;
    let err = mysql_async::Conn::new(plain.opts()).await.expect_err("an insecure login is refused");
    assert!(err.to_string().contains("cannot log in to"), "{err}");

    // A certificate that does not name the configured server: refused before any password is sent.
    let mut wrong = config(&tenant, 1);
    wrong.pool.backend.tls = Some(tls_to(&cert, "other.test"));
    let wrong = publish_on(server.addr, tenant.clone(), wrong).await;
    let err = mysql_async::Conn::new(wrong.opts()).await.expect_err("a wrong name is refused");
    assert!(err.to_string().contains("TLS with") && err.to_string().contains("certificate"), "{err}");

    // The right name, from a CA the pool does not trust: refused too.
    let impostor = rcgen::generate_simple_self_signed(vec!["db.test".to_owned()]).expect("certificate");
    let mut untrusted = config(&tenant, 1);
    untrusted.pool.backend.tls = Some(tls_to(&impostor, "db.test"));
    let untrusted = publish_on(server.addr, tenant.clone(), untrusted).await;
    let err = mysql_async::Conn::new(untrusted.opts()).await.expect_err("an untrusted issuer is refused");
    assert!(err.to_string().contains("TLS with") && err.to_string().contains("certificate"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_offer_tls_never_gets_the_login() {
    // The shared test server offers no TLS.
    let tenant = server().tenant("tls_missing", "pw-tls-missing");
    let cert = rcgen::generate_simple_self_signed(vec!["db.test".to_owned()]).expect("certificate");
    let mut cfg = config(&tenant, 1);
    cfg.pool.backend.tls = Some(tls_to(&cert, "db.test"));
    let before = server().root_sql("SHOW GLOBAL STATUS LIKE 'Aborted_connects'");
    let published = publish_on(server().addr, tenant.clone(), cfg).await;
    let err = mysql_async::Conn::new(published.opts()).await.expect_err("no login without TLS");
    let text = err.to_string();
    assert!(text.contains("TLS"), "{text}");
    assert!(!text.contains("pw-tls-missing"), "the password in an error: {text}");
    // The server saw a connection that never logged in: the pool sent no login (no password
    // scramble) in clear.
    let after = server().root_sql("SHOW GLOBAL STATUS LIKE 'Aborted_connects'");
    let count = |row: &str| row.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    assert!(count(&after) > count(&before), "the server saw a login: {before} -> {after}");
    let logins =
        server().root_sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'tls_missing'");
    assert_eq!(logins.trim(), "0", "a session of the pool's user is logged in");
}
