//! What runs now, for the admin endpoint (`/metrics`, `/healthz`, the live page at `/`): the
//! config generation and, per tenant, the handles its live figures are read from. A reload
//! replaces the whole view at once, so a reader never sees half of one config and half of the
//! next.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use switchyard_pooler::Pool;
use switchyard_vnet::Network;
use switchyard_vnet::egress::Egress;

use super::tenant_usage::TenantUsage;
use crate::config::Config;

/// One running tenant's handles.
#[derive(Debug, Clone)]
pub struct LiveTenant {
    /// Its name.
    pub name: String,
    /// Its budgets and usage counters.
    pub usage: TenantUsage,
    /// Its virtual network (sockets and connections now).
    pub network: Arc<Network>,
    /// Its egress gate (recent denials).
    pub egress: Arc<Egress>,
    /// Its pools, by name.
    pub pools: Vec<(String, Pool)>,
}

/// The view of one config generation.
#[derive(Debug)]
pub struct LiveView {
    /// 1 for the config `up` started with, one more for each reload that took effect.
    pub generation: u64,
    /// The config in force.
    pub config: Arc<Config>,
    /// Its tenants, in config order.
    pub tenants: Vec<LiveTenant>,
}

impl LiveView {
    /// The view of tenant `name` alone, if it runs.
    pub fn only(&self, name: &str) -> Option<LiveView> {
        let tenant = self.tenants.iter().find(|t| t.name == name)?.clone();
        let mut config = (*self.config).clone();
        config.tenants.retain(|t| t.name == name);
        Some(LiveView { generation: self.generation, config: Arc::new(config), tenants: vec![tenant] })
    }
}

/// The shared view and the reload counters. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Live {
    view: Arc<RwLock<Arc<LiveView>>>,
    reloads: Arc<[AtomicU64; 2]>,
}

/// How a reload ended, for its counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The new config is in force.
    Applied,
    /// The new config was rejected; nothing changed.
    Rejected,
}

impl ReloadOutcome {
    /// The label value in `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            ReloadOutcome::Applied => "applied",
            ReloadOutcome::Rejected => "rejected",
        }
    }
}

impl Live {
    /// The view of generation 1.
    pub fn new(config: Arc<Config>, tenants: Vec<LiveTenant>) -> Self {
        Live {
            view: Arc::new(RwLock::new(Arc::new(LiveView { generation: 1, config, tenants }))),
            reloads: Arc::new([AtomicU64::new(0), AtomicU64::new(0)]),
        }
    }

    /// The view in force now.
    pub fn view(&self) -> Arc<LiveView> {
        self.view.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Puts the view of the next generation in force; its number.
    pub fn advance(&self, config: Arc<Config>, tenants: Vec<LiveTenant>) -> u64 {
        let mut view = self.view.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let generation = view.generation + 1;
        *view = Arc::new(LiveView { generation, config, tenants });
        generation
    }

    /// Counts a reload that ended as `outcome`.
    pub fn count_reload(&self, outcome: ReloadOutcome) {
        self.reloads[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Reloads that ended as `outcome` so far.
    pub fn reloads(&self, outcome: ReloadOutcome) -> u64 {
        self.reloads[outcome as usize].load(Ordering::Relaxed)
    }
}
