//! Connect + 64-byte echo round trips made *from a wasm guest*: through the virtual network vs
//! through wasmtime-wasi's real sockets to a native echo server on kernel loopback; and the idle
//! cost of 1,000 tenants that each run an echo service component on their virtual network.
//!
//! `cargo bench -p switchyard-vnet --bench guest_echo` after the guests are built
//! (`bash scripts/test.sh` or `scripts/lib.sh`'s `build_guests`). `GUEST_ROUNDS` sets the round
//! trips (default 5,000), `IDLE_TENANTS` the tenants of the idle measurement (default 1,000).
//!
//! Both runs use the same `echo-client` component and the same single-threaded tokio runtime
//! (the host keeps a workload on one thread); only the socket layer differs. The echo servers are
//! native tokio tasks in both runs, so the figures compare what a guest's `wasi:sockets` calls cost.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_policy::Policy;
use switchyard_vnet::dns::Resolver;
use switchyard_vnet::egress::Egress;
use switchyard_vnet::wasi::GuestNet;
use switchyard_vnet::{Limits, Network};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

#[path = "support/counting.rs"]
mod counting;
#[path = "support/guest.rs"]
mod guest;

use guest::{VirtualGuest, engine, load, run_command, sliced_engine, wasi};

/// Store data of a guest on wasmtime-wasi's real sockets.
struct KernelGuest {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for KernelGuest {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The workspace root (the guests are built under its target dir).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut buf = [0u8; 64];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

fn virtual_workload(name: &str) -> (Arc<Network>, Arc<Egress>) {
    let network = Network::new(name, Limits::default());
    let resolver = Resolver::hosts_file_only(Duration::from_secs(1)).expect("resolver");
    let egress = Egress::new(name, Policy::deny_all(), resolver, Duration::from_secs(1));
    (network, egress)
}

async fn guest_rounds_virtual(engine: &Engine, client: &Component, rounds: u32) -> Duration {
    let (network, egress) = virtual_workload("bench");
    let listener = network.listen("127.0.0.1:7777".parse().expect("addr"), 1024).expect("listen");
    let server = tokio::task::spawn_local(async move {
        loop {
            tokio::task::spawn_local(echo(listener.accept().await));
        }
    });
    let mut linker = Linker::<VirtualGuest>::new(engine);
    switchyard_vnet::wasi::add_to_linker(&mut linker).expect("link");
    let pre = CommandPre::new(linker.instantiate_pre(client).expect("pre")).expect("command");
    let stdout = MemoryOutputPipe::new(4096);
    let env = [("ECHO_ADDR", "127.0.0.1:7777".to_owned()), ("ECHO_ROUNDS", rounds.to_string())];
    let state = VirtualGuest {
        wasi: wasi(&env, &stdout).build(),
        table: ResourceTable::new(),
        net: GuestNet::new(network, egress, "echo-client"),
    };
    let start = Instant::now();
    run_command(&pre, state, &stdout).await;
    let elapsed = start.elapsed();
    server.abort();
    elapsed
}

async fn guest_rounds_kernel(engine: &Engine, client: &Component, rounds: u32) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let to = listener.local_addr().expect("addr");
    let server = tokio::task::spawn_local(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::task::spawn_local(echo(stream));
        }
    });
    let mut linker = Linker::<KernelGuest>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("link");
    let pre = CommandPre::new(linker.instantiate_pre(client).expect("pre")).expect("command");
    let stdout = MemoryOutputPipe::new(4096);
    let env = [("ECHO_ADDR", to.to_string()), ("ECHO_ROUNDS", rounds.to_string())];
    let mut builder = wasi(&env, &stdout);
    builder.allow_tcp(true).socket_addr_check(|addr: SocketAddr, _| {
        Box::pin(async move { addr.ip().is_loopback() || addr.ip().is_unspecified() })
    });
    let state = KernelGuest { wasi: builder.build(), table: ResourceTable::new() };
    let start = Instant::now();
    run_command(&pre, state, &stdout).await;
    let elapsed = start.elapsed();
    server.abort();
    elapsed
}

/// Resident memory of this process, from `/proc/self/status` (0 where there is none).
fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Starts `tenants` workloads, each with an echo service component listening on its virtual
/// 127.0.0.1:7777, waits until every one listens, and returns (heap, resident) bytes per tenant.
async fn idle_tenants(engine: &Engine, service: &Component, tenants: usize) -> (usize, usize) {
    let mut linker = Linker::<VirtualGuest>::new(engine);
    switchyard_vnet::wasi::add_to_linker(&mut linker).expect("link");
    let pre = CommandPre::new(linker.instantiate_pre(service).expect("pre")).expect("command");
    let (heap, resident) = (counting::allocated(), resident_bytes());
    let mut networks = Vec::with_capacity(tenants);
    let mut tasks = Vec::with_capacity(tenants);
    for i in 0..tenants {
        let (network, egress) = virtual_workload(&format!("tenant-{i}"));
        networks.push(network.clone());
        let pre = pre.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let stdout = MemoryOutputPipe::new(4096);
            let state = VirtualGuest {
                wasi: wasi(&[], &stdout).build(),
                table: ResourceTable::new(),
                net: GuestNet::new(network, egress, "echo"),
            };
            run_command(&pre, state, &stdout).await;
        }));
    }
    // Bounded wait: every service listens within 60 s or the measurement is void.
    let deadline = Instant::now() + Duration::from_secs(60);
    let to: SocketAddr = "127.0.0.1:7777".parse().expect("addr");
    for network in &networks {
        while network.connect(to).is_err() {
            assert!(Instant::now() < deadline, "a tenant's echo service did not start listening in 60 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // Let every connection made by the probes above be closed again.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let per_heap = (counting::allocated().saturating_sub(heap)) / tenants;
    let per_resident = resident_bytes().saturating_sub(resident) / tenants;
    for task in tasks {
        task.abort();
    }
    (per_heap, per_resident)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("guest_echo: skipped (run with `cargo bench -p switchyard-vnet --bench guest_echo`)");
        return;
    }
    let env_or =
        |name: &str, default: u32| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let rounds = env_or("GUEST_ROUNDS", 5000);
    let tenants = env_or("IDLE_TENANTS", 1000) as usize;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let engine = engine(tenants as u32 + 8);
        let client = load(&engine, &root(), "echo-client.wasm");
        // One warm-up run each (code paths, allocator, kernel socket caches).
        guest_rounds_virtual(&engine, &client, 200).await;
        guest_rounds_kernel(&engine, &client, 200).await;
        let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(rounds);
        for run in 1..=2 {
            let virt = guest_rounds_virtual(&engine, &client, rounds).await;
            let kernel = guest_rounds_kernel(&engine, &client, rounds).await;
            println!("run {run}: {rounds} connect + 64 B echo round trips from a wasm guest:");
            println!("  through vnet:                          {:8.2} us/round", per(virt));
            println!("  through wasmtime-wasi to loopback TCP: {:8.2} us/round", per(kernel));
            println!(
                "  ratio kernel / virtual: {:.1}x faster (goal >= 2x)",
                kernel.as_secs_f64() / virt.as_secs_f64()
            );
        }
        // The cost of time slicing (epoch checks in the compiled code, a yield per 1 ms tick).
        let sliced = sliced_engine(8);
        let sliced_client = load(&sliced, &root(), "echo-client.wasm");
        guest_rounds_virtual(&sliced, &sliced_client, 200).await;
        for run in 1..=3 {
            let plain = guest_rounds_virtual(&engine, &client, rounds).await;
            let with_slices = guest_rounds_virtual(&sliced, &sliced_client, rounds).await;
            println!(
                "run {run}: through vnet, time-sliced {:8.2} us/round vs not {:8.2} us/round: cost {:+.1} % (goal < 5 %)",
                per(with_slices),
                per(plain),
                (with_slices.as_secs_f64() / plain.as_secs_f64() - 1.0) * 100.0
            );
        }
        let service = load(&engine, &root(), "echo-service.wasm");
        let (heap, resident) = idle_tenants(&engine, &service, tenants).await;
        println!(
            "{tenants} idle tenants, each a virtual network and an echo service listening: \
             {heap} heap bytes and {} KiB resident per tenant",
            resident / 1024
        );
    });
}
