//! Worker shards: single-threaded tokio runtimes, each on its own thread. A workload's guests,
//! services and virtual connections run on its own shard, so its in-memory streams wake tasks on
//! the same thread (cross-thread wake-ups cost ten times the connect itself, see
//! `docs/benchmarks.md`), while different workloads spread over the shards. A workload allowed
//! several shards (`limits.shards`) has each request's instance placed on the one of them with
//! the fewest requests in flight ([`Shards::place`]); its pools and forwards accept on each, so
//! a guest's virtual connections still stay on the guest's thread.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use anyhow::Context;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A fixed set of single-threaded runtimes.
#[derive(Debug)]
pub struct Shards {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    /// Requests in flight on each shard (every tenant's).
    in_flight: Arc<[AtomicUsize]>,
}

/// A request counted in flight on its shard until dropped.
#[derive(Debug)]
pub struct InFlight {
    in_flight: Arc<[AtomicUsize]>,
    shard: usize,
}

impl InFlight {
    /// The shard the request was placed on.
    pub fn shard(&self) -> usize {
        self.shard
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.in_flight[self.shard].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shards {
    /// Starts `count` (at least 1) shards.
    pub fn start(count: usize) -> anyhow::Result<Self> {
        let count = count.max(1);
        let in_flight = (0..count).map(|_| AtomicUsize::new(0)).collect();
        let mut shards = Shards { handles: vec![], stops: vec![], threads: vec![], in_flight };
        for i in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start a worker runtime")?;
            let (stop, stopped) = oneshot::channel::<()>();
            shards.handles.push(runtime.handle().clone());
            shards.stops.push(stop);
            let thread = std::thread::Builder::new()
                .name(format!("switchyard-shard-{i}"))
                .spawn(move || {
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                    // Dropping the runtime cancels every task still on it.
                    drop(runtime);
                })
                .context("cannot start a worker thread")?;
            shards.threads.push(thread);
        }
        Ok(shards)
    }

    /// How many shards run.
    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// The shards of the `index`-th workload allowed `span` of them: its own
    /// (`index % count`) first, then the next ones, at most every shard once.
    pub fn span(&self, index: usize, span: usize) -> Arc<[usize]> {
        let count = self.count();
        (0..span.clamp(1, count)).map(|i| (index + i) % count).collect()
    }

    /// Places a request on the shard of `candidates` (a workload's [`Shards::span`]) with the
    /// fewest requests in flight, the first on a tie (so a workload's own shard while it is as
    /// idle as the others); counted there until the returned guard drops.
    pub fn place(&self, candidates: &[usize]) -> InFlight {
        let load = |shard: &usize| self.in_flight[shard % self.count()].load(Ordering::Relaxed);
        let shard = match candidates {
            [only] => *only,
            _ => candidates.iter().copied().min_by_key(load).unwrap_or(0),
        } % self.count();
        self.in_flight[shard].fetch_add(1, Ordering::Relaxed);
        InFlight { in_flight: self.in_flight.clone(), shard }
    }

    /// The shard of the `index`-th workload.
    pub fn for_workload(&self, index: usize) -> Handle {
        self.handles[index % self.handles.len()].clone()
    }

    /// Runs `future` on the shard of workload `index`.
    pub fn spawn<F>(&self, index: usize, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.for_workload(index).spawn(future)
    }

    /// Stops every shard, cancelling its tasks, and waits for the threads to end.
    pub fn stop(self) {
        drop(self.stops);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}
