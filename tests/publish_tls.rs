//! A pool published with TLS (`publish_tls`) by `switchyard up`: PyMySQL with `ssl_ca=` logs in
//! over TLS, a plain client is refused (error 3159, TLS required), and a certificate file that
//! is not there stops `up` with the key that names it.

mod support;

#[path = "../pooler/tests/support/mariadb.rs"]
#[allow(dead_code)] // shared with the pooler's tests; this one uses part of it
mod mariadb;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use support::{Switchyard, free_port, server_pool};

fn config(
    admin: SocketAddr,
    publish: SocketAddr,
    backend: SocketAddr,
    tenant: &mariadb::Tenant,
    cert: &std::path::Path,
) -> String {
    let key = cert.with_file_name("key.pem");
    format!(
        r#"
version: 1
admin: {{ listen: "{admin}" }}
tenants:
  - name: acme
    allowed_hosts: ["mysql://{backend}"]
{pools}"#,
        pools = server_pool(
            backend,
            &tenant.database,
            &tenant.user,
            &[
                &format!("publish: \"{publish}\""),
                &format!("publish_tls: {{ cert: \"{}\", key: \"{}\" }}", cert.display(), key.display()),
            ],
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_pool_requires_tls_and_serves_it() {
    let server = mariadb::server();
    let tenant = server.tenant("e2e_tls", "pw-e2e-tls");
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let publish = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    let certs = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("publish_tls_certs");
    let _ = std::fs::remove_dir_all(&certs);
    std::fs::create_dir_all(&certs).expect("folder");
    let ca = certs.join("cert.pem");
    std::fs::write(&ca, certified.cert.pem()).expect("certificate");
    std::fs::write(certs.join("key.pem"), certified.signing_key.serialize_pem()).expect("key");
    let env = [("E2E_POOL_PASSWORD", tenant.password.as_str())];
    let yaml = config(admin, publish, server.addr, &tenant, &ca);
    let switchyard = Switchyard::start_with("publish_tls", admin, &yaml, &env, &[]);
    switchyard.wait_for_log("switchyard is up", Duration::from_secs(60));

    let script = r#"
import sys, pymysql
host, port, user, password, db, ca = sys.argv[1:7]
c = pymysql.connect(host=host, port=int(port), user=user, password=password, database=db, ssl_ca=ca)
cur = c.cursor(); cur.execute("SELECT 7"); print(c._sock.version(), cur.fetchone()[0]); c.close()
try:
    pymysql.connect(host=host, port=int(port), user=user, password=password, database=db)
    print("plain accepted")
except pymysql.err.MySQLError as e:
    print("plain refused", e.args[0])
"#;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script, "127.0.0.1", &publish.port().to_string()])
        .args([&tenant.user, &tenant.password, &tenant.database])
        .arg(&ca)
        .output()
        .expect("run /usr/bin/python3 (Debian's python3-pymysql; scripts/test.sh installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "TLSv1.3 7\nplain refused 3159");
    switchyard.terminate();

    // A certificate that is not there: `up` stops and names the key.
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let broken = config(admin, publish, server.addr, &tenant, &certs.join("nowhere.pem"));
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e").join("publish_tls_broken");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("folder");
    std::fs::write(dir.join("switchyard.yaml"), broken).expect("config");
    let up = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("up")
        .arg(dir.join("switchyard.yaml"))
        .envs(env)
        .output()
        .expect("switchyard up");
    let text = String::from_utf8_lossy(&up.stderr);
    assert!(!up.status.success(), "{text}");
    assert!(text.contains("tenants[acme].pools[0].publish_tls") && text.contains("nowhere.pem"), "{text}");
}
