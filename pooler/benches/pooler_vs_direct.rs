//! The pooler against direct MariaDB, measured in the same run on the same private server.
//!
//! `cargo bench -p switchyard-pooler --bench pooler_vs_direct` (needs `mariadbd` and `sysbench`;
//! `BENCH_SECONDS` sets each sysbench run's length, default 10; `BENCH_ROUNDS` how many times
//! each throughput pair runs, default 3, alternating direct and pooled: the median ratio is
//! reported with every round's).
//!
//! 1. `sysbench oltp_point_select`, 64 threads: direct (64 server connections) vs through the
//!    pooler (8 backend connections): throughput ratio.
//! 2. Latency the pooler adds per query: the same, one thread, p50 and p99 of each.
//! 3. Connect per request, 64 clients each looping connect + one point select + quit
//!    (`mysql_async`, in a child process; Debian's sysbench 1.0.20 has no `--reconnect`): direct
//!    vs pooler throughput, and the most connections MariaDB saw during the pooled run.
//! 4. Memory per idle client session at 2,000 sessions: the sessions are opened by a child
//!    process (this binary again), so only the pooler's own allocations are counted.
//! 5. `sysbench oltp_insert`, 16 threads: direct vs through the pooler (8 backend
//!    connections), which keeps each session's `LAST_INSERT_ID()` (`pooler/src/session/insert_id.rs`).
//!
//!    The same through a pool with `last_insert_id: reported` (no read-back), and the ratio of
//!    the two: what the read-back costs.
//! 6. `sysbench oltp_read_write`, 16 threads (an insert in every transaction of 18
//!    statements): the two pools again.
//!
//! `BENCH_SECTIONS=1,5` runs only those sections (default: all).

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use switchyard_pooler::backend::BackendSettings;
use switchyard_pooler::protocol::auth::AuthMethod;
use switchyard_pooler::protocol::client_handshake::{self, Login};
use switchyard_pooler::protocol::framing::PacketConn;
use switchyard_pooler::{InsertIds, PoolConfig, PoolMode, Pooler, PoolerConfig};
use tokio::net::{TcpListener, TcpStream};

#[path = "../../vnet/benches/support/counting.rs"]
mod counting;
#[path = "../../vnet/benches/support/cpu.rs"]
mod cpu;
#[path = "../../vnet/benches/support/rounds.rs"]
mod rounds;

const USER: &str = "bench";
const PASSWORD: &str = "bench-pw";
/// Rows of sysbench's `sbtest1`.
const TABLE_SIZE: u64 = 10_000;

async fn publish(backend: SocketAddr, max_connections: usize, insert_ids: InsertIds) -> SocketAddr {
    let config = PoolerConfig {
        pool: PoolConfig {
            name: "bench/main".to_owned(),
            backend: BackendSettings {
                user: USER.to_owned(),
                password: PASSWORD.as_bytes().to_vec(),
                database: Some(USER.to_owned()),
                max_packet: 64 << 20,
                connect_timeout: Duration::from_secs(5),
                tls: None,
            },
            max_connections,
            min_idle: 0,
            idle_timeout: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            checkout_timeout: Duration::from_secs(30),
            health_check_after: Duration::from_secs(30),
        },
        mode: PoolMode::Transaction,
        max_client_sessions: 5000,
        handshake_timeout: Duration::from_secs(30),
        packet_timeout: Duration::from_secs(30),
        auth_method: AuthMethod::NativePassword,
        max_prepared_per_connection: 256,
        idle_transaction_timeout: Duration::from_secs(60),
        client_write_timeout: Duration::from_secs(30),
        insert_ids,
        client_tls: None,
    };
    let pooler = Pooler::new(config, Arc::new(support::TcpConnector(backend)));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let pooler = pooler.clone();
            tokio::spawn(async move { pooler.serve(stream, &peer.to_string()).await });
        }
    });
    addr
}

/// Figures of one sysbench run.
#[derive(Debug, Default, Clone, Copy)]
struct Run {
    per_second: f64,
    events_per_second: f64,
    percentile_ms: f64,
}

/// Runs sysbench's `script` (a bundled test name or a path) against `addr`.
fn sysbench(script: &str, addr: SocketAddr, args: &[&str]) -> Run {
    let out = Command::new("sysbench")
        .arg(script)
        .args(["--db-driver=mysql", "--mysql-host=127.0.0.1", "--tables=1"])
        .arg(format!("--table-size={TABLE_SIZE}"))
        .arg(format!("--mysql-port={}", addr.port()))
        .arg(format!("--mysql-user={USER}"))
        .arg(format!("--mysql-password={PASSWORD}"))
        .arg(format!("--mysql-db={USER}"))
        .args(args)
        .output()
        .expect("run sysbench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "sysbench failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let field = |label: &str| -> f64 {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| {
                let rest = l.trim_start()[label.len()..].trim();
                let value =
                    rest.split_whitespace().find_map(|w| w.trim_start_matches('(').parse::<f64>().ok());
                if label == "queries:" || label == "transactions:" {
                    rest.split('(')
                        .nth(1)
                        .and_then(|p| p.split_whitespace().next())
                        .and_then(|v| v.parse().ok())
                } else {
                    value
                }
            })
            .unwrap_or(f64::NAN)
    };
    Run {
        per_second: field("queries:"),
        events_per_second: field("transactions:"),
        percentile_ms: text
            .lines()
            .find(|l| l.trim_start().contains("percentile:"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN),
    }
}

/// Child mode: `clients` tasks loop connect + point select + quit against `addr` for `seconds`;
/// prints the requests done.
async fn connect_loop(addr: SocketAddr, clients: usize, seconds: u64) {
    use mysql_async::prelude::*;
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for client in 0..clients {
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let opts = mysql_async::OptsBuilder::default()
                .ip_or_hostname(addr.ip().to_string())
                .tcp_port(addr.port())
                .user(Some(USER))
                .pass(Some(PASSWORD))
                .db_name(Some(USER))
                .prefer_socket(false);
            let mut id = client as u64;
            while tokio::time::Instant::now() < deadline {
                let mut conn = mysql_async::Conn::new(opts.clone()).await.expect("connect");
                id = id * 7919 % TABLE_SIZE + 1;
                let _: Option<String> =
                    conn.exec_first("SELECT c FROM sbtest1 WHERE id = ?", (id,)).await.expect("select");
                conn.disconnect().await.expect("quit");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    println!("{}", done.load(Ordering::Relaxed));
}

/// Runs [`connect_loop`] in a child process; requests per second.
fn connect_per_request(addr: SocketAddr, clients: usize) -> f64 {
    let seconds: u64 = seconds().parse().unwrap_or(10);
    let out = Command::new(std::env::current_exe().expect("this binary"))
        .args(["--connect-loop", &addr.to_string(), &clients.to_string(), &seconds.to_string()])
        .output()
        .expect("connect loop");
    assert!(out.status.success(), "connect loop failed: {}", String::from_utf8_lossy(&out.stderr));
    let done: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("a count");
    done / seconds as f64
}

/// Opens `count` logged-in sessions to `addr` and holds them until stdin closes (child mode).
async fn hold_sessions(addr: SocketAddr, count: usize) {
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut conn = PacketConn::new(stream, 1 << 20);
        let login = Login {
            user: USER,
            password: PASSWORD.as_bytes(),
            database: Some(USER),
            collation: 45,
            found_rows: false,
            max_packet: 1 << 20,
        };
        client_handshake::login(&mut conn, &login).await.expect("login");
        held.push(conn);
    }
    println!("ready");
    let _ = tokio::task::spawn_blocking(|| {
        let mut byte = [0u8; 1];
        std::io::Read::read(&mut std::io::stdin(), &mut byte)
    })
    .await;
}

/// Runs `run` (which returns a rate per second), prints the rate and the CPU time per `unit` of
/// the clients (this process's children, waited for by `run`), the pooler (this process) and
/// `mariadbd` (process `mariadbd`); returns the rate.
fn measured(label: &str, unit: &str, mariadbd: u32, run: &mut dyn FnMut() -> f64) -> f64 {
    let before = (cpu::of_waited_children(), cpu::of_self(), cpu::of(mariadbd));
    let start = std::time::Instant::now();
    let rate = run();
    let units = rate * start.elapsed().as_secs_f64();
    let per_unit = |spent: Duration| spent.as_secs_f64() * 1e6 / units.max(1.0);
    println!(
        "   {label:<31} {rate:>9.0}/s   CPU per {unit}: client {:>4.0} us, pooler {:>4.0} us, mariadbd {:>4.0} us",
        per_unit(cpu::of_waited_children() - before.0),
        per_unit(cpu::of_self() - before.1),
        per_unit(cpu::of(mariadbd) - before.2),
    );
    rate
}

/// Runs `run` while watching how many connections MariaDB has for the bench user; returns its
/// result and the most connections seen.
fn watching_connections(run: impl FnOnce() -> f64) -> (f64, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = support::server().watch_connections(USER, stop.clone(), Duration::from_millis(100));
    let result = run();
    stop.store(true, Ordering::Relaxed);
    (result, watcher.join().expect("watcher"))
}

/// Whether section `n` runs (`BENCH_SECTIONS`, a comma-separated list; default all).
fn section(n: u32) -> bool {
    match std::env::var("BENCH_SECTIONS") {
        Ok(list) => list.split(',').any(|s| s.trim().parse() == Ok(n)),
        Err(_) => true,
    }
}

fn seconds() -> String {
    std::env::var("BENCH_SECONDS").unwrap_or_else(|_| "10".to_owned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    if let Some(at) = args.iter().position(|a| a == "--connect-loop") {
        let addr: SocketAddr = args[at + 1].parse().expect("addr");
        let clients: usize = args[at + 2].parse().expect("clients");
        let seconds: u64 = args[at + 3].parse().expect("seconds");
        runtime.block_on(connect_loop(addr, clients, seconds));
        return;
    }
    if let Some(at) = args.iter().position(|a| a == "--hold-sessions") {
        let addr: SocketAddr = args[at + 1].parse().expect("addr");
        let count: usize = args[at + 2].parse().expect("count");
        runtime.block_on(hold_sessions(addr, count));
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "pooler_vs_direct: skipped (run with `cargo bench -p switchyard-pooler --bench pooler_vs_direct`)"
        );
        return;
    }
    let server = support::server();
    server.tenant(USER, PASSWORD);
    server.root_sql("SET GLOBAL max_connections = 3000, GLOBAL thread_cache_size = 256");
    let direct = server.addr;
    // The pooler runs as in `switchyard up`: on one single-threaded runtime of its own.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let shard = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        shard.block_on(async move {
            let exact = publish(direct, 8, InsertIds::Exact).await;
            let reported = publish(direct, 8, InsertIds::Reported).await;
            tx.send((exact, reported)).expect("send the addresses");
            std::future::pending::<()>().await;
        });
    });
    // `reported`: the same pool but for how insert ids are learnt (section 5 only).
    let (pooled, pooled_reported) = rx.recv().expect("the poolers' addresses");
    let time = format!("--time={}", seconds());
    server.sysbench_table(USER, PASSWORD, TABLE_SIZE);

    let mariadbd = server.pid().expect("the mariadbd process");
    let measure = |label: &str, unit: &str, run: &mut dyn FnMut() -> f64| -> f64 {
        measured(label, unit, mariadbd, run)
    };
    let time = time.as_str();
    let point_select = |addr: SocketAddr| sysbench("oltp_point_select", addr, &["--threads=64", time, "run"]);

    if section(1) {
        println!("1. oltp_point_select, 64 threads, {}s each", seconds());
        let ratios: Vec<f64> = (1..=rounds::rounds())
            .map(|round| {
                let d = measure(&format!("{round}. direct (64 connections)"), "query", &mut || {
                    point_select(direct).per_second
                });
                let p = measure(&format!("{round}. pooler (8 backend connections)"), "query", &mut || {
                    point_select(pooled).per_second
                });
                p / d
            })
            .collect();
        println!("   ratio pooler / direct: {} (goal >= 0.8x)", rounds::summary(&ratios));
    }

    if section(2) {
        println!("2. latency added per query, 1 thread");
        for percentile in ["50", "99"] {
            let args = ["--threads=1", time, &format!("--percentile={percentile}"), "run"];
            let d = sysbench("oltp_point_select", direct, &args);
            let p = sysbench("oltp_point_select", pooled, &args);
            println!(
                "   p{percentile}: direct {:.3} ms, pooler {:.3} ms, added {:.0} us{}",
                d.percentile_ms,
                p.percentile_ms,
                (p.percentile_ms - d.percentile_ms) * 1000.0,
                if percentile == "50" { " (goal <= 50 us)" } else { "" }
            );
        }
    }

    if section(3) {
        println!("3. connect per request, 64 clients");
        println!("   sysbench (libmariadb), connect + point select + disconnect:");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/connect_per_request.lua");
        let reconnecting = |addr: SocketAddr| sysbench(script, addr, &["--threads=64", time, "run"]);
        // Connect per request with `run` (a client loop at an address, requests/s), in rounds.
        let connect_rounds = |run: &dyn Fn(SocketAddr) -> f64| -> Vec<f64> {
            (1..=rounds::rounds())
                .map(|round| {
                    let d = measure(&format!("{round}. direct"), "request", &mut || run(direct));
                    let (p, max_seen) = watching_connections(|| {
                        measure(&format!("{round}. pooler"), "request", &mut || run(pooled))
                    });
                    println!("      MariaDB saw at most {max_seen} connections from the pool (goal <= 8)");
                    p / d
                })
                .collect()
        };
        let ratios = connect_rounds(&|addr| reconnecting(addr).events_per_second);
        println!("   ratio pooler / direct: {} (goal >= 3x)", rounds::summary(&ratios));
        println!("   mysql_async, connect + prepared point select + quit:");
        let ratios = connect_rounds(&|addr| connect_per_request(addr, 64));
        println!("   ratio pooler / direct: {} (goal >= 3x)", rounds::summary(&ratios));
    }

    if section(4) {
        println!("4. memory per idle client session");
        let sessions = 2000;
        let before = counting::allocated();
        let mut child = Command::new(std::env::current_exe().expect("this binary"))
            .args(["--hold-sessions", &pooled.to_string(), &sessions.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("session holder");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut line = [0u8; 6];
        std::io::Read::read_exact(&mut stdout, &mut line).expect("the holder says ready");
        std::thread::sleep(Duration::from_millis(500));
        let per = (counting::allocated().saturating_sub(before)) / sessions;
        drop(child.stdin.take());
        let _ = child.wait();
        println!("   {sessions} idle sessions: {per} bytes each in the pooler (goal <= 16384)");
    }

    if section(5) {
        println!("5. oltp_insert, 16 threads, {}s each", seconds());
        let insert =
            |addr: SocketAddr| sysbench("oltp_insert", addr, &["--threads=16", time, "run"]).per_second;
        let (exact, reported): (Vec<f64>, Vec<f64>) = (1..=rounds::rounds())
            .map(|round| {
                let d =
                    measure(&format!("{round}. direct (16 connections)"), "insert", &mut || insert(direct));
                let e = measure(&format!("{round}. pooler, last_insert_id: exact"), "insert", &mut || {
                    insert(pooled)
                });
                let r = measure(&format!("{round}. pooler, last_insert_id: reported"), "insert", &mut || {
                    insert(pooled_reported)
                });
                (e / d, r / d)
            })
            .unzip();
        println!("   ratio pooler (exact) / direct: {}", rounds::summary(&exact));
        println!("   ratio pooler (reported) / direct: {}", rounds::summary(&reported));
        let cost: Vec<f64> = exact.iter().zip(&reported).map(|(e, r)| e / r).collect();
        println!("   exact / reported (the read-back's cost): {} (goal >= 0.95x)", rounds::summary(&cost));
    }

    if section(6) {
        println!("6. oltp_read_write, 16 threads, {}s each", seconds());
        let mixed =
            |addr: SocketAddr| sysbench("oltp_read_write", addr, &["--threads=16", time, "run"]).per_second;
        let cost: Vec<f64> = (1..=rounds::rounds())
            .map(|round| {
                let e = measure(&format!("{round}. pooler, last_insert_id: exact"), "query", &mut || {
                    mixed(pooled)
                });
                let r = measure(&format!("{round}. pooler, last_insert_id: reported"), "query", &mut || {
                    mixed(pooled_reported)
                });
                e / r
            })
            .collect();
        println!("   exact / reported (the read-back's cost): {} (goal >= 0.95x)", rounds::summary(&cost));
    }
}
