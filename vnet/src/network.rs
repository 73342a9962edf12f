//! One workload's virtual network: which virtual socket addresses are bound or listening, and the
//! connections between them. Everything stays in this process; no OS socket is ever opened here.
//!
//! Addresses are keyed by the full socket address (IP and port). Only loopback addresses
//! (`127.0.0.0/8`, `::1`) and the unspecified addresses (`0.0.0.0`, `::`, meaning every loopback
//! address of that family) can be bound. A connect reaches the listener bound to exactly that
//! address, else the one bound to the unspecified address of its family and port, else it is
//! refused: there are no magic ports.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::accept::{AcceptQueue, Listener};
use crate::connection::{Connection, ConnectionSlot};
use crate::error::{BindError, ConnectError};
use crate::pipe::{DEFAULT_CAPACITY, duplex};
use crate::ports::PortTable;

/// Caps on one workload's virtual network. Every one is enforced with an error that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bound sockets (listeners, bound sockets and the local ends of connections) at once.
    pub max_sockets: usize,
    /// Connections open at once.
    pub max_connections: usize,
    /// The largest accept backlog a listener may ask for.
    pub max_backlog: usize,
    /// Bytes buffered per direction of a connection.
    pub stream_capacity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sockets: 1024,
            max_connections: 4096,
            max_backlog: 1024,
            stream_capacity: DEFAULT_CAPACITY,
        }
    }
}

/// What a bound address is used for.
#[derive(Debug)]
enum Slot {
    /// Bound (reserved) but not listening: connects are refused.
    Bound,
    /// Listening: connects queue here.
    Listening(Arc<AcceptQueue>),
}

#[derive(Debug, Default)]
struct Table {
    v4: PortTable,
    v6: PortTable,
    slots: HashMap<SocketAddr, Slot>,
    sockets: usize,
    connections: usize,
}

impl Table {
    fn ports(&mut self, ip: IpAddr) -> &mut PortTable {
        if ip.is_ipv4() { &mut self.v4 } else { &mut self.v6 }
    }
}

/// A workload's virtual network. Shared (`Arc`) by every guest and native service of the workload.
#[derive(Debug)]
pub struct Network {
    name: Arc<str>,
    limits: Limits,
    table: Mutex<Table>,
}

/// The unspecified address of `ip`'s family.
fn unspecified(ip: IpAddr) -> IpAddr {
    if ip.is_ipv4() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) }
}

/// The loopback address of `ip`'s family.
fn loopback(ip: IpAddr) -> IpAddr {
    if ip.is_ipv4() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { IpAddr::V6(Ipv6Addr::LOCALHOST) }
}

/// Whether `ip` names the virtual network: `127.0.0.0/8` or `::1` in any of their forms
/// (IPv4-mapped, IPv4-compatible, NAT64, 6to4; see [`switchyard_policy::canonical_ip`]). A guest's
/// traffic to such an address stays on its workload's network and never reaches the host's own
/// loopback.
pub fn is_virtual(ip: IpAddr) -> bool {
    switchyard_policy::is_loopback(ip)
}

/// The virtual address a connect to `to` reaches: `to` with its address in canonical form, so
/// that `[::ffff:127.0.0.1]:80` is `127.0.0.1:80` and `[::1]:80` stays itself.
fn canonical(to: SocketAddr) -> SocketAddr {
    SocketAddr::new(switchyard_policy::canonical_ip(to.ip()), to.port())
}

impl Network {
    /// An empty network; `name` identifies the workload in errors and logs.
    pub fn new(name: impl Into<Arc<str>>, limits: Limits) -> Arc<Self> {
        Arc::new(Network { name: name.into(), limits, table: Mutex::new(Table::default()) })
    }

    /// The workload's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The caps in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // No code panics while holding the lock, so a poisoned table is still consistent.
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Binds `addr` (port 0: an ephemeral port). The binding lasts until the returned handle drops.
    pub fn bind(self: &Arc<Self>, addr: SocketAddr) -> Result<BoundPort, BindError> {
        let ip = addr.ip();
        // Bindings are keyed by the plain forms only (`127.0.0.0/8`, `::1`, `0.0.0.0`, `::`).
        if !(ip.is_loopback() || ip.is_unspecified()) {
            return Err(BindError::NotBindable { network: self.name.to_string(), addr });
        }
        let mut table = self.table();
        if table.sockets >= self.limits.max_sockets {
            return Err(BindError::SocketLimit {
                network: self.name.to_string(),
                limit: self.limits.max_sockets,
            });
        }
        let port = if addr.port() == 0 {
            table
                .ports(ip)
                .allocate()
                .map_err(|_| BindError::PortsExhausted { network: self.name.to_string() })?
        } else {
            let port = addr.port();
            let taken = if ip.is_unspecified() {
                table.ports(ip).is_used(port)
            } else {
                table.slots.contains_key(&addr)
                    || table.slots.contains_key(&SocketAddr::new(unspecified(ip), port))
            };
            if taken {
                return Err(BindError::InUse { network: self.name.to_string(), addr });
            }
            table.ports(ip).acquire(port);
            port
        };
        let bound = SocketAddr::new(ip, port);
        table.slots.insert(bound, Slot::Bound);
        table.sockets += 1;
        Ok(BoundPort { network: self.clone(), addr: bound })
    }

    /// Binds `addr` and listens with `backlog` (capped at [`Limits::max_backlog`], at least 1):
    /// how native services (such as a pooler) mount themselves on a virtual port.
    pub fn listen(self: &Arc<Self>, addr: SocketAddr, backlog: usize) -> Result<Listener, BindError> {
        Ok(self.bind(addr)?.listen(backlog))
    }

    /// Connects to the listener at `to` from a fresh ephemeral port on the loopback address of
    /// `to`'s family.
    pub fn connect(self: &Arc<Self>, to: SocketAddr) -> Result<Connection, ConnectError> {
        let to = canonical(to);
        if !is_virtual(to.ip()) {
            return Err(ConnectError::NotVirtual { network: self.name.to_string(), addr: to });
        }
        let local = self.bind(SocketAddr::new(loopback(to.ip()), 0)).map_err(ConnectError::Bind)?;
        self.connect_from(local, to)
    }

    /// Connects to the listener at `to` from an already bound local address, which the connection
    /// keeps until it drops.
    pub fn connect_from(
        self: &Arc<Self>,
        local: BoundPort,
        to: SocketAddr,
    ) -> Result<Connection, ConnectError> {
        let to = canonical(to);
        let refused = || ConnectError::Refused { network: self.name.to_string(), addr: to };
        if !is_virtual(to.ip()) {
            return Err(ConnectError::NotVirtual { network: self.name.to_string(), addr: to });
        }
        if local.addr.is_ipv4() != to.is_ipv4() {
            return Err(refused());
        }
        let queue = {
            let mut table = self.table();
            let listening = |a: &SocketAddr| match table.slots.get(a) {
                Some(Slot::Listening(q)) => Some(q.clone()),
                _ => None,
            };
            let queue =
                listening(&to).or_else(|| listening(&SocketAddr::new(unspecified(to.ip()), to.port())));
            let queue = queue.ok_or_else(refused)?;
            if table.connections >= self.limits.max_connections {
                return Err(ConnectError::ConnectionLimit {
                    network: self.name.to_string(),
                    limit: self.limits.max_connections,
                });
            }
            table.connections += 1;
            queue
        };
        let local_addr = local.local_addr();
        let local_of_server = SocketAddr::new(to.ip(), to.port());
        let slot = ConnectionSlot::new(self.clone());
        let (client, server) = duplex(self.limits.stream_capacity);
        let origin = tracing::info_span!("vnet.connect", network = %self.name, from = %local_addr, to = %to);
        let accepted = Connection::new(server, local_of_server, local_addr, origin, slot.clone(), None);
        if !queue.push(accepted) {
            return Err(refused());
        }
        Ok(Connection::new(client, local_addr, local_of_server, tracing::Span::none(), slot, Some(local)))
    }

    /// Counts a connection that leaves the network (an allowed egress connect) against
    /// `max_connections`, until the returned slot drops.
    pub(crate) fn reserve_connection(self: &Arc<Self>) -> Result<Arc<ConnectionSlot>, ConnectError> {
        let mut table = self.table();
        if table.connections >= self.limits.max_connections {
            return Err(ConnectError::ConnectionLimit {
                network: self.name.to_string(),
                limit: self.limits.max_connections,
            });
        }
        table.connections += 1;
        drop(table);
        Ok(ConnectionSlot::new(self.clone()))
    }

    /// Counts one connection less (both ends of a connection have dropped).
    pub(crate) fn connection_closed(&self) {
        let mut table = self.table();
        table.connections = table.connections.saturating_sub(1);
    }

    fn set_listening(&self, addr: SocketAddr, queue: Arc<AcceptQueue>) {
        if let Some(slot) = self.table().slots.get_mut(&addr) {
            *slot = Slot::Listening(queue);
        }
    }

    fn unbind(&self, addr: SocketAddr) {
        let slot = {
            let mut table = self.table();
            table.ports(addr.ip()).release(addr.port());
            table.sockets = table.sockets.saturating_sub(1);
            table.slots.remove(&addr)
        };
        // Closing drops pending connections, which lock the table: never under the lock.
        if let Some(Slot::Listening(queue)) = slot {
            queue.close();
        }
    }

    /// Bound sockets and open connections now, for metrics and tests.
    pub fn usage(&self) -> Usage {
        let table = self.table();
        Usage { sockets: table.sockets, connections: table.connections, addresses: table.slots.len() }
    }
}

/// A snapshot of what a network holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bound sockets.
    pub sockets: usize,
    /// Open connections.
    pub connections: usize,
    /// Bound addresses.
    pub addresses: usize,
}

/// A bound virtual address. Dropping it frees the address at once (and closes its listener).
#[derive(Debug)]
pub struct BoundPort {
    network: Arc<Network>,
    addr: SocketAddr,
}

impl BoundPort {
    /// The bound address (with the ephemeral port filled in).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The network it belongs to.
    pub fn network(&self) -> &Arc<Network> {
        &self.network
    }

    pub(crate) fn max_backlog(&self) -> usize {
        self.network.limits.max_backlog.max(1)
    }

    /// Starts listening: connects to this address queue up to `backlog` (capped, at least 1)
    /// connections until accepted.
    pub fn listen(self, backlog: usize) -> Listener {
        let backlog = backlog.clamp(1, self.max_backlog());
        let queue = AcceptQueue::new(backlog);
        self.network.set_listening(self.addr, queue.clone());
        Listener::new(self, queue)
    }
}

impl Drop for BoundPort {
    fn drop(&mut self) {
        self.network.unbind(self.addr);
    }
}

#[cfg(test)]
mod tests;
