//! Pooling behaviour against a real MariaDB: multiplexing under a hard cap (counted on the
//! server), state never leaking between clients (variables, prepared statements' schema and
//! `sql_mode`, `LAST_INSERT_ID()`), pins, prepared statements moving between connections,
//! checkout timeouts, killed backends and clients, tenant isolation.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use mysql_async::prelude::*;
use support::{Published, config, publish, server, watch_connections};
use switchyard_pooler::InsertIds;
use switchyard_pooler::pins::PinReason;
use switchyard_pooler::stats::ErrorKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_sessions_share_four_connections() {
    let tenant = server().tenant("pool_mux", "pw-mux");
    let published = Arc::new(publish(tenant.clone(), config(&tenant, 4)).await);
    let mut setup = published.conn().await;
    setup.query_drop("CREATE TABLE counters (id INT PRIMARY KEY, n INT NOT NULL)").await.expect("create");
    setup.query_drop("INSERT INTO counters VALUES (0, 0), (1, 0), (2, 0), (3, 0)").await.expect("rows");
    setup.query_drop("CREATE TABLE log (session INT, tx INT, PRIMARY KEY (session, tx))").await.expect("log");
    setup.disconnect().await.expect("quit");

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_connections(tenant.user.clone(), stop.clone(), Duration::from_millis(20));
    let mut sessions = Vec::new();
    for session in 0..200 {
        let published = published.clone();
        sessions.push(tokio::spawn(async move {
            let mut conn = published.conn().await;
            for tx in 0..10 {
                let mut t = conn.start_transaction(mysql_async::TxOpts::default()).await.expect("begin");
                t.exec_drop("UPDATE counters SET n = n + 1 WHERE id = ?", (session % 4,))
                    .await
                    .expect("update");
                t.exec_drop("INSERT INTO log VALUES (?, ?)", (session, tx)).await.expect("insert");
                t.commit().await.expect("commit");
            }
            conn.disconnect().await.expect("quit");
        }));
    }
    for session in sessions {
        session.await.expect("a session failed");
    }
    stop.store(true, Ordering::Relaxed);
    let max_seen = watcher.await.expect("watcher");

    let mut check = published.conn().await;
    let total: Option<i64> = check.query_first("SELECT SUM(n) FROM counters").await.expect("sum");
    let logged: Option<i64> = check.query_first("SELECT COUNT(*) FROM log").await.expect("count");
    assert_eq!((total, logged), (Some(2000), Some(2000)));
    assert!(max_seen <= 4, "MariaDB saw {max_seen} connections from a pool capped at 4");
    assert!(max_seen >= 1, "the watcher never saw the pool's connections");
    let snapshot = published.pooler.pool().snapshot();
    assert!(snapshot.backend_open <= 4 && snapshot.connects <= 4, "{snapshot:?}");
    assert_eq!(snapshot.errors_of(ErrorKind::CheckoutTimeout), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_clients_settings_never_reach_another() {
    let tenant = server().tenant("pool_state", "pw-state");
    let published = publish(tenant.clone(), config(&tenant, 1)).await;
    let mut a = published.conn().await;
    let mut b = published.conn().await;
    let defaults: Option<(String, String)> =
        b.query_first("SELECT @@sql_mode, @@time_zone").await.expect("b");

    a.query_drop("SET sql_mode = 'ANSI_QUOTES', time_zone = '+05:00'").await.expect("a sets");
    a.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED").await.expect("a isolation");
    let seen_by_b: Option<(String, String)> =
        b.query_first("SELECT @@sql_mode, @@time_zone").await.expect("b");
    assert_eq!(seen_by_b, defaults, "b saw a's settings");
    let b_isolation: Option<String> = b.query_first("SELECT @@tx_isolation").await.expect("b");
    assert_eq!(b_isolation.as_deref(), Some("REPEATABLE-READ"));

    let seen_by_a: Option<(String, String, String)> =
        a.query_first("SELECT @@sql_mode, @@time_zone, @@tx_isolation").await.expect("a");
    assert_eq!(seen_by_a, Some(("ANSI_QUOTES".into(), "+05:00".into(), "READ-COMMITTED".into())));
    let snapshot = published.pooler.pool().snapshot();
    assert_eq!(snapshot.connects, 1, "both clients took turns on one connection");
    assert_eq!(snapshot.pins, [0; PinReason::ALL.len()], "tracked settings do not pin");
}

/// Runs `setup` on one session, lets another client take the connection the session would
/// otherwise have given back, and runs `check` on the first session; also whether the session
/// stayed on one backend connection throughout.
async fn pinned(published: &Published, setup: &str, check: &str) -> (Option<i64>, bool) {
    // The last case's sessions have left and their connections are back (reset) in the pool.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let pool = published.pooler.pool().snapshot();
        if pool.clients == 0 && pool.backend_idle == pool.backend_open {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the last case's sessions never left: {pool:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut session = published.conn().await;
    // Nothing pins yet: the connection goes back, and (the idle list being LIFO) the setup
    // takes the same one again.
    let before: Option<u64> = session.query_first("SELECT CONNECTION_ID()").await.expect("id");
    session.query_drop(setup).await.expect("setup");
    let mut other = published.conn().await;
    let mut tx = other.start_transaction(mysql_async::TxOpts::default()).await.expect("other begins");
    tx.query_drop("SELECT 1").await.expect("other holds a connection");
    let result: Option<i64> = session.query_first(check).await.expect("check");
    let after: Option<u64> = session.query_first("SELECT CONNECTION_ID()").await.expect("id");
    tx.commit().await.expect("other commits");
    session.disconnect().await.expect("quit");
    other.disconnect().await.expect("quit");
    (result, before == after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_pin_reason_keeps_the_connection_and_is_counted() {
    let tenant = server().tenant("pool_pins", "pw-pins");
    let published = publish(tenant.clone(), config(&tenant, 2)).await;
    let mut setup = published.conn().await;
    setup
        .query_drop("CREATE TABLE pin_t (a INT); INSERT INTO pin_t VALUES (1), (2), (3)")
        .await
        .expect("create");
    setup.disconnect().await.expect("quit");
    let cases = [
        (PinReason::TemporaryTable, "CREATE TEMPORARY TABLE tmp (a INT)", "SELECT COUNT(*) FROM tmp", 0),
        (PinReason::LockTables, "LOCK TABLES pin_t READ", "SELECT COUNT(*) FROM pin_t", 3),
        (PinReason::GetLock, "SELECT GET_LOCK('pin', 1)", "SELECT IS_USED_LOCK('pin') = CONNECTION_ID()", 1),
        (PinReason::UserVariable, "SET @v = 42", "SELECT @v", 42),
        (PinReason::Prepare, "PREPARE s FROM 'SELECT 7'", "EXECUTE s", 7),
        (PinReason::FoundRows, "SELECT SQL_CALC_FOUND_ROWS * FROM pin_t LIMIT 1", "SELECT FOUND_ROWS()", 3),
    ];
    for (reason, setup, check, expected) in cases {
        let before = published.pooler.pool().snapshot().pins_for(reason);
        let (result, same_connection) = pinned(&published, setup, check).await;
        assert!(same_connection, "{reason}: the session moved to another connection");
        assert_eq!(result, Some(expected), "{reason}");
        let after = published.pooler.pool().snapshot().pins_for(reason);
        assert_eq!(after, before + 1, "{reason} not counted");
    }
    // Nothing pinned outlives its session: a reset connection has no temporary table.
    let mut fresh = published.conn().await;
    let err = fresh.query_drop("SELECT * FROM tmp").await.expect_err("tmp is gone");
    assert!(err.to_string().contains("doesn't exist"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_follow_a_session_to_another_connection() {
    let tenant = server().tenant("pool_stmts", "pw-stmts");
    let published = publish(tenant.clone(), config(&tenant, 2)).await;
    let mut a = published.conn().await;
    let stmt = a.prep("SELECT ? + 1").await.expect("prepare");
    let two: Option<i64> = a.exec_first(&stmt, (1,)).await.expect("exec on the first connection");
    let mut b = published.conn().await;
    let mut tx = b.start_transaction(mysql_async::TxOpts::default()).await.expect("b begins");
    tx.query_drop("SELECT 1").await.expect("b holds the first connection");
    let six: Option<i64> = a.exec_first(&stmt, (5,)).await.expect("exec on the second connection");
    let text: Option<f64> = a.exec_first(&stmt, ("41",)).await.expect("types rebound");
    tx.commit().await.expect("b commits");
    assert_eq!((two, six), (Some(2), Some(6)));
    assert_eq!(text, Some(42.0));
    assert_eq!(published.pooler.pool().snapshot().connects, 2);
    a.close(stmt).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_statement_runs_in_the_schema_and_sql_mode_it_was_prepared_in() {
    let tenant = server().tenant("pool_ctx", "pw-ctx");
    server().root_sql(
        "CREATE DATABASE IF NOT EXISTS pool_ctx_b; GRANT ALL ON pool_ctx_b.* TO 'pool_ctx'@'%'; \
         CREATE OR REPLACE TABLE pool_ctx.t (v VARCHAR(8)); INSERT INTO pool_ctx.t VALUES ('in a'); \
         CREATE OR REPLACE TABLE pool_ctx_b.t (v VARCHAR(8)); INSERT INTO pool_ctx_b.t VALUES ('in b');",
    );
    // One backend connection: both sessions' statements meet on it, with the same text.
    let published = publish(tenant.clone(), config(&tenant, 1)).await;
    let mut a = published.conn().await;
    let mut b = published.conn().await;
    b.query_drop("USE pool_ctx_b").await.expect("b uses the other schema");
    let by_a = a.prep("SELECT v FROM t").await.expect("a prepares");
    let by_b = b.prep("SELECT v FROM t").await.expect("b prepares the same text");
    let seen_by_a: Option<String> = a.exec_first(&by_a, ()).await.expect("a executes");
    let seen_by_b: Option<String> = b.exec_first(&by_b, ()).await.expect("b executes");
    let again_by_a: Option<String> = a.exec_first(&by_a, ()).await.expect("a executes again");
    assert_eq!(
        (seen_by_a.as_deref(), seen_by_b.as_deref(), again_by_a.as_deref()),
        (Some("in a"), Some("in b"), Some("in a")),
        "a statement ran in another session's schema"
    );

    // As on a server, a statement stays bound to the schema it was prepared in.
    a.query_drop("USE pool_ctx_b").await.expect("a changes schema");
    let after_use: Option<String> = a.exec_first(&by_a, ()).await.expect("a executes after USE");
    assert_eq!(after_use.as_deref(), Some("in a"));
    let current: Option<String> = a.query_first("SELECT DATABASE()").await.expect("a's schema");
    assert_eq!(current.as_deref(), Some("pool_ctx_b"), "the session keeps its own schema");

    // ANSI_QUOTES makes "v" a column instead of a string: the same text, two statements.
    let mut ansi = published.conn().await;
    ansi.query_drop("SET sql_mode = 'ANSI_QUOTES'").await.expect("ansi mode");
    let by_ansi = ansi.prep(r#"SELECT "v" FROM t"#).await.expect("ansi prepares");
    let plain = b.prep(r#"SELECT "v" FROM t"#).await.expect("b prepares");
    let column: Option<String> = ansi.exec_first(&by_ansi, ()).await.expect("ansi executes");
    let literal: Option<String> = b.exec_first(&plain, ()).await.expect("b executes");
    let column_again: Option<String> = ansi.exec_first(&by_ansi, ()).await.expect("ansi again");
    assert_eq!(
        (column.as_deref(), literal.as_deref(), column_again.as_deref()),
        (Some("in a"), Some("v"), Some("in a"))
    );
    assert_eq!(published.pooler.pool().snapshot().connects, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_insert_id_is_each_sessions_own() {
    let tenant = server().tenant("pool_lii", "pw-lii");
    // One backend connection: every session's statements run on it in turn.
    let published = publish(tenant.clone(), config(&tenant, 1)).await;
    let (mut a, mut b, mut c) = (published.conn().await, published.conn().await, published.conn().await);
    a.query_drop("CREATE OR REPLACE TABLE parent (id INT AUTO_INCREMENT PRIMARY KEY, v INT UNIQUE)")
        .await
        .expect("parent table");
    a.query_drop("CREATE OR REPLACE TABLE child (parent INT)").await.expect("child table");
    let ask = "SELECT LAST_INSERT_ID()";

    a.query_drop("INSERT INTO parent (v) VALUES (1)").await.expect("a inserts");
    b.query_drop("INSERT INTO parent (v) VALUES (2), (3)").await.expect("b inserts two");
    // An explicit id leaves LAST_INSERT_ID() alone, though the OK packet reports it.
    a.query_drop("INSERT INTO parent (id, v) VALUES (100, 4)").await.expect("a inserts id 100");
    let by_a: Option<u64> = a.query_first(ask).await.expect("a asks");
    let by_b: Option<u64> = b.query_first(ask).await.expect("b asks");
    let by_c: Option<u64> = c.query_first(ask).await.expect("c asks");
    assert_eq!((by_a, by_b, by_c), (Some(1), Some(2), Some(0)), "a session saw another's insert id");

    // Inside another statement, from a prepared statement, and set explicitly.
    a.query_drop("INSERT INTO child VALUES (LAST_INSERT_ID())").await.expect("a uses its id");
    let child: Option<u64> = c.query_first("SELECT parent FROM child").await.expect("child row");
    assert_eq!(child, Some(1));
    let prepared: Option<u64> = b.exec_first("SELECT LAST_INSERT_ID() + ?", (0,)).await.expect("b prepared");
    assert_eq!(prepared, Some(2));
    b.query_drop("SELECT LAST_INSERT_ID(42)").await.expect("b sets 42");
    let by_a: Option<u64> = a.query_first(ask).await.expect("a asks again");
    let by_b: Option<u64> = b.query_first(ask).await.expect("b asks again");
    assert_eq!((by_a, by_b), (Some(1), Some(42)));

    // Inside a transaction the value stays on the held connection, and is read back after it.
    a.query_drop("BEGIN").await.expect("a begins");
    a.query_drop("INSERT INTO parent (v) VALUES (5)").await.expect("a inserts in a transaction");
    let in_tx: Option<u64> = a.query_first(ask).await.expect("a asks in the transaction");
    a.query_drop("COMMIT").await.expect("a commits");
    let by_b: Option<u64> = b.query_first(ask).await.expect("b asks after a's transaction");
    let after_tx: Option<u64> = a.query_first(ask).await.expect("a asks after the transaction");
    assert_eq!((in_tx, by_b, after_tx), (Some(101), Some(42), Some(101)));
    b.query_drop("INSERT INTO parent (v) VALUES (6)").await.expect("b inserts again");
    a.query_drop("BEGIN").await.expect("a begins again");
    a.query_drop("INSERT INTO parent (id, v) VALUES (200, 7)").await.expect("a inserts id 200");
    let explicit_in_tx: Option<u64> = a.query_first(ask).await.expect("a asks after an explicit id");
    a.query_drop("COMMIT").await.expect("a commits again");
    let by_b: Option<u64> = b.query_first(ask).await.expect("b asks for its own");
    assert_eq!((explicit_in_tx, by_b), (Some(101), Some(102)), "b's value leaked into a's transaction");

    // A reset session starts from 0, as on a server.
    a.reset().await.expect("a resets");
    let reset: Option<u64> = a.query_first(ask).await.expect("a asks after the reset");
    assert_eq!(reset, Some(0));
    assert_eq!(published.pooler.pool().snapshot().connects, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_insert_ids_are_the_oks_and_still_each_sessions_own() {
    let tenant = server().tenant("pool_lii_ok", "pw-lii-ok");
    let mut config = config(&tenant, 1);
    config.insert_ids = InsertIds::Reported;
    let published = publish(tenant.clone(), config).await;
    let (mut a, mut b, mut c) = (published.conn().await, published.conn().await, published.conn().await);
    a.query_drop("CREATE OR REPLACE TABLE parent (id INT AUTO_INCREMENT PRIMARY KEY, v INT UNIQUE)")
        .await
        .expect("parent table");
    let ask = "SELECT LAST_INSERT_ID()";

    a.query_drop("INSERT INTO parent (v) VALUES (1)").await.expect("a inserts");
    b.query_drop("INSERT INTO parent (v) VALUES (2), (3)").await.expect("b inserts two");
    let by_a: Option<u64> = a.query_first(ask).await.expect("a asks");
    let by_b: Option<u64> = b.query_first(ask).await.expect("b asks");
    let by_c: Option<u64> = c.query_first(ask).await.expect("c asks");
    assert_eq!((by_a, by_b, by_c), (Some(1), Some(2), Some(0)), "a session saw another's insert id");

    // The documented difference: an explicit id is taken as reported (a server keeps 1).
    a.query_drop("INSERT INTO parent (id, v) VALUES (100, 4)").await.expect("a inserts id 100");
    let by_a: Option<u64> = a.query_first(ask).await.expect("a asks after an explicit id");
    let by_b: Option<u64> = b.query_first(ask).await.expect("b asks again");
    assert_eq!((by_a, by_b), (Some(100), Some(2)));

    // A value set by the function is still read back, whatever the OKs report.
    b.query_drop("SELECT LAST_INSERT_ID(42)").await.expect("b sets 42");
    let by_b: Option<u64> = b.query_first(ask).await.expect("b asks after setting");
    let by_a: Option<u64> = a.query_first(ask).await.expect("a asks last");
    assert_eq!((by_b, by_a), (Some(42), Some(100)));
    assert_eq!(published.pooler.pool().snapshot().connects, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_and_errors_are_seen_only_by_their_session() {
    let tenant = server().tenant("pool_warn", "pw-warn");
    // One backend connection: both sessions use it in turn.
    let published = publish(tenant.clone(), config(&tenant, 1)).await;
    let mut a = published.conn().await;
    let mut b = published.conn().await;
    type Warning = (String, u32, String);

    a.query_drop("CREATE OR REPLACE TABLE w (v INT)").await.expect("a table");

    // An error stays in its session's diagnostics area, as on a server: the session keeps the
    // connection (b waits for it) until a statement that names a table empties the area.
    a.query_drop("SELECT * FROM no_such_table").await.expect_err("a's error");
    let waiting = tokio::spawn(async move {
        let seen: Vec<Warning> = b.query("SHOW WARNINGS").await.expect("b shows warnings");
        let count: Option<u32> = b.query_first("SELECT @@warning_count").await.expect("b counts");
        (seen, count, b)
    });
    wait_for_a_waiter(&published).await;
    let own: Vec<Warning> = a.query("SHOW WARNINGS").await.expect("a shows its error");
    assert_eq!(own.iter().map(|w| w.1).collect::<Vec<_>>(), [1146], "{own:?}");
    a.query_drop("SELECT 1").await.expect("a runs a statement that names no table");
    let still: Vec<Warning> = a.query("SHOW WARNINGS").await.expect("a shows its error again");
    assert_eq!(still.len(), 1, "a table-less statement keeps the area, as on a server: {still:?}");
    assert!(!waiting.is_finished(), "b ran while a's error was in the area");
    a.query_drop("SELECT COUNT(*) FROM w").await.expect("a names a table");
    let (seen_by_b, count, mut b) = waiting.await.expect("b's task");
    assert_eq!((seen_by_b, count), (vec![], Some(0)), "b saw a's error");

    // A warning likewise.
    a.query_drop("SELECT 1/0").await.expect("a divides by zero");
    let waiting = tokio::spawn(async move {
        let seen: Vec<Warning> = b.query("SHOW WARNINGS").await.expect("b shows warnings");
        (seen, b)
    });
    wait_for_a_waiter(&published).await;
    let own: Vec<Warning> = a.query("SHOW WARNINGS").await.expect("a shows its warnings");
    assert_eq!(own.iter().map(|w| w.1).collect::<Vec<_>>(), [1365], "{own:?}");
    a.query_drop("SELECT v FROM w").await.expect("a moves on");
    let (seen_by_b, _b) = waiting.await.expect("b's task");
    assert_eq!(seen_by_b, [], "b saw a's warning");

    // A session that leaves with its warnings: they are emptied before anyone gets the
    // connection.
    a.query_drop("SELECT 1/0").await.expect("a divides by zero again");
    a.disconnect().await.expect("a leaves");
    let mut c = published.conn().await;
    let seen_by_c: Vec<Warning> = c.query("SHOW WARNINGS").await.expect("c shows warnings");
    assert_eq!(seen_by_c, [], "c saw the warning a left behind");
}

/// Waits until a client waits for a connection.
async fn wait_for_a_waiter(published: &Published) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while published.pooler.pool().snapshot().waiting == 0 {
        assert!(std::time::Instant::now() < deadline, "no client ever waited for the connection");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_answers_with_an_error_that_says_so() {
    let tenant = server().tenant("pool_timeout", "pw-timeout");
    let mut cfg = config(&tenant, 1);
    cfg.pool.checkout_timeout = Duration::from_millis(300);
    let published = publish(tenant.clone(), cfg).await;
    let mut holder = published.conn().await;
    let mut waiter = published.conn().await;
    holder.query_drop("BEGIN").await.expect("begin");
    holder.query_drop("SELECT 1").await.expect("hold");
    let err = waiter.query_drop("SELECT 1").await.expect_err("no connection for the waiter");
    let text = err.to_string();
    assert!(
        text.contains("pool test/pool_timeout is exhausted: 1 of 1 backend connections in use, waited"),
        "{text}"
    );
    assert!(text.contains("checkout_timeout"), "{text}");
    holder.query_drop("COMMIT").await.expect("commit");
    let one: Option<i64> = waiter.query_first("SELECT 1").await.expect("served after the commit");
    assert_eq!(one, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backend_connection_costs_one_error() {
    let tenant = server().tenant("pool_kill", "pw-kill");
    let published = publish(tenant.clone(), config(&tenant, 1)).await;
    let mut client = published.conn().await;
    let id: Option<u64> = client.query_first("SELECT CONNECTION_ID()").await.expect("id");
    let id = id.expect("an id");
    // Killed while a query runs on it (seen running in the process list first): that query
    // gets an ERR, the next one works.
    let killer = tokio::task::spawn_blocking(move || {
        let running = format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id} AND INFO LIKE 'SELECT SLEEP%'"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while server().root_sql(&running).trim() != "1" {
            assert!(std::time::Instant::now() < deadline, "the SLEEP never showed in the process list");
            std::thread::sleep(Duration::from_millis(10));
        }
        server().root_sql(&format!("KILL {id}"));
    });
    let err = client.query_drop("SELECT SLEEP(30)").await.expect_err("the killed connection fails");
    killer.await.expect("kill");
    assert!(err.to_string().contains("lost its backend connection"), "{err}");
    assert!(matches!(&err, mysql_async::Error::Server(e) if e.code == 2013), "{err}");
    let id: Option<u64> = client.query_first("SELECT CONNECTION_ID()").await.expect("the next query works");
    assert_eq!(published.pooler.pool().snapshot().errors_of(ErrorKind::BackendBroken), 1);
    // Killed while idle in the pool: noticed at checkout, no client sees an error.
    let id = id.expect("an id");
    tokio::task::spawn_blocking(move || server().root_sql(&format!("KILL {id}"))).await.expect("kill");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let one: Option<i64> = client.query_first("SELECT 1").await.expect("served on a fresh connection");
    assert_eq!(one, Some(1));
    assert_eq!(published.pooler.pool().snapshot().errors_of(ErrorKind::BackendBroken), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_mid_transaction_leaves_no_lock() {
    let tenant = server().tenant("pool_gone", "pw-gone");
    let published = publish(tenant.clone(), config(&tenant, 2)).await;
    let mut setup = published.conn().await;
    setup.query_drop("CREATE TABLE g (id INT PRIMARY KEY, v INT) ENGINE=InnoDB").await.expect("create");
    setup.query_drop("INSERT INTO g VALUES (1, 0)").await.expect("row");
    setup.disconnect().await.expect("quit");

    let mut locker = published.conn().await;
    locker.query_drop("BEGIN").await.expect("begin");
    locker.query_drop("SELECT * FROM g WHERE id = 1 FOR UPDATE").await.expect("lock the row");
    drop(locker); // the socket closes without COM_QUIT, mid-transaction

    let mut other = published.conn().await;
    other.query_drop("SET innodb_lock_wait_timeout = 5").await.expect("timeout");
    other.query_drop("UPDATE g SET v = 2 WHERE id = 1").await.expect("the row is free again");
    let v: Option<i64> = other.query_first("SELECT v FROM g WHERE id = 1").await.expect("read");
    assert_eq!(v, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_flood_does_not_starve_another() {
    let flooded = server().tenant("pool_flooded", "pw-flood");
    let calm = server().tenant("pool_calm", "pw-calm");
    let mut flooded_cfg = config(&flooded, 2);
    flooded_cfg.pool.checkout_timeout = Duration::from_millis(200);
    let flooded = Arc::new(publish(flooded.clone(), flooded_cfg).await);
    let calm = publish(calm.clone(), config(&calm, 2)).await;

    let failures = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for _ in 0..40 {
        let (flooded, failures) = (flooded.clone(), failures.clone());
        flood.push(tokio::spawn(async move {
            let Ok(mut conn) = mysql_async::Conn::new(flooded.opts()).await else {
                failures.fetch_add(1, Ordering::Relaxed);
                return;
            };
            for _ in 0..5 {
                if conn.query_drop("SELECT SLEEP(0.05)").await.is_err() {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let mut conn = calm.conn().await;
    for i in 0..50 {
        let got: Option<i64> = conn.exec_first("SELECT ?", (i,)).await.expect("the calm tenant is served");
        assert_eq!(got, Some(i));
    }
    for task in flood {
        task.await.expect("flood task");
    }
    assert!(failures.load(Ordering::Relaxed) > 0, "the flood should have exhausted its own pool");
    assert_eq!(calm.pooler.pool().snapshot().errors_of(ErrorKind::CheckoutTimeout), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode_keeps_one_connection_per_session_and_resets_it_after() {
    let tenant = server().tenant("pool_session", "pw-session");
    let mut cfg = config(&tenant, 1);
    cfg.mode = switchyard_pooler::PoolMode::Session;
    cfg.pool.checkout_timeout = Duration::from_millis(300);
    let published = publish(tenant.clone(), cfg).await;
    let mut first = published.conn().await;
    first.query_drop("SET @kept = 7").await.expect("user variable");
    let kept: Option<i64> = first.query_first("SELECT @kept").await.expect("same connection");
    assert_eq!(kept, Some(7));
    // The only connection is the first session's until it ends: a second session logs in (its
    // driver's set-up read is answered by the pool) and its first statement finds no connection.
    let mut waiting = published.conn().await;
    let err = waiting.query_drop("DO 1").await.expect_err("no connection while the first lives");
    assert!(err.to_string().contains("exhausted"), "{err}");
    drop(waiting);
    first.disconnect().await.expect("quit");
    // Reset on release: the next session finds no trace of the first.
    let mut second = published.conn().await;
    let leaked: Option<Option<i64>> = second.query_first("SELECT @kept").await.expect("after the first ends");
    assert_eq!(leaked, Some(None), "the first session's variable leaked");
    assert_eq!(published.pooler.pool().snapshot().connects, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_is_checked_and_starts_the_session_over() {
    let tenant = server().tenant("pool_change", "pw-change");
    let published = publish(tenant.clone(), config(&tenant, 1)).await;
    let mut conn = published.conn().await;
    conn.query_drop("SET @before = 1, time_zone = '+03:00'").await.expect("state");
    let same = mysql_async::ChangeUserOpts::default()
        .with_user(Some(tenant.user.clone()))
        .with_pass(Some(tenant.password.clone()))
        .with_db_name(Some(tenant.database.clone()));
    conn.change_user(same).await.expect("change to the same user");
    let state: Option<(Option<i64>, String)> =
        conn.query_first("SELECT @before, @@time_zone").await.expect("after");
    assert_eq!(state, Some((None, "SYSTEM".to_owned())), "state survived COM_CHANGE_USER");
    let wrong = mysql_async::ChangeUserOpts::default()
        .with_user(Some(tenant.user.clone()))
        .with_pass(Some("nope".to_owned()));
    let err = conn.change_user(wrong).await.expect_err("wrong password");
    assert!(err.to_string().contains("Access denied"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_without_release_gives_its_slot_back() {
    // A session whose task ends with a connection in hand (cancelled, or an early return) must
    // not keep the slot: with one connection allowed, the next checkout would wait out
    // checkout_timeout for a connection nobody holds.
    let tenant = server().tenant("pool_drop_slot", "pw-drop-slot");
    let published = publish(tenant.clone(), config(&tenant, 1)).await;
    let pool = published.pooler.pool();
    let conn = pool.checkout(false, None).await.expect("first checkout");
    assert_eq!(pool.snapshot().backend_open, 1);
    drop(conn);
    assert_eq!(pool.snapshot().backend_open, 0, "the dropped connection's slot is free");
    let started = std::time::Instant::now();
    let conn = pool.checkout(false, None).await.expect("a checkout after the drop");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "waited {:?} for a slot nobody held",
        started.elapsed()
    );
    pool.release(conn).await;

    // Dropped while another session waits: the waiter gets a connection of its own.
    let held = pool.checkout(false, None).await.expect("held");
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.checkout(false, None).await.map(|_| ()) })
    };
    while pool.snapshot().waiting == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(held);
    waiter.await.expect("waiter task").expect("the waiter is served after the drop");
}
