//! Counters of one pool, updated without locks and read as a [`Snapshot`] by the metrics and
//! admin endpoints.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::pins::PinReason;

/// Upper bounds (seconds) of the checkout wait histogram's buckets; the last bucket is `+Inf`.
pub const WAIT_BUCKETS: [f64; 7] = [0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, f64::INFINITY];

/// Kinds of error a pool counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A backend connection could not be opened or logged in.
    Connect,
    /// A backend connection broke while in use.
    BackendBroken,
    /// A client waited longer than `checkout_timeout`.
    CheckoutTimeout,
    /// A session's state could not be replayed on a connection.
    Replay,
    /// A client sent what the protocol does not allow, or failed its handshake.
    ClientProtocol,
    /// A client was refused over `max_client_sessions`.
    TooManyClients,
    /// A client was closed, idle inside a transaction past `idle_transaction_timeout`.
    IdleTransaction,
    /// A client went away, or stopped reading (`client_write_timeout`), during a response.
    SlowClient,
}

impl ErrorKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::Connect,
        ErrorKind::BackendBroken,
        ErrorKind::CheckoutTimeout,
        ErrorKind::Replay,
        ErrorKind::ClientProtocol,
        ErrorKind::TooManyClients,
        ErrorKind::IdleTransaction,
        ErrorKind::SlowClient,
    ];

    /// Its name in metrics.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::BackendBroken => "backend_broken",
            ErrorKind::CheckoutTimeout => "checkout_timeout",
            ErrorKind::Replay => "replay",
            ErrorKind::ClientProtocol => "client_protocol",
            ErrorKind::TooManyClients => "too_many_clients",
            ErrorKind::IdleTransaction => "idle_transaction_timeout",
            ErrorKind::SlowClient => "client_gone_mid_response",
        }
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub struct Stats {
    clients: AtomicU64,
    clients_total: AtomicU64,
    checkouts: AtomicU64,
    wait_buckets: [AtomicU64; WAIT_BUCKETS.len()],
    wait_micros_total: AtomicU64,
    queries: AtomicU64,
    connects: AtomicU64,
    pins: [AtomicU64; PinReason::ALL.len()],
    errors: [AtomicU64; ErrorKind::ALL.len()],
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Client sessions open now.
    pub clients: u64,
    /// Client sessions ever accepted.
    pub clients_total: u64,
    /// Backend connections open now.
    pub backend_open: u64,
    /// Of those, idle in the pool.
    pub backend_idle: u64,
    /// Clients waiting for a connection now.
    pub waiting: u64,
    /// Checkouts served.
    pub checkouts: u64,
    /// Checkout waits per bucket of [`WAIT_BUCKETS`] (not cumulative).
    pub wait_buckets: [u64; WAIT_BUCKETS.len()],
    /// Total checkout wait, in seconds.
    pub wait_seconds_total: f64,
    /// Commands relayed to a backend.
    pub queries: u64,
    /// Backend connections opened.
    pub connects: u64,
    /// Pins by reason, in [`PinReason::ALL`] order.
    pub pins: [u64; PinReason::ALL.len()],
    /// Errors by kind, in [`ErrorKind::ALL`] order.
    pub errors: [u64; ErrorKind::ALL.len()],
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    /// A client session started.
    pub fn client_opened(&self) {
        add(&self.clients);
        add(&self.clients_total);
    }

    /// A client session ended.
    pub fn client_closed(&self) {
        self.clients.fetch_sub(1, Ordering::Relaxed);
    }

    /// A checkout was served after waiting `waited`.
    pub fn checkout(&self, waited: Duration) {
        add(&self.checkouts);
        let seconds = waited.as_secs_f64();
        let bucket =
            WAIT_BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(WAIT_BUCKETS.len() - 1);
        add(&self.wait_buckets[bucket]);
        self.wait_micros_total.fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
    }

    /// A command was relayed.
    pub fn query(&self) {
        add(&self.queries);
    }

    /// A backend connection was opened.
    pub fn connected(&self) {
        add(&self.connects);
    }

    /// A session was pinned for `reason`.
    pub fn pinned(&self, reason: PinReason) {
        add(&self.pins[PinReason::ALL.iter().position(|r| *r == reason).unwrap_or(0)]);
    }

    /// An error of `kind` happened.
    pub fn error(&self, kind: ErrorKind) {
        add(&self.errors[ErrorKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)]);
    }

    /// The counters now; the pool fills in its gauges.
    pub fn snapshot(&self, backend_open: u64, backend_idle: u64, waiting: u64) -> Snapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            clients: load(&self.clients),
            clients_total: load(&self.clients_total),
            backend_open,
            backend_idle,
            waiting,
            checkouts: load(&self.checkouts),
            wait_buckets: std::array::from_fn(|i| load(&self.wait_buckets[i])),
            wait_seconds_total: load(&self.wait_micros_total) as f64 / 1e6,
            queries: load(&self.queries),
            connects: load(&self.connects),
            pins: std::array::from_fn(|i| load(&self.pins[i])),
            errors: std::array::from_fn(|i| load(&self.errors[i])),
        }
    }
}

impl Snapshot {
    /// Pins counted for `reason`.
    pub fn pins_for(&self, reason: PinReason) -> u64 {
        PinReason::ALL.iter().position(|r| *r == reason).map_or(0, |i| self.pins[i])
    }

    /// Errors counted of `kind`.
    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        ErrorKind::ALL.iter().position(|k| *k == kind).map_or(0, |i| self.errors[i])
    }
}
