//! One tenant as it runs: its workload (virtual network, egress gate, budgets), its mounted
//! forwards and pools, its supervised services and its http routes — built from its config
//! section in two steps, so that a reload can build every new tenant before it stops any old one:
//!
//! - [`PreparedTenant::prepare`] does everything that can fail (compiling components, TLS files,
//!   virtual ports, published addresses) and starts nothing;
//! - [`PreparedTenant::start`] spawns its tasks on its shards; dropping the [`RunningTenant`]
//!   aborts them (its pool sessions end; requests in flight finish on what they hold).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use switchyard_pooler::Pool;
use switchyard_vnet::dns::Resolver;
use switchyard_vnet::egress::Egress;
use switchyard_vnet::forward::Forward;
use switchyard_vnet::{Limits, Network};
use wasmtime::component::Linker;

use super::components::{Components, ContentDigest};
use super::embedded::EmbeddedBackend;
use super::guest::{GuestState, Workload};
use super::health::Health;
use super::ingress::{HttpComponent, Route};
use super::instance_slots::{SharedSlots, TenantSlots};
use super::live::LiveTenant;
use super::pools::{MountedPool, PublishedListeners};
use super::service::Service;
use super::shards::Shards;
use super::{forwards, pools, tenant_usage};
use crate::config::{ComponentKind, Tenant};

/// How long a guest's egress connect may take.
const EGRESS_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What every tenant of a host is built with, for the host's whole life.
pub struct HostParts {
    /// The linker of every guest.
    pub linker: Linker<GuestState>,
    /// Compiled components, by content.
    pub components: Mutex<Components>,
    /// Each tenant's resolver is a fresh cache of this one.
    pub resolver: Resolver,
    /// The instance slots tenants borrow past their reserve.
    pub shared_slots: SharedSlots,
    /// The worker shards.
    pub shards: Arc<Shards>,
    /// The embedded MariaDB, when `up` started one.
    pub embedded: Option<EmbeddedBackend>,
    /// The config's folder: relative paths start there.
    pub base: PathBuf,
    /// Readiness.
    pub health: Health,
}

/// A tenant built and not started.
pub struct PreparedTenant {
    config: Tenant,
    digests: Vec<ContentDigest>,
    workload: Workload,
    forwards: Vec<Forward>,
    pools: Vec<MountedPool>,
    services: Vec<Service>,
    routes: Vec<(SocketAddr, Route)>,
}

/// A running tenant; dropping it stops its tasks.
pub struct RunningTenant {
    config: Tenant,
    digests: Vec<ContentDigest>,
    workload: Workload,
    pools: Vec<(String, Pool)>,
    routes: Vec<(SocketAddr, Route)>,
    published: PublishedListeners,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl PreparedTenant {
    /// Builds `tenant` whose own shard is `shard`. Published addresses found in `inherited` (the
    /// running tenant it replaces) are taken over rather than bound again.
    pub async fn prepare(
        tenant: &Tenant,
        shard: usize,
        parts: &HostParts,
        inherited: &PublishedListeners,
    ) -> anyhow::Result<Self> {
        let limits = Limits {
            max_sockets: tenant.limits.max_sockets as usize,
            max_connections: tenant.limits.max_connections as usize,
            ..Limits::default()
        };
        let workload = Workload {
            tenant: tenant.name.as_str().into(),
            network: Network::new(tenant.name.as_str(), limits),
            egress: Egress::new(
                tenant.name.as_str(),
                tenant.policy(),
                // A cache of its own: no tenant learns from lookup times which names others use.
                parts
                    .resolver
                    .for_workload()
                    .with_context(|| format!("tenant {}: DNS resolver", tenant.name))?,
                EGRESS_CONNECT_TIMEOUT,
            ),
            shard,
            shards: parts.shards.span(shard, tenant.limits.shards as usize),
            request_timeout: tenant.limits.request_timeout,
            usage: tenant_usage::TenantUsage::new(
                (tenant.limits.max_memory_mib as usize) << 20,
                TenantSlots::new(tenant.limits.max_instances, parts.shared_slots.clone()),
                parts.shards.count(),
            ),
            max_request_body: u64::from(tenant.limits.max_request_body_mib) << 20,
            request_body_timeout: tenant.limits.request_body_timeout,
            service_cpu_percent: tenant.limits.service_cpu_percent,
        };
        let forwards = forwards::mount(tenant, &workload, &parts.base)?;
        let pools = pools::mount(
            tenant,
            &workload,
            parts.embedded.as_ref().map(|e| &e.connector),
            &parts.base,
            inherited,
        )
        .await?;
        let mut digests = Vec::with_capacity(tenant.components.len());
        let mut services = Vec::new();
        let mut routes = Vec::new();
        for component in &tenant.components {
            let what = format!("tenant {}: component {}", tenant.name, component.name);
            let wasm = parts.base.join(&component.wasm);
            let (digest, compiled) = parts
                .components
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .load(&wasm, &what)?;
            digests.push(digest);
            match &component.kind {
                ComponentKind::Service(restart) => services.push(Service::new(
                    &component.name,
                    workload.clone(),
                    &compiled,
                    &parts.linker,
                    component.env.clone(),
                    *restart,
                )?),
                ComponentKind::Http(ingress) => {
                    let http = HttpComponent::new(
                        &component.name,
                        workload.clone(),
                        &compiled,
                        &parts.linker,
                        component.env.clone(),
                    )?;
                    routes.push((
                        ingress.listen,
                        Route {
                            host: ingress.host.clone(),
                            prefix: ingress.path_prefix.clone(),
                            component: Arc::new(http),
                        },
                    ));
                }
            }
            tracing::info!(tenant = tenant.name, component = component.name, wasm = %wasm.display(), "component loaded");
        }
        Ok(PreparedTenant { config: tenant.clone(), digests, workload, forwards, pools, services, routes })
    }

    /// Starts its forwards, pools and services on its shards. A workload's forwards and pools
    /// accept on each of its shards: a connection is served on the shard of the guest that made
    /// it (vnet's `Acceptor`).
    pub fn start(self, parts: &HostParts) -> RunningTenant {
        let PreparedTenant { config, digests, workload, forwards, pools, services, routes } = self;
        let (shards, health) = (&parts.shards, &parts.health);
        let mut tasks = Vec::new();
        for forward in forwards {
            for &shard in workload.shards.iter().skip(1) {
                tasks.push(shards.spawn(shard, forward.clone().serve()));
            }
            tasks.push(shards.spawn(workload.shards[0], forward.serve()));
        }
        let mut running_pools = Vec::with_capacity(pools.len());
        let mut published = BTreeMap::new();
        for pool in pools {
            running_pools.push((pool.name().to_owned(), pool.pool().clone()));
            health.watch_pool(&config.name, pool.name(), pool.pool().clone());
            published.extend(pool.published());
            for &shard in workload.shards.iter().skip(1) {
                tasks.push(shards.spawn(shard, pool.accept_virtual()));
            }
            tasks.push(shards.spawn(workload.shards[0], pool.serve()));
        }
        for service in services {
            health.watch_throttling(&config.name, &service.name, service.throttled.clone());
            tasks.push(shards.spawn(workload.shard, Arc::new(service).supervise(health.clone())));
        }
        RunningTenant { config, digests, workload, pools: running_pools, routes, published, tasks }
    }
}

impl RunningTenant {
    /// Its config section.
    pub fn config(&self) -> &Tenant {
        &self.config
    }

    /// The content of each of its components, in config order.
    pub fn digests(&self) -> &[ContentDigest] {
        &self.digests
    }

    /// Its http routes, by listen address.
    pub fn routes(&self) -> &[(SocketAddr, Route)] {
        &self.routes
    }

    /// Its published listeners (handed to its replacement in a reload).
    pub fn published(&self) -> &PublishedListeners {
        &self.published
    }

    /// Its handles for the admin endpoint.
    pub fn live(&self) -> LiveTenant {
        LiveTenant {
            name: self.config.name.clone(),
            usage: self.workload.usage.clone(),
            network: self.workload.network.clone(),
            egress: self.workload.egress.clone(),
            pools: self.pools.clone(),
        }
    }

    /// Applies the parts of `new` that change in place — the egress policy (for connections
    /// made from now on) and pools' `max_connections` (no session ends) — and takes `new` as its
    /// section. The caller has checked that nothing else differs ([`super::reload::compare`]).
    pub async fn update_in_place(&mut self, new: &Tenant) {
        let policy_changed = new.allowed_hosts != self.config.allowed_hosts
            || new.allowed_sockets != self.config.allowed_sockets
            || new.deny_networks != self.config.deny_networks;
        if policy_changed {
            self.workload.egress.replace_policy(new.policy());
            tracing::info!(
                tenant = new.name,
                allowed_hosts =
                    new.allowed_hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(", "),
                "egress policy changed: it decides every connect and lookup from now on; connections already open stay",
            );
        }
        for ((name, pool), config) in self.pools.iter().zip(&new.pools) {
            let max = config.max_connections as usize;
            let before = pool.max_connections();
            if before != max {
                pool.resize(max).await;
                tracing::info!(
                    tenant = new.name,
                    pool = name,
                    before,
                    after = max,
                    "pool max_connections changed; no session ended"
                );
            }
        }
        self.config = new.clone();
    }
}

impl RunningTenant {
    /// Stops its tasks and waits until each has ended, so that none of them writes its state
    /// (readiness, say) after this returns.
    pub async fn stop(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for RunningTenant {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
