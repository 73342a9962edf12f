//! Dialing a declared real target through a workload's egress gate: the one way a host-side
//! service (a forward, a pool's backend connections) reaches a real server.
//!
//! The target (`scheme://host:port`) is decided by the workload's policy; a name is resolved
//! (and bound to its answers); every address is decided again, under the same scheme, and the
//! connection is made only to addresses that passed, tried in the resolver's order, each within
//! the connect timeout; TLS is originated when asked (SNI and verification against the server
//! name), its handshake also bounded by the connect timeout.
//!
//! The host's own loopback (in any address form) is reached only when the config names it: the
//! target is a loopback address, `localhost`, or a name with a fixed answer in `dns.hosts`. A name
//! that DNS answers with a loopback address is refused, so whoever controls a zone cannot turn a
//! declared forward or pool backend towards the host's own listeners.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use switchyard_policy::{Denied, Target, TargetHost, is_loopback};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::dns::DnsError;
use crate::egress::{Egress, EgressError};
use crate::tls::{TlsClient, TlsError};

/// TLS to originate on a dialed connection.
#[derive(Debug, Clone)]
pub struct DialTls {
    /// Whom to trust.
    pub client: TlsClient,
    /// The name sent as SNI and verified in the certificate.
    pub server_name: String,
}

/// Why a target was not reached.
#[derive(Debug, Error)]
pub enum DialError {
    /// The policy denies the target or one of its addresses (the reason names the entry to add).
    #[error("{0}")]
    Denied(Box<Denied>),
    /// The name did not resolve.
    #[error("{0}")]
    Resolve(DnsError),
    /// DNS answered a name with a loopback address, which the config did not name.
    #[error(
        "{target} resolved to {addr}, a loopback address of this host; a forward or pool backend \
         reaches the host's loopback only when the config names it (`127.0.0.1`, `localhost`, or a `dns.hosts` answer)"
    )]
    LoopbackNotDeclared {
        /// The target.
        target: Target,
        /// The loopback address DNS answered.
        addr: IpAddr,
    },
    /// Every resolved address was denied (none was tried).
    #[error("no resolved address of {target} is allowed")]
    NoAllowedAddress {
        /// The target.
        target: Target,
    },
    /// Every allowed address failed to connect; the last error.
    #[error("{0}")]
    Connect(EgressError),
    /// The TLS handshake failed.
    #[error("{0}")]
    Tls(TlsError),
    /// The server accepted the connection but did not finish the TLS handshake in time.
    #[error("{addr} accepted the connection but did not finish the TLS handshake within {timeout:?}")]
    TlsTimeout {
        /// The address connected to.
        addr: SocketAddr,
        /// The time allowed (the connect timeout).
        timeout: Duration,
    },
}

/// A dialed connection, plain or TLS.
#[derive(Debug)]
pub enum Dialed {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

/// Dials `target` for `component` of `egress`'s workload.
pub async fn dial(
    egress: &Egress,
    component: &str,
    target: &Target,
    tls: Option<&DialTls>,
    connect_timeout: Duration,
) -> Result<Dialed, DialError> {
    egress.check(component, target).map_err(|denied| DialError::Denied(Box::new(denied)))?;
    let (addrs, loopback_declared) = match target.host() {
        TargetHost::Addr(ip) => (vec![*ip], true),
        TargetHost::Name(name) => {
            let answer = egress.resolve(name).await.map_err(DialError::Resolve)?;
            (answer.addrs, answer.fixed || name.as_str() == "localhost")
        }
    };
    let mut last: Option<DialError> = None;
    for ip in addrs {
        if is_loopback(ip) && !loopback_declared {
            last.get_or_insert(DialError::LoopbackNotDeclared { target: target.clone(), addr: ip });
            continue;
        }
        let addr = SocketAddr::new(ip, target.port());
        let per_address = Target::new(target.scheme().clone(), TargetHost::Addr(ip), target.port());
        if let Err(denied) = egress.check(component, &per_address) {
            last.get_or_insert(DialError::Denied(Box::new(denied)));
            continue;
        }
        match egress.connect_within(addr, connect_timeout).await {
            Ok(stream) => {
                return match tls {
                    None => Ok(Dialed::Plain(stream)),
                    // A server that accepts and then says nothing must not hold the dial forever.
                    Some(tls) => match tokio::time::timeout(
                        connect_timeout,
                        tls.client.connect(&tls.server_name, stream),
                    )
                    .await
                    {
                        Ok(connected) => connected.map(|s| Dialed::Tls(Box::new(s))).map_err(DialError::Tls),
                        Err(_) => Err(DialError::TlsTimeout { addr, timeout: connect_timeout }),
                    },
                };
            }
            Err(e) => last = Some(DialError::Connect(e)),
        }
    }
    Err(last.unwrap_or_else(|| DialError::NoAllowedAddress { target: target.clone() }))
}

impl AsyncRead for Dialed {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Dialed::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Dialed::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Dialed {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Dialed::Plain(s) => Pin::new(s).poll_write(cx, data),
            Dialed::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Dialed::Plain(s) => Pin::new(s).poll_flush(cx),
            Dialed::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Dialed::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Dialed::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
