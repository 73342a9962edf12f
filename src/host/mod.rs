//! The wasm host behind `switchyard up`: one engine, a virtual network and egress gate per
//! tenant, supervised service components, HTTP ingress with a fresh instance per request, and
//! the admin endpoint. Runs until Ctrl-C or SIGTERM, then stops everything.
//!
//! ```text
//!   up ── Shards (one single-threaded runtime per core; a tenant lives on one)
//!      ├─ per tenant: Network + Egress ── services (supervised) ── http components (per request)
//!      │                                └─ forwards, MySQL pools (native services on virtual ports)
//!      ├─ ingress: one HTTP server per listen address, routes by host and path prefix
//!      └─ admin: /healthz
//! ```

mod admin;
mod components;
mod cpu_budget;
mod embedded;
mod engine;
mod forwards;
mod guest;
mod guest_output;
mod health;
mod http_egress;
mod ingress;
mod instance_slots;
mod listener;
mod metrics;
mod pools;
mod published;
mod request_body;
mod request_instance;
mod service;
mod shards;
mod state_dir;
mod tenant_usage;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchyard_vnet::dns::Resolver;
use switchyard_vnet::egress::Egress;
use switchyard_vnet::{Limits, Network};

pub use health::{Health, ServiceState};
pub use instance_slots::{SlotPlan, TooManySlots};

use crate::config::{ComponentKind, Config};
use guest::Workload;
use ingress::{HttpComponent, Route, Router};
use service::Service;
use shards::Shards;

/// How long a guest's egress connect may take.
const EGRESS_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `config` (whose relative paths are relative to `base`) on `shards` worker shards (the
/// machine's cores when `None`) until Ctrl-C or SIGTERM.
pub fn up(config: &Config, base: &Path, shards: Option<usize>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("switchyard-io")
        .build()
        .context("cannot start the I/O runtime")?;
    let shard_count = shards.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let shards = Arc::new(Shards::start(shard_count)?);
    let embedded = if embedded::wanted(config) {
        Some(embedded::EmbeddedMariaDb::start(config, &base.join(&config.state_dir))?)
    } else {
        None
    };
    let connector = embedded.as_ref().map(embedded::EmbeddedMariaDb::connector);
    let result = runtime.block_on(run(config, base, shards.clone(), connector.as_ref()));
    drop(runtime);
    match Arc::try_unwrap(shards) {
        Ok(shards) => shards.stop(),
        Err(_) => tracing::warn!("worker shards still referenced at shutdown"),
    }
    if let Some(embedded) = embedded {
        embedded.stop();
    }
    result
}

async fn run(
    config: &Config,
    base: &Path,
    shards: Arc<Shards>,
    embedded: Option<&embedded::SocketConnector>,
) -> anyhow::Result<()> {
    let slots = instance_slots::SlotPlan::for_config(config)?;
    let engine = engine::engine(slots.total())?;
    tracing::info!(
        slots = slots.total(),
        services = slots.services,
        reserved = slots.reserved,
        shared = slots.shared,
        "instance slots"
    );
    let shared_slots = instance_slots::SharedSlots::new(&slots);
    let loading = std::time::Instant::now();
    let mut components = components::Components::new(&engine, &base.join(&config.state_dir));
    let linker = guest::linker(&engine)?;
    let resolver = match Resolver::system(config.dns.timeout) {
        Ok(resolver) => resolver,
        Err(e) => {
            tracing::warn!("{e}; guests and forwards can resolve names from the hosts file only");
            Resolver::hosts_file_only(config.dns.timeout)?
        }
    }
    .with_fixed_answers(config.dns.hosts.clone());
    let health = Health::default();
    let mut routes: BTreeMap<SocketAddr, Vec<Route>> = BTreeMap::new();
    let mut services = Vec::new();
    let mut mounted = Vec::new();
    let mut mounted_pools = Vec::new();
    let mut pool_handles = Vec::new();
    let mut tenant_usages = Vec::new();
    for (index, tenant) in config.tenants.iter().enumerate() {
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
                resolver.for_workload().with_context(|| format!("tenant {}: DNS resolver", tenant.name))?,
                EGRESS_CONNECT_TIMEOUT,
            ),
            shard: index,
            shards: shards.span(index, tenant.limits.shards as usize),
            request_timeout: tenant.limits.request_timeout,
            usage: tenant_usage::TenantUsage::new(
                (tenant.limits.max_memory_mib as usize) << 20,
                instance_slots::TenantSlots::new(tenant.limits.max_instances, shared_slots.clone()),
                shards.count(),
            ),
            max_request_body: u64::from(tenant.limits.max_request_body_mib) << 20,
            request_body_timeout: tenant.limits.request_body_timeout,
            service_cpu_percent: tenant.limits.service_cpu_percent,
        };
        tenant_usages.push((tenant.name.clone(), workload.usage.clone()));
        for forward in forwards::mount(tenant, &workload, base)? {
            mounted.push((workload.shards.clone(), forward));
        }
        for pool in pools::mount(tenant, &workload, embedded, base).await? {
            pool_handles.push((tenant.name.clone(), pool.name().to_owned(), pool.pool().clone()));
            health.watch_pool(&tenant.name, pool.name(), pool.pool().clone());
            mounted_pools.push((workload.shards.clone(), pool));
        }
        for component in &tenant.components {
            let what = format!("tenant {}: component {}", tenant.name, component.name);
            let wasm = base.join(&component.wasm);
            let compiled = components.load(&wasm, &what)?;
            match &component.kind {
                ComponentKind::Service(restart) => {
                    let service = Service::new(
                        &component.name,
                        workload.clone(),
                        &compiled,
                        &linker,
                        component.env.clone(),
                        *restart,
                    )?;
                    health.watch_throttling(&tenant.name, &component.name, service.throttled.clone());
                    services.push(Arc::new(service));
                }
                ComponentKind::Http(ingress) => {
                    let http = HttpComponent::new(
                        &component.name,
                        workload.clone(),
                        &compiled,
                        &linker,
                        component.env.clone(),
                    )?;
                    routes.entry(ingress.listen).or_default().push(Route {
                        host: ingress.host.clone(),
                        prefix: ingress.path_prefix.clone(),
                        component: Arc::new(http),
                    });
                }
            }
            tracing::info!(tenant = tenant.name, component = component.name, wasm = %wasm.display(), "component loaded");
        }
    }

    let counts = components.counts();
    tracing::info!(
        compiled = counts.compiled,
        from_disk = counts.from_disk,
        shared = counts.shared,
        took_ms = loading.elapsed().as_millis() as u64,
        "components ready: {} compiled, {} read from state_dir, {} shared",
        counts.compiled,
        counts.from_disk,
        counts.shared,
    );
    drop(components);

    let mut tasks = Vec::new();
    // A workload's forwards and pools accept on each of its shards: a connection is served on
    // the shard of the guest that made it (vnet's `Acceptor`).
    for (workload_shards, forward) in mounted {
        for &shard in workload_shards.iter().skip(1) {
            tasks.push(shards.spawn(shard, forward.clone().serve()));
        }
        tasks.push(shards.spawn(workload_shards[0], forward.serve()));
    }
    for (workload_shards, pool) in mounted_pools {
        for &shard in workload_shards.iter().skip(1) {
            tasks.push(shards.spawn(shard, pool.accept_virtual()));
        }
        tasks.push(shards.spawn(workload_shards[0], pool.serve()));
    }
    for service in services {
        let shard = service.workload.shard;
        tasks.push(shards.spawn(shard, service.supervise(health.clone())));
    }
    for (addr, routes) in routes {
        tasks.push(ingress::serve(addr, Router::new(routes), shards.clone()).await?);
    }
    if let Some(addr) = config.admin.listen {
        tasks.push(
            admin::serve(
                addr,
                health.clone(),
                metrics::Metrics::new(shared_slots, tenant_usages, pool_handles.clone()),
            )
            .await?,
        );
    }
    if let Some(sql) = &config.admin.sql {
        let pools = pool_handles
            .into_iter()
            .map(|(tenant, name, pool)| switchyard_pooler::admin::AdminPool { tenant, name, pool })
            .collect();
        tasks.push(admin::serve_sql(sql, pools).await?);
    }
    tracing::info!(tenants = config.tenants.len(), "switchyard is up; Ctrl-C or SIGTERM stops it");

    shutdown_signal().await?;
    tracing::info!("shutting down");
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot watch Ctrl-C"),
        _ = terminate.recv() => Ok(()),
    }
}
