//! The running host and its reload: a new config is compared with the running one tenant by
//! tenant, and only what changed is touched.
//!
//! | a tenant's section                                   | on reload                               |
//! |------------------------------------------------------|-----------------------------------------|
//! | the same (components' content included)              | kept: every connection and session      |
//! | differs only in its policy and/or pools' `max_connections` | changed in place: the policy decides from now on, pools resize; nothing ends |
//! | differs otherwise (limits, forwards, pools, components) | restarted: built anew, then the old one stopped (its sessions end) |
//! | new / gone                                           | started / stopped                       |
//!
//! A reload is all or nothing. Everything that can fail — loading and checking the file, keys
//! that only a restart changes, the instance-slot budget, building every new or restarted tenant,
//! binding new ingress addresses — happens before anything running is touched; on any error the
//! errors are returned and logged and the host runs on as before, at the same generation.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use super::components::ContentDigest;
use super::ingress::{IngressServers, Route};
use super::instance_slots::SlotPlan;
use super::live::Live;
use super::tenant::{HostParts, PreparedTenant, RunningTenant};
use crate::config::{Config, Tenant};

/// How a tenant's section changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Not at all.
    Same,
    /// Only in what applies in place: its policy, its pools' `max_connections`.
    InPlace,
    /// Otherwise: it is built anew.
    Restart,
}

/// How `new` (whose components have contents `new_digests`) differs from `old`.
pub fn compare(
    old: &Tenant,
    old_digests: &[ContentDigest],
    new: &Tenant,
    new_digests: &[ContentDigest],
) -> Change {
    if old_digests != new_digests {
        return Change::Restart;
    }
    if old == new {
        return Change::Same;
    }
    let mut rest = new.clone();
    rest.allowed_hosts = old.allowed_hosts.clone();
    rest.allowed_sockets = old.allowed_sockets.clone();
    rest.allowed_hosts_declared = old.allowed_hosts_declared;
    rest.deny_networks = old.deny_networks.clone();
    if rest.pools.len() == old.pools.len() {
        for (pool, before) in rest.pools.iter_mut().zip(&old.pools) {
            pool.max_connections = before.max_connections;
        }
    }
    if rest == *old { Change::InPlace } else { Change::Restart }
}

/// What a reload did, for its caller and the log.
#[derive(Debug, Default)]
pub struct Applied {
    /// The generation now in force.
    pub generation: u64,
    /// Tenants started.
    pub added: Vec<String>,
    /// Tenants stopped.
    pub removed: Vec<String>,
    /// Tenants built anew.
    pub restarted: Vec<String>,
    /// Tenants changed in place.
    pub changed: Vec<String>,
    /// Tenants left as they were.
    pub unchanged: usize,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |names: &[String]| if names.is_empty() { "none".to_owned() } else { names.join(", ") };
        write!(
            f,
            "config generation {}: added {}; removed {}; restarted {}; changed in place {}; unchanged {}",
            self.generation,
            list(&self.added),
            list(&self.removed),
            list(&self.restarted),
            list(&self.changed),
            self.unchanged
        )
    }
}

/// The host while it runs: its tenants, ingress servers and what the admin endpoint shows.
/// Dropping it stops every tenant and server.
pub struct Host {
    parts: HostParts,
    config: Arc<Config>,
    tenants: Vec<RunningTenant>,
    ingress: IngressServers,
    live: Live,
    slot_capacity: u32,
    admin_sql: Option<switchyard_pooler::admin::Admin>,
}

impl Host {
    /// Builds and starts every tenant of `config` and its ingress servers; the engine of `parts`
    /// holds `slot_capacity` instance slots (a reload may use up to that many).
    pub async fn start(config: Config, parts: HostParts, slot_capacity: u32) -> anyhow::Result<Self> {
        let mut prepared = Vec::with_capacity(config.tenants.len());
        for (index, tenant) in config.tenants.iter().enumerate() {
            prepared.push(PreparedTenant::prepare(tenant, index, &parts, &BTreeMap::new()).await?);
        }
        let tenants: Vec<RunningTenant> = prepared.into_iter().map(|p| p.start(&parts)).collect();
        let mut ingress = IngressServers::new(parts.shards.clone());
        let routes = routes_of(&tenants);
        let bound = ingress.bind_new(routes.keys().copied()).await?;
        ingress.apply(bound, routes);
        let config = Arc::new(config);
        let live = Live::new(config.clone(), tenants.iter().map(RunningTenant::live).collect());
        Ok(Host { parts, config, tenants, ingress, live, slot_capacity, admin_sql: None })
    }

    /// What the admin endpoint shows.
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// The parts every tenant is built with.
    pub fn parts(&self) -> &HostParts {
        &self.parts
    }

    /// Every pool, for the SQL admin interface.
    pub fn admin_pools(&self) -> Vec<switchyard_pooler::admin::AdminPool> {
        self.live
            .view()
            .tenants
            .iter()
            .flat_map(|t| {
                t.pools.iter().map(|(name, pool)| switchyard_pooler::admin::AdminPool {
                    tenant: t.name.clone(),
                    name: name.clone(),
                    pool: pool.clone(),
                })
            })
            .collect()
    }

    /// Keeps the SQL admin interface's list of pools up to date across reloads.
    pub fn report_pools_to(&mut self, admin: switchyard_pooler::admin::Admin) {
        self.admin_sql = Some(admin);
    }

    /// Puts `new` in force, or changes nothing and says why (one line per error).
    pub async fn reload(&mut self, new: Config) -> Result<Applied, Vec<String>> {
        let mut errors = restart_only_changes(&self.config, &new);
        if super::embedded::wanted(&new) && self.parts.embedded.is_none() {
            errors.push(
                "tenants: a pool now wants the embedded MariaDB, which is started only by `up`; restart to start it"
                    .to_owned(),
            );
        }
        match SlotPlan::for_config(&new) {
            Err(e) => errors.push(e.to_string()),
            Ok(plan) if plan.total() > self.slot_capacity => errors.push(format!(
                "the new config needs {} instance slots; this host's engine holds {} (sized at start: \
                 its config's slots and room for reloads); restart to grow it",
                plan.total(),
                self.slot_capacity
            )),
            Ok(_) => {}
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        // Build every new or restarted tenant; nothing running is touched yet.
        let mut plans = Vec::with_capacity(new.tenants.len());
        for (index, tenant) in new.tenants.iter().enumerate() {
            let digests = match self.digests(tenant) {
                Ok(digests) => digests,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let old = self.tenants.iter().find(|t| t.config().name == tenant.name);
            let change = match old {
                Some(old) => compare(old.config(), old.digests(), tenant, &digests),
                None => Change::Restart,
            };
            let prepared = if change == Change::Restart {
                let inherited = old.map(|o| o.published().clone()).unwrap_or_default();
                match PreparedTenant::prepare(tenant, index, &self.parts, &inherited).await {
                    Ok(prepared) => Some(prepared),
                    Err(e) => {
                        errors.push(format!("{e:#}"));
                        continue;
                    }
                }
            } else {
                None
            };
            plans.push((tenant.clone(), change, prepared));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let new_addrs: HashSet<SocketAddr> =
            plans.iter().flat_map(|(tenant, _, _)| ingress_addrs(tenant)).collect();
        let bound = self.ingress.bind_new(new_addrs.into_iter()).await.map_err(|e| vec![format!("{e:#}")])?;

        // New embedded pools' databases and users, last before the commit: idempotent, and
        // nothing is dropped (a removed tenant's data stays for when it comes back).
        if let Some(embedded) = &self.parts.embedded
            && embedded_pools(&new) != embedded_pools(&self.config)
        {
            embedded.provisioner.provision(&new).map_err(|e| vec![format!("{e:#}")])?;
        }

        // Commit: nothing below fails.
        let mut applied = Applied::default();
        let mut old: BTreeMap<String, RunningTenant> =
            self.tenants.drain(..).map(|t| (t.config().name.clone(), t)).collect();
        for (tenant, change, prepared) in plans {
            let name = tenant.name.clone();
            let previous = old.remove(&name);
            let running = match (previous, prepared) {
                (Some(mut running), None) => {
                    if change == Change::InPlace {
                        running.update_in_place(&tenant).await;
                        applied.changed.push(name);
                    } else {
                        applied.unchanged += 1;
                    }
                    running
                }
                (previous, Some(prepared)) => {
                    if let Some(previous) = previous {
                        previous.stop().await;
                        self.parts.health.forget_tenant(&name);
                        tracing::info!(
                            tenant = name,
                            "tenant restarted with its new section; its sessions ended"
                        );
                        applied.restarted.push(name);
                    } else {
                        tracing::info!(tenant = name, "tenant added");
                        applied.added.push(name);
                    }
                    prepared.start(&self.parts)
                }
                (None, None) => unreachable!("a tenant that is not running is always prepared"),
            };
            self.tenants.push(running);
        }
        for (name, removed) in old {
            removed.stop().await;
            self.parts.health.forget_tenant(&name);
            tracing::info!(tenant = name, "tenant removed; its sessions ended");
            applied.removed.push(name);
        }
        self.ingress.apply(bound, routes_of(&self.tenants));
        let in_use: HashSet<ContentDigest> =
            self.tenants.iter().flat_map(|t| t.digests().iter().copied()).collect();
        self.parts.components.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).keep_only(&in_use);
        self.config = Arc::new(new);
        applied.generation =
            self.live.advance(self.config.clone(), self.tenants.iter().map(RunningTenant::live).collect());
        if let Some(admin) = &self.admin_sql {
            admin.replace_pools(self.admin_pools());
        }
        Ok(applied)
    }

    /// The content digest of each of `tenant`'s components, in config order.
    fn digests(&self, tenant: &Tenant) -> Result<Vec<ContentDigest>, String> {
        tenant
            .components
            .iter()
            .map(|component| {
                let wasm = self.parts.base.join(&component.wasm);
                super::components::digest_of(&wasm).map_err(|e| {
                    format!(
                        "tenant {}: component {}: cannot read {}: {e}",
                        tenant.name,
                        component.name,
                        wasm.display()
                    )
                })
            })
            .collect()
    }
}

/// Every embedded pool's (user, password, database), to see whether a reload must provision.
fn embedded_pools(config: &Config) -> Vec<(&str, &str, Option<&str>)> {
    config
        .tenants
        .iter()
        .flat_map(|t| &t.pools)
        .filter(|p| p.backend == crate::config::Backend::Embedded)
        .map(|p| (p.user.as_str(), p.password.expose(), p.database.as_deref()))
        .collect()
}

/// The ingress addresses `tenant` routes to.
fn ingress_addrs(tenant: &Tenant) -> Vec<SocketAddr> {
    tenant
        .components
        .iter()
        .filter_map(|c| match &c.kind {
            crate::config::ComponentKind::Http(ingress) => Some(ingress.listen),
            crate::config::ComponentKind::Service(_) => None,
        })
        .collect()
}

/// Every running tenant's routes, by listen address.
fn routes_of(tenants: &[RunningTenant]) -> BTreeMap<SocketAddr, Vec<Route>> {
    let mut routes: BTreeMap<SocketAddr, Vec<Route>> = BTreeMap::new();
    for tenant in tenants {
        for (addr, route) in tenant.routes() {
            routes.entry(*addr).or_default().push(route.clone());
        }
    }
    routes
}

/// The keys whose change only a restart applies, each as an error line naming the key.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut errors = Vec::new();
    let mut differs = |key: &str, changed: bool| {
        if changed {
            errors.push(format!(
                "{key}: changed, but it takes effect only when switchyard up starts; restart to apply it (nothing was changed)"
            ));
        }
    };
    differs("state_dir", old.state_dir != new.state_dir);
    differs("admin.listen", old.admin.listen != new.admin.listen);
    let sql = |c: &Config| c.admin.sql.as_ref().map(|s| (s.listen, s.user.clone(), s.password.clone()));
    differs("admin.sql", sql(old) != sql(new));
    differs("dns", old.dns != new.dns);
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(extra: &str) -> Tenant {
        let yaml = format!(
            "version: 1\ntenants:\n  - name: acme\n    allowed_hosts: [\"mysql://db.test:3306\", \"tcp://db.test:5432\"]\n{extra}    components:\n      - {{ name: web, kind: http, wasm: web.wasm, ingress: {{ listen: \"127.0.0.1:8080\" }} }}\n"
        );
        let loaded = crate::config::load(&yaml, &Default::default(), &|_| Some("pw".to_owned()));
        loaded.unwrap_or_else(|e| panic!("{yaml}\n{e:?}")).config.tenants.remove(0)
    }

    const POOL: &str = "    pools:\n      - { name: main, backend: \"mysql://db.test:3306\", user: app, password: \"${env:PW}\", max_connections: 4 }\n";

    #[test]
    fn only_a_policy_or_a_pools_size_changes_in_place() {
        let digests = [[1u8; 32]];
        let old = tenant(POOL);
        let change = |extra: &str| compare(&old, &digests, &tenant(extra), &digests);
        assert_eq!(change(POOL), Change::Same);
        let mut wider = tenant(POOL);
        wider.allowed_hosts.push("tcp://api.test:443".parse().expect("entry"));
        assert_eq!(compare(&old, &digests, &wider, &digests), Change::InPlace, "policy");
        assert_eq!(
            change(&POOL.replace("max_connections: 4", "max_connections: 9")),
            Change::InPlace,
            "pool size"
        );
        let mut both = tenant(&POOL.replace("max_connections: 4", "max_connections: 9"));
        both.deny_networks.clear();
        assert_eq!(compare(&old, &digests, &both, &digests), Change::InPlace, "policy and pool size");
        for (what, extra) in [
            ("limits", format!("    limits: {{ max_instances: 7 }}\n{POOL}")),
            ("a forward", format!("    forwards: [\"5432:db.test:5432\"]\n{POOL}")),
            ("another pool key", POOL.replace("max_connections: 4", "max_connections: 4, min_idle: 1")),
            (
                "a pool more",
                format!(
                    "{POOL}      - {{ name: two, port: 3307, backend: \"mysql://db.test:3306\", user: app, password: \"${{env:PW}}\" }}\n"
                ),
            ),
            ("no pool", String::new()),
        ] {
            assert_eq!(change(&extra), Change::Restart, "{what}");
        }
        assert_eq!(
            compare(&old, &digests, &tenant(POOL), &[[2u8; 32]]),
            Change::Restart,
            "a component's content"
        );
    }
}
