//! No session state crosses clients (THREATS.md: every tenant, and every client of a pool, may be
//! hostile). Through a pool of one backend connection in transaction mode, client A leaves
//! something session-scoped behind; client B, a new session, looks for it while A is still
//! connected and after A left. The oracle is the server itself: B's probe run on a fresh direct
//! connection, where it sees none of A's session.
//!
//! Also measured here: what `COM_RESET_CONNECTION` clears on the MariaDB the tests run (the
//! pooler resets every connection whose session may have left state behind before anyone else
//! gets it), and what it keeps (the current schema, which the pooler then tracks itself).

mod support;

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use support::{Published, config, publish, server};

/// What a probe saw: its rows (first column, as text) or the server's error code.
type Seen = Result<Vec<Option<String>>, u16>;

async fn run(conn: &mut mysql_async::Conn, sql: &str) -> Seen {
    match conn.query::<Option<String>, _>(sql).await {
        Ok(rows) => Ok(rows),
        Err(mysql_async::Error::Server(error)) => Err(error.code),
        Err(other) => panic!("{sql}: {other}"),
    }
}

fn direct_opts(published: &Published) -> mysql_async::Opts {
    let tenant = &published.tenant;
    let url = format!("mysql://{}:{}@{}/{}", tenant.user, tenant.password, server().addr, tenant.database);
    mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&url).expect("url"))
        .prefer_socket(false)
        .into()
}

/// Runs `attack` as client A, then `probe` as client B while A stays connected (B waits for
/// the one connection if A pinned it) and again after A left; both must see what `probe` sees
/// on a fresh direct connection.
async fn check(published: &Published, setup: &[&str], attack: &[&str], probe: &str) {
    let mut direct = mysql_async::Conn::new(direct_opts(published)).await.expect("direct");
    for sql in setup {
        direct.query_drop(*sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let expected = run(&mut direct, probe).await;
    direct.disconnect().await.expect("quit");

    let mut a = published.conn().await;
    for sql in attack {
        a.query_drop(*sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let opts = published.opts();
    let probe_owned = probe.to_owned();
    let while_connected = tokio::spawn(async move {
        // mysql_async's connect runs a query: it too waits for the connection A holds.
        let mut b = mysql_async::Conn::new(opts).await.expect("B connects");
        let seen = run(&mut b, &probe_owned).await;
        (b, seen)
    });
    // Let B either finish or queue for the connection A holds, then A leaves.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !while_connected.is_finished() && published.pooler.pool().snapshot().waiting == 0 {
        assert!(Instant::now() < deadline, "B neither ran nor waited for a connection");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.disconnect().await.expect("A quits");
    let (b, seen_while_connected) = while_connected.await.expect("B");
    assert_eq!(seen_while_connected, expected, "after {attack:?}, B's {probe:?} while A was connected");
    b.disconnect().await.expect("B quits");

    let mut c = published.conn().await;
    let seen_after = run(&mut c, probe).await;
    assert_eq!(seen_after, expected, "after {attack:?}, a new client's {probe:?} after A left");
    c.disconnect().await.expect("C quits");
}

async fn one_connection_pool(name: &str) -> Published {
    let tenant = server().tenant(name, &format!("pw-{name}"));
    publish(tenant.clone(), config(&tenant, 1)).await
}

#[tokio::test]
async fn temporary_tables_do_not_cross_sessions() {
    let published = one_connection_pool("iso_temp").await;
    let probe = "SELECT v FROM t";
    check(&published, &[], &["CREATE OR REPLACE TEMPORARY TABLE t AS SELECT 'secret' v"], probe).await;
    check(&published, &[], &["EXECUTE IMMEDIATE 'CREATE TEMPORARY TABLE t AS SELECT ''secret'' v'"], probe)
        .await;
    check(&published, &[], &["/*M! CREATE TEMPORARY TABLE t AS SELECT 'secret' v */"], probe).await;
    check(&published, &[], &["/*!50000 CREATE TEMPORARY TABLE t AS SELECT 'secret' v */"], probe).await;
    check(&published, &[], &["/*M!100100 CREATE TEMPORARY TABLE t AS SELECT 'secret' v */"], probe).await;
    check(
        &published,
        &[],
        &["SET time_zone = '+01:00'; CREATE OR REPLACE TEMPORARY TABLE t AS SELECT 'secret' v"],
        probe,
    )
    .await;
    check(&published, &[], &["CREATE TEMPORARY TABLE IF NOT EXISTS t AS SELECT 'secret' v"], probe).await;
}

#[tokio::test]
async fn variables_and_locks_set_indirectly_do_not_cross_sessions() {
    let published = one_connection_pool("iso_vars").await;
    check(&published, &[], &["EXECUTE IMMEDIATE 'SET @s3 = 42'"], "SELECT @s3").await;
    check(
        &published,
        &[],
        &["EXECUTE IMMEDIATE 'SELECT GET_LOCK(''lk2'', 0)'"],
        "SELECT IS_USED_LOCK('lk2') IS NOT NULL",
    )
    .await;
    check(
        &published,
        &["CREATE OR REPLACE PROCEDURE set_var() SET @from_proc = 7"],
        &["CALL set_var()"],
        "SELECT @from_proc",
    )
    .await;
    check(
        &published,
        &["CREATE OR REPLACE TABLE h (a INT)", "INSERT INTO h VALUES (1), (2)"],
        &["HANDLER h OPEN", "HANDLER h READ FIRST"],
        "HANDLER h READ NEXT",
    )
    .await;
}

#[tokio::test]
async fn insert_ids_and_sequences_do_not_cross_sessions() {
    let published = one_connection_pool("iso_ids").await;
    let setup = ["CREATE OR REPLACE TABLE ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"];
    let insert = ["INSERT INTO ai (v) VALUES (1)"];
    check(&published, &setup, &insert, "SELECT @@identity").await;
    check(&published, &setup, &insert, "SELECT @@last_insert_id").await;
    check(&published, &setup, &insert, "SELECT @@session.identity").await;
    let sequence = ["CREATE OR REPLACE SEQUENCE seq"];
    check(&published, &sequence, &["SELECT NEXTVAL(seq)"], "SELECT LASTVAL(seq)").await;
    check(&published, &sequence, &["SELECT NEXT VALUE FOR seq"], "SELECT PREVIOUS VALUE FOR seq").await;
    check(&published, &setup, &["XA START 'x1'", "INSERT INTO ai (v) VALUES (1)"], "SELECT COUNT(*) FROM ai")
        .await;
}

#[tokio::test]
async fn a_reset_connection_is_in_the_next_sessions_schema() {
    let published = one_connection_pool("iso_schema").await;
    server().root_sql(
        "CREATE DATABASE IF NOT EXISTS iso_schema_b; GRANT ALL ON iso_schema_b.* TO 'iso_schema'@'%';",
    );
    // The temporary table pins A, so its connection is reset (which keeps the schema) on release.
    let attack = ["USE iso_schema_b", "CREATE TEMPORARY TABLE t (a INT)"];
    check(&published, &[], &attack, "SELECT DATABASE()").await;
}

#[tokio::test]
async fn a_session_without_a_schema_never_gets_anothers() {
    let tenant = server().tenant("iso_noschema", "pw-iso_noschema");
    let mut cfg = config(&tenant, 1);
    cfg.pool.backend.database = None;
    let published = publish(tenant.clone(), cfg).await;
    let url = format!("mysql://{}:{}@{}", tenant.user, tenant.password, published.addr);
    let opts: mysql_async::Opts =
        mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&url).expect("url"))
            .prefer_socket(false)
            .into();
    let mut a = mysql_async::Conn::new(opts.clone()).await.expect("A");
    a.query_drop(format!("USE {}", tenant.database)).await.expect("A picks a schema");
    a.disconnect().await.expect("A quits");
    let mut b = mysql_async::Conn::new(opts).await.expect("B");
    let schema: Option<Option<String>> = b.query_first("SELECT DATABASE()").await.expect("B's schema");
    assert_eq!(schema, Some(None), "B, which named no schema, is in A's");
    b.disconnect().await.expect("B quits");
}

#[tokio::test]
async fn a_client_cannot_kill_another_clients_statement() {
    let tenant = server().tenant("iso_kill", "pw-iso_kill");
    let published = publish(tenant.clone(), config(&tenant, 2)).await;
    let mut a = published.conn().await;
    let id: Option<u64> = a.query_first("SELECT CONNECTION_ID()").await.expect("a backend connection id");
    let mut b = published.conn().await;
    let id = id.expect("an id");
    for kill in [format!("KILL {id}"), format!("KILL QUERY {id}"), format!("SELECT 1; KILL CONNECTION {id}")]
    {
        let err = b.query_drop(&kill).await.expect_err("refused");
        assert!(matches!(&err, mysql_async::Error::Server(e) if e.code == 1235), "{kill}: {err}");
    }
    let one: Option<i64> = a.query_first("SELECT 1").await.expect("a goes on");
    assert_eq!(one, Some(1));
    a.disconnect().await.expect("quit");
    b.disconnect().await.expect("quit");
}

#[tokio::test]
async fn a_reset_clears_every_kind_of_session_state_but_the_schema() {
    let tenant = server().tenant("reset_probe", "pw-reset");
    server().root_sql(
        "CREATE DATABASE IF NOT EXISTS reset_probe_b; GRANT ALL ON reset_probe_b.* TO 'reset_probe'@'%';",
    );
    let url = format!("mysql://{}:{}@{}/{}", tenant.user, tenant.password, server().addr, tenant.database);
    let opts = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&url).expect("url"))
        .prefer_socket(false);
    let mut conn = mysql_async::Conn::new(opts).await.expect("direct connection");
    for sql in [
        "CREATE OR REPLACE TABLE h (a INT)",
        "INSERT INTO h VALUES (1), (2)",
        "CREATE OR REPLACE SEQUENCE seq",
        "CREATE TEMPORARY TABLE tmp (a INT)",
        "SET @user_var = 1",
        "SELECT GET_LOCK('reset_lock', 0)",
        "PREPARE text_stmt FROM 'SELECT 1'",
        "HANDLER h OPEN",
        "SELECT NEXTVAL(seq)",
        "INSERT INTO h VALUES (3)",
        "SET time_zone = '+05:00'",
        "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "LOCK TABLES h READ",
        "UNLOCK TABLES",
        "SELECT LAST_INSERT_ID(77)",
        "USE reset_probe_b",
    ] {
        conn.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let id_before: Option<u32> = conn.query_first("SELECT CONNECTION_ID()").await.expect("id");
    conn.reset().await.expect("COM_RESET_CONNECTION");
    let id_after: Option<u32> = conn.query_first("SELECT CONNECTION_ID()").await.expect("id");
    assert_eq!(id_before, id_after, "the reset is on the same server session");

    let cleared: [(&str, &str); 8] = [
        ("user variables", "SELECT @user_var IS NULL"),
        ("named locks", "SELECT IS_USED_LOCK('reset_lock') IS NULL"),
        ("sequence values", "SELECT LASTVAL(reset_probe.seq) IS NULL"),
        ("LAST_INSERT_ID()", "SELECT LAST_INSERT_ID() = 0"),
        ("@@identity", "SELECT @@identity = 0"),
        ("session variables", "SELECT @@time_zone = @@global.time_zone"),
        ("isolation level", "SELECT @@tx_isolation = @@global.tx_isolation"),
        ("the schema is kept", "SELECT DATABASE() = 'reset_probe_b'"),
    ];
    for (what, check) in cleared {
        let holds: Option<bool> = conn.query_first(check).await.unwrap_or_else(|e| panic!("{check}: {e}"));
        assert_eq!(holds, Some(true), "after a reset: {what} ({check})");
    }
    let err = conn.query_drop("SELECT * FROM reset_probe.tmp").await.expect_err("temporary tables are gone");
    assert!(err.to_string().contains("doesn't exist"), "{err}");
    let err = conn.query_drop("EXECUTE text_stmt").await.expect_err("prepared statements are gone");
    assert!(err.to_string().contains("Unknown prepared statement"), "{err}");
    let err = conn.query_drop("HANDLER h READ FIRST").await.expect_err("handlers are closed");
    assert!(err.to_string().contains("Unknown table"), "{err}");
    conn.disconnect().await.expect("quit");
}
