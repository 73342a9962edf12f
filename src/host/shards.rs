//! Worker shards: single-threaded tokio runtimes, each on its own thread. A workload's guests,
//! services and virtual connections all run on one shard, so its in-memory streams wake tasks on
//! the same thread (cross-thread wake-ups cost ten times the connect itself, see
//! `docs/benchmarks.md`), while different workloads spread over the shards.

use std::future::Future;
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
}

impl Shards {
    /// Starts `count` (at least 1) shards.
    pub fn start(count: usize) -> anyhow::Result<Self> {
        let mut shards = Shards { handles: vec![], stops: vec![], threads: vec![] };
        for i in 0..count.max(1) {
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
