//! Readiness: what every service of every tenant is doing, and whether every pool reaches its
//! backend, for `/healthz` and the logs. A tenant is ready when each of its services runs and
//! each of its pools' last backend connect succeeded; otherwise the report says which and why.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use switchyard_pooler::Pool;

use super::cpu_budget::Throttled;

/// The state of one service component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceState {
    /// Being instantiated for the first time.
    Starting,
    /// Running.
    Running,
    /// Ended and waiting to be restarted.
    Restarting {
        /// Restarts in a row so far.
        restarts: u32,
        /// Why it ended last.
        reason: String,
    },
    /// Ended too often in a row; not restarted again.
    Failed {
        /// Why it ended last.
        reason: String,
    },
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceState::Starting => f.write_str("starting"),
            ServiceState::Running => f.write_str("running"),
            ServiceState::Restarting { restarts, reason } => {
                write!(f, "restarting (restart {restarts} in a row): last exit: {reason}")
            }
            ServiceState::Failed { reason } => {
                write!(f, "failed: gave up after restart.max_restarts: last exit: {reason}")
            }
        }
    }
}

/// Readiness of every service, keyed by (tenant, component), the pools watched, and the services'
/// CPU throttling (notices only). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Health(
    Arc<Mutex<BTreeMap<(String, String), ServiceState>>>,
    Arc<Mutex<Vec<(String, String, Pool)>>>,
    Arc<Mutex<Vec<(String, String, Throttled)>>>,
);

impl Health {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, String), ServiceState>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the state of a service.
    pub fn set(&self, tenant: &str, component: &str, state: ServiceState) {
        self.lock().insert((tenant.to_owned(), component.to_owned()), state);
    }

    /// The state of service `component` of `tenant`, if it is one.
    pub fn service_state(&self, tenant: &str, component: &str) -> Option<ServiceState> {
        self.lock().get(&(tenant.to_owned(), component.to_owned())).cloned()
    }

    /// Forgets everything of `tenant` (removed or replaced by a reload).
    pub fn forget_tenant(&self, tenant: &str) {
        self.lock().retain(|(t, _), _| t != tenant);
        self.1.lock().unwrap_or_else(|p| p.into_inner()).retain(|(t, _, _)| t != tenant);
        self.2.lock().unwrap_or_else(|p| p.into_inner()).retain(|(t, _, _)| t != tenant);
    }

    /// Counts `pool` of `tenant` in readiness.
    pub fn watch_pool(&self, tenant: &str, name: &str, pool: Pool) {
        self.1.lock().unwrap_or_else(|p| p.into_inner()).push((tenant.to_owned(), name.to_owned(), pool));
    }

    /// Reports on `/healthz` when service `component` of `tenant` is throttled to its CPU budget.
    pub fn watch_throttling(&self, tenant: &str, component: &str, throttled: Throttled) {
        self.2.lock().unwrap_or_else(|p| p.into_inner()).push((
            tenant.to_owned(),
            component.to_owned(),
            throttled,
        ));
    }

    /// One line per service that has used up its CPU budget: a notice that does not change
    /// readiness (a tenant must not be able to make the host look unhealthy).
    pub fn notices(&self) -> Vec<String> {
        self.2
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, _, throttled)| throttled.count() > 0)
            .map(|(tenant, component, throttled)| {
                format!(
                    "notice: tenant {tenant}: component {component}: over its CPU budget (limits.service_cpu_percent), throttled {} times",
                    throttled.count()
                )
            })
            .collect()
    }

    /// Whether every service runs and every pool reaches its backend.
    pub fn is_ready(&self) -> bool {
        self.problems().is_empty()
    }

    /// One line per service that is not running: `tenant acme: component counter: restarting ...`.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, state)| **state != ServiceState::Running)
            .map(|((tenant, component), state)| format!("tenant {tenant}: component {component}: {state}"))
            .collect();
        for (tenant, name, pool) in self.1.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            if let Some(problem) = pool.backend_problem() {
                problems.push(format!("tenant {tenant}: pool {name}: cannot reach its backend: {problem}"));
            }
        }
        problems
    }

    /// The `/healthz` body: `ready`, or `not ready` and one line per problem; then one line per
    /// notice.
    pub fn report(&self) -> String {
        let problems = self.problems();
        let mut report = if problems.is_empty() {
            "ready\n".to_owned()
        } else {
            format!("not ready\n{}\n", problems.join("\n"))
        };
        for notice in self.notices() {
            report.push_str(&notice);
            report.push('\n');
        }
        report
    }
}
