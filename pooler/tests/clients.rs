//! Real clients through the pooler against a real MariaDB: `mysql_async` (text and binary
//! protocol, transactions), `sqlx` (text and prepared), the `mariadb` command-line client, and
//! the protocol's edge commands.

mod support;

use std::process::Command;

use mysql_async::prelude::*;
use support::{Tenant, config, publish, server};
use switchyard_pooler::protocol::framing::Sequence;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_async_text_binary_and_transactions() {
    let tenant = server().tenant("clients_async", "pw-async");
    let published = publish(tenant.clone(), config(&tenant, 2)).await;
    let mut conn = published.conn().await;
    conn.query_drop("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), data LONGBLOB)")
        .await
        .expect("create");
    conn.exec_drop("INSERT INTO items (id, name) VALUES (?, ?)", (1, "one")).await.expect("insert 1");
    conn.exec_drop("INSERT INTO items (id, name) VALUES (?, ?)", (2, "two")).await.expect("insert 2");
    let names: Vec<String> = conn.query("SELECT name FROM items ORDER BY id").await.expect("select");
    assert_eq!(names, ["one", "two"]);
    let name: Option<String> =
        conn.exec_first("SELECT name FROM items WHERE id = ?", (2,)).await.expect("exec");
    assert_eq!(name.as_deref(), Some("two"));

    // A rolled-back transaction leaves nothing; a committed one stays.
    let mut tx = conn.start_transaction(mysql_async::TxOpts::default()).await.expect("begin");
    tx.exec_drop("INSERT INTO items (id, name) VALUES (?, ?)", (3, "three")).await.expect("insert in tx");
    tx.rollback().await.expect("rollback");
    let mut tx = conn.start_transaction(mysql_async::TxOpts::default()).await.expect("begin");
    tx.exec_drop("INSERT INTO items (id, name) VALUES (?, ?)", (4, "four")).await.expect("insert in tx");
    tx.commit().await.expect("commit");
    let ids: Vec<i32> = conn.query("SELECT id FROM items ORDER BY id").await.expect("select");
    assert_eq!(ids, [1, 2, 4]);

    // Multi-statement and multi-result replies; the last result (an OK with an info text) is
    // left for the next command to drain.
    let mut result = conn
        .query_iter("SELECT 1; SELECT 2, 3; UPDATE items SET name = 'uno' WHERE id = 1")
        .await
        .expect("multi");
    let first: Vec<i32> = result.collect().await.expect("first set");
    let second: Vec<(i32, i32)> = result.collect().await.expect("second set");
    drop(result);
    assert_eq!((first, second), (vec![1], vec![(2, 3)]));

    // A payload over 16 MiB both ways (split into several packets).
    let big: Vec<u8> = (0..17 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    conn.exec_drop("UPDATE items SET data = ? WHERE id = 2", (big.clone(),)).await.expect("big write");
    let back: Option<Vec<u8>> =
        conn.query_first("SELECT data FROM items WHERE id = 2").await.expect("big read");
    assert_eq!(back.as_deref().map(<[u8]>::len), Some(big.len()));
    assert!(back.is_some_and(|b| b == big), "the 17 MiB value came back changed");

    // Errors are the server's, and the session goes on.
    let err = conn.query_drop("SELECT * FROM no_such_table").await.expect_err("missing table");
    assert!(err.to_string().contains("doesn't exist"), "{err}");
    conn.ping().await.expect("ping");
    conn.reset().await.expect("COM_RESET_CONNECTION");
    let one: Option<i32> = conn.query_first("SELECT 1").await.expect("after reset");
    assert_eq!(one, Some(1));
    conn.disconnect().await.expect("quit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_text_and_prepared() {
    use sqlx::{Connection, Row};
    let tenant = server().tenant("clients_sqlx", "pw-sqlx");
    let published = publish(tenant.clone(), config(&tenant, 2)).await;
    let mut conn = sqlx::MySqlConnection::connect(&published.url()).await.expect("sqlx connects");
    sqlx::raw_sql("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
        .execute(&mut conn)
        .await
        .expect("create");
    for i in 0..5 {
        sqlx::query("INSERT INTO t VALUES (?, ?)")
            .bind(i)
            .bind(format!("v{i}"))
            .execute(&mut conn)
            .await
            .expect("insert");
    }
    let rows = sqlx::query("SELECT id, v FROM t WHERE id >= ? ORDER BY id")
        .bind(3)
        .fetch_all(&mut conn)
        .await
        .expect("select");
    let got: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got, [(3, "v3".to_owned()), (4, "v4".to_owned())]);
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&mut conn).await.expect("count");
    assert_eq!(count, 5);
    conn.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_command_line_client() {
    let tenant = server().tenant("clients_cli", "pw-cli");
    let published = publish(tenant.clone(), config(&tenant, 1)).await;
    let addr = published.addr;
    let out = tokio::task::spawn_blocking(move || {
        Command::new("mariadb")
            .args(["--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "--batch", "--skip-column-names"])
            .arg(format!("-P{}", addr.port()))
            .arg(format!("-u{}", tenant.user))
            .arg(format!("-p{}", tenant.password))
            .arg(&tenant.database)
            .args([
                "-e",
                "CREATE TABLE c (a INT); SELECT 7; INSERT INTO c VALUES (1),(2); SELECT SUM(a), DATABASE() FROM c;",
            ])
            .output()
            .expect("run mariadb")
    })
    .await
    .expect("join");
    assert!(out.status.success(), "mariadb failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "7\n3\tclients_cli");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_unknown_commands_and_local_infile_are_refused() {
    let tenant = server().tenant("clients_edges", "pw-edges");
    let published = publish(tenant.clone(), config(&tenant, 1)).await;

    let opts = mysql_async::OptsBuilder::from_opts(published.opts()).pass(Some("wrong"));
    let err = mysql_async::Conn::new(opts).await.expect_err("wrong password");
    assert!(err.to_string().contains("Access denied"), "{err}");

    let mut conn = published.conn().await;
    conn.query_drop("CREATE TABLE li (a INT)").await.expect("create");
    let err = conn
        .query_drop("LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE li")
        .await
        .expect_err("local infile");
    assert!(
        err.to_string().to_lowercase().contains("not allowed") || err.to_string().contains("1148"),
        "{err}"
    );
    let n: Option<i64> = conn.query_first("SELECT COUNT(*) FROM li").await.expect("session goes on");
    assert_eq!(n, Some(0));
    drop(conn);

    // The pooler's own client handshake logs in; then commands no pooler should forward.
    let mut raw = published.raw_login().await;
    for command in [0x0Cu8 /* PROCESS_KILL */, 0x12 /* BINLOG_DUMP */, 0x1D /* DAEMON */, 0x99] {
        let mut seq = Sequence::new();
        raw.send(&mut seq, &[command, 1, 0, 0, 0]).await.expect("send");
        let reply = raw.read_packet(&mut seq).await.expect("reply").expect("a packet");
        assert_eq!(reply[0], 0xFF, "command 0x{command:02x} got a non-ERR reply");
        assert!(String::from_utf8_lossy(&reply).contains("not supported"));
    }
    // An empty packet is an error too, and the session goes on.
    let mut seq = Sequence::new();
    raw.send(&mut seq, &[]).await.expect("send");
    assert_eq!(raw.read_packet(&mut seq).await.expect("reply").expect("a packet")[0], 0xFF);
    let mut seq = Sequence::new();
    raw.send(&mut seq, &[0x0E]).await.expect("ping");
    assert_eq!(raw.read_packet(&mut seq).await.expect("reply").expect("a packet")[0], 0x00);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_sha2_password_clients_log_in_by_the_fast_path() {
    let tenant = server().tenant("clients_sha2", "pw-sha2");
    let mut cfg = config(&tenant, 1);
    cfg.auth_method = switchyard_pooler::protocol::auth::AuthMethod::CachingSha2Password;
    let published = publish(tenant.clone(), cfg).await;
    let mut conn = published.conn().await;
    let one: Option<i64> = conn.query_first("SELECT 1").await.expect("query");
    assert_eq!(one, Some(1));
    let opts = mysql_async::OptsBuilder::from_opts(published.opts()).pass(Some("wrong"));
    let err = mysql_async::Conn::new(opts).await.expect_err("wrong password");
    assert!(err.to_string().contains("Access denied"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_named_at_login_is_checked_at_login() {
    let tenant = server().tenant("clients_schema", "pw-schema");
    server().root_sql(
        "CREATE DATABASE IF NOT EXISTS clients_schema_other; \
         GRANT ALL ON clients_schema_other.* TO 'clients_schema'@'%'; \
         CREATE DATABASE IF NOT EXISTS clients_schema_forbidden;",
    );
    let published = publish(tenant.clone(), config(&tenant, 1)).await;
    let with_db = |db: &str| mysql_async::OptsBuilder::from_opts(published.opts()).db_name(Some(db));

    // Another schema the user may use: logged in there.
    let mut conn =
        mysql_async::Conn::new(with_db("clients_schema_other")).await.expect("login to another schema");
    let schema: Option<String> = conn.query_first("SELECT DATABASE()").await.expect("select");
    assert_eq!(schema.as_deref(), Some("clients_schema_other"));
    drop(conn);
    // One it may not use, or that does not exist: the login itself fails with the server's error.
    for (db, expected) in [
        ("clients_schema_forbidden", "Access denied for user 'clients_schema'"),
        ("clients_schema_missing", "clients_schema_missing"),
    ] {
        let err = mysql_async::Conn::new(with_db(db)).await.expect_err("a schema the server refuses");
        assert!(err.to_string().contains(expected), "{db}: {err}");
    }
    // The pool's own schema still works, on the same (single) backend connection.
    let mut conn = published.conn().await;
    let schema: Option<String> = conn.query_first("SELECT DATABASE()").await.expect("select");
    assert_eq!(schema.as_deref(), Some("clients_schema"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drivers_set_up_reads_are_answered_by_the_pooler_and_keep_clients_on_it() {
    let tenant = server().tenant("clients_setup_reads", "pw-setup-reads");
    let published = publish(tenant.clone(), config(&tenant, 2)).await;
    let pool = published.pooler.pool();
    // The first login reads the server's settings once.
    let first = published.conn().await;
    let (max_packet, wait_timeout) = server_answers();

    // mysql_async reads `@@max_allowed_packet,@@wait_timeout` on connect: no checkout for it.
    let before = pool.snapshot().checkouts;
    let mut second = published.conn().await;
    assert_eq!(pool.snapshot().checkouts, before, "a connect's set-up read took a backend connection");
    let row: (Option<u64>, Option<u64>, Option<String>) = second
        .query_first("SELECT @@max_allowed_packet, @@wait_timeout, @@socket")
        .await
        .expect("read")
        .expect("row");
    // The pooler takes what the server takes, within the pool's cap (64 MiB in these tests).
    assert_eq!(row, (Some(max_packet.min(64 << 20)), Some(wait_timeout), None));
    second.query_drop("SET SESSION wait_timeout = 77").await.expect("set");
    let own: Option<u64> = second.query_first("SELECT @@wait_timeout").await.expect("read");
    assert_eq!(own, Some(77), "a session's own wait_timeout");

    // With its defaults (`prefer_socket`), mysql_async asked for `@@socket` and reconnected to
    // MariaDB's own socket around the pooler; `NULL` keeps it here.
    let opts = mysql_async::Opts::from_url(&published.url()).expect("url");
    let mut direct_if_it_could = mysql_async::Conn::new(opts).await.expect("connect with defaults");
    let before = pool.snapshot().checkouts;
    direct_if_it_could.query_drop("DO 1").await.expect("a statement");
    assert!(pool.snapshot().checkouts > before, "the statement did not go through the pooler");
    for conn in [first, second, direct_if_it_could] {
        conn.disconnect().await.expect("quit");
    }
}

/// PyMySQL (Debian's `python3-pymysql`, run by Debian's own `python3`), as a Python program
/// would use it: `connect` phase, `CONNECTS` connects that send only what the driver sends
/// (`SET AUTOCOMMIT = 0`) and close; `use` phase, one session reading its settings around a
/// `SET NAMES`, a rollback with nothing to roll back, and a `SET NAMES` the server refuses.
const PYMYSQL: &str = r#"
import sys, pymysql
host, port, user, password, database, phase = sys.argv[1:7]
connect = lambda: pymysql.connect(host=host, port=int(port), user=user, password=password, database=database)
if phase == "connect":
    for _ in range(int(sys.argv[7])):
        connect().close()
elif phase == "names":
    c = connect()
    cur = c.cursor()
    cur.execute("SET NAMES latin1")
    cur.execute("SELECT @@character_set_client, @@character_set_results, @@collation_connection")
    print(cur.fetchone())
    c.close()
else:
    c = connect()
    c.rollback()
    cur = c.cursor()
    ask = "SELECT @@autocommit, @@character_set_client, @@collation_connection"
    cur.execute(ask); print(cur.fetchone())
    c.commit()
    cur.execute("SET NAMES latin1")
    cur.execute(ask); print(cur.fetchone())
    c.rollback()
    for _ in range(2):
        try:
            cur.execute("SET NAMES surely_no_such_charset")
            print("accepted")
        except pymysql.err.MySQLError as e:
            print("refused", e.args[0])
    c.close()
"#;

/// Runs [`PYMYSQL`] against `addr` as `tenant`; its output.
fn pymysql(addr: std::net::SocketAddr, tenant: &Tenant, args: &[&str]) -> String {
    let out = Command::new("/usr/bin/python3")
        .args(["-c", PYMYSQL, "127.0.0.1", &addr.port().to_string()])
        .args([&tenant.user, &tenant.password, &tenant.database])
        .args(args)
        .output()
        .expect("run /usr/bin/python3 (Debian's python3-pymysql; scripts/test.sh installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "PyMySQL failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_drivers_set_up_statements_take_no_backend_connection() {
    let tenant = server().tenant("clients_pymysql", "pw-pymysql");
    let published = publish(tenant.clone(), config(&tenant, 2)).await;
    let pool = published.pooler.pool().clone();
    let addr = published.addr;
    let run = |addr, args: &'static [&'static str]| {
        let tenant = tenant.clone();
        tokio::task::spawn_blocking(move || pymysql(addr, &tenant, args))
    };
    // The first connect's `SET AUTOCOMMIT = 0` goes to the backend; the pool learns its answer.
    run(addr, &["connect", "1"]).await.expect("join");
    let before = pool.snapshot().checkouts;
    run(addr, &["connect", "20"]).await.expect("join");
    assert_eq!(pool.snapshot().checkouts - before, 0, "20 connects took backend connections to set up");

    // A session set up so sees what it would see on the server itself, and the server still
    // refuses what it refuses (a refusal is never remembered as an answer).
    let through_pool = run(addr, &["use"]).await.expect("join");
    let direct = run(server().addr, &["use"]).await.expect("join");
    assert_eq!(through_pool, direct);
    assert_eq!(
        direct.lines().collect::<Vec<_>>(),
        [
            "(0, 'utf8mb4', 'utf8mb4_general_ci')",
            "(0, 'latin1', 'latin1_swedish_ci')",
            "refused 1115",
            "refused 1115"
        ],
        "PyMySQL's own view of a session changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_up_answer_is_never_learnt_from_a_session_that_changed_tracking() {
    let tenant = server().tenant("clients_track", "pw-track");
    let published = publish(tenant.clone(), config(&tenant, 2)).await;
    // A hostile client narrows what its connection reports, then sends the set-up statement
    // its victims will send: the server reports only part of what it changed.
    let mut hostile = published.conn().await;
    hostile
        .query_drop("SET SESSION session_track_system_variables = 'character_set_client'")
        .await
        .expect("narrow tracking");
    hostile.query_drop("SET NAMES latin1").await.expect("set names");
    let addr = published.addr;
    let victim = tokio::task::spawn_blocking(move || pymysql(addr, &tenant, &["names"])).await.expect("join");
    assert_eq!(
        victim.trim(),
        "('latin1', 'latin1', 'latin1_swedish_ci')",
        "the victim's SET NAMES was cut short"
    );
    hostile.disconnect().await.expect("quit");
}

/// `@@max_allowed_packet` and `@@global.wait_timeout` as the server itself answers them.
fn server_answers() -> (u64, u64) {
    let answer = server().root_sql("SELECT @@max_allowed_packet, @@global.wait_timeout");
    let mut values = answer.split_whitespace().filter_map(|v| v.parse::<u64>().ok());
    (values.next().expect("max_allowed_packet"), values.next().expect("wait_timeout"))
}
