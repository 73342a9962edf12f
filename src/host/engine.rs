//! The one wasmtime engine of a host: async, with the pooling instance allocator sized for many
//! short-lived per-request instances, and time-sliced guests.
//!
//! Time slicing (THREATS.md invariant 2): the engine is built with epoch interruption, one thread
//! advances the epoch every [`TIME_SLICE`], and every store runs its guest with
//! [`time_sliced`], so a guest that computes, or loops over always-ready virtual I/O, gives its
//! shard back to the other tasks there at least once per slice and then goes on.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline};

/// The largest linear memory a guest may grow to.
pub const MAX_MEMORY_BYTES: usize = 256 << 20;

/// The longest a guest runs before it yields its shard to whatever else is ready there. 500 µs:
/// a neighbour's request that arrives while a busy guest runs waits out at most one slice, and
/// a request's path crosses a shard about twice — at 1 ms the neighbour's p99 was 2.3 ms beside a
/// busy guest (2.4–3.5× idle), at 500 µs 1.2–1.3 ms (1.3–1.5×), for +2.4 % on the guest echo
/// bench (`docs/benchmarks.md`).
pub const TIME_SLICE: Duration = Duration::from_micros(500);

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
                TICKS.fetch_add(1, Ordering::Relaxed);
                drop(engine);
                std::thread::sleep(TIME_SLICE);
            }
        })
        .context("cannot start the epoch thread")?;
    Ok(())
}

/// Epoch ticks since the process started, advanced with every engine's epoch.
static TICKS: AtomicU64 = AtomicU64::new(0);

/// When the guest of one store last began to run (its future was polled): the start of its
/// current run, as a time and as a tick count. Shared by the store's data, which reads it at each
/// epoch callback, and the future that runs the guest ([`SliceClock::track`]). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SliceClock(Arc<RunStart>);

#[derive(Debug, Default)]
struct RunStart {
    micros: AtomicU64,
    tick: AtomicU64,
}

/// The instant [`SliceClock`]s count from.
static CLOCK_BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

impl SliceClock {
    fn mark(&self) {
        self.0.micros.store(CLOCK_BASE.elapsed().as_micros() as u64, Ordering::Relaxed);
        self.0.tick.store(TICKS.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// How long the guest has run since it last began to run.
    pub fn running_for(&self) -> Duration {
        let started = Duration::from_micros(self.0.micros.load(Ordering::Relaxed));
        CLOCK_BASE.elapsed().saturating_sub(started)
    }

    /// Whether an epoch tick has happened since the guest last began to run. An epoch callback
    /// without one comes from a deadline that passed while the guest was waiting: the guest has
    /// just woken and used no slice.
    pub fn ticked_in_run(&self) -> bool {
        TICKS.load(Ordering::Relaxed) != self.0.tick.load(Ordering::Relaxed)
    }

    /// Runs `future` (which runs this clock's guest), marking the start of a run at each poll.
    pub async fn track<F: Future>(self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            self.mark();
            future.as_mut().poll(cx)
        })
        .await
    }
}

/// What a guest does at an epoch tick, when no budget holds it: one that has run a whole
/// [`TIME_SLICE`] since it began to run yields its shard; one that began within the slice (it
/// was waiting, for I/O or its turn) goes on to the next tick. A guest thus never yields before
/// it has had a whole slice — a request's guest that wakes for a moment is not sent behind a busy
/// guest's next slice at its first function call.
///
/// The yield is `tokio::task::yield_now`'s, so that before the guest runs again the shard has
/// polled its I/O driver and taken the tasks other threads handed it. (A plain wasmtime `Yield`
/// wakes the guest straight back into the shard's local queue, where it is picked before
/// handed-in tasks for up to 31 polls: up to 31 ms of a neighbour's request waiting behind 1 ms
/// slices, measured in `benches/neighbours.rs` as a 25 ms p99 beside a busy guest.)
pub fn end_of_slice(clock: &SliceClock) -> UpdateDeadline {
    if clock.running_for() >= TIME_SLICE {
        UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
    } else {
        UpdateDeadline::Continue(1)
    }
}

/// Makes `store`'s guest yield to its shard's other tasks at every epoch tick (then go on), so no
/// guest holds a shard for more than a [`TIME_SLICE`] at a time; `on_slice`, called at each tick
/// the guest was running at, says how ([`end_of_slice`], or a longer wait for a guest over budget).
pub fn time_sliced<T: 'static>(store: &mut Store<T>, on_slice: fn(&mut T) -> UpdateDeadline) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut context| Ok(on_slice(context.data_mut())));
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
