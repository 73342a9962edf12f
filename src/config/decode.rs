//! Decoding of the document root and of tenants, with the checks that span several items:
//! unique names, unique virtual ports, ingress routes, and forwards and pool backends that their
//! tenant's policy must allow.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use serde_yaml::Value;
use switchyard_policy::{
    AllowedHost, AllowedSocket, Decision, DenyNetworkSpec, HostName, Policy, Scheme, Target, UNIX_PREFIX,
};

use super::Overrides;
use super::diagnostics::Diagnostics;
use super::model::{
    Admin, AdminSql, Backend, ComponentKind, Config, Dns, Profile, PublishAddr, Tenant, TenantLimits,
};
use super::path::KeyPath;
use super::reader::{choice, duration, integer, mapping, parsed, sequence, socket_addr, string};
use super::secret::Secret;
use super::sections::{self, EnvLookup, WasmCheck, valid_name};

const ROOT_KEYS: &[&str] = &["version", "profile", "state_dir", "admin", "dns", "tenants"];
const DNS_KEYS: &[&str] = &["timeout", "hosts"];
const ADMIN_KEYS: &[&str] = &["listen", "sql"];
const ADMIN_SQL_KEYS: &[&str] = &["listen", "user", "password"];
const TENANT_KEYS: &[&str] =
    &["name", "allowed_hosts", "deny_networks", "limits", "components", "forwards", "pools"];
const LIMIT_KEYS: &[&str] = &[
    "max_sockets",
    "max_connections",
    "max_instances",
    "request_timeout",
    "max_memory_mib",
    "max_request_body_mib",
    "request_body_timeout",
    "service_cpu_percent",
    "shards",
];

/// Decodes and checks a whole document.
pub fn root(
    d: &mut Diagnostics,
    value: &Value,
    overrides: &Overrides,
    env: EnvLookup<'_>,
    wasm: WasmCheck<'_>,
) -> Option<Config> {
    let top = KeyPath::root();
    let f = mapping(d, value, &top, ROOT_KEYS)?;
    if let Some((v, p)) = f.get("version")
        && v.as_u64() != Some(1)
    {
        d.error(&p, "this Switchyard reads config `version: 1` only");
    }
    let profiles = [("dev", Profile::Dev), ("prod", Profile::Prod)];
    let written_profile = f.or(d, "profile", Profile::Prod, |d, v, p| choice(d, v, p, "profile", &profiles));
    let profile = overrides.profile.or(written_profile);
    let state_dir = f.or(d, "state_dir", ".switchyard".to_owned(), string);
    let written_admin = f.or(d, "admin", (None, None), |d, v, p| {
        let a = mapping(d, v, p, ADMIN_KEYS)?;
        let listen = a.optional(d, "listen", socket_addr);
        let sql = a.optional(d, "sql", |d, v, p| admin_sql(d, v, p, env));
        Some((listen?, sql?))
    });
    let admin = written_admin.map(|(listen, sql)| Admin { listen: overrides.admin_listen.or(listen), sql });
    let dns = f.or(d, "dns", Dns::default(), dns);
    let tenants = match f.get("tenants") {
        Some((v, p)) => {
            let items = sequence(d, v, &p);
            if items.is_empty() && v.is_sequence() {
                d.error(&p, "declare at least one tenant");
            }
            let profile = profile.unwrap_or_default();
            let decoded: Vec<_> =
                items.iter().map(|(v, p)| (tenant(d, v, p, profile, env, wasm), p.clone())).collect();
            cross_tenant_checks(d, &decoded, admin.as_ref());
            decoded.into_iter().map(|(t, _)| t).collect::<Option<Vec<_>>>()
        }
        None => {
            d.error(&top, "missing required key `tenants`");
            None
        }
    };
    Some(Config {
        profile: profile?,
        state_dir: state_dir?.into(),
        admin: admin?,
        dns: dns?,
        tenants: tenants?,
    })
}

/// Decodes `admin.sql`; its password is resolved from the environment.
fn admin_sql(d: &mut Diagnostics, value: &Value, path: &KeyPath, env: EnvLookup<'_>) -> Option<AdminSql> {
    let f = mapping(d, value, path, ADMIN_SQL_KEYS)?;
    let listen = f.required(d, "listen").and_then(|(v, p)| socket_addr(d, v, &p));
    let user = f.required(d, "user").and_then(|(v, p)| string(d, v, &p));
    let password = f.required(d, "password").and_then(|(v, p)| {
        let text = string(d, v, &p)?;
        Secret::resolve(&text, env).map_err(|e| d.error(&p, e)).ok()
    });
    Some(AdminSql { listen: listen?, user: user?, password: password? })
}

/// Decodes `dns`: a lookup timeout and fixed answers (`name: [ip, ...]`).
fn dns(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<Dns> {
    let f = mapping(d, value, path, DNS_KEYS)?;
    let timeout = f.or(d, "timeout", Dns::default().timeout, duration);
    let hosts = f.or(d, "hosts", Default::default(), |d, v, p| {
        let Value::Mapping(map) = v else {
            d.error(p, "expected a mapping of host names to lists of addresses (`db.internal: [10.0.0.5]`)");
            return None;
        };
        let mut hosts = std::collections::BTreeMap::new();
        let mut ok = true;
        for (name, addrs) in map {
            let Some(text) = name.as_str() else {
                d.error(p, "host names must be strings");
                ok = false;
                continue;
            };
            let entry_path = p.key(text);
            let name = match HostName::parse(text) {
                Ok(name) => Some(name),
                Err(e) => {
                    d.error(&entry_path, format!("`{text}` is not a host name: {e}"));
                    None
                }
            };
            let items = sequence(d, addrs, &entry_path);
            if items.is_empty() && addrs.is_sequence() {
                d.error(&entry_path, "give at least one address");
            }
            let addrs = all(items.iter().map(|(v, p)| parsed::<IpAddr>(d, v, p)));
            match (name, addrs) {
                (Some(name), Some(addrs)) if !addrs.is_empty() => {
                    hosts.insert(name, addrs);
                }
                _ => ok = false,
            }
        }
        ok.then_some(hosts)
    });
    Some(Dns { timeout: timeout?, hosts: hosts? })
}

fn tenant(
    d: &mut Diagnostics,
    value: &Value,
    path: &KeyPath,
    profile: Profile,
    env: EnvLookup<'_>,
    wasm: WasmCheck<'_>,
) -> Option<Tenant> {
    let f = mapping(d, value, path, TENANT_KEYS)?;
    let name = f.required(d, "name").and_then(|(v, p)| valid_name(d, v, &p));
    let label = name.clone().unwrap_or_else(|| path.to_string());
    let mut allowed_sockets = Some(Vec::new());
    let (allowed_hosts, declared) = match f.get("allowed_hosts") {
        Some((v, p)) => {
            // `unix:/path` entries allow sockets; the others hosts.
            let items = sequence(d, v, &p);
            let is_socket = |v: &Value| v.as_str().is_some_and(|t| t.starts_with(UNIX_PREFIX));
            let (sockets, hosts): (Vec<_>, Vec<_>) = items.iter().partition(|(v, _)| is_socket(v));
            allowed_sockets = all(sockets.iter().map(|(v, p)| parsed::<AllowedSocket>(d, v, p)));
            (all(hosts.iter().map(|(v, p)| parsed::<AllowedHost>(d, v, p))), true)
        }
        None if f.has("allowed_hosts") => (Some(Vec::new()), true),
        None if profile == Profile::Dev => {
            d.warning(
                &path.key("name"),
                format!(
                    "tenant `{label}` declares no allowed_hosts: profile dev allows every host (`*`); \
                     declare allowed_hosts before running with profile prod"
                ),
            );
            (Some(vec![AllowedHost::any()]), false)
        }
        None => (Some(Vec::new()), false),
    };
    let deny_networks = f.or(d, "deny_networks", vec![DenyNetworkSpec::Default], |d, v, p| {
        all(sequence(d, v, p).iter().map(|(v, p)| parsed::<DenyNetworkSpec>(d, v, p)))
    });
    let limits = f.or(d, "limits", default_limits(), limits);
    let list =
        |d: &mut Diagnostics, key: &str| f.get(key).map(|(v, p)| sequence(d, v, &p)).unwrap_or_default();
    let components: Vec<_> =
        list(d, "components").into_iter().map(|(v, p)| (sections::component(d, v, &p, env), p)).collect();
    for (component, p) in &components {
        if let Some(c) = component
            && let Err(why) = wasm(&c.wasm.to_string_lossy())
        {
            d.error(&p.key("wasm"), why);
        }
    }
    let forwards: Vec<_> =
        list(d, "forwards").into_iter().map(|(v, p)| (sections::forward(d, v, &p), p)).collect();
    let pools: Vec<_> =
        list(d, "pools").into_iter().map(|(v, p)| (sections::pool(d, v, &p, env), p)).collect();

    unique(
        d,
        components.iter().filter_map(|(c, p)| Some((c.as_ref()?.name.clone(), p.key("name")))),
        "component name",
    );
    unique(d, pools.iter().filter_map(|(x, p)| Some((x.as_ref()?.name.clone(), p.key("name")))), "pool name");
    let ports = forwards
        .iter()
        .filter_map(|(x, p)| Some((x.as_ref()?.port, p.clone())))
        .chain(pools.iter().filter_map(|(x, p)| Some((x.as_ref()?.port, p.key("port")))));
    unique(d, ports, "virtual port");

    let mut tenant = Tenant {
        name: name?,
        allowed_hosts: allowed_hosts?,
        allowed_sockets: allowed_sockets?,
        allowed_hosts_declared: declared,
        deny_networks: deny_networks?,
        limits: limits?,
        components: Vec::new(),
        forwards: Vec::new(),
        pools: Vec::new(),
    };
    let policy = tenant.policy();
    let who = format!("tenant `{}`", tenant.name);
    for (forward, p) in &forwards {
        if let Some(fw) = forward {
            let target = Target::new(Scheme::tcp(), fw.host.clone(), fw.to_port);
            require_allowed(d, &policy, &target, p, &format!("forward to {}:{}", fw.host, fw.to_port), &who);
        }
    }
    for (pool, p) in &pools {
        match pool.as_ref().map(|x| &x.backend) {
            Some(Backend::Server { host, port }) => {
                let target = Target::new(Scheme::parse("mysql").ok()?, host.clone(), *port);
                require_allowed(
                    d,
                    &policy,
                    &target,
                    &p.key("backend"),
                    &format!("pool backend {target}"),
                    &who,
                );
            }
            Some(Backend::Socket(socket)) => {
                if let Err(denied) = policy.decide_socket(socket) {
                    d.error(
                        &p.key("backend"),
                        format!(
                            "pool backend mysql+unix://{} is not allowed for {who}: {denied}",
                            socket.as_str()
                        ),
                    );
                }
            }
            _ => {}
        }
    }
    tenant.components = all(components.into_iter().map(|(c, _)| c))?;
    tenant.forwards = all(forwards.into_iter().map(|(x, _)| x))?;
    tenant.pools = all(pools.into_iter().map(|(x, _)| x))?;
    Some(tenant)
}

/// Records an error at `path` unless `policy` allows `target`; the message says what would allow it.
fn require_allowed(
    d: &mut Diagnostics,
    policy: &Policy,
    target: &Target,
    path: &KeyPath,
    what: &str,
    who: &str,
) {
    if let Decision::Deny(denied) = policy.decide(target) {
        d.error(path, format!("{what} is not allowed for {who}: {denied}"));
    }
}

/// The most shards `limits.shards` may name (more than a host has are capped at run time).
pub const MAX_TENANT_SHARDS: u32 = 256;

/// The tenant limits when none are written.
pub fn default_limits() -> TenantLimits {
    TenantLimits {
        max_sockets: 1024,
        max_connections: 4096,
        max_instances: 100,
        request_timeout: std::time::Duration::from_secs(30),
        max_memory_mib: 1024,
        max_request_body_mib: 16,
        request_body_timeout: std::time::Duration::from_secs(10),
        service_cpu_percent: 50,
        shards: 1,
    }
}

fn limits(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<TenantLimits> {
    let f = mapping(d, value, path, LIMIT_KEYS)?;
    let default = default_limits();
    let count = |d: &mut Diagnostics, v: &Value, p: &KeyPath| integer(d, v, p, "a count");
    let max_sockets = f.or(d, "max_sockets", default.max_sockets, count);
    let max_connections = f.or(d, "max_connections", default.max_connections, count);
    let max_instances =
        f.or(d, "max_instances", default.max_instances, |d, v, p| sections::positive(d, v, p, "a count"));
    let max_memory_mib = f.or(d, "max_memory_mib", default.max_memory_mib, |d, v, p| {
        sections::positive(d, v, p, "a size in MiB")
    });
    let max_request_body_mib = f.or(d, "max_request_body_mib", default.max_request_body_mib, |d, v, p| {
        integer(d, v, p, "a size in MiB")
    });
    let service_cpu_percent = f.or(d, "service_cpu_percent", default.service_cpu_percent, |d, v, p| {
        let percent = sections::positive(d, v, p, "a percentage")?;
        if percent > 100 {
            d.error(p, format!("{percent} % is more than one core: give 1 to 100"));
            return None;
        }
        Some(percent)
    });
    let shards = f.or(d, "shards", default.shards, |d, v, p| {
        let shards = sections::positive(d, v, p, "a count of shards")?;
        if shards > MAX_TENANT_SHARDS {
            d.error(p, format!("{shards} shards is more than {MAX_TENANT_SHARDS}: a tenant spreads over at most that many"));
            return None;
        }
        Some(shards)
    });
    let mut some_time = |key: &str, default: std::time::Duration| {
        f.or(d, key, default, duration).filter(|t| {
            let ok = !t.is_zero();
            if !ok {
                d.error(&path.key(key), "a request needs some time: give a duration above 0");
            }
            ok
        })
    };
    let request_timeout = some_time("request_timeout", default.request_timeout);
    let request_body_timeout = some_time("request_body_timeout", default.request_body_timeout);
    Some(TenantLimits {
        max_sockets: max_sockets?,
        max_connections: max_connections?,
        max_instances: max_instances?,
        request_timeout: request_timeout?,
        max_memory_mib: max_memory_mib?,
        max_request_body_mib: max_request_body_mib?,
        request_body_timeout: request_body_timeout?,
        service_cpu_percent: service_cpu_percent?,
        shards: shards?,
    })
}

/// Collects every item, or `None` if any failed (after all were tried).
fn all<T>(items: impl IntoIterator<Item = Option<T>>) -> Option<Vec<T>> {
    let items: Vec<Option<T>> = items.into_iter().collect();
    items.into_iter().collect()
}

/// Reports every value that was already used at an earlier path.
fn unique<K: Eq + std::hash::Hash + std::fmt::Display>(
    d: &mut Diagnostics,
    items: impl IntoIterator<Item = (K, KeyPath)>,
    what: &str,
) {
    let mut seen: HashMap<K, KeyPath> = HashMap::new();
    for (key, path) in items {
        match seen.get(&key) {
            Some(first) => d.error(&path, format!("{what} {key} is already used at {first}")),
            None => {
                seen.insert(key, path);
            }
        }
    }
}

/// Reports an embedded user or database that two tenants declare: they would share one account
/// with `ALL` on both databases. (Pools of one tenant may share them.)
fn embedded_accounts_are_not_shared(d: &mut Diagnostics, tenants: &[(Option<Tenant>, KeyPath)]) {
    let mut users: HashMap<&str, (&str, KeyPath)> = HashMap::new();
    let mut databases: HashMap<&str, (&str, KeyPath)> = HashMap::new();
    for (tenant, tenant_path) in tenants.iter().filter_map(|(t, p)| Some((t.as_ref()?, p))) {
        for (i, pool) in tenant.pools.iter().enumerate().filter(|(_, p)| p.backend == Backend::Embedded) {
            let pool_path = tenant_path.key("pools").index(i);
            let keyed = [
                ("user", Some(pool.user.as_str()), &mut users),
                ("database", pool.database.as_deref(), &mut databases),
            ];
            for (key, value, seen) in keyed {
                let Some(value) = value else { continue };
                let path = pool_path.key(key);
                match seen.get(value) {
                    Some((owner, first)) if *owner != tenant.name => d.error(
                        &path,
                        format!(
                            "embedded {key} `{value}` is already tenant `{owner}`'s (at {first}); each tenant needs an embedded {key} of its own"
                        ),
                    ),
                    Some(_) => {}
                    None => {
                        seen.insert(value, (tenant.name.as_str(), path));
                    }
                }
            }
        }
    }
}

fn cross_tenant_checks(d: &mut Diagnostics, tenants: &[(Option<Tenant>, KeyPath)], admin: Option<&Admin>) {
    let decoded = || tenants.iter().filter_map(|(t, p)| Some((t.as_ref()?, p)));
    unique(d, decoded().map(|(t, p)| (t.name.clone(), p.key("name"))), "tenant name");
    let routes = decoded().flat_map(|(t, p)| {
        t.components.iter().enumerate().filter_map(move |(i, c)| match &c.kind {
            ComponentKind::Http(ing) => Some((
                format!(
                    "{} host {} path {}",
                    ing.listen,
                    ing.host.as_deref().unwrap_or("*"),
                    ing.path_prefix
                ),
                p.key("components").index(i).key("ingress"),
            )),
            ComponentKind::Service(_) => None,
        })
    });
    unique(d, routes, "ingress route");
    embedded_accounts_are_not_shared(d, tenants);
    let published = decoded().flat_map(|(t, p)| {
        t.pools.iter().enumerate().flat_map(move |(i, x)| {
            x.publish.iter().map(move |addr| (addr.clone(), p.key("pools").index(i).key("publish")))
        })
    });
    let sockets = published.clone().filter_map(|(addr, p)| match addr {
        PublishAddr::Unix(path) => Some((path, p)),
        PublishAddr::Tcp(_) => None,
    });
    unique(d, sockets, "unix socket");
    let publish = published
        .filter_map(|(addr, p)| match addr {
            PublishAddr::Tcp(addr) => Some((addr, p)),
            PublishAddr::Unix(_) => None,
        })
        .chain(admin.and_then(|a| a.listen).map(|a| (a, KeyPath::root().key("admin").key("listen"))))
        .chain(
            admin
                .and_then(|a| a.sql.as_ref())
                .map(|s| (s.listen, KeyPath::root().key("admin").key("sql").key("listen"))),
        );
    unique(d, publish.clone(), "host address");
    let ingress: Vec<SocketAddr> = decoded()
        .flat_map(|(t, _)| t.components.iter())
        .filter_map(|c| match &c.kind {
            ComponentKind::Http(ing) => Some(ing.listen),
            ComponentKind::Service(_) => None,
        })
        .collect();
    for (addr, path) in publish {
        if ingress.contains(&addr) {
            d.error(&path, format!("host address {addr} is already an http ingress address"));
        }
    }
}
