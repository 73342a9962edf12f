//! Listeners and their accept queues.
//!
//! A listener may be accepted from by several tasks on several threads at once, each through
//! an [`Acceptor`]: a connection made from a thread where an acceptor runs is queued for that
//! acceptor, so the task serving it runs on the thread its peer runs on (in-memory streams then
//! wake tasks on their own thread, as `SO_INCOMING_CPU` keeps a kernel socket on its CPU). A
//! connection made from any other thread is queued for whichever acceptor takes it first.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::ThreadId;

use crate::connection::Connection;
use crate::network::BoundPort;

#[derive(Debug)]
struct QueueState {
    /// Connections for any acceptor (made from a thread where none runs).
    pending: VecDeque<Connection>,
    /// Connections waiting, in all queues; at most `backlog`.
    waiting: usize,
    backlog: usize,
    closed: bool,
    /// The task accepting through [`Listener::accept`], if one waits.
    waker: Option<Waker>,
    /// The threads where acceptors run, with the connections made from each.
    locals: Vec<Local>,
}

/// The acceptors of one thread and the connections made from it.
#[derive(Debug)]
struct Local {
    thread: ThreadId,
    acceptors: usize,
    pending: VecDeque<Connection>,
    waker: Option<Waker>,
}

impl QueueState {
    fn local(&mut self, thread: ThreadId) -> Option<&mut Local> {
        self.locals.iter_mut().find(|local| local.thread == thread)
    }

    /// Wakes every task that may take a connection from the shared queue.
    fn wake_all(&mut self) {
        let wakers =
            self.waker.take().into_iter().chain(self.locals.iter_mut().filter_map(|l| l.waker.take()));
        wakers.for_each(Waker::wake);
    }

    /// The next connection for an acceptor on `thread` (its own first).
    fn pop_for(&mut self, thread: ThreadId) -> Option<Connection> {
        let own = self.local(thread).and_then(|local| local.pending.pop_front());
        let connection = own.or_else(|| self.pending.pop_front())?;
        self.waiting -= 1;
        Some(connection)
    }
}

/// Connections that completed but were not accepted yet, at most `backlog` of them.
#[derive(Debug)]
pub struct AcceptQueue(Mutex<QueueState>);

impl AcceptQueue {
    pub(crate) fn new(backlog: usize) -> Arc<Self> {
        Arc::new(AcceptQueue(Mutex::new(QueueState {
            pending: VecDeque::new(),
            waiting: 0,
            backlog,
            closed: false,
            waker: None,
            locals: Vec::new(),
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
            if s.closed || s.waiting >= s.backlog {
                Some(connection)
            } else {
                s.waiting += 1;
                match s.local(std::thread::current().id()) {
                    Some(local) => {
                        local.pending.push_back(connection);
                        if let Some(waker) = local.waker.take() {
                            waker.wake();
                        }
                    }
                    None => {
                        s.pending.push_back(connection);
                        s.wake_all();
                    }
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
            s.waiting = 0;
            let locals: Vec<Connection> =
                s.locals.iter_mut().flat_map(|l| std::mem::take(&mut l.pending)).collect();
            (std::mem::take(&mut s.pending), locals)
        };
        drop(pending);
    }

    /// Counts an acceptor on `thread`.
    fn register(&self, thread: ThreadId) {
        let mut s = self.state();
        match s.local(thread) {
            Some(local) => local.acceptors += 1,
            None => s.locals.push(Local { thread, acceptors: 1, pending: VecDeque::new(), waker: None }),
        }
    }

    /// An acceptor on `thread` is gone; the last one's connections go to the others.
    fn unregister(&self, thread: ThreadId) {
        let mut s = self.state();
        let Some(at) = s.locals.iter().position(|local| local.thread == thread) else { return };
        s.locals[at].acceptors -= 1;
        if s.locals[at].acceptors == 0 {
            let local = s.locals.swap_remove(at);
            let had = !local.pending.is_empty();
            s.pending.extend(local.pending);
            if had {
                s.wake_all();
            }
        }
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

    /// The next pending connection, if any, without waiting (one queued for an acceptor only
    /// once that acceptor is gone).
    pub fn try_accept(&self) -> Option<Connection> {
        let mut s = self.queue.state();
        let connection = s.pending.pop_front()?;
        s.waiting -= 1;
        Some(connection)
    }

    /// Ready with the next connection; one task at a time should poll a listener this way
    /// (tasks on several threads each use an [`Acceptor`]).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Connection> {
        let mut s = self.queue.state();
        match s.pending.pop_front() {
            Some(connection) => {
                s.waiting -= 1;
                Poll::Ready(connection)
            }
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// An acceptor for a task that accepts from this listener beside others on other threads.
    pub fn acceptor(&self) -> Acceptor {
        Acceptor { queue: self.queue.clone(), thread: None }
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
        self.queue.state().waiting
    }
}

/// One task's way to accept from a listener that tasks on other threads accept from too: it
/// takes the connections made from its own thread first, then any made from a thread where no
/// acceptor runs. It counts for the thread it is polled on; dropping it passes what was queued
/// for it (if it was its thread's last) to the other acceptors.
#[derive(Debug)]
pub struct Acceptor {
    queue: Arc<AcceptQueue>,
    thread: Option<ThreadId>,
}

impl Acceptor {
    /// Waits for the next connection for this acceptor.
    pub async fn accept(&mut self) -> Connection {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Ready with the next connection for this acceptor.
    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Connection> {
        let here = std::thread::current().id();
        if self.thread != Some(here) {
            // First poll, or the task moved to another thread.
            if let Some(was) = self.thread.replace(here) {
                self.queue.unregister(was);
            }
            self.queue.register(here);
        }
        let mut s = self.queue.state();
        if let Some(connection) = s.pop_for(here) {
            return Poll::Ready(connection);
        }
        if let Some(local) = s.local(here) {
            local.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        if let Some(thread) = self.thread {
            self.queue.unregister(thread);
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.queue.close();
    }
}

#[cfg(test)]
mod tests;
