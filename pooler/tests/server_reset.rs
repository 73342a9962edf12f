//! What `COM_RESET_CONNECTION` clears on the MariaDB the tests run, measured on a direct
//! connection: the pooler resets every connection whose session may have left state behind
//! before anyone else gets it (docs/decisions.md), so each kind of session state it relies on
//! the reset to clear is checked here, and so is what the reset keeps (the current schema, which
//! the pooler then tracks itself).

mod support;

use mysql_async::prelude::*;
use support::server;

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
