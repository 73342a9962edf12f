//! The pooler load tool: thousands of concurrent client sessions on one tenant's pooler (8
//! backend connections) against the private MariaDB, each running point selects. Reports
//! throughput, p50/p99 latency, the pooler's heap per session, and the most connections MariaDB
//! saw (never above the cap).
//!
//! `cargo bench -p switchyard-pooler --bench sessions_load` — `LOAD_SESSIONS` (2,000),
//! `LOAD_SECONDS` (10). A soak is the same with a long `LOAD_SECONDS` (`scripts/soak.sh` runs
//! 600): the pooler's heap is sampled every `LOAD_SAMPLE_SECONDS` (30) and must not grow more
//! than 5 % after the first sample; any client error fails the run (exit 1). The clients run in a
//! child process (this binary again), so the heap counted is the pooler's own.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use switchyard_pooler::Pooler;
use tokio::net::TcpListener;

#[path = "../../vnet/benches/support/counting.rs"]
mod counting;
#[path = "../../vnet/benches/support/histogram.rs"]
mod histogram;
#[path = "../../vnet/benches/support/soak.rs"]
mod soak;

const USER: &str = "sessions_load";
const PASSWORD: &str = "load-pw";
const BACKEND_CONNECTIONS: usize = 8;
const ROWS: u64 = 1000;
/// Statements per session at most, whatever the duration (every loop is bounded).
const MAX_STATEMENTS: u64 = 10_000_000;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Child mode: `sessions` sessions opened (at most 64 logins at once), then point selects until
/// `seconds` have passed. Prints `open` when every session is logged in, then
/// `done <statements> <errors> <p50 µs> <p99 µs>`.
async fn clients(addr: SocketAddr, sessions: usize, seconds: u64) {
    let url = format!("mysql://{USER}:{PASSWORD}@{addr}/{USER}");
    let opts: mysql_async::Opts =
        mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&url).expect("url"))
            .prefer_socket(false)
            .into();
    let logins = Arc::new(tokio::sync::Semaphore::new(64));
    let mut opening = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let (opts, logins) = (opts.clone(), logins.clone());
        opening.push(tokio::spawn(async move {
            let _permit = logins.acquire().await.expect("semaphore");
            mysql_async::Conn::new(opts).await
        }));
    }
    let mut conns = Vec::with_capacity(sessions);
    for opened in opening {
        conns.push(opened.await.expect("join").expect("a session through the pooler"));
    }
    println!("open");
    let statements = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let latency = Arc::new(histogram::Histogram::new());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::with_capacity(sessions);
    for (i, mut conn) in conns.into_iter().enumerate() {
        let (statements, errors, latency) = (statements.clone(), errors.clone(), latency.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..MAX_STATEMENTS {
                if Instant::now() >= deadline {
                    break;
                }
                let id = (i as u64 * 7919 + n) % ROWS + 1;
                let sent = Instant::now();
                match conn.query_first::<u64, _>(format!("SELECT v FROM rows_load WHERE id = {id}")).await {
                    Ok(Some(v)) if v == id * 3 => {
                        latency.record(sent.elapsed());
                        statements.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        eprintln!("session {i}: {other:?}");
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let _ = conn.disconnect().await;
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    println!(
        "done {} {} {} {}",
        statements.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        latency.quantile(0.50).as_micros(),
        latency.quantile(0.99).as_micros()
    );
}

/// A pooler for [`USER`] on `backend`, published on loopback, on a single-threaded runtime of
/// its own (as `switchyard up` runs it on a shard).
fn start_pooler(backend: SocketAddr) -> SocketAddr {
    let tenant = support::Tenant { user: USER.into(), password: PASSWORD.into(), database: USER.into() };
    let mut config = support::config(&tenant, BACKEND_CONNECTIONS);
    config.max_client_sessions = 10_000;
    config.pool.checkout_timeout = Duration::from_secs(30);
    config.handshake_timeout = Duration::from_secs(60);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let shard = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        shard.block_on(async move {
            let pooler = Pooler::new(config, Arc::new(support::TcpConnector(backend)));
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send the address");
            while let Ok((stream, peer)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let pooler = pooler.clone();
                tokio::spawn(async move { pooler.serve(stream, &peer.to_string()).await });
            }
        });
    });
    rx.recv().expect("the pooler's address")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--clients") {
        let addr: SocketAddr = args[at + 1].parse().expect("addr");
        let sessions: usize = args[at + 2].parse().expect("sessions");
        let seconds: u64 = args[at + 3].parse().expect("seconds");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(clients(addr, sessions, seconds));
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "sessions_load: skipped (run with `cargo bench -p switchyard-pooler --bench sessions_load`)"
        );
        return;
    }
    let sessions = setting("LOAD_SESSIONS", 2000).max(1) as usize;
    let seconds = setting("LOAD_SECONDS", 10).max(1);
    let sample = setting("LOAD_SAMPLE_SECONDS", if seconds >= 60 { 30 } else { 2 }).clamp(1, seconds);

    let server = support::server();
    server.tenant(USER, PASSWORD);
    server.root_sql(&format!(
        "CREATE TABLE IF NOT EXISTS {USER}.rows_load (id BIGINT PRIMARY KEY, v BIGINT); \
         USE {USER}; INSERT IGNORE INTO rows_load SELECT seq, seq * 3 FROM seq_1_to_{ROWS};"
    ));
    let pooled = start_pooler(server.addr);
    let heap_before = counting::allocated();

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = support::server().watch_connections(USER, stop.clone(), Duration::from_millis(200));
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .args(["--clients", &pooled.to_string(), &sessions.to_string(), &seconds.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the clients");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(first, "open", "the clients could not open their sessions");
    let started = Instant::now();
    let idle_per = counting::allocated().saturating_sub(heap_before) / sessions;

    let mut samples = Vec::new();
    while started.elapsed() + Duration::from_secs(sample) <= Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(sample));
        let heap = counting::allocated().saturating_sub(heap_before);
        samples.push(heap);
        println!(
            "  {:>5.0}s: pooler heap {:>7.1} MiB",
            started.elapsed().as_secs_f64(),
            heap as f64 / (1 << 20) as f64
        );
    }
    let done = lines.next().and_then(Result::ok).unwrap_or_default();
    let status = child.wait().expect("wait for the clients");
    stop.store(true, Ordering::Relaxed);
    let max_backend = watcher.join().expect("watcher");
    let fields: Vec<u64> = done.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let [statements, errors, p50, p99] = fields[..] else {
        panic!("the clients did not report (exit {status}): {done:?}");
    };
    let under_load = samples.iter().copied().max().unwrap_or(0) / sessions;

    println!(
        "{sessions} concurrent sessions on one pooler ({BACKEND_CONNECTIONS} backend connections), {seconds}s of point selects:"
    );
    println!("  throughput: {:.0} statements/s", statements as f64 / seconds as f64);
    println!("  latency: p50 {p50} us, p99 {p99} us (every session busy at once)");
    println!("  pooler heap per session: {idle_per} B with every session open, {under_load} B under load");
    println!("  MariaDB saw at most {max_backend} connections of the pool (cap {BACKEND_CONNECTIONS})");
    println!("  client errors: {errors}");
    let mut ok = status.success() && errors == 0 && max_backend <= BACKEND_CONNECTIONS;
    ok &= soak::heap_growth_ok("pooler heap", &samples);
    if !ok {
        eprintln!("sessions_load: FAILED (client errors, too many backend connections, or heap growth)");
        std::process::exit(1);
    }
}
