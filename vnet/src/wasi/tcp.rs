//! `wasi:sockets/tcp` and `tcp-create-socket` over the virtual network.
//!
//! A socket follows the WASI 0.2 state machine (unbound → bound → listening, or unbound/bound →
//! connecting → connected; `start-*`/`finish-*` pairs). Addresses in `127.0.0.0/8` and `::1`
//! (and the unspecified addresses, for bind) are the workload's [`Network`]; a connect anywhere
//! else is decided by the workload's [`Egress`] policy at once (`access-denied` when denied) and,
//! when allowed, made in the background and relayed into an in-memory stream.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::{Context, Poll, Waker};

use tokio::task::JoinHandle;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Network as NetworkCap,
};
use wasmtime_wasi::p2::{SocketError, SocketResult};
use wasmtime_wasi_io::poll::{DynPollable, Pollable};
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream};

use super::GuestNetView;
use super::bindings::wasi::sockets::tcp::{self as bindings, ShutdownType};
use super::bindings::wasi::sockets::tcp_create_socket;
use super::streams::{GuestInput, GuestOutput};
use super::tcp_connect::{Ready, bind_error};
use crate::accept::Listener;
use crate::connection::{Connection, ConnectionGuard};
use crate::network::{BoundPort, is_virtual};
use crate::pipe::PipeShutdown;

/// The backlog of a listener whose guest never set one (as Linux's `SOMAXCONN`).
const DEFAULT_BACKLOG: usize = 128;

/// An established connection as its socket keeps it: the streams themselves belong to the guest.
struct Established {
    local: SocketAddr,
    peer: SocketAddr,
    read: PipeShutdown,
    write: PipeShutdown,
    _guard: ConnectionGuard,
}

enum Connecting {
    /// A virtual connect, decided at once.
    Done(Option<Result<Ready, ErrorCode>>),
    /// A real connect in the background; aborted if the socket is dropped first.
    Egress(JoinHandle<Result<Ready, ErrorCode>>),
}

enum State {
    Unbound,
    Bound(BoundPort),
    Listening { listener: Listener, ready: Option<Connection> },
    Connecting(Connecting),
    Connected(Established),
    Closed,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Bind,
    Connect,
    Listen,
}

/// Socket options: stored and reported as WASI asks; a virtual stream has no keep-alive or
/// hop limit to apply them to.
struct Options {
    keep_alive: bool,
    keep_alive_idle: u64,
    keep_alive_interval: u64,
    keep_alive_count: u32,
    hop_limit: u8,
    receive_buffer: u64,
    send_buffer: u64,
}

/// A guest's TCP socket (the `tcp-socket` resource).
pub struct TcpSocket {
    family: IpAddressFamily,
    state: State,
    in_progress: Option<Op>,
    backlog: usize,
    options: Options,
}

impl Drop for TcpSocket {
    fn drop(&mut self) {
        if let State::Connecting(Connecting::Egress(task)) = &self.state {
            task.abort();
        }
    }
}

impl TcpSocket {
    fn new(family: IpAddressFamily, capacity: usize) -> Self {
        TcpSocket {
            family,
            state: State::Unbound,
            in_progress: None,
            backlog: DEFAULT_BACKLOG,
            options: Options {
                keep_alive: false,
                keep_alive_idle: 7_200_000_000_000,
                keep_alive_interval: 75_000_000_000,
                keep_alive_count: 9,
                hop_limit: 64,
                receive_buffer: capacity as u64,
                send_buffer: capacity as u64,
            },
        }
    }

    /// Whether `addr` is of this socket's family; IPv4-mapped IPv6 addresses are refused, so
    /// that `::ffff:127.0.0.1` can never slip past the virtual network to the host's loopback.
    fn accepts(&self, addr: &SocketAddr) -> bool {
        match (self.family, addr) {
            (IpAddressFamily::Ipv4, SocketAddr::V4(_)) => true,
            (IpAddressFamily::Ipv6, SocketAddr::V6(a)) => a.ip().to_ipv4_mapped().is_none(),
            _ => false,
        }
    }

    fn loopback(&self) -> SocketAddr {
        match self.family {
            IpAddressFamily::Ipv4 => SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            IpAddressFamily::Ipv6 => SocketAddr::from((Ipv6Addr::LOCALHOST, 0)),
        }
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        match &self.state {
            State::Bound(port) => Some(port.local_addr()),
            State::Listening { listener, .. } => Some(listener.local_addr()),
            State::Connected(c) => Some(c.local),
            State::Unbound | State::Connecting(_) | State::Closed => None,
        }
    }

    fn connected(&self) -> Result<&Established, SocketError> {
        match &self.state {
            State::Connected(c) => Ok(c),
            _ => Err(ErrorCode::InvalidState.into()),
        }
    }

    fn start(&mut self, op: Op) -> SocketResult<()> {
        if self.in_progress.is_some() {
            return Err(ErrorCode::ConcurrencyConflict.into());
        }
        self.in_progress = Some(op);
        Ok(())
    }

    fn finish(&mut self, op: Op) -> SocketResult<()> {
        if self.in_progress != Some(op) {
            return Err(ErrorCode::NotInProgress.into());
        }
        self.in_progress = None;
        Ok(())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for TcpSocket {
    async fn ready(&mut self) {
        match &mut self.state {
            State::Listening { listener, ready } if ready.is_none() => {
                *ready = Some(std::future::poll_fn(|cx| listener.poll_accept(cx)).await);
            }
            State::Connecting(connecting) => {
                if let Connecting::Egress(task) = connecting {
                    let outcome = task.await.unwrap_or(Err(ErrorCode::Unknown));
                    *connecting = Connecting::Done(Some(outcome));
                }
            }
            _ => {}
        }
    }
}

/// Hands the two halves of `ready` to the guest as children of `socket`.
fn establish(
    table: &mut ResourceTable,
    socket: &Resource<TcpSocket>,
    ready: Ready,
) -> wasmtime::Result<(Established, Resource<DynInputStream>, Resource<DynOutputStream>)> {
    let (reader, writer) = ready.stream.into_split();
    let established = Established {
        local: ready.local,
        peer: ready.peer,
        read: reader.shutdown_handle(),
        write: writer.shutdown_handle(),
        _guard: ready.guard,
    };
    let input: DynInputStream = Box::new(GuestInput(reader));
    let output: DynOutputStream = Box::new(GuestOutput(writer));
    Ok((established, table.push_child(input, socket)?, table.push_child(output, socket)?))
}

impl tcp_create_socket::Host for GuestNetView<'_> {
    fn create_tcp_socket(&mut self, family: IpAddressFamily) -> SocketResult<Resource<TcpSocket>> {
        let limits = self.net.network.limits();
        if self.net.sockets >= limits.max_sockets {
            self.log_limit(&format_args!(
                "socket limit reached ({}, limits.max_sockets): create-tcp-socket refused",
                limits.max_sockets
            ));
            return Err(ErrorCode::NewSocketLimit.into());
        }
        let socket = self.table.push(TcpSocket::new(family, limits.stream_capacity))?;
        self.net.sockets += 1;
        Ok(socket)
    }
}

impl bindings::Host for GuestNetView<'_> {}

impl bindings::HostTcpSocket for GuestNetView<'_> {
    fn start_bind(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<NetworkCap>,
        local: IpSocketAddress,
    ) -> SocketResult<()> {
        self.table.get(&network)?;
        let local: SocketAddr = local.into();
        let net = self.net.network.clone();
        let socket = self.table.get_mut(&this)?;
        if socket.in_progress.is_some() {
            return Err(ErrorCode::ConcurrencyConflict.into());
        }
        if !socket.accepts(&local) {
            return Err(ErrorCode::InvalidArgument.into());
        }
        if !matches!(socket.state, State::Unbound) {
            return Err(ErrorCode::InvalidState.into());
        }
        let port = net.bind(local).map_err(|e| SocketError::from(bind_error(&e)))?;
        socket.state = State::Bound(port);
        socket.start(Op::Bind)
    }

    fn finish_bind(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        self.table.get_mut(&this)?.finish(Op::Bind)
    }

    fn start_connect(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<NetworkCap>,
        remote: IpSocketAddress,
    ) -> SocketResult<()> {
        self.table.get(&network)?;
        let remote: SocketAddr = remote.into();
        let socket = self.table.get_mut(&this)?;
        if socket.in_progress.is_some() {
            return Err(ErrorCode::ConcurrencyConflict.into());
        }
        if !socket.accepts(&remote) || remote.port() == 0 || remote.ip().is_unspecified() {
            return Err(ErrorCode::InvalidArgument.into());
        }
        let bound = match std::mem::replace(&mut socket.state, State::Closed) {
            State::Unbound => None,
            State::Bound(port) => Some(port),
            other => {
                socket.state = other;
                return Err(ErrorCode::InvalidState.into());
            }
        };
        let unbound_from = socket.loopback();
        let connecting = if is_virtual(remote.ip()) {
            Connecting::Done(Some(self.connect_virtual(bound, remote, unbound_from)))
        } else {
            match self.connect_egress(remote) {
                Ok(task) => Connecting::Egress(task),
                Err(code) => {
                    // Refused before anything started: the socket stays as it was.
                    self.table.get_mut(&this)?.state = bound.map_or(State::Unbound, State::Bound);
                    return Err(code.into());
                }
            }
        };
        let socket = self.table.get_mut(&this)?;
        socket.state = State::Connecting(connecting);
        socket.start(Op::Connect)
    }

    fn finish_connect(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<(Resource<DynInputStream>, Resource<DynOutputStream>)> {
        let socket = self.table.get_mut(&this)?;
        if socket.in_progress != Some(Op::Connect) {
            return Err(ErrorCode::NotInProgress.into());
        }
        let outcome = match &mut socket.state {
            State::Connecting(Connecting::Done(outcome)) => outcome.take(),
            State::Connecting(Connecting::Egress(task)) => {
                let mut cx = Context::from_waker(Waker::noop());
                match std::pin::Pin::new(task).poll(&mut cx) {
                    Poll::Ready(joined) => Some(joined.unwrap_or(Err(ErrorCode::Unknown))),
                    Poll::Pending => return Err(ErrorCode::WouldBlock.into()),
                }
            }
            _ => None,
        };
        socket.in_progress = None;
        match outcome.unwrap_or(Err(ErrorCode::InvalidState)) {
            Err(code) => {
                socket.state = State::Closed;
                Err(code.into())
            }
            Ok(ready) => {
                let (established, input, output) =
                    establish(self.table, &this, ready).map_err(SocketError::trap)?;
                self.table.get_mut(&this)?.state = State::Connected(established);
                Ok((input, output))
            }
        }
    }

    fn start_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        let socket = self.table.get_mut(&this)?;
        if socket.in_progress.is_some() {
            return Err(ErrorCode::ConcurrencyConflict.into());
        }
        match std::mem::replace(&mut socket.state, State::Closed) {
            State::Bound(port) => {
                let listener = port.listen(socket.backlog);
                socket.state = State::Listening { listener, ready: None };
                socket.start(Op::Listen)
            }
            other => {
                socket.state = other;
                Err(ErrorCode::InvalidState.into())
            }
        }
    }

    fn finish_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        self.table.get_mut(&this)?.finish(Op::Listen)
    }

    fn accept(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<(Resource<TcpSocket>, Resource<DynInputStream>, Resource<DynOutputStream>)> {
        let limits = self.net.network.limits();
        if self.net.sockets >= limits.max_sockets {
            self.log_limit(&format_args!(
                "socket limit reached ({}, limits.max_sockets): accept refused",
                limits.max_sockets
            ));
            return Err(ErrorCode::NewSocketLimit.into());
        }
        let socket = self.table.get_mut(&this)?;
        let family = socket.family;
        let State::Listening { listener, ready } = &mut socket.state else {
            return Err(ErrorCode::InvalidState.into());
        };
        let Some(connection) = ready.take().or_else(|| listener.try_accept()) else {
            return Err(ErrorCode::WouldBlock.into());
        };
        let child = self.table.push(TcpSocket::new(family, limits.stream_capacity))?;
        self.net.sockets += 1;
        let (established, input, output) =
            establish(self.table, &child, Ready::from_connection(connection)).map_err(SocketError::trap)?;
        self.table.get_mut(&child)?.state = State::Connected(established);
        Ok((child, input, output))
    }

    fn local_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        let socket = self.table.get(&this)?;
        socket.local_addr().map(Into::into).ok_or_else(|| ErrorCode::InvalidState.into())
    }

    fn remote_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(self.table.get(&this)?.connected()?.peer.into())
    }

    fn is_listening(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<bool> {
        Ok(matches!(self.table.get(&this)?.state, State::Listening { .. }))
    }

    fn address_family(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<IpAddressFamily> {
        Ok(self.table.get(&this)?.family)
    }

    fn set_listen_backlog_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        if value == 0 {
            return Err(ErrorCode::InvalidArgument.into());
        }
        let socket = self.table.get_mut(&this)?;
        let backlog = usize::try_from(value).unwrap_or(usize::MAX);
        match &socket.state {
            State::Listening { listener, .. } => listener.set_backlog(backlog),
            State::Connecting(_) | State::Connected(_) => return Err(ErrorCode::InvalidState.into()),
            _ => {}
        }
        socket.backlog = backlog;
        Ok(())
    }

    fn keep_alive_enabled(&mut self, this: Resource<TcpSocket>) -> SocketResult<bool> {
        Ok(self.table.get(&this)?.options.keep_alive)
    }

    fn set_keep_alive_enabled(&mut self, this: Resource<TcpSocket>, value: bool) -> SocketResult<()> {
        self.table.get_mut(&this)?.options.keep_alive = value;
        Ok(())
    }

    fn keep_alive_idle_time(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        Ok(self.table.get(&this)?.options.keep_alive_idle)
    }

    fn set_keep_alive_idle_time(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        set_positive(&mut self.table.get_mut(&this)?.options.keep_alive_idle, value)
    }

    fn keep_alive_interval(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        Ok(self.table.get(&this)?.options.keep_alive_interval)
    }

    fn set_keep_alive_interval(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        set_positive(&mut self.table.get_mut(&this)?.options.keep_alive_interval, value)
    }

    fn keep_alive_count(&mut self, this: Resource<TcpSocket>) -> SocketResult<u32> {
        Ok(self.table.get(&this)?.options.keep_alive_count)
    }

    fn set_keep_alive_count(&mut self, this: Resource<TcpSocket>, value: u32) -> SocketResult<()> {
        set_positive(&mut self.table.get_mut(&this)?.options.keep_alive_count, value)
    }

    fn hop_limit(&mut self, this: Resource<TcpSocket>) -> SocketResult<u8> {
        Ok(self.table.get(&this)?.options.hop_limit)
    }

    fn set_hop_limit(&mut self, this: Resource<TcpSocket>, value: u8) -> SocketResult<()> {
        set_positive(&mut self.table.get_mut(&this)?.options.hop_limit, value)
    }

    fn receive_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        Ok(self.table.get(&this)?.options.receive_buffer)
    }

    fn set_receive_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        set_positive(&mut self.table.get_mut(&this)?.options.receive_buffer, value)
    }

    fn send_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        Ok(self.table.get(&this)?.options.send_buffer)
    }

    fn set_send_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        set_positive(&mut self.table.get_mut(&this)?.options.send_buffer, value)
    }

    fn subscribe(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi_io::poll::subscribe(self.table, this)
    }

    fn shutdown(&mut self, this: Resource<TcpSocket>, how: ShutdownType) -> SocketResult<()> {
        let connection = self.table.get(&this)?.connected()?;
        if matches!(how, ShutdownType::Receive | ShutdownType::Both) {
            connection.read.close_read();
        }
        if matches!(how, ShutdownType::Send | ShutdownType::Both) {
            connection.write.close_write();
        }
        Ok(())
    }

    fn drop(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        self.net.sockets = self.net.sockets.saturating_sub(1);
        Ok(())
    }
}

/// Stores a socket option that WASI requires to be non-zero.
fn set_positive<N: Default + PartialEq>(slot: &mut N, value: N) -> SocketResult<()> {
    if value == N::default() {
        return Err(ErrorCode::InvalidArgument.into());
    }
    *slot = value;
    Ok(())
}
