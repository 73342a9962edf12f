//! A differential isolation test: scripts for 2–4 client sessions, drawn from a corpus of
//! session-scoped statements (temporary tables, user variables, named and table locks,
//! sequences, prepared statements of both kinds, warnings, insert ids, variable changes,
//! transactions, multi-statements, `EXECUTE IMMEDIATE`, executable comments), run interleaved
//! through a pool of one or two backend connections, and then in the same order on one direct
//! connection per session. Every result each session saw must equal what it saw directly: the
//! real server is the oracle. A difference fails and prints the interleaving; failing cases are
//! kept in `differential.proptest-regressions` and run first.
//!
//! A step that finds the pool exhausted (`1040`: every connection held by pinned sessions or
//! transactions) did not run; it is tried again after another session's step, so the order that
//! is replayed directly is the order in which statements ran.

mod support;

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use support::{Published, config, publish, server};

/// One statement of a script.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A text query (`COM_QUERY`), all its result sets.
    Text(&'static str),
    /// A binary prepared statement with one integer parameter, or none.
    Binary(&'static str, Option<i64>),
}

const CORPUS: [Step; 44] = [
    Step::Text("CREATE TEMPORARY TABLE tt (a INT)"),
    Step::Text("INSERT INTO tt VALUES (1)"),
    Step::Text("SELECT COUNT(*) FROM tt"),
    Step::Text("CREATE OR REPLACE TEMPORARY TABLE tt AS SELECT 'secret' a"),
    Step::Text("DROP TEMPORARY TABLE IF EXISTS tt"),
    Step::Text("SET @v = 1"),
    Step::Text("SELECT @v"),
    Step::Text("EXECUTE IMMEDIATE 'SET @w = 42'"),
    Step::Text("SELECT @w"),
    Step::Text("SELECT GET_LOCK('diff_lock', 0)"),
    Step::Text("SELECT IS_FREE_LOCK('diff_lock')"),
    Step::Text("SELECT RELEASE_LOCK('diff_lock')"),
    Step::Text("EXECUTE IMMEDIATE 'SELECT GET_LOCK(''diff_lock'', 0)'"),
    Step::Text("SELECT NEXTVAL(s)"),
    Step::Text("SELECT LASTVAL(s)"),
    Step::Text("SELECT PREVIOUS VALUE FOR s"),
    Step::Text("PREPARE ps FROM 'SELECT 7'"),
    Step::Text("EXECUTE ps"),
    Step::Text("INSERT INTO t (v) VALUES (1)"),
    Step::Text("SELECT LAST_INSERT_ID()"),
    Step::Text("SELECT @@identity"),
    Step::Text("SET time_zone = '+01:00'"),
    Step::Text("SELECT @@time_zone"),
    Step::Text("SET sql_mode = 'ANSI_QUOTES'"),
    Step::Text("SELECT \"a\" FROM r ORDER BY a LIMIT 1"),
    Step::Text("BEGIN"),
    Step::Text("SELECT COUNT(*) FROM t"),
    Step::Text("COMMIT"),
    Step::Text("ROLLBACK"),
    Step::Text("SELECT CAST('x' AS INT)"),
    Step::Text("SHOW WARNINGS"),
    Step::Text("SELECT @@warning_count"),
    Step::Text("SET time_zone = '+02:00'; CREATE OR REPLACE TEMPORARY TABLE mt AS SELECT 1 v"),
    Step::Text("SELECT v FROM mt"),
    Step::Text("LOCK TABLES r READ"),
    Step::Text("UNLOCK TABLES"),
    Step::Text("SELECT a FROM r ORDER BY a"),
    Step::Text("/*M! CREATE TEMPORARY TABLE ct (a INT) */"),
    Step::Text("SELECT COUNT(*) FROM ct"),
    Step::Binary("SELECT ? + 1", Some(1)),
    Step::Binary("SELECT @v", None),
    Step::Binary("INSERT INTO t (v) VALUES (?)", Some(2)),
    Step::Binary("SELECT COUNT(*) FROM tt", None),
    Step::Binary("SET @v = ?", Some(5)),
];

/// What a step saw: every row of every result set (values as SQL literals, the case's database
/// name written `DB`, since the two runs use two databases), or the error code.
type Seen = Result<Vec<Vec<String>>, u16>;

/// The pool is exhausted: the step did not run.
const EXHAUSTED: u16 = 1040;

async fn run(conn: &mut Conn, step: Step, database: &str) -> Seen {
    let result: mysql_async::Result<Vec<Vec<String>>> = async {
        let literal = |row: Row| {
            row.unwrap().iter().map(|v: &Value| v.as_sql(true).replace(database, "DB")).collect::<Vec<_>>()
        };
        match step {
            Step::Text(sql) => {
                let mut result = conn.query_iter(sql).await?;
                let mut rows = Vec::new();
                while !result.is_empty() {
                    let set: Vec<Row> = result.collect().await?;
                    rows.extend(set.into_iter().map(literal));
                }
                Ok(rows)
            }
            Step::Binary(sql, param) => {
                let params = match param {
                    Some(p) => mysql_async::Params::Positional(vec![Value::Int(p)]),
                    None => mysql_async::Params::Empty,
                };
                let rows: Vec<Row> = conn.exec(sql, params).await?;
                Ok(rows.into_iter().map(literal).collect())
            }
        }
    }
    .await;
    result.map_err(|error| match error {
        mysql_async::Error::Server(e) => e.code,
        other => panic!("{step:?}: {other}"),
    })
}

/// One generated case.
#[derive(Debug, Clone)]
struct Case {
    /// Backend connections in the pool (1 or 2).
    pool: usize,
    /// Each session's script, as corpus indices.
    scripts: Vec<Vec<usize>>,
    /// Which unfinished session goes next, taken modulo their number.
    picks: Vec<usize>,
}

fn cases() -> impl Strategy<Value = Case> {
    (1usize..=2, prop::collection::vec(prop::collection::vec(0..CORPUS.len(), 1..=7), 2..=4))
        .prop_flat_map(|(pool, scripts)| {
            let steps: usize = scripts.iter().map(Vec::len).sum();
            (Just(pool), Just(scripts), prop::collection::vec(0usize..4, steps * 4))
        })
        .prop_map(|(pool, scripts, picks)| Case { pool, scripts, picks })
}

/// The order in which steps ran: (session, step index in its script), or a session leaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Ran(usize, usize),
    Left(usize),
}

/// The tables and sequence every case starts from, in `database`.
async fn reset_schema(admin: &mut Conn, database: &str) {
    admin
        .query_drop(format!(
            "USE {database}; DROP TABLE IF EXISTS t, r; DROP SEQUENCE IF EXISTS s; \
             CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT); \
             CREATE TABLE r (a INT); INSERT INTO r VALUES (1), (2); CREATE SEQUENCE s"
        ))
        .await
        .expect("reset the case's tables");
}

fn direct_opts(database: &str) -> mysql_async::Opts {
    let url = format!("mysql://diff:pw-diff@{}/{database}", server().addr);
    mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&url).expect("url"))
        .prefer_socket(false)
        .into()
}

/// Runs `case` through `published`; what each step saw and the order they ran in.
async fn run_pooled(published: &Published, case: &Case) -> (Vec<Vec<Seen>>, Vec<Event>) {
    let mut conns = Vec::new();
    for _ in &case.scripts {
        conns.push(Some(published.conn().await));
    }
    let mut seen: Vec<Vec<Seen>> = case.scripts.iter().map(|_| Vec::new()).collect();
    let mut events = Vec::new();
    let mut blocked = vec![false; case.scripts.len()];
    let mut picks = case.picks.iter().copied().cycle();
    let steps: usize = case.scripts.iter().map(Vec::len).sum();
    let mut attempts = 0;
    while conns.iter().any(Option::is_some) {
        attempts += 1;
        assert!(attempts <= steps * 20, "no progress: every session waits for the pool ({events:?})");
        let ready: Vec<usize> = (0..conns.len()).filter(|&s| conns[s].is_some() && !blocked[s]).collect();
        if ready.is_empty() {
            // Everyone waited once since the last step ran: a release may be in flight.
            blocked.iter_mut().for_each(|b| *b = false);
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let session = ready[picks.next().unwrap_or(0) % ready.len()];
        let at = seen[session].len();
        let step = CORPUS[case.scripts[session][at]];
        let conn = conns[session].as_mut().expect("an open session");
        let result = run(conn, step, &published.tenant.database).await;
        if result == Err(EXHAUSTED) {
            blocked[session] = true;
            continue;
        }
        blocked.iter_mut().for_each(|b| *b = false);
        seen[session].push(result);
        events.push(Event::Ran(session, at));
        if seen[session].len() == case.scripts[session].len() {
            conns[session].take().expect("open").disconnect().await.expect("quit");
            events.push(Event::Left(session));
            // A session has left when the pooler has given back (and reset) its connection.
            let open = conns.iter().filter(|c| c.is_some()).count() as u64;
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while published.pooler.pool().snapshot().clients > open {
                assert!(std::time::Instant::now() < deadline, "the pooler never saw session {session} leave");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    (seen, events)
}

/// Replays `events` on one direct connection per session.
async fn run_direct(case: &Case, events: &[Event], database: &str, admin: &mut Conn) -> Vec<Vec<Seen>> {
    let mut conns = Vec::new();
    for _ in &case.scripts {
        conns.push(Some(Conn::new(direct_opts(database)).await.expect("direct connection")));
    }
    let mut seen: Vec<Vec<Seen>> = case.scripts.iter().map(|_| Vec::new()).collect();
    for event in events {
        match *event {
            Event::Ran(session, at) => {
                let step = CORPUS[case.scripts[session][at]];
                let conn = conns[session].as_mut().expect("an open session");
                seen[session].push(run(conn, step, database).await);
            }
            Event::Left(session) => {
                let mut conn = conns[session].take().expect("open");
                let id: Option<u64> = conn.query_first("SELECT CONNECTION_ID()").await.expect("id");
                conn.disconnect().await.expect("quit");
                // A session has left when the server has ended it (its locks are free).
                let gone = format!(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {}",
                    id.unwrap_or(0)
                );
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while admin.query_first::<u64, _>(&gone).await.expect("process list") != Some(0) {
                    assert!(std::time::Instant::now() < deadline, "the server never ended session {session}");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
    seen
}

fn describe(case: &Case, events: &[Event], pooled: &[Vec<Seen>], direct: &[Vec<Seen>]) -> String {
    let mut out = format!("pool of {} connection(s); the interleaving as it ran:\n", case.pool);
    for event in events {
        match *event {
            Event::Ran(session, at) => {
                let (p, d) = (&pooled[session][at], &direct[session][at]);
                let mark = if p == d { "  " } else { "≠ " };
                out += &format!(
                    "{mark}session {session}: {:?}\n      pooled {p:?}\n      direct {d:?}\n",
                    CORPUS[case.scripts[session][at]]
                );
            }
            Event::Left(session) => out += &format!("  session {session} leaves\n"),
        }
    }
    out
}

#[test]
fn interleaved_sessions_through_the_pool_see_what_they_see_alone() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let tenant = server().tenant("diff", "pw-diff");
    server().root_sql("CREATE DATABASE IF NOT EXISTS diff_direct; GRANT ALL ON diff_direct.* TO 'diff'@'%';");
    let (poolers, admin) = rt.block_on(async {
        let mut poolers = Vec::new();
        for size in [1, 2] {
            let mut cfg = config(&tenant, size);
            // A step that finds every connection held is retried later: find out soon.
            cfg.pool.checkout_timeout = Duration::from_millis(30);
            poolers.push(Arc::new(publish(tenant.clone(), cfg).await));
        }
        let admin = Conn::new(direct_opts("diff")).await.expect("admin connection");
        (poolers, tokio::sync::Mutex::new(admin))
    });
    let cases_wanted = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(200);
    let config = Config {
        cases: cases_wanted,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        source_file: Some(file!()),
        max_shrink_iters: 200,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let outcome = runner.run(&cases(), |case| {
        rt.block_on(async {
            let mut admin = admin.lock().await;
            reset_schema(&mut admin, "diff").await;
            reset_schema(&mut admin, "diff_direct").await;
            let published = &poolers[case.pool - 1];
            let (pooled, events) = run_pooled(published, &case).await;
            let direct = run_direct(&case, &events, "diff_direct", &mut admin).await;
            if pooled != direct {
                return Err(TestCaseError::fail(describe(&case, &events, &pooled, &direct)));
            }
            Ok(())
        })
    });
    if let Err(error) = outcome {
        panic!("{error}");
    }
}
