//! Mounting a tenant's MySQL pools: each pool is a native service on its virtual port
//! (`0.0.0.0` and `::` of the tenant's network, where its guests connect to `127.0.0.1:PORT`),
//! optionally also published on a real host address; its backend connections are dialed through
//! the tenant's egress gate, so they pass the tenant's policy like every other way out.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchyard_policy::{Scheme, SocketPath, Target};
use switchyard_pooler::backend::{BackendSettings, BackendTls};
use switchyard_pooler::client_tls::ClientTls;
use switchyard_pooler::protocol::auth::AuthMethod;
use switchyard_pooler::{
    BoxedStream, ConnectFuture, Connector, InsertIds, PoolConfig, PoolMode, Pooler, PoolerConfig,
};
use switchyard_vnet::Listener;
use switchyard_vnet::dial::dial;
use switchyard_vnet::egress::Egress;
use switchyard_vnet::tls::TlsClient;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::embedded::SocketConnector;
use super::guest::Workload;
use super::published::{Accepted, PublishedListener};
use crate::config::{self, Backend, PublishAddr, Tenant};

/// How long one backend connect attempt may take.
const BACKEND_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening a backend connection may take in all (connect, TLS, login, setup).
const BACKEND_OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to log in.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a logged-in client may take to finish a packet it has started.
const PACKET_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections are pinged before use after this long.
const HEALTH_CHECK_AFTER: Duration = Duration::from_secs(30);
/// Prepared statements kept per backend connection.
const MAX_PREPARED_PER_CONNECTION: usize = 256;
/// The largest packet relayed either way.
const MAX_PACKET: usize = 64 << 20;
/// How often a pool's upkeep runs.
const UPKEEP_PERIOD: Duration = Duration::from_secs(1);

/// Dials a pool's server backend through its tenant's egress gate (plain TCP: TLS, if any, is
/// started by the pooler inside the MySQL handshake).
struct EgressConnector {
    egress: Arc<Egress>,
    component: String,
    target: Target,
}

impl Connector for EgressConnector {
    fn connect(&self) -> ConnectFuture<'_> {
        Box::pin(async move {
            let dialed = dial(&self.egress, &self.component, &self.target, None, BACKEND_CONNECT_TIMEOUT)
                .await
                .map_err(std::io::Error::other)?;
            Ok(Box::new(dialed) as BoxedStream)
        })
    }

    fn describe(&self) -> String {
        self.target.to_string()
    }
}

/// Dials a `mysql+unix://` backend through the tenant's egress gate: the socket must be
/// allowed by a `unix:/path` entry, decided at every connect.
struct SocketEgressConnector {
    egress: Arc<Egress>,
    component: String,
    path: SocketPath,
}

impl Connector for SocketEgressConnector {
    fn connect(&self) -> ConnectFuture<'_> {
        Box::pin(async move {
            let stream = self
                .egress
                .connect_socket(&self.component, &self.path)
                .await
                .map_err(std::io::Error::other)?;
            Ok(Box::new(stream) as BoxedStream)
        })
    }

    fn describe(&self) -> String {
        format!("mysql+unix://{}", self.path.as_str())
    }
}

/// A pool mounted on its tenant's network: it holds its virtual port until dropped (with every
/// [`MountedPool::accept_virtual`] it started).
pub struct MountedPool {
    name: String,
    pooler: Pooler,
    v4: Arc<Listener>,
    v6: Arc<Listener>,
    published: Vec<(PublishAddr, Arc<PublishedListener>)>,
}

/// Published listeners by address, handed from a tenant's running pools to their replacement in
/// a reload, so that a pool published on the same address keeps its socket (no window where
/// clients are refused, no fight over the address).
pub type PublishedListeners = BTreeMap<PublishAddr, Arc<PublishedListener>>;

/// Mounts every pool of `tenant` whose backend is a server. The returned pools still have to be
/// served ([`MountedPool::serve`]).
/// Pools whose backend is `embedded` use `embedded` (started by the caller when any pool wants it).
/// A published address found in `inherited` takes that listener instead of binding anew.
pub async fn mount(
    tenant: &Tenant,
    workload: &Workload,
    embedded: Option<&SocketConnector>,
    base: &Path,
    inherited: &PublishedListeners,
) -> anyhow::Result<Vec<MountedPool>> {
    let mut mounted = Vec::with_capacity(tenant.pools.len());
    for (index, pool) in tenant.pools.iter().enumerate() {
        let key = format!("tenants[{}].pools[{index}]", tenant.name);
        let mut backend_tls = None;
        let connector: Arc<dyn Connector> = match &pool.backend {
            Backend::Server { host, port } => {
                let target =
                    Target::new(Scheme::parse("mysql").context("the mysql scheme")?, host.clone(), *port);
                // MySQL starts TLS inside its own handshake (`SSLRequest`): the pooler does it
                // on the plain connection the egress gate dials.
                if pool.tls {
                    let client =
                        TlsClient::webpki().with_context(|| format!("tenant {}: {key}.tls", tenant.name))?;
                    backend_tls =
                        Some(BackendTls { connector: client.connector(), server_name: host.to_string() });
                }
                Arc::new(EgressConnector {
                    egress: workload.egress.clone(),
                    component: format!("pool {}", pool.name),
                    target,
                })
            }
            Backend::Socket(path) => Arc::new(SocketEgressConnector {
                egress: workload.egress.clone(),
                component: format!("pool {}", pool.name),
                path: path.clone(),
            }),
            Backend::Embedded => match embedded {
                Some(connector) => Arc::new(connector.clone()),
                None => anyhow::bail!(
                    "tenant {}: {key}.backend: the embedded MariaDB is not running",
                    tenant.name
                ),
            },
        };
        let client_tls = match &pool.publish_tls {
            None => None,
            Some(tls) => Some(
                ClientTls::from_pem_files(&base.join(&tls.cert), &base.join(&tls.key), tls.required)
                    .with_context(|| format!("tenant {}: {key}.publish_tls", tenant.name))?,
            ),
        };
        let pooler = Pooler::new(pooler_config(&tenant.name, pool, backend_tls, client_tls), connector);
        let listen = |ip: IpAddr| {
            let backlog = workload.network.limits().max_backlog;
            workload
                .network
                .listen(SocketAddr::new(ip, pool.port), backlog)
                .with_context(|| format!("tenant {}: {key}.port {}", tenant.name, pool.port))
        };
        let v4 = listen(IpAddr::V4(Ipv4Addr::UNSPECIFIED))?;
        let v6 = listen(IpAddr::V6(Ipv6Addr::UNSPECIFIED))?;
        let mut published = Vec::with_capacity(pool.publish.len());
        for addr in &pool.publish {
            let listener = match inherited.get(addr) {
                Some(listener) => listener.clone(),
                None => Arc::new(
                    PublishedListener::bind(addr)
                        .await
                        .with_context(|| format!("tenant {}: {key}.publish", tenant.name))?,
                ),
            };
            published.push((addr.clone(), listener));
        }
        tracing::info!(
            tenant = tenant.name,
            pool = pool.name,
            port = pool.port,
            backend = %pooler.pool().config().name,
            publish = pool.publish.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "),
            max_connections = pool.max_connections,
            mode = %pool.mode,
            "pool mounted",
        );
        let (v4, v6) = (Arc::new(v4), Arc::new(v6));
        mounted.push(MountedPool { name: pool.name.clone(), pooler, v4, v6, published });
    }
    Ok(mounted)
}

fn pooler_config(
    tenant: &str,
    pool: &config::Pool,
    tls: Option<BackendTls>,
    client_tls: Option<ClientTls>,
) -> PoolerConfig {
    PoolerConfig {
        pool: PoolConfig {
            name: format!("{tenant}/{}", pool.name),
            backend: BackendSettings {
                user: pool.user.clone(),
                password: pool.password.expose().as_bytes().to_vec(),
                database: pool.database.clone(),
                max_packet: MAX_PACKET,
                connect_timeout: BACKEND_OPEN_TIMEOUT,
                tls: tls.clone(),
            },
            max_connections: pool.max_connections as usize,
            min_idle: pool.min_idle as usize,
            idle_timeout: pool.idle_timeout,
            max_lifetime: pool.max_lifetime,
            checkout_timeout: pool.checkout_timeout,
            health_check_after: HEALTH_CHECK_AFTER,
        },
        mode: match pool.mode {
            config::PoolMode::Transaction => PoolMode::Transaction,
            config::PoolMode::Session => PoolMode::Session,
        },
        max_client_sessions: pool.max_client_sessions as usize,
        handshake_timeout: HANDSHAKE_TIMEOUT,
        packet_timeout: PACKET_TIMEOUT,
        auth_method: AuthMethod::NativePassword,
        max_prepared_per_connection: MAX_PREPARED_PER_CONNECTION,
        idle_transaction_timeout: pool.idle_transaction_timeout,
        client_write_timeout: pool.client_write_timeout,
        insert_ids: match pool.last_insert_id {
            config::InsertIds::Exact => InsertIds::Exact,
            config::InsertIds::Reported => InsertIds::Reported,
        },
        client_tls,
    }
}

impl MountedPool {
    /// The pool's name in its tenant.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pool (for metrics).
    pub fn pool(&self) -> &switchyard_pooler::Pool {
        self.pooler.pool()
    }

    /// Its published listeners, by address.
    pub fn published(&self) -> impl Iterator<Item = (PublishAddr, Arc<PublishedListener>)> + '_ {
        self.published.iter().map(|(addr, listener)| (addr.clone(), listener.clone()))
    }

    /// Serves the virtual connections made on the thread it runs on (the pool's sessions of the
    /// tenant's guests on another of its shards) until dropped; the pool, its cap, queue and
    /// stats are the ones [`MountedPool::serve`] serves.
    pub fn accept_virtual(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (pooler, v4, v6) = (self.pooler.clone(), self.v4.clone(), self.v6.clone());
        async move {
            let (mut v4, mut v6) = (v4.acceptor(), v6.acceptor());
            let mut sessions = JoinSet::new();
            loop {
                tokio::select! {
                    connection = v4.accept() => serve_virtual(&pooler, &mut sessions, connection),
                    connection = v6.accept() => serve_virtual(&pooler, &mut sessions, connection),
                    Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                }
            }
        }
    }

    /// Serves client sessions (virtual ones made on its thread, and published ones) and the
    /// pool's upkeep until dropped; dropping it ends every session it started and frees the
    /// virtual port.
    pub async fn serve(self) {
        let MountedPool { pooler, v4, v6, published, .. } = self;
        let (mut v4, mut v6) = (v4.acceptor(), v6.acceptor());
        let mut sessions = JoinSet::new();
        for (_, listener) in published {
            sessions.spawn(serve_published(pooler.clone(), listener));
        }
        let upkeep = pooler.clone();
        sessions.spawn(async move {
            // One connection at start: readiness then knows whether the backend answers.
            if let Err(error) = upkeep.pool().server_version().await {
                tracing::warn!(pool = upkeep.pool().config().name, "{error}");
            }
            upkeep.maintain(UPKEEP_PERIOD).await
        });
        loop {
            tokio::select! {
                connection = v4.accept() => serve_virtual(&pooler, &mut sessions, connection),
                connection = v6.accept() => serve_virtual(&pooler, &mut sessions, connection),
                Some(_) = sessions.join_next(), if sessions.len() > 1 => {}
            }
        }
    }
}

/// Serves one virtual connection in a `pool.session` span that continues the connecting side's
/// trace (request → `vnet.connect` → `pool.session` → `pool.query` → `pool.checkout`).
fn serve_virtual(pooler: &Pooler, sessions: &mut JoinSet<()>, connection: switchyard_vnet::Connection) {
    let pooler = pooler.clone();
    let peer = connection.peer_addr().to_string();
    let span = tracing::info_span!(parent: connection.origin(), "pool.session", pool = pooler.pool().config().name, peer);
    sessions.spawn(
        async move {
            let (stream, _guard) = connection.into_parts();
            pooler.serve(stream, &peer).await;
        }
        .instrument(span),
    );
}

/// Serves the clients of one published address until dropped (which ends them; the last holder
/// of the listener closes it, and removes a unix socket's file).
async fn serve_published(pooler: Pooler, listener: Arc<PublishedListener>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    let pooler = pooler.clone();
                    let span = tracing::info_span!("pool.session", pool = pooler.pool().config().name, peer);
                    sessions.spawn(
                        async move {
                            match client {
                                Accepted::Tcp(stream) => pooler.serve_published(stream, &peer).await,
                                Accepted::Unix(stream) => pooler.serve_published(stream, &peer).await,
                            }
                        }
                        .instrument(span),
                    );
                }
                Err(error) => {
                    tracing::warn!(pool = pooler.pool().config().name, "accept on {} failed: {error}", listener.describe());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}
