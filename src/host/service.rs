//! Service components (`wasi:cli/run`): started once, long-lived, and supervised — when one ends
//! (exit or trap) it is restarted after a backoff that doubles up to `backoff_max`; after
//! `max_restarts` restarts in a row it is given up and its tenant reported not ready. An
//! instance counts as running once it has stayed up for [`READY_AFTER`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime_wasi::p2::bindings::CommandPre;

use super::cpu_budget::{CpuBudget, Throttled};
use super::guest::{GuestState, Workload};
use super::guest_output::ComponentOutput;
use super::health::{Health, ServiceState};
use crate::config::EnvValue;
use crate::config::Restart;

/// How long a service instance must stay up before it counts as running (and its tenant as
/// ready).
const READY_AFTER: Duration = Duration::from_millis(300);

/// The environment variable that tells a service instance how many times in a row it has been
/// restarted before this run (0 for a first start, or after a run that stayed up).
pub const RESTARTS_ENV: &str = "SWITCHYARD_RESTARTS";

/// A service component ready to be supervised.
pub struct Service {
    /// The component's name.
    pub name: String,
    /// Its workload.
    pub workload: Workload,
    /// Pre-instantiated command.
    pub pre: CommandPre<GuestState>,
    /// Its environment.
    pub env: BTreeMap<String, EnvValue>,
    /// Its restart policy.
    pub restart: Restart,
    /// Where its output goes (one budget across its restarts).
    pub output: ComponentOutput,
    /// How often it was throttled to its CPU budget (across its restarts).
    pub throttled: Throttled,
}

impl Service {
    /// Prepares `component` for instantiation with `linker`.
    pub fn new(
        name: &str,
        workload: Workload,
        component: &Component,
        linker: &Linker<GuestState>,
        env: BTreeMap<String, EnvValue>,
        restart: Restart,
    ) -> anyhow::Result<Self> {
        let pre = CommandPre::new(linker.instantiate_pre(component)?).map_err(|e| {
            anyhow::anyhow!("tenant {}: component {name}: not a wasi:cli/run command: {e}", workload.tenant)
        })?;
        let output = ComponentOutput::new(&workload.tenant, name);
        let throttled = Throttled::default();
        Ok(Service { name: name.to_owned(), workload, pre, env, restart, output, throttled })
    }

    /// Runs one instance until it ends, after `restarts` restarts in a row; the reason it
    /// ended. The instance sees that count as `SWITCHYARD_RESTARTS` in its environment.
    async fn run_once(&self, health: &Health, restarts: u32) -> String {
        let budget = CpuBudget::new(self.workload.service_cpu_percent, self.throttled.clone());
        let mut env = self.env.clone();
        env.insert(RESTARTS_ENV.to_owned(), EnvValue::Plain(restarts.to_string()));
        let mut store = GuestState::new(&self.workload, &self.name, &env, &self.output)
            .with_cpu_budget(budget)
            .into_store(self.pre.engine());
        let clock = store.data().slice_clock();
        let command = match clock.clone().track(self.pre.instantiate_async(&mut store)).await {
            Ok(command) => command,
            Err(e) => return format!("instantiation failed: {e:#}"),
        };
        // Ready only once it has stayed up a moment: a service that crashes at start must not
        // look ready between its restarts.
        let run = clock.track(command.wasi_cli_run().call_run(&mut store));
        tokio::pin!(run);
        let outcome = tokio::select! {
            outcome = &mut run => outcome,
            () = tokio::time::sleep(READY_AFTER) => {
                health.set(&self.workload.tenant, &self.name, ServiceState::Running);
                tracing::info!(tenant = &*self.workload.tenant, component = self.name, "service running");
                run.await
            }
        };
        match outcome {
            Ok(Ok(())) => "exited with status 0".to_owned(),
            Ok(Err(())) => "exited with an error status".to_owned(),
            Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(code) => format!("exited with status {}", code.0),
                None => format!("trapped: {e:#}"),
            },
        }
    }

    /// Runs and restarts the service until it is given up (or the task is cancelled).
    pub async fn supervise(self: Arc<Self>, health: Health) {
        let tenant = self.workload.tenant.clone();
        health.set(&tenant, &self.name, ServiceState::Starting);
        let mut restarts = 0u32;
        let mut backoff = self.restart.backoff_initial;
        loop {
            let started = Instant::now();
            let reason = self.run_once(&health, restarts).await;
            // A run that outlived the longest backoff was healthy: start counting afresh.
            if started.elapsed() > self.restart.backoff_max.max(Duration::from_secs(1)) {
                restarts = 0;
                backoff = self.restart.backoff_initial;
            }
            if restarts >= self.restart.max_restarts {
                tracing::error!(
                    tenant = &*tenant,
                    component = self.name,
                    restarts,
                    "service {reason}; giving up after {} restarts in a row (restart.max_restarts); tenant not ready",
                    self.restart.max_restarts
                );
                health.set(&tenant, &self.name, ServiceState::Failed { reason });
                return;
            }
            restarts += 1;
            tracing::warn!(
                tenant = &*tenant,
                component = self.name,
                restart = restarts,
                backoff_ms = backoff.as_millis() as u64,
                "service {reason}; restarting in {backoff:?} (tenant not ready meanwhile)"
            );
            health.set(&tenant, &self.name, ServiceState::Restarting { restarts, reason });
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.restart.backoff_max);
        }
    }
}
