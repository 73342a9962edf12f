//! One end of an established virtual connection.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::network::{BoundPort, Network};
use crate::pipe::VirtualStream;

/// Counts a connection on its network until both of its ends have dropped.
#[derive(Debug)]
pub(crate) struct ConnectionSlot(Arc<Network>);

impl ConnectionSlot {
    pub(crate) fn new(network: Arc<Network>) -> Arc<Self> {
        Arc::new(ConnectionSlot(network))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connection_closed();
    }
}

/// One end of a virtual connection: its stream and both addresses. The connecting end also holds
/// its local (ephemeral) port until it drops; the accepted end carries the connect's span.
#[derive(Debug)]
pub struct Connection {
    stream: VirtualStream,
    local: SocketAddr,
    peer: SocketAddr,
    origin: tracing::Span,
    _slot: Arc<ConnectionSlot>,
    _port: Option<BoundPort>,
}

impl Connection {
    pub(crate) fn new(
        stream: VirtualStream,
        local: SocketAddr,
        peer: SocketAddr,
        origin: tracing::Span,
        slot: Arc<ConnectionSlot>,
        port: Option<BoundPort>,
    ) -> Self {
        Connection { stream, local, peer, origin, _slot: slot, _port: port }
    }

    /// On the accepted end, the `vnet.connect` span opened when the other side connected (a child
    /// of whatever span was current there), so that the accepting side continues the connecting
    /// side's trace. Disabled on the connecting end and when no subscriber records spans.
    pub fn origin(&self) -> &tracing::Span {
        &self.origin
    }

    /// This end's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The other end's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The byte stream.
    pub fn stream(&self) -> &VirtualStream {
        &self.stream
    }

    /// The stream, and what keeps the connection counted (and its local port bound) until the
    /// stream's owner drops it, for owners that keep the halves in different places.
    pub fn into_parts(self) -> (VirtualStream, ConnectionGuard) {
        (self.stream, ConnectionGuard { _slot: self._slot, _port: self._port })
    }
}

/// Keeps a connection counted on its network, and the connecting end's local port bound, until
/// it drops.
#[derive(Debug)]
pub struct ConnectionGuard {
    _slot: Arc<ConnectionSlot>,
    _port: Option<BoundPort>,
}

impl ConnectionGuard {
    /// The guard of a connection that leaves the network (no virtual port).
    pub(crate) fn leaving(slot: Arc<ConnectionSlot>) -> Self {
        ConnectionGuard { _slot: slot, _port: None }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
