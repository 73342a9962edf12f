//! The one wasmtime engine of a host: async, with the pooling instance allocator sized for many
//! short-lived per-request instances, and component loading with a clear error per file.

use std::path::Path;

use anyhow::Context;
use wasmtime::component::Component;
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Instances (of all components) alive at once; a request beyond it gets `503`.
pub const MAX_INSTANCES: u32 = 1000;

/// The largest linear memory a guest may grow to.
pub const MAX_MEMORY_BYTES: usize = 256 << 20;

/// The engine every component of a host is compiled for and runs in.
pub fn engine() -> anyhow::Result<Engine> {
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(MAX_INSTANCES)
        .total_core_instances(MAX_INSTANCES * 4)
        .total_memories(MAX_INSTANCES * 2)
        .total_tables(MAX_INSTANCES * 4)
        .total_stacks(MAX_INSTANCES)
        .max_memory_size(MAX_MEMORY_BYTES);
    let mut config = wasmtime::Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&config)
        .map_err(|e| anyhow::Error::from(e).context("cannot create the wasmtime engine (pooling allocator)"))
}

/// Compiles the component at `path`; `what` names it in errors (`tenant acme, component web`).
pub fn load_component(engine: &Engine, path: &Path, what: &str) -> anyhow::Result<Component> {
    let bytes = std::fs::read(path).with_context(|| format!("{what}: cannot read {}", path.display()))?;
    Component::new(engine, &bytes).map_err(|e| {
        anyhow::Error::from(e).context(format!("{what}: {} is not a valid component", path.display()))
    })
}
