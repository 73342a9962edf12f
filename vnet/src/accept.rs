//! Listeners and their accept queues.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::connection::Connection;
use crate::network::BoundPort;

#[derive(Debug)]
struct QueueState {
    pending: VecDeque<Connection>,
    backlog: usize,
    closed: bool,
    waker: Option<Waker>,
}

/// Connections that completed but were not accepted yet, at most `backlog` of them.
#[derive(Debug)]
pub struct AcceptQueue(Mutex<QueueState>);

impl AcceptQueue {
    pub(crate) fn new(backlog: usize) -> Arc<Self> {
        Arc::new(AcceptQueue(Mutex::new(QueueState {
            pending: VecDeque::new(),
            backlog,
            closed: false,
            waker: None,
        })))
    }

    fn state(&self) -> MutexGuard<'_, QueueState> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a connection for accept; `false` if the backlog is full or the listener closed
    /// (the connection is then dropped, outside the queue's lock).
    pub(crate) fn push(&self, connection: Connection) -> bool {
        let rejected = {
            let mut s = self.state();
            if s.closed || s.pending.len() >= s.backlog {
                Some(connection)
            } else {
                s.pending.push_back(connection);
                if let Some(waker) = s.waker.take() {
                    waker.wake();
                }
                None
            }
        };
        rejected.is_none()
    }

    /// Drops every pending connection (their peers see EOF) and refuses new ones.
    pub(crate) fn close(&self) {
        let pending = {
            let mut s = self.state();
            s.closed = true;
            std::mem::take(&mut s.pending)
        };
        drop(pending);
    }
}

/// A listening virtual address. Dropping it refuses new connects, drops the pending ones and
/// frees the address at once.
#[derive(Debug)]
pub struct Listener {
    queue: Arc<AcceptQueue>,
    bound: BoundPort,
}

impl Listener {
    pub(crate) fn new(bound: BoundPort, queue: Arc<AcceptQueue>) -> Self {
        Listener { queue, bound }
    }

    /// The listening address.
    pub fn local_addr(&self) -> SocketAddr {
        self.bound.local_addr()
    }

    /// The next pending connection, if any, without waiting.
    pub fn try_accept(&self) -> Option<Connection> {
        self.queue.state().pending.pop_front()
    }

    /// Ready with the next connection; one task at a time should poll a listener.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Connection> {
        let mut s = self.queue.state();
        match s.pending.pop_front() {
            Some(connection) => Poll::Ready(connection),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> Connection {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Changes the backlog (capped by the network's `max_backlog`, at least 1); connections
    /// already queued beyond it stay queued.
    pub fn set_backlog(&self, backlog: usize) {
        self.queue.state().backlog = backlog.clamp(1, self.bound.max_backlog());
    }

    /// Connections waiting to be accepted.
    pub fn pending(&self) -> usize {
        self.queue.state().pending.len()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.queue.close();
    }
}
