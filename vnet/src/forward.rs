//! Declared forwards: a virtual port of a workload whose connections are relayed to one real
//! `host:port`, the only way a guest reaches a real backend by plain TCP.
//!
//! For each accepted connection: the target `tcp://host:port` is decided by the workload's
//! policy; a name is resolved (and bound to its answers); every address is decided again and
//! the connection is made only to addresses that passed, tried in the resolver's order, each
//! within the connect timeout; TLS is originated when declared (SNI and verification against the
//! server name); then bytes are relayed both ways with half-close. The guest's connect succeeds
//! when the forward accepts it; if the real side cannot be reached, the guest's connection ends
//! at once with no data (as through any TCP proxy) and the log says why.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use switchyard_policy::{Scheme, Target, TargetHost};
use thiserror::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::Connection;
use crate::accept::Listener;
use crate::dial::{DialTls, dial};
use crate::egress::Egress;
use crate::error::BindError;
use crate::network::Network;
use crate::relay::{Relayed, relay};
use crate::tls::TlsError;

/// What a forward relays to, and how.
#[derive(Debug, Clone)]
pub struct ForwardSpec {
    /// The virtual port (bound on `0.0.0.0` and `::` of the workload's network).
    pub port: u16,
    /// The real host: a name (resolved per connection) or an address.
    pub host: TargetHost,
    /// The real port.
    pub to_port: u16,
    /// TLS origination, if declared.
    pub tls: Option<ForwardTls>,
    /// How long one connect attempt may take.
    pub connect_timeout: Duration,
    /// Connections relayed at once; more are closed on accept, with a log line.
    pub max_connections: usize,
    /// A relayed connection in which no byte moved either way for this long is closed on both
    /// sides, with a log line (`None`: never).
    pub idle_timeout: Option<Duration>,
}

/// TLS origination of a forward.
pub type ForwardTls = DialTls;

/// Why a forward could not be mounted.
#[derive(Debug, Error)]
pub enum ForwardError {
    /// Its virtual port is taken (by a service or another forward) or over a limit.
    #[error("forward of port {port}: {error}")]
    Bind {
        /// The virtual port.
        port: u16,
        /// Why.
        error: BindError,
    },
    /// The TLS client could not be built (bad CA file).
    #[error("forward of port {port}: {error}")]
    Tls {
        /// The virtual port.
        port: u16,
        /// Why.
        error: TlsError,
    },
}

/// A mounted forward: holds its virtual port (on both address families) until dropped, with
/// every clone. Clones serve the same forward (one `max_connections`) from other threads: each
/// relays the connections made on its own thread (see [`crate::Acceptor`]).
#[derive(Debug, Clone)]
pub struct Forward {
    spec: Arc<ForwardSpec>,
    egress: Arc<Egress>,
    v4: Arc<Listener>,
    v6: Arc<Listener>,
    slots: Arc<Semaphore>,
}

impl Forward {
    /// Mounts `spec` on `network`: binds `0.0.0.0:port` and `[::]:port` and listens. Connections
    /// queue in the listeners until [`Forward::serve`] runs.
    pub fn mount(
        network: &Arc<Network>,
        egress: Arc<Egress>,
        spec: ForwardSpec,
    ) -> Result<Self, ForwardError> {
        let port = spec.port;
        let backlog = network.limits().max_backlog;
        let bind = |ip: IpAddr| {
            network
                .listen(SocketAddr::new(ip, port), backlog)
                .map_err(|error| ForwardError::Bind { port, error })
        };
        let v4 = bind(IpAddr::V4(Ipv4Addr::UNSPECIFIED))?;
        let v6 = bind(IpAddr::V6(Ipv6Addr::UNSPECIFIED))?;
        let slots = Arc::new(Semaphore::new(spec.max_connections.max(1)));
        Ok(Forward { spec: Arc::new(spec), egress, v4: Arc::new(v4), v6: Arc::new(v6), slots })
    }

    /// The forward's declaration.
    pub fn spec(&self) -> &ForwardSpec {
        &self.spec
    }

    /// Connections being relayed now.
    pub fn active(&self) -> usize {
        self.spec.max_connections.max(1) - self.slots.available_permits()
    }

    /// Accepts and relays connections until the returned future is dropped; dropping it ends
    /// every relay it started, and the last clone's frees the virtual port.
    pub async fn serve(self) {
        let mut relays = JoinSet::new();
        let (mut v4, mut v6) = (self.v4.acceptor(), self.v6.acceptor());
        loop {
            let connection = tokio::select! {
                connection = v4.accept() => connection,
                connection = v6.accept() => connection,
                Some(_) = relays.join_next(), if !relays.is_empty() => continue,
            };
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                tracing::warn!(
                    target: "switchyard::forward",
                    tenant = self.egress.workload(),
                    port = self.spec.port,
                    "forward connection closed: max_connections ({}) reached",
                    self.spec.max_connections,
                );
                drop(connection);
                continue;
            };
            relays.spawn(forward_one(self.spec.clone(), self.egress.clone(), connection, permit));
        }
    }
}

/// The policy target of the forward itself.
fn forward_target(spec: &ForwardSpec) -> Target {
    Target::new(Scheme::tcp(), spec.host.clone(), spec.to_port)
}

/// Relays one accepted connection; everything it holds is released when it returns.
async fn forward_one(
    spec: Arc<ForwardSpec>,
    egress: Arc<Egress>,
    connection: Connection,
    _permit: OwnedSemaphorePermit,
) -> Option<Relayed> {
    let from = connection.peer_addr();
    let (stream, _guard) = connection.into_parts();
    let component = format!("forward :{}", spec.port);
    match dial(&egress, &component, &forward_target(&spec), spec.tls.as_ref(), spec.connect_timeout).await {
        Ok(remote) => {
            let relayed = relay(remote, stream, spec.idle_timeout).await;
            if relayed.idle_closed {
                tracing::warn!(
                    target: "switchyard::forward",
                    tenant = egress.workload(),
                    port = spec.port,
                    %from,
                    target = %forward_target(&spec),
                    "forwarded connection closed: no byte either way for {:?} (idle_timeout); {} bytes sent, {} received",
                    spec.idle_timeout.unwrap_or_default(),
                    relayed.to_remote,
                    relayed.to_guest,
                );
            }
            Some(relayed)
        }
        Err(why) => {
            tracing::warn!(
                target: "switchyard::forward",
                tenant = egress.workload(),
                port = spec.port,
                %from,
                target = %forward_target(&spec),
                "forwarded connection closed: {why}",
            );
            None
        }
    }
}
