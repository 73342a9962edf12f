//! Where a guest's TCP connect goes: to a listener on the workload's own [`Network`] (at once),
//! or out through the workload's [`Egress`] gate (decided at once, connected in the background
//! and relayed into an in-memory stream); and the `wasi:sockets` error code of every way either
//! can fail. Limits hit on the way are logged with the tenant and the component.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use switchyard_policy::Target;
use tokio::task::JoinHandle;
use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode;

use super::GuestNetView;
use crate::connection::{Connection, ConnectionGuard};
use crate::egress::{Egress, EgressError};
use crate::error::{BindError, ConnectError};
use crate::network::{BoundPort, Network};
use crate::pipe::{VirtualStream, duplex};
use crate::relay::relay;

/// A connection that is ready to be handed to the guest.
pub(super) struct Ready {
    pub(super) stream: VirtualStream,
    pub(super) local: SocketAddr,
    pub(super) peer: SocketAddr,
    pub(super) guard: ConnectionGuard,
}

impl Ready {
    pub(super) fn from_connection(connection: Connection) -> Self {
        let (local, peer) = (connection.local_addr(), connection.peer_addr());
        let (stream, guard) = connection.into_parts();
        Ready { stream, local, peer, guard }
    }
}

pub(super) fn bind_error(error: &BindError) -> ErrorCode {
    match error {
        BindError::NotBindable { .. } => ErrorCode::AddressNotBindable,
        BindError::InUse { .. } | BindError::PortsExhausted { .. } => ErrorCode::AddressInUse,
        BindError::SocketLimit { .. } => ErrorCode::NewSocketLimit,
    }
}

fn connect_error(error: &ConnectError) -> ErrorCode {
    match error {
        ConnectError::Refused { .. } => ErrorCode::ConnectionRefused,
        ConnectError::NotVirtual { .. } => ErrorCode::RemoteUnreachable,
        ConnectError::ConnectionLimit { .. } => ErrorCode::NewSocketLimit,
        ConnectError::Bind(e) => bind_error(e),
    }
}

fn egress_error(error: &EgressError) -> ErrorCode {
    match error {
        EgressError::Denied { .. } => ErrorCode::AccessDenied,
        EgressError::Timeout { .. } => ErrorCode::Timeout,
        EgressError::Io { error, .. } => match error.kind() {
            std::io::ErrorKind::ConnectionRefused => ErrorCode::ConnectionRefused,
            std::io::ErrorKind::ConnectionReset => ErrorCode::ConnectionReset,
            std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => {
                ErrorCode::RemoteUnreachable
            }
            _ => ErrorCode::Unknown,
        },
    }
}

impl GuestNetView<'_> {
    /// Logs a limit the guest hit, with its tenant and component.
    pub(super) fn log_limit(&self, what: &dyn std::fmt::Display) {
        tracing::warn!(
            target: "switchyard::vnet",
            tenant = self.net.network.name(),
            component = &*self.net.component,
            "{what}"
        );
    }

    /// Connects to a virtual address, from `local` if the socket was bound.
    pub(super) fn connect_virtual(
        &self,
        local: Option<BoundPort>,
        remote: SocketAddr,
        unbound_from: SocketAddr,
    ) -> Result<Ready, ErrorCode> {
        let network: &Arc<Network> = &self.net.network;
        let local = match local {
            Some(port) => port,
            None => network.bind(unbound_from).map_err(|e| {
                self.log_limit(&e);
                bind_error(&e)
            })?,
        };
        match network.connect_from(local, remote) {
            Ok(connection) => Ok(Ready::from_connection(connection)),
            Err(e) => {
                match &e {
                    ConnectError::Refused { .. } => tracing::debug!(target: "switchyard::vnet", "{e}"),
                    _ => self.log_limit(&e),
                }
                Err(connect_error(&e))
            }
        }
    }

    /// Decides a connect outside the network now; when allowed, connects in the background.
    pub(super) fn connect_egress(
        &self,
        remote: SocketAddr,
    ) -> Result<JoinHandle<Result<Ready, ErrorCode>>, ErrorCode> {
        let egress: Arc<Egress> = self.net.egress.clone();
        egress.check(&self.net.component, &Target::tcp(remote)).map_err(|_| ErrorCode::AccessDenied)?;
        let slot = self.net.network.reserve_connection().map_err(|e| {
            self.log_limit(&e);
            connect_error(&e)
        })?;
        let capacity = self.net.network.limits().stream_capacity;
        let component = self.net.component.clone();
        Ok(tokio::spawn(async move {
            let stream = egress.connect_decided(remote).await.map_err(|e| {
                tracing::info!(target: "switchyard::egress", tenant = egress.workload(), component = &*component, "{e}");
                egress_error(&e)
            })?;
            let local = stream.local_addr().unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
            let (guest_end, host_end) = duplex(capacity);
            // The guest owns this connection like a socket of its own: no idle timeout.
            tokio::spawn(relay(stream, host_end, None));
            Ok(Ready { stream: guest_end, local, peer: remote, guard: ConnectionGuard::leaving(slot) })
        }))
    }
}
