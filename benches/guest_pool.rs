//! The pooler as its tenants reach it — from wasm guests over the virtual network — against the
//! same guests reaching MariaDB directly through a declared forward, in the same run.
//!
//! `cargo bench --bench guest_pool` after the guests are built (`bash scripts/test.sh` builds
//! them; needs `mariadbd` and `sysbench`). `BENCH_SECONDS` sets each run's length (default 10),
//! `BENCH_CLIENTS` the guest instances running at once (default 64), `BENCH_ROUNDS` how many
//! times each direct/pooled pair runs (default 3; the median ratio is reported), and
//! `BENCH_PERFMAP=1` names the guests' compiled functions for `perf`.
//!
//! One tenant, wired as `switchyard up` wires it, on one single-threaded runtime (a tenant lives
//! on one shard): a virtual network, an egress gate whose policy allows only the MariaDB address,
//! the pooler mounted on virtual port 3306 (8 backend connections, dialed through the gate) and a
//! forward on virtual port 3307 to the same server. `BENCH_CLIENTS` instances of the
//! `mysql-load` component (`mysql_async` inside the guest, over `wasi:sockets`) run at once,
//! against 3306 (pooled) or 3307 (direct), in two modes:
//!
//! - `connect`: every request connects, runs one point select and quits (connect per request);
//! - `reuse`: one connection per instance, every request one prepared point select.
//!
//! Printed per run: requests/s, CPU time per request of this process (guests, vnet, pooler or
//! forward) and of `mariadbd`, and for pooled runs the most connections MariaDB saw.
//!
//! Then the same tenant spread over shards (`limits.shards`): its guests split over 1, then 2
//! single-threaded runtimes, each serving the pool for its own guests (vnet's `Acceptor`) while
//! the pool — its cap of 8, its queue, its connections — stays one; connect mode, pooled. The
//! host's CPU per request of each (the per-request cost must not grow when a pool spans shards)
//! and the requests/s of each (which a machine with more cores than this one shows scaling).
//! `BENCH_PARTS=connect,reuse,shards` picks the parts (default all).

#[path = "../vnet/benches/support/cpu.rs"]
mod cpu;
#[path = "../vnet/benches/support/guest.rs"]
mod guest;
#[path = "../pooler/tests/support/mariadb.rs"]
#[allow(dead_code)] // the bench uses part of the test harness
mod mariadb;
#[path = "../vnet/benches/support/rounds.rs"]
mod rounds;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use switchyard_policy::{AllowedHost, BlockedNetworks, Policy, Scheme, Target, TargetHost};
use switchyard_pooler::backend::BackendSettings;
use switchyard_pooler::protocol::auth::AuthMethod;
use switchyard_pooler::{BoxedStream, ConnectFuture, Connector, PoolConfig, PoolMode, Pooler, PoolerConfig};
use switchyard_vnet::dial::dial;
use switchyard_vnet::dns::Resolver;
use switchyard_vnet::egress::Egress;
use switchyard_vnet::forward::{Forward, ForwardSpec};
use switchyard_vnet::wasi::GuestNet;
use switchyard_vnet::{Limits, Listener, Network};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use guest::{VirtualGuest, engine, load, run_command, wasi};

const USER: &str = "guestbench";
const PASSWORD: &str = "guestbench-pw";
const POOL_PORT: u16 = 3306;
const DIRECT_PORT: u16 = 3307;
const BACKEND_CONNECTIONS: usize = 8;
const TABLE_SIZE: u64 = 10_000;

/// Dials MariaDB through the tenant's egress gate, as the host's pools do.
struct EgressConnector {
    egress: Arc<Egress>,
    target: Target,
}

impl Connector for EgressConnector {
    fn connect(&self) -> ConnectFuture<'_> {
        Box::pin(async move {
            let dialed = dial(&self.egress, "pool main", &self.target, None, Duration::from_secs(5))
                .await
                .map_err(std::io::Error::other)?;
            Ok(Box::new(dialed) as BoxedStream)
        })
    }

    fn describe(&self) -> String {
        self.target.to_string()
    }
}

/// The tenant: its network and gate, the pooler on 3306 and the forward on 3307, to be served
/// on each shard that runs its guests ([`BenchTenant::serve_here`]).
struct BenchTenant {
    network: Arc<Network>,
    egress: Arc<Egress>,
    pooler: Pooler,
    pool_port: Arc<Listener>,
    forward: Forward,
}

impl BenchTenant {
    fn new(server: SocketAddr) -> Self {
        let network = Network::new("bench", Limits::default());
        let allowed = [format!("mysql://{server}"), format!("tcp://{server}")]
            .map(|entry| entry.parse::<AllowedHost>().expect("policy entry"));
        let resolver = Resolver::hosts_file_only(Duration::from_secs(1)).expect("resolver");
        let policy = Policy::new(allowed, BlockedNetworks::defaults());
        let egress = Egress::new("bench", policy, resolver, Duration::from_secs(5));

        let target = Target::new(
            Scheme::parse("mysql").expect("scheme"),
            TargetHost::Addr(server.ip()),
            server.port(),
        );
        let connector = Arc::new(EgressConnector { egress: egress.clone(), target });
        let pooler = Pooler::new(pooler_config(BACKEND_CONNECTIONS), connector);
        let pool_port = network
            .listen(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), POOL_PORT), 1024)
            .expect("pool port");
        let spec = ForwardSpec {
            port: DIRECT_PORT,
            host: TargetHost::Addr(server.ip()),
            to_port: server.port(),
            tls: None,
            connect_timeout: Duration::from_secs(5),
            max_connections: 4096,
            idle_timeout: Some(Duration::from_secs(3600)),
        };
        let forward = Forward::mount(&network, egress.clone(), spec).expect("forward");
        BenchTenant { network, egress, pooler, pool_port: Arc::new(pool_port), forward }
    }

    /// Serves the pooler and the forward on the current thread's `LocalSet`, for the
    /// connections the guests of this thread make (as `switchyard up` does on each of a
    /// tenant's shards).
    fn serve_here(&self) {
        self.serve_pool_here(self.pooler.clone());
        tokio::task::spawn_local(self.forward.clone().serve());
    }

    /// Serves `pooler` on the pool's port for the connections this thread's guests make.
    fn serve_pool_here(&self, pooler: Pooler) {
        let mut acceptor = self.pool_port.acceptor();
        tokio::task::spawn_local(async move {
            loop {
                let connection = acceptor.accept().await;
                let pooler = pooler.clone();
                let peer = connection.peer_addr().to_string();
                tokio::task::spawn_local(async move {
                    let (stream, _guard) = connection.into_parts();
                    pooler.serve(stream, &peer).await;
                });
            }
        });
    }

    /// A pool of its own (`max_connections`) for one shard, as PgBouncer's processes each have
    /// with `so_reuseport`: the comparison that shows what sharing one pool costs.
    fn own_pool(&self, server: SocketAddr, max_connections: usize) -> Pooler {
        let target = Target::new(
            Scheme::parse("mysql").expect("scheme"),
            TargetHost::Addr(server.ip()),
            server.port(),
        );
        let connector = Arc::new(EgressConnector { egress: self.egress.clone(), target });
        Pooler::new(pooler_config(max_connections), connector)
    }
}

fn pooler_config(max_connections: usize) -> PoolerConfig {
    PoolerConfig {
        pool: PoolConfig {
            name: "bench/main".to_owned(),
            backend: BackendSettings {
                user: USER.to_owned(),
                password: PASSWORD.as_bytes().to_vec(),
                database: Some(USER.to_owned()),
                max_packet: 64 << 20,
                connect_timeout: Duration::from_secs(10),
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
        handshake_timeout: Duration::from_secs(10),
        packet_timeout: Duration::from_secs(30),
        auth_method: AuthMethod::NativePassword,
        max_prepared_per_connection: 256,
        idle_transaction_timeout: Duration::from_secs(60),
        client_write_timeout: Duration::from_secs(30),
        insert_ids: Default::default(),
        client_tls: None,
    }
}

/// Runs `clients` instances at once against virtual `port` in `mode`; total requests.
async fn run_guests(
    pre: &CommandPre<VirtualGuest>,
    tenant: &BenchTenant,
    port: u16,
    mode: &str,
    clients: u32,
) -> u64 {
    let mut tasks = Vec::new();
    for client in 0..clients {
        let env = [
            ("DB_ADDR", format!("127.0.0.1:{port}")),
            ("DB_USER", USER.to_owned()),
            ("DB_PASSWORD", PASSWORD.to_owned()),
            ("DB_NAME", USER.to_owned()),
            ("MODE", mode.to_owned()),
            ("SECONDS", seconds().to_string()),
            ("TABLE_SIZE", TABLE_SIZE.to_string()),
            ("SEED", (u64::from(client) * 101).to_string()),
        ];
        let stdout = MemoryOutputPipe::new(4096);
        let state = VirtualGuest {
            wasi: wasi(&env, &stdout).build(),
            table: ResourceTable::new(),
            net: GuestNet::new(tenant.network.clone(), tenant.egress.clone(), "mysql-load"),
        };
        let pre = pre.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let output = run_command(&pre, state, &stdout).await;
            output
                .split_whitespace()
                .find_map(|field| field.strip_prefix("requests="))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("mysql-load printed no count: {output}"))
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("guest task");
    }
    total
}

/// Figures of one run.
struct Figures {
    per_second: f64,
    host_us: f64,
    mariadb_us: f64,
    max_connections: Option<usize>,
}

/// One run of `clients` guests against `port` in `mode`, with the CPU it cost; for the pooler's
/// port, also the most connections MariaDB saw.
async fn measure(
    server: &mariadb::MariaDb,
    mariadbd: u32,
    pre: &CommandPre<VirtualGuest>,
    tenant: &BenchTenant,
    port: u16,
    mode: &str,
    clients: u32,
) -> Figures {
    let stop = Arc::new(AtomicBool::new(false));
    let watcher =
        (port == POOL_PORT).then(|| server.watch_connections(USER, stop.clone(), Duration::from_millis(100)));
    let started = Started::now(mariadbd);
    let requests = run_guests(pre, tenant, port, mode, clients).await;
    stop.store(true, Ordering::Relaxed);
    started.figures(requests, watcher.map(|w| w.join().expect("watcher")))
}

/// The clock and CPU counters at the start of a run.
struct Started {
    mariadbd: u32,
    at: Instant,
    host: Duration,
    db: Duration,
}

impl Started {
    fn now(mariadbd: u32) -> Self {
        Started { mariadbd, host: cpu::of_self(), db: cpu::of(mariadbd), at: Instant::now() }
    }

    /// The figures of a run that served `requests` since then.
    fn figures(&self, requests: u64, max_connections: Option<usize>) -> Figures {
        let elapsed = self.at.elapsed().as_secs_f64();
        let per_request = |spent: Duration| spent.as_secs_f64() * 1e6 / requests.max(1) as f64;
        Figures {
            per_second: requests as f64 / elapsed,
            host_us: per_request(cpu::of_self() - self.host),
            mariadb_us: per_request(cpu::of(self.mariadbd) - self.db),
            max_connections,
        }
    }
}

/// One run of `clients` guests in `mode` against the pool, split over `shards` threads, each a
/// single-threaded runtime that serves the pool for its own guests; the CPU it cost.
fn run_on_shards(
    server: &mariadb::MariaDb,
    mariadbd: u32,
    pre: &CommandPre<VirtualGuest>,
    shards: u32,
    split_pools: bool,
    mode: &'static str,
    clients: u32,
) -> Figures {
    let tenant = Arc::new(BenchTenant::new(server.addr));
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = server.watch_connections(USER, stop.clone(), Duration::from_millis(100));
    let started = Started::now(mariadbd);
    // A backend connection is driven by the reactor of the shard that opened it, wherever its
    // session runs: every shard runs until all are done (as `switchyard up`'s shards run for good).
    let all_done = Arc::new(tokio::sync::Barrier::new(shards as usize));
    let threads: Vec<_> = (0..shards)
        .map(|i| {
            let (tenant, pre, all_done) = (tenant.clone(), pre.clone(), all_done.clone());
            let share = clients / shards + u32::from(i < clients % shards);
            std::thread::Builder::new()
                .name(format!("bench-shard-{i}"))
                .spawn(move || {
                    let runtime =
                        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                    tokio::task::LocalSet::new().block_on(&runtime, async {
                        if split_pools {
                            let share = BACKEND_CONNECTIONS / shards as usize;
                            tenant.serve_pool_here(tenant.own_pool(addr, share));
                        } else {
                            tenant.serve_here();
                        }
                        let requests = run_guests(&pre, &tenant, POOL_PORT, mode, share).await;
                        all_done.wait().await;
                        requests
                    })
                })
                .expect("shard thread")
        })
        .collect();
    let requests: u64 = threads.into_iter().map(|t| t.join().expect("shard thread")).sum();
    stop.store(true, Ordering::Relaxed);
    started.figures(requests, Some(watcher.join().expect("watcher")))
}

/// Whether part `name` runs (`BENCH_PARTS`, comma-separated; default all).
fn part(name: &str) -> bool {
    std::env::var("BENCH_PARTS").map_or(true, |parts| parts.split(',').any(|p| p.trim() == name))
}

fn seconds() -> u64 {
    std::env::var("BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10)
}

fn clients() -> u32 {
    std::env::var("BENCH_CLIENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("guest_pool: skipped (run with `cargo bench --bench guest_pool`)");
        return;
    }
    let server = mariadb::server();
    server.tenant(USER, PASSWORD);
    server.root_sql("SET GLOBAL max_connections = 3000, GLOBAL thread_cache_size = 256");
    server.sysbench_table(USER, PASSWORD, TABLE_SIZE);
    let mariadbd = server.pid().expect("the mariadbd process");

    let clients = clients();
    let engine = engine(clients + 8);
    let component = load(&engine, Path::new(env!("CARGO_MANIFEST_DIR")), "mysql-load.wasm");
    let mut linker = Linker::<VirtualGuest>::new(&engine);
    switchyard_vnet::wasi::add_to_linker(&mut linker).expect("link");
    let pre = CommandPre::new(linker.instantiate_pre(&component).expect("pre")).expect("command");

    // One shard: the tenant's guests, its pooler and its forward share one thread, as in
    // `switchyard up`; MariaDB has the other core.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let tenant = BenchTenant::new(server.addr);
        tenant.serve_here();
        println!("{clients} guest instances at once, {}s per run, pool of {BACKEND_CONNECTIONS}", seconds());
        for (mode, what, goal) in [
            ("connect", "connect + point select + quit per request", 3.0),
            ("reuse", "one connection each, prepared point select per request", 0.8),
        ] {
            if !part(mode) {
                continue;
            }
            println!("{what}:");
            let mut ratios = Vec::new();
            for round in 1..=rounds::rounds() {
                let mut rates = [0.0; 2];
                for (rate, (label, port)) in rates.iter_mut().zip([("direct (forward)", DIRECT_PORT), ("pooler", POOL_PORT)]) {
                    let figures = measure(server, mariadbd, &pre, &tenant, port, mode, clients).await;
                    println!(
                        "   {round}. {label:<17} {:>8.0} requests/s   CPU per request: host {:>5.0} us, mariadbd {:>5.0} us{}",
                        figures.per_second,
                        figures.host_us,
                        figures.mariadb_us,
                        figures
                            .max_connections
                            .map(|n| format!("   MariaDB saw at most {n} connections"))
                            .unwrap_or_default()
                    );
                    *rate = figures.per_second;
                }
                ratios.push(rates[1] / rates[0]);
            }
            println!("   ratio pooler / direct: {} (goal >= {goal}x)", rounds::summary(&ratios));
        }
    });
    drop(local);
    drop(runtime);

    if part("shards") {
        println!("the tenant on 1 shard vs 2 shards (pooled, connect + point select + quit per request):");
        let mut costs = Vec::new();
        let mut split_costs = Vec::new();
        for round in 1..=rounds::rounds() {
            let mut per_request = [0.0; 3];
            let runs = [(1, false, "1 shard"), (2, false, "2 shards"), (2, true, "2 shards, 2 pools of 4")];
            for (cost, (shards, split, label)) in per_request.iter_mut().zip(runs) {
                let figures = run_on_shards(server, mariadbd, &pre, shards, split, "connect", clients);
                println!(
                    "   {round}. {label:<23} {:>8.0} requests/s   CPU per request: host {:>5.0} us, mariadbd {:>5.0} us   MariaDB saw at most {} connections",
                    figures.per_second,
                    figures.host_us,
                    figures.mariadb_us,
                    figures.max_connections.unwrap_or_default(),
                );
                *cost = figures.host_us;
            }
            costs.push(per_request[1] / per_request[0]);
            split_costs.push(per_request[2] / per_request[0]);
        }
        println!(
            "   host CPU per request, 2 shards, one pool / 1 shard: {} (goal <= 1.10x)",
            rounds::summary(&costs)
        );
        println!(
            "   host CPU per request, 2 shards, a pool each / 1 shard: {}",
            rounds::summary(&split_costs)
        );
    }
}
