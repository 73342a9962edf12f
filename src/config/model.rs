//! The typed config (schema v1): what a validated YAML document becomes. Documented for users in
//! `docs/config.md`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use switchyard_policy::{
    AllowedHost, AllowedSocket, BlockedNetworks, DenyNetworkSpec, HostName, Policy, SocketPath, TargetHost,
};

use super::secret::Secret;

/// The whole config. Every value has been validated; cross-references hold (unique names and
/// virtual ports per tenant, forwards and pool backends allowed by their tenant's policy).
#[derive(Debug, Clone)]
pub struct Config {
    /// `dev` or `prod`; decides what a tenant without `allowed_hosts` gets.
    pub profile: Profile,
    /// Where Switchyard keeps state (embedded databases), relative to the config file's folder.
    pub state_dir: PathBuf,
    /// The admin/metrics endpoint.
    pub admin: Admin,
    /// How names are resolved for every tenant.
    pub dns: Dns,
    /// The tenants, in declaration order.
    pub tenants: Vec<Tenant>,
}

/// The deployment profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Development: a tenant without `allowed_hosts` gets `*` (with a warning).
    Dev,
    /// Production (the default): a tenant without `allowed_hosts` gets nothing.
    #[default]
    Prod,
}

/// Name resolution for guests, forwards and pool backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dns {
    /// How long one lookup may take.
    pub timeout: Duration,
    /// Fixed answers, consulted before the system resolver (like a hosts file of the config's
    /// own). A name here still needs an allowed_hosts entry to be looked up or reached.
    pub hosts: BTreeMap<HostName, Vec<IpAddr>>,
}

impl Default for Dns {
    fn default() -> Self {
        Dns { timeout: Duration::from_secs(5), hosts: BTreeMap::new() }
    }
}

/// The admin endpoint (`/metrics`, `/healthz`) and the pools' SQL admin interface.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Where it listens; `None` disables it.
    pub listen: Option<SocketAddr>,
    /// The SQL admin interface of every pool, if declared.
    pub sql: Option<AdminSql>,
}

/// The SQL admin interface (`SHOW POOLS`, `SHOW CLIENTS`, `SHOW SERVERS`, `SHOW STATS`) over
/// the MySQL protocol, with a login of its own.
#[derive(Debug, Clone)]
pub struct AdminSql {
    /// The host address it listens on.
    pub listen: SocketAddr,
    /// Its user.
    pub user: String,
    /// That user's password.
    pub password: Secret,
}

/// One tenant: its own virtual network, policy, components, forwards and pools.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Unique name (`[a-z0-9][a-z0-9_-]*`).
    pub name: String,
    /// The allow-list in force (after the profile rule for a missing list).
    pub allowed_hosts: Vec<AllowedHost>,
    /// The unix sockets it may connect to (`unix:/path` entries of `allowed_hosts`).
    pub allowed_sockets: Vec<AllowedSocket>,
    /// Whether `allowed_hosts` was written in the config (false: it came from the profile rule).
    pub allowed_hosts_declared: bool,
    /// The `deny_networks` items (the default list when not written).
    pub deny_networks: Vec<DenyNetworkSpec>,
    /// Caps on the tenant's virtual network.
    pub limits: TenantLimits,
    /// Wasm components.
    pub components: Vec<Component>,
    /// Declared forwards from virtual ports to real hosts.
    pub forwards: Vec<Forward>,
    /// MySQL pools mounted on virtual ports.
    pub pools: Vec<Pool>,
}

impl Tenant {
    /// The tenant's egress policy.
    pub fn policy(&self) -> Policy {
        Policy::new(self.allowed_hosts.clone(), BlockedNetworks::from_specs(&self.deny_networks))
            .with_sockets(self.allowed_sockets.clone())
    }
}

/// Caps on one tenant: its virtual network and its http component instances. Each is the
/// tenant's own budget: reaching it fails only the tenant's own requests and connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantLimits {
    /// Sockets open at once across the tenant's guests.
    pub max_sockets: u32,
    /// Virtual connections open at once.
    pub max_connections: u32,
    /// Http component instances alive at once; a request beyond it gets `503`.
    pub max_instances: u32,
    /// The longest an http component instance may live for one request; past it the instance is
    /// dropped and a client still waiting gets `504`.
    pub request_timeout: std::time::Duration,
    /// MiB of linear memory all the tenant's instances may hold together.
    pub max_memory_mib: u32,
    /// MiB of one request's body at most (`413` when its `Content-Length` says more).
    pub max_request_body_mib: u32,
    /// The longest pause between two pieces of a request's body.
    pub request_body_timeout: std::time::Duration,
    /// The share of one core (1–100 %) each of the tenant's services may use; past it a service
    /// waits out the rest of each second.
    pub service_cpu_percent: u32,
    /// How many worker shards the tenant's http component instances spread over (its own shard
    /// and the next ones); its pools and forwards accept on each. 1: the tenant stays on one.
    pub shards: u32,
}

/// One variable of a component's environment: written in the config, or a secret taken from
/// Switchyard's own environment (`${env:NAME}`), whose value `Debug` never shows (it shows the
/// reference), so a debug log of the config prints no secret.
#[derive(Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A value written in the config.
    Plain(String),
    /// A value referenced as `${env:NAME}`.
    Secret(Secret),
}

impl EnvValue {
    /// The value the guest sees.
    pub fn expose(&self) -> &str {
        match self {
            EnvValue::Plain(text) => text,
            EnvValue::Secret(secret) => secret.expose(),
        }
    }
}

impl std::fmt::Debug for EnvValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvValue::Plain(text) => write!(f, "{text:?}"),
            EnvValue::Secret(secret) => write!(f, "{secret:?}"),
        }
    }
}

/// A wasm component.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// Unique within the tenant.
    pub name: String,
    /// The `.wasm` file, relative to the config file's folder.
    pub wasm: PathBuf,
    /// Environment variables given to the guest.
    pub env: BTreeMap<String, EnvValue>,
    /// How it runs.
    pub kind: ComponentKind,
}

/// How a component runs.
#[derive(Debug, Clone, PartialEq)]
pub enum ComponentKind {
    /// `wasi:http/incoming-handler`, one instance per request behind an ingress.
    Http(Ingress),
    /// `wasi:cli/run`, long-lived and supervised.
    Service(Restart),
}

/// Where an http component receives requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingress {
    /// The host address the ingress listens on.
    pub listen: SocketAddr,
    /// Only requests for this `Host` (lowercase, no port); `None` = any host.
    pub host: Option<String>,
    /// Only requests whose path starts with this prefix (starts with `/`).
    pub path_prefix: String,
}

/// How a service component is restarted when it exits or traps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    /// Restarts in a row before the service is given up (and its tenant reported not ready).
    pub max_restarts: u32,
    /// The first backoff; each further restart doubles it.
    pub backoff_initial: Duration,
    /// The longest backoff.
    pub backoff_max: Duration,
}

/// A declared forward: connects to virtual `port` are relayed to `host:to_port`.
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    /// The virtual port on the tenant's network.
    pub port: u16,
    /// The real host (name or address).
    pub host: TargetHost,
    /// The real port.
    pub to_port: u16,
    /// TLS origination, if any.
    pub tls: Option<ForwardTls>,
    /// How long a connect may take.
    pub connect_timeout: Duration,
    /// Connections open at once through this forward.
    pub max_connections: u32,
    /// A connection with no byte moving either way for this long is closed.
    pub idle_timeout: Duration,
}

/// TLS origination for a forward.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardTls {
    /// The name verified in the certificate and sent as SNI; default: the target name.
    pub server_name: Option<String>,
    /// A PEM file of CA certificates to trust instead of the system roots.
    pub ca: Option<PathBuf>,
}

/// A MySQL pool: a per-tenant pooler on a virtual port, holding connections to one backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Unique within the tenant.
    pub name: String,
    /// The virtual port clients connect to.
    pub port: u16,
    /// The MySQL/MariaDB server.
    pub backend: Backend,
    /// The database (schema) to use.
    pub database: Option<String>,
    /// The user clients and backend connections authenticate as.
    pub user: String,
    /// That user's password.
    pub password: Secret,
    /// TLS to the backend.
    pub tls: bool,
    /// How sessions share connections.
    pub mode: PoolMode,
    /// Backend connections at most.
    pub max_connections: u32,
    /// Idle backend connections kept ready.
    pub min_idle: u32,
    /// An idle connection above `min_idle` is closed after this long.
    pub idle_timeout: Duration,
    /// A connection is replaced after this long.
    pub max_lifetime: Duration,
    /// How long a client waits for a connection before an error.
    pub checkout_timeout: Duration,
    /// A client idle inside a transaction longer than this is rolled back and closed (zero:
    /// never).
    pub idle_transaction_timeout: Duration,
    /// A client that takes no part of a response for this long (it stopped reading) is closed
    /// and its backend connection released.
    pub client_write_timeout: Duration,
    /// Client sessions open at once.
    pub max_client_sessions: u32,
    /// How a session's `LAST_INSERT_ID()` is learnt after an insert.
    pub last_insert_id: InsertIds,
    /// Real addresses where the pooler is also published: TCP addresses and unix sockets.
    pub publish: Vec<PublishAddr>,
    /// TLS for the clients of those addresses.
    pub publish_tls: Option<PublishTls>,
}

/// The TLS a pool's published addresses serve (MySQL's in-protocol TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishTls {
    /// The PEM certificate chain (relative to the config's folder).
    pub cert: PathBuf,
    /// The PEM private key (relative to the config's folder).
    pub key: PathBuf,
    /// Whether clients that do not start TLS are refused (default true).
    pub required: bool,
}

/// A real address a pool is published on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PublishAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix socket (`unix:/path`), created owner-only (`0600`).
    Unix(SocketPath),
}

impl std::fmt::Display for PublishAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishAddr::Tcp(addr) => addr.fmt(f),
            PublishAddr::Unix(path) => path.fmt(f),
        }
    }
}

/// Where a pool's connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A private MariaDB that Switchyard starts itself.
    Embedded,
    /// A real server.
    Server {
        /// Its host.
        host: TargetHost,
        /// Its port.
        port: u16,
    },
    /// A real server on this host, through its unix socket (`mysql+unix:///path`).
    Socket(SocketPath),
}

/// How client sessions share backend connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// A connection is held only inside a transaction or while pinned.
    Transaction,
    /// A connection is held for the whole session, then reset and reused.
    Session,
}

/// How a pool learns each session's `LAST_INSERT_ID()` after an insert (`last_insert_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertIds {
    /// Read back from the connection, as the server's (`exact`).
    Exact,
    /// The id the OK reported, without a read-back (`reported`).
    Reported,
}

impl std::fmt::Display for PoolMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PoolMode::Transaction => "transaction",
            PoolMode::Session => "session",
        })
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Profile::Dev => "dev",
            Profile::Prod => "prod",
        })
    }
}
