//! Running the example guest components in benchmarks: the store data of a guest on a virtual
//! network, an engine with the pooling allocator, loading a built component, and running a
//! command instance to its end with its standard output captured.
//!
//! The guests are built by `bash scripts/test.sh` into `target/guests/wasm32-wasip2/release/`.

#![allow(dead_code)] // each bench uses part of it

use std::path::Path;

use switchyard_vnet::wasi::{GuestNet, GuestNetState, GuestNetView};
use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Store data of a guest on the virtual network.
pub struct VirtualGuest {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub net: GuestNet,
}

impl WasiView for VirtualGuest {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl GuestNetState for VirtualGuest {
    fn guest_net(&mut self) -> GuestNetView<'_> {
        GuestNetView { net: &mut self.net, table: &mut self.table }
    }
}

/// An async engine with the pooling allocator sized for `instances` instances at once.
pub fn engine(instances: u32) -> Engine {
    engine_with(instances, false)
}

/// As [`engine`], with epoch interruption and a thread advancing the epoch every 500 µs (the
/// host's `TIME_SLICE`, `src/host/engine.rs`): every tick a guest runs at is a yield here, the
/// most the host's slicing can cost (the host yields only after a whole slice of running).
pub fn sliced_engine(instances: u32) -> Engine {
    let engine = engine_with(instances, true);
    let weak = engine.weak();
    std::thread::spawn(move || {
        while let Some(engine) = weak.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(std::time::Duration::from_micros(500));
        }
    });
    engine
}

fn engine_with(instances: u32, sliced: bool) -> Engine {
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(instances)
        .total_core_instances(instances * 4)
        .total_memories(instances * 2)
        .total_tables(instances * 4)
        .total_stacks(instances)
        .max_memory_size(64 << 20);
    let mut config = wasmtime::Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    config.epoch_interruption(sliced);
    if std::env::var_os("BENCH_PERFMAP").is_some() {
        // Names the guests' compiled functions for `perf report` (/tmp/perf-PID.map).
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).expect("engine")
}

/// The built guest `name` (`echo-client.wasm`) of the workspace at `root`.
pub fn load(engine: &Engine, root: &Path, name: &str) -> Component {
    let path = root.join("target/guests/wasm32-wasip2/release").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!("{}: {e}; build the guests first (bash scripts/test.sh builds them)", path.display())
    });
    Component::new(engine, &bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A WASI context writing standard output to `stdout`, standard error through, with `env`.
pub fn wasi(env: &[(&str, String)], stdout: &MemoryOutputPipe) -> WasiCtxBuilder {
    let mut builder = WasiCtx::builder();
    builder.stdout(stdout.clone()).inherit_stderr();
    for (key, value) in env {
        builder.env(key, value);
    }
    builder
}

/// Runs a command instance to its end and returns what it wrote to `stdout`; panics with that
/// output when the command fails.
pub async fn run_command<T: Send + 'static>(
    pre: &CommandPre<T>,
    state: T,
    stdout: &MemoryOutputPipe,
) -> String {
    let mut store = Store::new(pre.engine(), state);
    // Yield at every tick on a sliced engine; no effect on an engine without epochs.
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
    let command = pre.instantiate_async(&mut store).await.expect("instantiate");
    let status = command.wasi_cli_run().call_run(&mut store).await.expect("run");
    let output = String::from_utf8_lossy(&stdout.contents()).into_owned();
    assert!(status.is_ok(), "the command failed: {output}");
    output
}
