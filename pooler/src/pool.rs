//! A pool of backend connections for one (tenant, backend, user): at most `max_connections`
//! open, checked out in FIFO order by waiting sessions, each wait bounded by
//! `checkout_timeout`. An idle connection whose state already matches the session's is
//! preferred; one idle too long is pinged before use; broken or expired ones are replaced.
//!
//! ```text
//!   checkout ─► idle match? ─► take ─────────────────────────────► (ping if idle long)
//!            └► room to open? ─► open (count it first) ──────────►
//!            └► queue (FIFO) ─► a release hands its connection to the head, or timeout ─► ERR
//! ```
//!
//! Invariant: `open` counts every connection that exists or is being opened, and none is opened
//! while `open` is at the cap in force (`max_connections`, or what [`Pool::resize`] set since):
//! each is a [`Slot`] the connection holds, which gives itself back when dropped
//! (`pool/slot.rs`). After a shrink `open` may stay above the new cap until the connections in
//! use come back; each closes then instead of being reused. The lock is never held across an await, and no connection is
//! dropped under it.

mod slot;
mod upkeep;

pub(crate) use slot::Slot;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::backend::{BackendConn, BackendError, BackendSettings, Connector};
use crate::registry::{ClientRow, Registry, ServerRow};
use crate::state::SessionState;
use crate::stats::{ErrorKind, Snapshot, Stats};

/// How a pool behaves; the owner's config, already validated.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Names the pool in errors and metrics (`tenant/pool`).
    pub name: String,
    /// Backend login and packet limit.
    pub backend: BackendSettings,
    /// Backend connections at most, at start ([`Pool::resize`] changes it later).
    pub max_connections: usize,
    /// Idle connections kept open.
    pub min_idle: usize,
    /// An idle connection above `min_idle` is closed after this long.
    pub idle_timeout: Duration,
    /// A connection is closed (when idle) after this long.
    pub max_lifetime: Duration,
    /// How long a session waits for a connection.
    pub checkout_timeout: Duration,
    /// A connection idle longer than this is pinged before it is handed out.
    pub health_check_after: Duration,
}

/// Server settings a pool reads once and answers clients from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSettings {
    /// `@@max_allowed_packet`: the largest packet the server takes from a client.
    pub max_allowed_packet: u64,
    /// `@@wait_timeout` of a fresh session.
    pub wait_timeout: u64,
}

/// Why a checkout failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// Every connection stayed in use for the whole wait.
    #[error(
        "pool {pool} is exhausted: {in_use} of {max} backend connections in use, waited {waited_ms} ms \
         (checkout_timeout)"
    )]
    Timeout {
        /// The pool.
        pool: String,
        /// Connections in use.
        in_use: usize,
        /// The cap.
        max: usize,
        /// How long the session waited.
        waited_ms: u128,
    },
    /// No connection could be opened.
    #[error("pool {pool}: {error}")]
    Backend {
        /// The pool.
        pool: String,
        /// What failed.
        error: BackendError,
    },
}

struct Idle {
    conn: BackendConn,
    since: Instant,
}

struct Waiter {
    id: u64,
    found_rows: bool,
    tx: oneshot::Sender<Result<BackendConn, CheckoutError>>,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Idle>,
    open: usize,
    /// The cap in force: `config.max_connections` until [`Pool::resize`]. After a shrink `open`
    /// may exceed it until connections in use come back; none is opened or handed on meanwhile.
    max: usize,
    waiters: VecDeque<Waiter>,
    next_waiter: u64,
    closed: bool,
}

struct Shared {
    /// Why the last attempt to open a backend connection failed; `None` once one succeeds.
    backend_problem: Mutex<Option<String>>,
    /// The backend's version, learnt once (concurrent first callers wait for the one fetch).
    server_version: tokio::sync::OnceCell<String>,
    /// The server's settings clients ask about, once read.
    server_settings: tokio::sync::OnceCell<ServerSettings>,
    config: PoolConfig,
    connector: Arc<dyn Connector>,
    state: Mutex<PoolState>,
    stats: Stats,
    clients: Registry<ClientRow>,
    servers: Registry<ServerRow>,
}

/// A cheap handle on a pool.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("name", &self.shared.config.name).finish_non_exhaustive()
    }
}

enum Step {
    Take(BackendConn, Instant),
    Open(Slot),
    Replace(BackendConn),
    Wait(u64, oneshot::Receiver<Result<BackendConn, CheckoutError>>),
}

impl Pool {
    /// A pool reaching its backend through `connector`. Opens nothing yet (see
    /// [`Pool::maintain`] for `min_idle`).
    pub fn new(config: PoolConfig, connector: Arc<dyn Connector>) -> Pool {
        let max = config.max_connections;
        Pool {
            shared: Arc::new(Shared {
                backend_problem: Mutex::new(None),
                server_version: tokio::sync::OnceCell::new(),
                server_settings: tokio::sync::OnceCell::new(),
                config,
                connector,
                state: Mutex::new(PoolState { max, ..PoolState::default() }),
                stats: Stats::default(),
                clients: Registry::default(),
                servers: Registry::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.shared.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The pool's config.
    pub fn config(&self) -> &PoolConfig {
        &self.shared.config
    }

    /// The pool's counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Why the pool cannot reach its backend: the error of the last attempt to open a
    /// connection, until one succeeds (for readiness).
    pub fn backend_problem(&self) -> Option<String> {
        self.shared.backend_problem.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record_connect(&self, outcome: Result<(), &BackendError>) {
        *self.shared.backend_problem.lock().unwrap_or_else(|p| p.into_inner()) =
            outcome.err().map(|e| e.to_string());
    }

    /// The client sessions now (for `SHOW CLIENTS`).
    pub fn clients(&self) -> &Registry<ClientRow> {
        &self.shared.clients
    }

    /// The backend connections now (for `SHOW SERVERS`).
    pub fn servers(&self) -> &Registry<ServerRow> {
        &self.shared.servers
    }

    /// Counters and gauges now.
    pub fn snapshot(&self) -> Snapshot {
        let state = self.lock();
        self.shared.stats.snapshot(state.open as u64, state.idle.len() as u64, state.waiters.len() as u64)
    }

    /// The largest packet a client of this pool may send after login: the backend's
    /// `@@max_allowed_packet` (read once), within the configured cap. The configured cap if the
    /// server cannot be asked.
    pub async fn max_client_packet(&self) -> usize {
        let cap = self.shared.config.backend.max_packet;
        self.server_settings()
            .await
            .map_or(cap, |server| cap.min(usize::try_from(server.max_allowed_packet).unwrap_or(usize::MAX)))
    }

    /// The backend's settings that clients ask about, read once (`None` while the server cannot
    /// be asked).
    pub async fn server_settings(&self) -> Option<ServerSettings> {
        let read = self
            .shared
            .server_settings
            .get_or_try_init(|| async {
                let mut conn = self.checkout(false, None).await.map_err(|_| ())?;
                let settings = conn.read_server_settings().await;
                self.release(conn).await;
                settings.map_err(|_| ())
            })
            .await;
        read.ok().copied()
    }

    /// The backend's version string (learnt from the first connection; opens one if needed).
    pub async fn server_version(&self) -> Result<String, CheckoutError> {
        let version = self
            .shared
            .server_version
            .get_or_try_init(|| async {
                let conn = self.checkout(false, None).await?;
                let version = conn.server_version().to_owned();
                self.release(conn).await;
                Ok::<_, CheckoutError>(version)
            })
            .await?;
        Ok(version.clone())
    }

    /// A connection for a session that wants `found_rows` and (preferably) `state`.
    pub async fn checkout(
        &self,
        found_rows: bool,
        state: Option<&SessionState>,
    ) -> Result<BackendConn, CheckoutError> {
        let started = Instant::now();
        loop {
            let step = {
                let mut pool = self.lock();
                self.next_step(&mut pool, found_rows, state)
            };
            let conn = match step {
                Step::Take(mut conn, since) => {
                    // Closed while idle (a server restart, KILL): noticed without a round trip.
                    // Otherwise a ping, if it has been idle long enough to doubt it.
                    if conn.peer_closed_or_spoke()
                        || (since.elapsed() >= self.shared.config.health_check_after
                            && conn.ping().await.is_err())
                    {
                        self.shared.stats.error(ErrorKind::BackendBroken);
                        drop(conn);
                        continue;
                    }
                    conn.set_in_use(true);
                    conn
                }
                Step::Open(slot) => self.open(found_rows, slot).await?,
                Step::Replace(mut old) => {
                    // Its replacement is opened in its slot.
                    let slot = old.take_slot();
                    old.quit().await;
                    match slot {
                        Some(slot) => self.open(found_rows, slot).await?,
                        None => continue,
                    }
                }
                Step::Wait(id, rx) => self.wait(id, rx, started).await?,
            };
            self.shared.stats.checkout(started.elapsed());
            return Ok(conn);
        }
    }

    fn next_step(&self, pool: &mut PoolState, found_rows: bool, state: Option<&SessionState>) -> Step {
        if pool.waiters.is_empty() {
            let matching = |idle: &Idle| idle.conn.found_rows() == found_rows;
            let exact =
                state.and_then(|s| pool.idle.iter().rposition(|i| matching(i) && i.conn.state() == s));
            if let Some(at) = exact.or_else(|| pool.idle.iter().rposition(matching)) {
                let idle = pool.idle.remove(at);
                return Step::Take(idle.conn, idle.since);
            }
            if pool.open < pool.max {
                return Step::Open(Slot::take(pool, &self.shared));
            }
            if let Some(at) = pool.idle.iter().position(|i| !matching(i)) {
                return Step::Replace(pool.idle.remove(at).conn);
            }
        }
        let id = pool.next_waiter;
        pool.next_waiter += 1;
        let (tx, rx) = oneshot::channel();
        pool.waiters.push_back(Waiter { id, found_rows, tx });
        Step::Wait(id, rx)
    }

    /// Opens a backend connection and records the outcome (stats, readiness, the server's
    /// version, a log line on failure). The caller owns the slot in `open`.
    async fn connect(&self, found_rows: bool) -> Result<BackendConn, BackendError> {
        let shared = &self.shared;
        let opened =
            BackendConn::open(&*shared.connector, &shared.config.backend, found_rows, &shared.servers).await;
        match &opened {
            Ok(conn) => {
                shared.stats.connected();
                self.record_connect(Ok(()));
                let _ = shared.server_version.set(conn.server_version().to_owned());
            }
            Err(error) => {
                self.record_connect(Err(error));
                shared.stats.error(ErrorKind::Connect);
                tracing::warn!(pool = shared.config.name, "{error}");
            }
        }
        opened
    }

    /// Opens a connection in `slot`; on failure the slot is dropped (given back).
    async fn open(&self, found_rows: bool, slot: Slot) -> Result<BackendConn, CheckoutError> {
        match self.connect(found_rows).await {
            Ok(mut conn) => {
                conn.hold(slot);
                Ok(conn)
            }
            Err(error) => {
                drop(slot);
                Err(CheckoutError::Backend { pool: self.shared.config.name.clone(), error })
            }
        }
    }

    async fn wait(
        &self,
        id: u64,
        mut rx: oneshot::Receiver<Result<BackendConn, CheckoutError>>,
        started: Instant,
    ) -> Result<BackendConn, CheckoutError> {
        let remaining = self.shared.config.checkout_timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(remaining, &mut rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => {
                let removed = {
                    let mut pool = self.lock();
                    let before = pool.waiters.len();
                    pool.waiters.retain(|w| w.id != id);
                    before != pool.waiters.len()
                };
                if !removed && let Ok(result) = rx.try_recv() {
                    // Handed a connection just as the wait ran out: use it.
                    return result;
                }
                self.shared.stats.error(ErrorKind::CheckoutTimeout);
                let (in_use, max) = {
                    let pool = self.lock();
                    (pool.open - pool.idle.len(), pool.max)
                };
                Err(CheckoutError::Timeout {
                    pool: self.shared.config.name.clone(),
                    in_use,
                    max,
                    waited_ms: started.elapsed().as_millis(),
                })
            }
        }
    }

    /// A slot was dropped: it goes to an open for the head waiter if one waits, else back to the
    /// pool.
    fn slot_freed(&self) {
        let head_wants = {
            let mut pool = self.lock();
            // Past a shrunk cap the place is not passed on: the pool comes down to its new size.
            let head =
                pool.waiters.front().map(|w| w.found_rows).filter(|_| !pool.closed && pool.open <= pool.max);
            if head.is_none() {
                pool.open -= 1;
            }
            head
        };
        if let Some(found_rows) = head_wants {
            // The freed place passes on, still counted.
            self.open_for_waiter(found_rows, Slot::counted(&self.shared));
        }
    }

    /// Opens a connection in the background and hands it to the head waiter. If the open
    /// fails, that waiter gets the error and the next waiter gets an open of its own, so a
    /// backend that is down fails every waiter at once instead of leaving them to time out.
    fn open_for_waiter(&self, found_rows: bool, slot: Slot) {
        let pool = self.clone();
        tokio::spawn(async move {
            let (mut found_rows, mut slot) = (found_rows, slot);
            loop {
                match pool.connect(found_rows).await {
                    Ok(mut conn) => {
                        conn.hold(slot);
                        return pool.hand_over(conn).await;
                    }
                    Err(error) => {
                        let (waiter, next) = pool.give_back_slot(slot);
                        if let Some(waiter) = waiter {
                            let _ = waiter.tx.send(Err(CheckoutError::Backend {
                                pool: pool.shared.config.name.clone(),
                                error,
                            }));
                        }
                        match next {
                            Some(next) => (found_rows, slot) = next,
                            None => return,
                        }
                    }
                }
            }
        });
    }

    /// `slot`'s connection could not be opened: the head waiter, to be told, and the next
    /// waiter's open in the same slot, if one waits (else the slot is given back).
    fn give_back_slot(&self, slot: Slot) -> (Option<Waiter>, Option<(bool, Slot)>) {
        let mut state = self.lock();
        let waiter = state.waiters.pop_front();
        match state.waiters.front().map(|w| w.found_rows).filter(|_| !state.closed) {
            Some(found_rows) => (waiter, Some((found_rows, slot))),
            None => {
                slot.uncount(&mut state);
                (waiter, None)
            }
        }
    }

    /// Gives a healthy connection to the first waiter that still waits, else makes it idle.
    /// A waiter that wants the other `found_rows` gets a fresh connection in its place.
    async fn hand_over(&self, mut conn: BackendConn) {
        loop {
            let (waiter, closed) = {
                let mut pool = self.lock();
                // Past a shrunk cap this connection closes, and its place with it.
                let over = pool.open > pool.max;
                let waiter = if over { None } else { pool.waiters.pop_front() };
                if waiter.is_none() && !pool.closed && !over {
                    conn.set_in_use(false);
                    pool.idle.push(Idle { conn, since: Instant::now() });
                    return;
                }
                (waiter, pool.closed || over)
            };
            let Some(waiter) = waiter else {
                debug_assert!(closed);
                conn.quit().await; // its slot is given back
                return;
            };
            if waiter.found_rows != conn.found_rows() {
                // Replace this connection by one of the kind the waiter needs: its slot, given
                // back, goes to an open for the head waiter.
                self.lock().waiters.push_front(waiter);
                conn.quit().await;
                return;
            }
            conn.set_in_use(true);
            match waiter.tx.send(Ok(conn)) {
                Ok(()) => return,
                Err(Ok(back)) => conn = back, // that waiter gave up: try the next
                Err(Err(_)) => return,
            }
        }
    }

    /// Returns a connection after a session used it. A broken one is dropped, an expired or
    /// dirty one closed or reset; a healthy one goes to the first waiter or the idle list.
    pub async fn release(&self, mut conn: BackendConn) {
        if conn.is_broken() {
            drop(conn);
            return;
        }
        if conn.created().elapsed() >= self.shared.config.max_lifetime {
            self.discard(conn).await;
            return;
        }
        // A connection that fails any of these is dropped, and its slot with it.
        if conn.in_transaction() && conn.rollback().await.is_err() {
            return;
        }
        // Before anyone else can read them (`SHOW WARNINGS` on a connection a session holds).
        if conn.diagnostics_left() && conn.clear_diagnostics().await.is_err() {
            return;
        }
        if conn.is_dirty() {
            let initial = SessionState::initial(45, self.shared.config.backend.database.clone(), true);
            if conn.reset(initial).await.is_err() {
                return;
            }
        }
        self.hand_over(conn).await;
    }

    /// Closes a checked-out connection that cannot serve (again): one too old, or one that
    /// cannot serve its session; its slot goes to the head waiter.
    pub async fn discard(&self, conn: BackendConn) {
        conn.quit().await;
    }
}
