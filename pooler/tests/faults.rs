//! MariaDB killed (`SIGKILL`) and restarted under load: no client hangs, the statements in
//! flight (and those sent while the server is down) fail with an ERR, no client connection is
//! dropped by the pooler, and new sessions succeed within 2 s of the server being back. The
//! recovery time is printed (`docs/reliability.md` records it).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use support::mariadb::MariaDb;
use support::{Published, config, publish_on};

/// Every client operation must end within this, or the test fails (a hang).
const NO_HANG: Duration = Duration::from_secs(10);
/// Clients of the load.
const CLIENTS: usize = 12;

/// What the load's clients saw.
#[derive(Default)]
struct Seen {
    ok: AtomicU64,
    /// ERR packets (mysql_async's `Error::Server`).
    server_errors: AtomicU64,
    /// Anything else: the connection dropped, a driver error.
    other_errors: AtomicU64,
}

/// One client: a session that runs short transactions until `stop`, at most 20,000 statements.
/// An ERR is counted and the session goes on; any other error ends the client (counted).
async fn client(
    published: Arc<Published>,
    id: usize,
    stop: Arc<AtomicBool>,
    seen: Arc<Seen>,
) -> Option<String> {
    let mut conn = match tokio::time::timeout(NO_HANG, mysql_async::Conn::new(published.opts())).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return Some(format!("client {id} could not connect: {e}")),
        Err(_) => return Some(format!("client {id}: connecting hung")),
    };
    for i in 0..20_000u64 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let statement = format!("INSERT INTO load_rows (client, n) VALUES ({id}, {i})");
        match tokio::time::timeout(NO_HANG, conn.query_drop(statement)).await {
            Err(_) => return Some(format!("client {id}: a statement hung for {NO_HANG:?}")),
            Ok(Ok(())) => {
                seen.ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(mysql_async::Error::Server(_))) => {
                seen.server_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(Err(e)) => {
                seen.other_errors.fetch_add(1, Ordering::Relaxed);
                return Some(format!("client {id}: not an ERR: {e}"));
            }
        }
    }
    let _ = tokio::time::timeout(NO_HANG, conn.disconnect()).await;
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_server_costs_errors_not_hangs() {
    let server = Arc::new(
        tokio::task::spawn_blocking(|| MariaDb::start("mariadb-faults"))
            .await
            .expect("join")
            .expect("a private MariaDB"),
    );
    let tenant = server.tenant("faults", "pw-faults");
    server.root_sql(
        "CREATE TABLE faults.load_rows (id BIGINT AUTO_INCREMENT PRIMARY KEY, client INT, n BIGINT)",
    );
    let published = Arc::new(publish_on(server.addr, tenant.clone(), config(&tenant, 4)).await);

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client(published.clone(), id, stop.clone(), seen.clone())))
        .collect();
    // The load runs: every client has had statements through.
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.ok.load(Ordering::Relaxed) < 10 * CLIENTS as u64 {
        assert!(Instant::now() < deadline, "the load ran almost nothing before the kill");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let killer = server.clone();
    tokio::task::spawn_blocking(move || killer.kill()).await.expect("kill");
    // The clients notice (their statements get ERRs).
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.server_errors.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "no client noticed the kill");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // While it is down (and the pool knows it: the set-up reads a driver sends on connect are
    // answered by the pool until then), a new session is refused with an ERR that says why, not a
    // hang.
    while published.pooler.pool().backend_problem().is_none() {
        assert!(Instant::now() < deadline, "the pool never noticed its backend was down");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = tokio::time::timeout(NO_HANG, mysql_async::Conn::new(published.opts()))
        .await
        .expect("a login while the server is down does not hang")
        .expect_err("no session without a server");
    assert!(refused.to_string().contains("cannot reach its backend"), "{refused}");
    // A connection error (2003), not "too many connections" (1040): the pool is not exhausted.
    assert!(matches!(&refused, mysql_async::Error::Server(e) if e.code == 2003), "{refused}");

    let restarter = server.clone();
    tokio::task::spawn_blocking(move || restarter.restart()).await.expect("restart");
    let back = Instant::now();
    let ok_at_restart = seen.ok.load(Ordering::Relaxed);
    // New sessions: the first that logs in and runs a statement, measured from the server listening.
    let mut recovered = None;
    for _ in 0..200 {
        if let Ok(Ok(mut conn)) =
            tokio::time::timeout(NO_HANG, mysql_async::Conn::new(published.opts())).await
            && conn.query_drop("SELECT 1").await.is_ok()
        {
            recovered = Some(back.elapsed());
            let _ = conn.disconnect().await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let recovered = recovered.expect("no new session succeeded after the restart");
    // The running clients recover too.
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.ok.load(Ordering::Relaxed) < ok_at_restart + 50 * CLIENTS as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for client in clients {
        if let Some(failure) = client.await.expect("client task") {
            failures.push(failure);
        }
    }
    let (ok, errors, other) = (
        seen.ok.load(Ordering::Relaxed),
        seen.server_errors.load(Ordering::Relaxed),
        seen.other_errors.load(Ordering::Relaxed),
    );
    println!(
        "kill -9 under load ({CLIENTS} clients, 4 backend connections): new session {recovered:?} after the \
         server listened again; {ok} statements ok, {errors} ERRs, {other} other errors"
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(ok >= ok_at_restart + 50 * CLIENTS as u64, "the clients did not recover: {ok} ok");
    assert!(errors > 0, "the kill cost no statement an error: was the server killed?");
    // (How soon, `recovered`, is printed above; it is a figure, not an assertion.)
    // Every acknowledged insert survived; at most the failed ones ran without an answer.
    let rows = server.root_sql("SELECT COUNT(*) FROM faults.load_rows").trim().parse::<u64>().expect("count");
    assert!(rows >= ok && rows - ok <= errors, "{ok} acknowledged inserts, {rows} rows after recovery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_accepts_and_never_answers_costs_a_timeout_not_a_slot() {
    // Accepts connections and keeps them, silent.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut kept = Vec::new();
        for _ in 0..100 {
            let Ok((stream, _)) = listener.accept().await else { return };
            kept.push(stream);
        }
    });
    let tenant = support::Tenant { user: "nobody".into(), password: "pw".into(), database: "none".into() };
    let mut cfg = config(&tenant, 2);
    cfg.pool.backend.connect_timeout = Duration::from_millis(400);
    // A login that waited for a slot would wait this long, past NO_HANG.
    cfg.pool.checkout_timeout = Duration::from_secs(60);
    let published = publish_on(silent, tenant, cfg).await;
    // More logins than the pool has slots: each fails at its connect timeout, none waits for a
    // slot (a slot held by a failed dial would make a later login wait, and hang).
    for attempt in 0..5 {
        let started = Instant::now();
        let err = tokio::time::timeout(NO_HANG, mysql_async::Conn::new(published.opts()))
            .await
            .expect("a login does not hang")
            .expect_err("no session without a backend");
        let took = started.elapsed();
        assert!(err.to_string().contains("did not finish connecting and logging in within 400ms"), "{err}");
        assert!(took >= Duration::from_millis(400), "attempt {attempt} failed before the timeout: {took:?}");
    }
    assert_eq!(published.pooler.pool().snapshot().backend_open, 0, "a timed-out open kept its slot");
}
