//! The one wasmtime engine of a host: async, with the pooling instance allocator sized for many
//! short-lived per-request instances, time-sliced guests, and component loading with a clear
//! error per file.
//!
//! Time slicing (THREATS.md invariant 2): the engine is built with epoch interruption, one thread
//! advances the epoch every [`TIME_SLICE`], and every store runs its guest with
//! [`time_sliced`], so a guest that computes, or loops over always-ready virtual I/O, gives its
//! shard back to the other tasks there at least once per slice and then goes on.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use wasmtime::component::Component;
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline};

/// The largest linear memory a guest may grow to.
pub const MAX_MEMORY_BYTES: usize = 256 << 20;

/// The longest a guest runs before it yields its shard to whatever else is ready there.
pub const TIME_SLICE: Duration = Duration::from_millis(1);

/// The engine every component of a host is compiled for and runs in, with `slots` component
/// instances alive at most (`instance_slots::SlotPlan::total`, which divides them).
pub fn engine(slots: u32) -> anyhow::Result<Engine> {
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(slots)
        .total_core_instances(slots * 4)
        .total_memories(slots * 2)
        .total_tables(slots * 4)
        .total_stacks(slots)
        .max_memory_size(MAX_MEMORY_BYTES);
    let mut config = wasmtime::Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    config.epoch_interruption(true);
    let engine = Engine::new(&config).map_err(|e| {
        anyhow::Error::from(e).context("cannot create the wasmtime engine (pooling allocator)")
    })?;
    start_epoch_ticker(&engine)?;
    Ok(engine)
}

/// Advances `engine`'s epoch every [`TIME_SLICE`] on a thread of its own, until the engine is
/// dropped.
fn start_epoch_ticker(engine: &Engine) -> anyhow::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("switchyard-epoch".to_owned())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TIME_SLICE);
            }
        })
        .context("cannot start the epoch thread")?;
    Ok(())
}

/// Makes `store`'s guest yield to its shard's other tasks at every epoch tick (then go on), so no
/// guest holds a shard for more than a [`TIME_SLICE`] at a time; `on_slice`, called at each tick
/// the guest was running at, says how (`Yield(1)`, or a longer wait for a guest over budget).
pub fn time_sliced<T: 'static>(store: &mut Store<T>, on_slice: fn(&mut T) -> UpdateDeadline) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut context| Ok(on_slice(context.data_mut())));
}

/// Compiles the component at `path`; `what` names it in errors (`tenant acme, component web`).
pub fn load_component(engine: &Engine, path: &Path, what: &str) -> anyhow::Result<Component> {
    let bytes = std::fs::read(path).with_context(|| format!("{what}: cannot read {}", path.display()))?;
    Component::new(engine, &bytes).map_err(|e| {
        anyhow::Error::from(e).context(format!("{what}: {} is not a valid component", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::instance_slots::MAX_SLOTS;

    #[test]
    fn an_engine_with_the_most_slots_a_host_holds_can_be_made() {
        // The pool reserves its address space up front; at MAX_SLOTS it must still fit.
        let engine = engine(MAX_SLOTS).expect("an engine of MAX_SLOTS slots");
        drop(engine);
    }
}
