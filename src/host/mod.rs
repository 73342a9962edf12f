//! The wasm host behind `switchyard up`: one engine, a virtual network and egress gate per
//! tenant, supervised service components, HTTP ingress with a fresh instance per request, and
//! the admin endpoint. Runs until Ctrl-C or SIGTERM, then stops everything; reloads its config on
//! SIGHUP or `POST /reload`, touching only the tenants whose section changed.
//!
//! ```text
//!   up ── Shards (one single-threaded runtime per core; a tenant lives on one)
//!      ├─ Host (reload.rs): per tenant a RunningTenant (tenant.rs):
//!      │    Network + Egress ── services (supervised) ── http components (per request)
//!      │                     └─ forwards, MySQL pools (native services on virtual ports)
//!      ├─ ingress: one HTTP server per listen address, routes by host and path prefix
//!      └─ admin: /, /healthz, /metrics, POST /reload  (SIGHUP reloads too)
//! ```

mod admin;
mod admin_page;
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
mod live;
mod metrics;
mod pools;
mod published;
mod reload;
mod request_body;
mod request_instance;
mod service;
mod shards;
mod state_dir;
mod tenant;
mod tenant_usage;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use switchyard_vnet::dns::Resolver;
use tokio::sync::{mpsc, oneshot};

pub use health::{Health, ServiceState};
pub use instance_slots::{SlotPlan, TooManySlots};

use crate::config::{Config, Overrides};
use reload::Host;
use shards::Shards;
use tenant::HostParts;

/// Instance slots the engine holds past what the starting config needs, so that a reload may
/// add services and tenants' reserves (not a first tenant with http components: that needs the
/// shared slots, [`instance_slots::SHARED_SLOTS`], and a restart).
const RELOAD_SLOTS: u32 = 256;

/// Reload requests queued at most (from `switchyard reload` through the admin endpoint); one
/// past that is answered "busy" at once.
const RELOAD_QUEUE: usize = 4;

/// Where the running config comes from, to read it again on a reload.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// The config file.
    pub path: PathBuf,
    /// The command line's overrides, applied again at each reload.
    pub overrides: Overrides,
    /// How often to look whether the file changed, and reload when it did (`--watch-config`).
    pub watch: Option<std::time::Duration>,
}

/// How often `--watch-config` reads the config file.
pub const CONFIG_WATCH_PERIOD: std::time::Duration = std::time::Duration::from_secs(2);

/// The content of the file at `path`, as a digest; `None` when it cannot be read (a ConfigMap
/// being swapped), which is not a change.
fn file_digest(path: &std::path::Path) -> Option<components::ContentDigest> {
    components::digest_of(path).ok()
}

impl ConfigSource {
    /// The config's folder: relative paths in it start there.
    pub fn base(&self) -> PathBuf {
        self.path.parent().map_or_else(|| PathBuf::from("."), |p| p.to_path_buf())
    }
}

/// One request to reload, and where to send its outcome (none for `SIGHUP`).
pub struct ReloadRequest {
    /// Gets the summary, or every error line.
    pub reply: Option<oneshot::Sender<Result<String, Vec<String>>>>,
}

/// Runs `config` (read from `source`) on `shards` worker shards (the machine's cores when
/// `None`) until Ctrl-C or SIGTERM; `SIGHUP` and the admin endpoint's `POST /reload` read
/// `source` again and apply it ([`reload`]).
pub fn up(config: &Config, source: &ConfigSource, shards: Option<usize>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("switchyard-io")
        .build()
        .context("cannot start the I/O runtime")?;
    let shard_count = shards.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let shards = Arc::new(Shards::start(shard_count)?);
    let base = source.base();
    let embedded = if embedded::wanted(config) {
        Some(embedded::EmbeddedMariaDb::start(config, &base.join(&config.state_dir))?)
    } else {
        None
    };
    let backend = embedded.as_ref().map(embedded::EmbeddedMariaDb::backend);
    let result = runtime.block_on(run(config, source, shards.clone(), backend));
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
    source: &ConfigSource,
    shards: Arc<Shards>,
    embedded: Option<embedded::EmbeddedBackend>,
) -> anyhow::Result<()> {
    let slots = instance_slots::SlotPlan::for_config(config)?;
    let capacity = (slots.total() + RELOAD_SLOTS).min(instance_slots::MAX_SLOTS);
    let engine = engine::engine(capacity)?;
    tracing::info!(
        slots = slots.total(),
        services = slots.services,
        reserved = slots.reserved,
        shared = slots.shared,
        engine_slots = capacity,
        "instance slots"
    );
    let base = source.base();
    let resolver = match Resolver::system(config.dns.timeout) {
        Ok(resolver) => resolver,
        Err(e) => {
            tracing::warn!("{e}; guests and forwards can resolve names from the hosts file only");
            Resolver::hosts_file_only(config.dns.timeout)?
        }
    }
    .with_fixed_answers(config.dns.hosts.clone());
    let parts = HostParts {
        linker: guest::linker(&engine)?,
        components: Mutex::new(components::Components::new(&engine, &base.join(&config.state_dir))),
        resolver,
        shared_slots: instance_slots::SharedSlots::new(&slots),
        shards,
        embedded,
        base,
        health: Health::default(),
    };
    let loading = std::time::Instant::now();
    let mut host = Host::start(config.clone(), parts, capacity).await?;
    log_components(host.parts(), loading);

    let mut tasks = Vec::new();
    let (reloads, mut reload_requests) = mpsc::channel::<ReloadRequest>(RELOAD_QUEUE);
    if let Some(addr) = config.admin.listen {
        let metrics = metrics::Metrics::new(host.parts().shared_slots.clone(), host.live().clone());
        let admin =
            admin::AdminEndpoint::new(host.parts().health.clone(), metrics, host.live().clone(), reloads);
        tasks.push(admin::serve(addr, admin).await?);
    }
    if let Some(sql) = &config.admin.sql {
        let (task, admin) = admin::serve_sql(sql, host.admin_pools()).await?;
        host.report_pools_to(admin);
        tasks.push(task);
    }
    tracing::info!(
        tenants = config.tenants.len(),
        "switchyard is up; Ctrl-C or SIGTERM stops it, SIGHUP reloads its config"
    );

    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot watch SIGHUP")?;
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut watch = source.watch.map(|period| {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    // The content last loaded or tried: a rejected one is not tried again until it changes.
    let mut last_content = file_digest(&source.path);
    loop {
        tokio::select! {
            _ = async {
                match watch.as_mut() {
                    Some(ticks) => ticks.tick().await,
                    None => std::future::pending().await,
                }
            } => {
                let content = file_digest(&source.path);
                if content.is_some() && content != last_content {
                    last_content = content;
                    tracing::info!(config = %source.path.display(), "the config file changed (--watch-config): reloading");
                    reload(&mut host, source, None).await;
                }
            }
            stopped = &mut shutdown => {
                stopped?;
                break;
            }
            _ = hangup.recv() => {
                last_content = file_digest(&source.path);
                tracing::info!(config = %source.path.display(), "SIGHUP: reloading the config");
                reload(&mut host, source, None).await;
            }
            Some(request) = reload_requests.recv() => {
                last_content = file_digest(&source.path);
                tracing::info!(config = %source.path.display(), "reload asked on the admin endpoint");
                reload(&mut host, source, request.reply).await;
            }
        }
    }
    tracing::info!("shutting down");
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    drop(host);
    tracing::info!("stopped");
    Ok(())
}

/// Reads `source` again and applies it to `host`; the outcome is logged and sent to `reply`.
async fn reload(
    host: &mut Host,
    source: &ConfigSource,
    reply: Option<oneshot::Sender<Result<String, Vec<String>>>>,
) {
    let loading = std::time::Instant::now();
    let outcome = match crate::config_file::load_collecting(&source.path, &source.overrides) {
        Err(errors) => Err(errors),
        Ok((loaded, warnings)) => {
            for warning in &warnings {
                tracing::warn!("{warning}");
            }
            host.parts().components.lock().unwrap_or_else(|p| p.into_inner()).reset_counts();
            host.reload(loaded.config).await.map(|applied| applied.to_string())
        }
    };
    host.live().count_reload(match outcome {
        Ok(_) => live::ReloadOutcome::Applied,
        Err(_) => live::ReloadOutcome::Rejected,
    });
    match &outcome {
        Ok(summary) => {
            log_components(host.parts(), loading);
            tracing::info!("config reloaded: {summary}");
        }
        Err(errors) => {
            for error in errors {
                tracing::error!("reload rejected: {error}");
            }
            tracing::error!(
                "reload rejected: the config in force is unchanged (generation {})",
                host.live().view().generation
            );
        }
    }
    if let Some(reply) = reply {
        let _ = reply.send(outcome);
    }
}

/// Logs how the components of a start or reload were obtained.
fn log_components(parts: &HostParts, since: std::time::Instant) {
    let counts = parts.components.lock().unwrap_or_else(|p| p.into_inner()).counts();
    tracing::info!(
        compiled = counts.compiled,
        from_disk = counts.from_disk,
        shared = counts.shared,
        took_ms = since.elapsed().as_millis() as u64,
        "components ready: {} compiled, {} read from state_dir, {} shared",
        counts.compiled,
        counts.from_disk,
        counts.shared,
    );
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
