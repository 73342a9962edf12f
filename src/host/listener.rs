//! What every HTTP listener of the host (ingress, admin) shares, so that anonymous clients hold
//! little and not for long (THREATS.md invariant 2):
//!
//! - at most [`MAX_CONNECTIONS`] connections at once per listener; past it new connections wait
//!   in the kernel's accept queue;
//! - an accept that fails (`EMFILE` when the process is out of file descriptors) is retried after
//!   a pause, not in a busy loop, and logged once per pause;
//! - request headers must arrive within [`HEADER_READ_TIMEOUT`] — also between requests on a
//!   kept-alive connection, so an idle connection is closed after that long — and fit in
//!   [`MAX_HEADER_BYTES`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections open at once on one listener.
pub const MAX_CONNECTIONS: usize = 4096;
/// The longest a client may take to send a request's headers, or stay idle between requests.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a request's headers may take (hyper's read buffer).
pub const MAX_HEADER_BYTES: usize = 64 << 10;
/// The pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A listener that hands out connections with a permit each (at most [`MAX_CONNECTIONS`]).
pub struct Listener {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    what: &'static str,
}

impl Listener {
    /// `listener`, named `what` in logs (`ingress`, `admin`).
    pub fn new(listener: TcpListener, what: &'static str) -> Self {
        Listener { listener, permits: Arc::new(Semaphore::new(MAX_CONNECTIONS)), what }
    }

    /// The next connection and its permit; the connection counts until the permit drops.
    pub async fn accept(&self) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
        let permit = match self.permits.clone().acquire_owned().await {
            Ok(permit) => permit,
            // The semaphore is never closed.
            Err(_) => unreachable!("listener permits closed"),
        };
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => return (stream, peer, permit),
                Err(e) => {
                    tracing::warn!(
                        listener = self.what,
                        "accept failed: {e}; retrying in {ACCEPT_BACKOFF:?}"
                    );
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

/// An HTTP/1 server builder with the header time-out and size cap.
pub fn http1_server() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT).max_buf_size(MAX_HEADER_BYTES);
    builder
}
