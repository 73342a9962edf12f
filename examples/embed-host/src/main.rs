//! A wasmtime host of its own — not Switchyard's — that gives its guests Switchyard's virtual
//! network and egress policy through the public APIs of `switchyard-vnet` and
//! `switchyard-policy` alone: what a team with its own embedding (a wasmCloud-like host, a
//! Spin-like runtime) writes to use them.
//!
//! `switchyard-embed-host SERVICE.wasm CLIENT.wasm` runs the example guests `echo-service` and
//! `echo-client` (built by `bash scripts/test.sh` into `target/guests/wasm32-wasip2/release/`):
//!
//! 1. one virtual network and one egress gate for the workload, whose policy allows only
//!    `tcp://192.0.2.10:5432` (nothing the guests use);
//! 2. the service guest binds and listens on `127.0.0.1:7777` — of the virtual network: no OS
//!    port is taken;
//! 3. the client guest connects to `127.0.0.1:7777` and echoes three messages through the
//!    service, in memory;
//! 4. the client guest connects to `203.0.113.7:7777`, a real address no entry allows: the
//!    policy refuses it and the guest sees its connect fail.
//!
//! Prints one line per step and exits 0 when every step went as described.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use switchyard_policy::{AllowedHost, BlockedNetworks, Policy};
use switchyard_vnet::dns::Resolver;
use switchyard_vnet::egress::Egress;
use switchyard_vnet::wasi::{GuestNet, GuestNetState, GuestNetView};
use switchyard_vnet::{Limits, Network};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// A guest's store data: WASI, and its handle on the workload's virtual network.
struct Guest {
    wasi: WasiCtx,
    table: ResourceTable,
    net: GuestNet,
}

impl WasiView for Guest {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl GuestNetState for Guest {
    fn guest_net(&mut self) -> GuestNetView<'_> {
        GuestNetView { net: &mut self.net, table: &mut self.table }
    }
}

/// One workload: its virtual network and its egress gate.
struct Workload {
    network: Arc<Network>,
    egress: Arc<Egress>,
}

impl Workload {
    /// A guest of this workload, named `component`, with environment `env`; its standard output
    /// and error go to the returned pipes.
    fn guest(&self, component: &str, env: &[(&str, &str)]) -> (Guest, MemoryOutputPipe, MemoryOutputPipe) {
        let (stdout, stderr) = (MemoryOutputPipe::new(64 << 10), MemoryOutputPipe::new(64 << 10));
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        for (key, value) in env {
            wasi.env(key, value);
        }
        let net = GuestNet::new(self.network.clone(), self.egress.clone(), component);
        (Guest { wasi: wasi.build(), table: ResourceTable::new(), net }, stdout, stderr)
    }
}

/// Runs a command guest to its end; whether it succeeded (an exit status of 0).
async fn run(pre: &CommandPre<Guest>, guest: Guest) -> Result<bool, String> {
    let mut store = Store::new(pre.engine(), guest);
    let command = pre.instantiate_async(&mut store).await.map_err(|e| format!("instantiate: {e:#}"))?;
    match command.wasi_cli_run().call_run(&mut store).await {
        Ok(status) => Ok(status.is_ok()),
        // `std::process::exit(n)` in the guest.
        Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => Ok(exit.0 == 0),
            None => Err(format!("run: {e:#}")),
        },
    }
}

fn text(pipe: &MemoryOutputPipe) -> String {
    String::from_utf8_lossy(&pipe.contents()).trim().to_owned()
}

async fn demo(service: &str, client: &str) -> Result<(), String> {
    let engine = Engine::new(&wasmtime::Config::new()).map_err(|e| format!("engine: {e:#}"))?;
    let mut linker = Linker::<Guest>::new(&engine);
    // WASI, with `wasi:sockets` answered by the virtual network and the egress gate.
    switchyard_vnet::wasi::add_to_linker(&mut linker).map_err(|e| format!("linker: {e:#}"))?;
    let command = |path: &str| -> Result<CommandPre<Guest>, String> {
        let component = Component::from_file(&engine, path).map_err(|e| format!("{path}: {e:#}"))?;
        let pre = linker.instantiate_pre(&component).map_err(|e| format!("{path}: {e:#}"))?;
        CommandPre::new(pre).map_err(|e| format!("{path}: not a command: {e:#}"))
    };
    let (service, client) = (command(service)?, command(client)?);

    let allowed: AllowedHost = "tcp://192.0.2.10:5432".parse().map_err(|e| format!("{e}"))?;
    let policy = Policy::new([allowed], BlockedNetworks::defaults());
    let resolver = Resolver::hosts_file_only(Duration::from_secs(1)).map_err(|e| format!("resolver: {e}"))?;
    let workload = Workload {
        network: Network::new("demo", Limits::default()),
        egress: Egress::new("demo", policy, resolver, Duration::from_secs(5)),
    };
    println!("1. workload `demo`: a virtual network, and a policy that allows only tcp://192.0.2.10:5432");

    let (guest, service_out, service_err) =
        workload.guest("echo-service", &[("ECHO_LISTEN", "127.0.0.1:7777")]);
    let serving = tokio::task::spawn_local(async move { run(&service, guest).await });
    for _ in 0..500 {
        if text(&service_out).contains("listening") || serving.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if !text(&service_out).contains("listening") {
        return Err(format!("the service did not start listening: {}", text(&service_err)));
    }
    println!(
        "2. echo-service listens on 127.0.0.1:7777 of the virtual network ({} virtual sockets, no OS port)",
        workload.network.usage().sockets
    );

    let echo = [("ECHO_ADDR", "127.0.0.1:7777"), ("ECHO_ROUNDS", "3"), ("ECHO_HALF_CLOSE", "1")];
    let (guest, out, err) = workload.guest("echo-client", &echo);
    if !run(&client, guest).await? {
        return Err(format!("the client could not echo through the service: {}", text(&err)));
    }
    println!("3. echo-client -> 127.0.0.1:7777: {}", text(&out));

    let denied = [("ECHO_ADDR", "203.0.113.7:7777"), ("ECHO_ROUNDS", "1")];
    let (guest, _, err) = workload.guest("echo-client", &denied);
    if run(&client, guest).await? {
        return Err("the client reached 203.0.113.7:7777, which no entry allows".to_owned());
    }
    println!("4. echo-client -> 203.0.113.7:7777: refused by the policy ({})", text(&err));
    serving.abort();
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [service, client] = args.as_slice() else {
        eprintln!(
            "usage: switchyard-embed-host SERVICE.wasm CLIENT.wasm (echo-service.wasm and echo-client.wasm)"
        );
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("switchyard-embed-host: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // One thread, as Switchyard keeps a workload's virtual traffic on one thread.
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, demo(service, client)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard-embed-host: {e}");
            ExitCode::FAILURE
        }
    }
}
