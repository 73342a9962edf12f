//! TLS to the backend: a private MariaDB that refuses insecure transport
//! (`--require-secure-transport`), a certificate made for the test. The pooler starts TLS inside
//! the MySQL handshake (`SSLRequest`), verifies the certificate for the configured name, and logs
//! in over it; without TLS, or with the wrong name, clients get an ERR that says why.

mod support;

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use support::mariadb::MariaDb;
use support::{config, publish_on};
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
}
