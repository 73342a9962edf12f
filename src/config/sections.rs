//! Decoding of a tenant's items: components, forwards and pools. Each returns `None` after
//! recording every problem it found, so that one pass reports all of them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_yaml::Value;
use switchyard_policy::{SocketPath, Target, TargetErrorKind, TargetHost, UNIX_PREFIX};

use super::diagnostics::Diagnostics;
use super::model::{
    Backend, Component, ComponentKind, EnvValue, Forward, ForwardTls, Ingress, InsertIds, Pool, PoolMode,
    PublishAddr, PublishTls, Restart,
};
use super::path::KeyPath;
use super::reader::{
    self, boolean, choice, duration, integer, mapping, port, positive_duration, socket_addr, string,
};
use super::secret::{Secret, SecretError};

/// Looks up environment variables for secrets.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Looks at a component's `wasm` file as the config writes it: `Err` says why it cannot be run
/// (missing, unreadable, not a component). Config decoding does no I/O; the caller passes this.
pub type WasmCheck<'a> = &'a dyn Fn(&str) -> Result<(), String>;

/// Checks a tenant, component or pool name: `[a-z0-9][a-z0-9_-]*`, at most 63 characters.
pub fn valid_name(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<String> {
    let name = string(d, value, path)?;
    let ok = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        d.error(
            path,
            format!("`{name}` is not a valid name: use lowercase letters, digits, `-` and `_` (at most 63)"),
        );
        return None;
    }
    Some(name)
}

/// Parses `host:port` (IPv6 as `[addr]:port`) as a TCP destination.
fn host_port(text: &str) -> Result<(TargetHost, u16), String> {
    match format!("tcp://{text}").parse::<Target>() {
        Ok(t) => Ok((t.host().clone(), t.port())),
        Err(e) if matches!(e.kind, TargetErrorKind::NoDefaultPort(_)) => {
            Err(format!("`{text}` has no port: write `{text}:PORT`"))
        }
        Err(e) => Err(format!("`{text}` is not host:port: {}", e.kind)),
    }
}

const COMPONENT_KEYS: &[&str] = &["name", "kind", "wasm", "env", "ingress", "restart"];
const INGRESS_KEYS: &[&str] = &["listen", "host", "path_prefix"];
const RESTART_KEYS: &[&str] = &["max_restarts", "backoff_initial", "backoff_max"];

/// Decodes one component; `${env:NAME}` values of its `env` are resolved from the environment.
pub fn component(
    d: &mut Diagnostics,
    value: &Value,
    path: &KeyPath,
    secrets: EnvLookup<'_>,
) -> Option<Component> {
    let f = mapping(d, value, path, COMPONENT_KEYS)?;
    let name = f.required(d, "name").and_then(|(v, p)| valid_name(d, v, &p));
    let wasm = f.required(d, "wasm").and_then(|(v, p)| string(d, v, &p));
    let env = f.or(d, "env", BTreeMap::new(), |d, v, p| environment(d, v, p, secrets));
    let kind = match f.required(d, "kind") {
        Some((v, p)) => match string(d, v, &p).as_deref() {
            Some("http") => {
                if let Some((_, p)) = f.get("restart") {
                    d.error(&p, "`restart` is only for components of kind `service`");
                }
                match f.required(d, "ingress") {
                    Some((v, p)) => ingress(d, v, &p).map(ComponentKind::Http),
                    None => None,
                }
            }
            Some("service") => {
                if let Some((_, p)) = f.get("ingress") {
                    d.error(&p, "`ingress` is only for components of kind `http`");
                }
                f.or(d, "restart", default_restart(), restart).map(ComponentKind::Service)
            }
            Some(other) => {
                d.error(&p, format!("unknown component kind `{other}`: expected `http` or `service`"));
                None
            }
            None => None,
        },
        None => None,
    };
    Some(Component { name: name?, wasm: wasm?.into(), env: env?, kind: kind? })
}

/// A component's environment. A value written `${env:NAME}` is a secret (a database password
/// the component logs in with): taken from Switchyard's environment, never written in the config.
fn environment(
    d: &mut Diagnostics,
    value: &Value,
    path: &KeyPath,
    secrets: EnvLookup<'_>,
) -> Option<BTreeMap<String, EnvValue>> {
    let Value::Mapping(map) = value else {
        d.error(
            path,
            format!("expected a mapping of variable names to values, found {}", reader::kind(value)),
        );
        return None;
    };
    let mut env = BTreeMap::new();
    let mut ok = true;
    for (k, v) in map {
        let (Some(key), Some(text)) = (k.as_str(), scalar_text(v)) else {
            d.error(path, "environment variables are `NAME: value` pairs of strings, numbers or booleans");
            ok = false;
            continue;
        };
        let value = if text.starts_with("${env:") {
            match Secret::resolve(&text, secrets) {
                Ok(secret) => EnvValue::Secret(secret),
                Err(e) => {
                    d.error(&path.key(key), e);
                    ok = false;
                    continue;
                }
            }
        } else {
            EnvValue::Plain(text)
        };
        env.insert(key.to_owned(), value);
    }
    ok.then_some(env)
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn ingress(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<Ingress> {
    let f = mapping(d, value, path, INGRESS_KEYS)?;
    let listen = f.required(d, "listen").and_then(|(v, p)| socket_addr(d, v, &p));
    let host = f.optional(d, "host", |d, v, p| string(d, v, p).map(|h| h.to_ascii_lowercase()));
    let path_prefix = f.or(d, "path_prefix", "/".to_owned(), |d, v, p| {
        let prefix = string(d, v, p)?;
        if !prefix.starts_with('/') {
            d.error(p, format!("path_prefix `{prefix}` must start with `/`"));
            return None;
        }
        Some(prefix)
    });
    Some(Ingress { listen: listen?, host: host?, path_prefix: path_prefix? })
}

/// The shortest first restart delay: a service that crashes at once must not restart in a busy
/// loop (THREATS.md invariant 2).
pub const BACKOFF_FLOOR: Duration = Duration::from_millis(10);
/// The most restarts in a row a service may be given before it is given up.
pub const MAX_RESTARTS_CEILING: u32 = 1000;

/// The restart policy of a service that declares none.
pub fn default_restart() -> Restart {
    Restart {
        max_restarts: 10,
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_secs(30),
    }
}

fn restart(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<Restart> {
    let f = mapping(d, value, path, RESTART_KEYS)?;
    let default = default_restart();
    let max_restarts =
        f.or(d, "max_restarts", default.max_restarts, |d, v, p| integer(d, v, p, "a number of restarts"));
    let backoff_initial = f.or(d, "backoff_initial", default.backoff_initial, duration);
    let backoff_max = f.or(d, "backoff_max", default.backoff_max, duration);
    let r =
        Restart { max_restarts: max_restarts?, backoff_initial: backoff_initial?, backoff_max: backoff_max? };
    let mut ok = true;
    if r.backoff_initial < BACKOFF_FLOOR {
        d.error(
            &path.key("backoff_initial"),
            format!("{:?} is below the floor of {BACKOFF_FLOOR:?}: a crashing service would restart in a busy loop", r.backoff_initial),
        );
        ok = false;
    }
    if r.max_restarts > MAX_RESTARTS_CEILING {
        d.error(
            &path.key("max_restarts"),
            format!("{} restarts in a row is more than the {MAX_RESTARTS_CEILING} allowed", r.max_restarts),
        );
        ok = false;
    }
    if r.backoff_initial > r.backoff_max {
        d.error(path, "backoff_initial must not exceed backoff_max");
        ok = false;
    }
    ok.then_some(r)
}

const FORWARD_KEYS: &[&str] = &["port", "to", "tls", "connect_timeout", "max_connections", "idle_timeout"];
/// A forwarded connection idle (no byte either way) this long is closed, unless configured.
const FORWARD_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
const TLS_KEYS: &[&str] = &["server_name", "ca"];

/// Decodes one forward: `"PORT:HOST:PORT"` or the long form.
pub fn forward(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<Forward> {
    let defaults = (Duration::from_secs(5), 256);
    if let Value::String(short) = value {
        let parsed = short
            .split_once(':')
            .ok_or_else(|| format!("`{short}` is not `PORT:HOST:PORT` (e.g. `3306:db.internal:3306`)"))
            .and_then(|(guest, to)| {
                let guest = switchyard_policy::parse_port(guest)
                    .map_err(|e| format!("`{guest}` in `{short}` is not a guest port: {e}"))?;
                Ok((guest, host_port(to)?))
            });
        return match parsed {
            Ok((port, (host, to_port))) => Some(Forward {
                port,
                host,
                to_port,
                tls: None,
                connect_timeout: defaults.0,
                max_connections: defaults.1,
                idle_timeout: FORWARD_IDLE_TIMEOUT,
            }),
            Err(message) => {
                d.error(path, message);
                None
            }
        };
    }
    let f = mapping(d, value, path, FORWARD_KEYS)?;
    let guest = f.required(d, "port").and_then(|(v, p)| port(d, v, &p));
    let to = f.required(d, "to").and_then(|(v, p)| {
        let text = string(d, v, &p)?;
        host_port(&text).map_err(|m| d.error(&p, m)).ok()
    });
    let tls = match f.get("tls") {
        None => Some(None),
        Some((Value::Bool(b), _)) => Some(b.then(ForwardTls::default)),
        Some((v, p)) => forward_tls(d, v, &p).map(Some),
    };
    let connect_timeout = f.or(d, "connect_timeout", defaults.0, duration);
    let max_connections =
        f.or(d, "max_connections", defaults.1, |d, v, p| positive(d, v, p, "a number of connections"));
    let idle_timeout = f.or(d, "idle_timeout", FORWARD_IDLE_TIMEOUT, duration);
    let (host, to_port) = to?;
    Some(Forward {
        port: guest?,
        host,
        to_port,
        tls: tls?,
        connect_timeout: connect_timeout?,
        max_connections: max_connections?,
        idle_timeout: idle_timeout?,
    })
}

fn forward_tls(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<ForwardTls> {
    let f = mapping(d, value, path, TLS_KEYS)?;
    let server_name = f.optional(d, "server_name", string);
    let ca = f.optional(d, "ca", |d, v, p| string(d, v, p).map(Into::into));
    Some(ForwardTls { server_name: server_name?, ca: ca? })
}

/// A count of at least 1.
pub fn positive(d: &mut Diagnostics, value: &Value, path: &KeyPath, what: &str) -> Option<u32> {
    let n: u32 = integer(d, value, path, what)?;
    if n == 0 {
        d.error(path, format!("expected {what} of at least 1, found 0"));
        return None;
    }
    Some(n)
}

const POOL_KEYS: &[&str] = &[
    "name",
    "port",
    "backend",
    "database",
    "user",
    "password",
    "tls",
    "mode",
    "max_connections",
    "min_idle",
    "idle_timeout",
    "max_lifetime",
    "checkout_timeout",
    "idle_transaction_timeout",
    "client_write_timeout",
    "max_client_sessions",
    "last_insert_id",
    "publish",
    "publish_tls",
];

const PUBLISH_TLS_KEYS: &[&str] = &["cert", "key", "required"];

/// A pool's `publish_tls`: the certificate and key its published addresses serve TLS with.
fn publish_tls(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<PublishTls> {
    let f = mapping(d, value, path, PUBLISH_TLS_KEYS)?;
    let file = |d: &mut Diagnostics, v: &Value, p: &KeyPath| string(d, v, p).map(std::path::PathBuf::from);
    let cert = f.required(d, "cert").and_then(|(v, p)| file(d, v, &p));
    let key = f.required(d, "key").and_then(|(v, p)| file(d, v, &p));
    let required = f.or(d, "required", true, boolean);
    Some(PublishTls { cert: cert?, key: key?, required: required? })
}

/// Decodes one pool; its password is resolved from the environment.
pub fn pool(d: &mut Diagnostics, value: &Value, path: &KeyPath, env: EnvLookup<'_>) -> Option<Pool> {
    let f = mapping(d, value, path, POOL_KEYS)?;
    let name = f.required(d, "name").and_then(|(v, p)| valid_name(d, v, &p));
    let guest = f.or(d, "port", 3306, port);
    let backend = f.required(d, "backend").and_then(|(v, p)| backend(d, v, &p));
    let database = f.optional(d, "database", string);
    let user = f.required(d, "user").and_then(|(v, p)| string(d, v, &p));
    let password = f.required(d, "password").and_then(|(v, p)| {
        let text = string(d, v, &p)?;
        match Secret::resolve(&text, env) {
            Ok(secret) => Some(secret),
            // Reported; the pool is still decoded, so that its other checks run in this pass.
            Err(e @ (SecretError::Missing(_) | SecretError::Empty(_))) => {
                d.error(&p, e);
                Some(Secret::unresolved(&text))
            }
            Err(e) => {
                d.error(&p, e);
                None
            }
        }
    });
    let tls = f.or(d, "tls", false, boolean);
    let modes = [("transaction", PoolMode::Transaction), ("session", PoolMode::Session)];
    let mode = f.or(d, "mode", PoolMode::Transaction, |d, v, p| choice(d, v, p, "pool mode", &modes));
    let count = |d: &mut Diagnostics, v: &Value, p: &KeyPath| positive(d, v, p, "a count");
    let max_connections = f.or(d, "max_connections", 8, count);
    let max_client_sessions = f.or(d, "max_client_sessions", 1000, count);
    let min_idle = f.or(d, "min_idle", 0, |d, v, p| integer(d, v, p, "a count"));
    let idle_timeout = f.or(d, "idle_timeout", Duration::from_secs(600), duration);
    let max_lifetime = f.or(d, "max_lifetime", Duration::from_secs(3600), duration);
    let checkout_timeout = f.or(d, "checkout_timeout", Duration::from_secs(5), duration);
    let idle_transaction_timeout = f.or(d, "idle_transaction_timeout", Duration::from_secs(60), duration);
    let client_write_timeout = f.or(d, "client_write_timeout", Duration::from_secs(30), positive_duration);
    let insert_ids = [("exact", InsertIds::Exact), ("reported", InsertIds::Reported)];
    let last_insert_id = f.or(d, "last_insert_id", InsertIds::Exact, |d, v, p| {
        choice(d, v, p, "last_insert_id setting", &insert_ids)
    });
    let publish = f.or(d, "publish", Vec::new(), publish_addrs);
    let tls_for_clients = f.optional(d, "publish_tls", publish_tls);
    let pool = Pool {
        name: name?,
        port: guest?,
        backend: backend?,
        database: database?,
        user: user?,
        password: password?,
        tls: tls?,
        mode: mode?,
        max_connections: max_connections?,
        min_idle: min_idle?,
        idle_timeout: idle_timeout?,
        max_lifetime: max_lifetime?,
        checkout_timeout: checkout_timeout?,
        idle_transaction_timeout: idle_transaction_timeout?,
        client_write_timeout: client_write_timeout?,
        max_client_sessions: max_client_sessions?,
        last_insert_id: last_insert_id?,
        publish: publish?,
        publish_tls: tls_for_clients?,
    };
    let mut ok = true;
    if pool.publish_tls.is_some() && pool.publish.is_empty() {
        d.error(
            &path.key("publish_tls"),
            "publish_tls is for published addresses: this pool has no `publish`",
        );
        ok = false;
    }
    if pool.min_idle > pool.max_connections {
        d.error(
            &path.key("min_idle"),
            format!("min_idle ({}) exceeds max_connections ({})", pool.min_idle, pool.max_connections),
        );
        ok = false;
    }
    if pool.tls && pool.backend == Backend::Embedded {
        d.error(
            &path.key("tls"),
            "the embedded backend is local to this host: `tls` applies only to a server backend",
        );
        ok = false;
    }
    if pool.backend == Backend::Embedded {
        ok &= embedded_account_is_a_tenants_own(d, &pool, path);
    }
    ok.then_some(pool)
}

/// Accounts of the embedded server that no tenant may be given: its administrators and the
/// server's own (`ALTER USER` on them would hand a tenant the server).
const RESERVED_EMBEDDED_USERS: &[&str] = &["root", "mysql", "mariadb.sys", "public"];
/// Databases of the embedded server that no tenant may be granted (`GRANT ALL ON mysql.*` is the
/// whole server).
const RESERVED_EMBEDDED_DATABASES: &[&str] = &["mysql", "information_schema", "performance_schema", "sys"];

/// Reports an embedded pool whose user or database is one of the server's own.
fn embedded_account_is_a_tenants_own(d: &mut Diagnostics, pool: &Pool, path: &KeyPath) -> bool {
    let mut ok = true;
    let user = pool.user.to_ascii_lowercase();
    if user.is_empty() || RESERVED_EMBEDDED_USERS.contains(&user.as_str()) {
        d.error(
            &path.key("user"),
            format!(
                "`{}` is reserved on the embedded server (reserved: {}, and the empty user); give the pool a user of its own",
                pool.user,
                RESERVED_EMBEDDED_USERS.join(", ")
            ),
        );
        ok = false;
    }
    if let Some(database) = &pool.database
        && RESERVED_EMBEDDED_DATABASES.contains(&database.to_ascii_lowercase().as_str())
    {
        d.error(
            &path.key("database"),
            format!(
                "`{database}` is the embedded server's own database (reserved: {}); give the pool a database of its own",
                RESERVED_EMBEDDED_DATABASES.join(", ")
            ),
        );
        ok = false;
    }
    ok
}

fn backend(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<Backend> {
    let text = string(d, value, path)?;
    if text == "embedded" {
        return Some(Backend::Embedded);
    }
    let forms = "`embedded`, `mysql://HOST[:PORT]` or `mysql+unix:///PATH`";
    if let Some(socket) = text.strip_prefix("mysql+unix://") {
        return match SocketPath::parse(socket) {
            Ok(socket) => Some(Backend::Socket(socket)),
            Err(e) => {
                d.error(path, format!("backend must be {forms}: {e}"));
                None
            }
        };
    }
    match text.parse::<Target>() {
        Ok(t) if t.scheme().as_str() == "mysql" => {
            Some(Backend::Server { host: t.host().clone(), port: t.port() })
        }
        Ok(_) => {
            d.error(path, format!("backend `{text}` must be {forms}"));
            None
        }
        Err(e) => {
            d.error(path, format!("backend must be {forms}: {}", e.kind));
            None
        }
    }
}

/// `publish`: one address or a list, each a TCP address or `unix:/path`.
fn publish_addrs(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<Vec<PublishAddr>> {
    let one = |d: &mut Diagnostics, value: &Value, path: &KeyPath| -> Option<PublishAddr> {
        let text = string(d, value, path)?;
        match text.strip_prefix(UNIX_PREFIX) {
            Some(socket) => {
                SocketPath::parse(socket).map(PublishAddr::Unix).map_err(|e| d.error(path, e)).ok()
            }
            None => socket_addr(d, value, path).map(PublishAddr::Tcp),
        }
    };
    match value {
        Value::Sequence(items) => {
            let addrs: Vec<Option<PublishAddr>> =
                items.iter().enumerate().map(|(i, v)| one(d, v, &path.index(i))).collect();
            addrs.into_iter().collect()
        }
        _ => one(d, value, path).map(|addr| vec![addr]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_needs_a_port_and_brackets_for_ipv6() {
        assert!(host_port("db.internal:5432").is_ok());
        assert!(host_port("[2001:db8::1]:5432").is_ok());
        assert!(host_port("db.internal").unwrap_err().contains("has no port"));
        assert!(host_port("db.internal:0").is_err());
        assert!(host_port("user@db:1").is_err());
    }
}
