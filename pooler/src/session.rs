//! One client session: reads the client's commands, gives each one a backend connection
//! (after bringing that connection to the session's tracked state), relays the response, and
//! decides whether to keep the connection — inside a transaction, while pinned, or for the
//! whole session in `session` mode — or to give it back to the pool.
//!
//! ```text
//!   command ─► local? (PING, QUIT, RESET_CONNECTION, CHANGE_USER, SET_OPTION, STMT_CLOSE, ...)
//!           └► acquire (held, or checkout + replay) ─► send ─► relay ─► track state, pins
//!                                                                  └► keep or release
//! ```
//!
//! Invariant: the session's [`SessionState`] equals the state of the connection it holds.

mod insert_id;
mod needs;
mod request;
mod setup_reads;
mod setup_sets;
mod starting_over;
mod statements;

use std::sync::Arc;

use mysql_common::constants::{CapabilityFlags, StatusFlags};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument;

use crate::backend::BackendConn;
use crate::client_error::{ClientError, ER_NOT_SUPPORTED_YET};
use crate::pins::{self, PinReason, Pins};
use crate::pool::Pool;
use crate::protocol::framing::{PacketConn, Sequence};
use crate::protocol::packets;
use crate::protocol::server_handshake::Client;
use crate::registry::{ClientRow, Entry};
use crate::relay::{self, Expect, Outcome, Sink};
use crate::state::SessionState;
use crate::stats::ErrorKind;
use insert_id::InsertId;
pub use insert_id::InsertIds;
use needs::Needs;
use request::Request;
pub use setup_sets::KnownSets;
use statements::{ClientStatements, LongData};

/// How sessions share backend connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// A connection is held only inside a transaction or while pinned.
    Transaction,
    /// A connection is held for the whole session, then reset and reused.
    Session,
}

/// What a session needs from its pooler.
#[derive(Debug, Clone)]
pub struct SessionContext {
    /// The pool.
    pub pool: Pool,
    /// How it is shared.
    pub mode: PoolMode,
    /// The password clients log in with (for `COM_CHANGE_USER`).
    pub password: Arc<[u8]>,
    /// Prepared statements kept per backend connection before the oldest is closed.
    pub max_prepared_per_connection: usize,
    /// The session's row in the pool's client list, if it is listed.
    pub listed: Option<Arc<Entry<ClientRow>>>,
    /// How long the client may take to finish a packet it has started.
    pub packet_timeout: std::time::Duration,
    /// The largest packet the client may send, and the most long data it may buffer for one
    /// execute (the backend's `max_allowed_packet`: the server would take no more).
    pub max_packet: usize,
    /// How long the client may stay idle inside a transaction (zero: as long as it likes).
    pub idle_transaction_timeout: std::time::Duration,
    /// How long a write to the client may make no progress.
    pub client_write_timeout: std::time::Duration,
    /// How the session's `LAST_INSERT_ID()` is learnt after an insert.
    pub insert_ids: InsertIds,
    /// The answers the pool learnt to drivers' set-up `SET`s (`session/setup_sets.rs`).
    pub known_sets: Arc<KnownSets>,
}

/// One client's session.
pub struct Session<S> {
    client: PacketConn<S>,
    ctx: SessionContext,
    caps: CapabilityFlags,
    user: String,
    nonce: [u8; 20],
    initial: SessionState,
    state: SessionState,
    held: Option<BackendConn>,
    pins: Pins,
    statements: ClientStatements,
    next_statement: u32,
    long_data: LongData,
    /// What the client list shows now (held connection, pins), so it is rewritten only on change.
    listed_as: (Option<u32>, Pins),
    /// The session's `LAST_INSERT_ID()`.
    insert_id: InsertId,
    /// A statement left warnings or an error that the diagnostics area still holds: the
    /// connection is kept until a statement that names a table empties the area, so that the
    /// session's `SHOW WARNINGS` sees its own (a statement that finds no held connection sees
    /// an emptied list, never another session's).
    warnings_held: bool,
    /// The connection in use was checked out for the current command (not held from before).
    checked_out_now: bool,
    /// The client failed or stopped reading during a response: the session ends.
    client_lost: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// A session for a client that passed the handshake.
    pub fn new(client: PacketConn<S>, hello: Client, ctx: SessionContext) -> Self {
        let database = hello.database.clone().or_else(|| ctx.pool.config().backend.database.clone());
        let multi = hello.caps.contains(CapabilityFlags::CLIENT_MULTI_STATEMENTS);
        let initial = SessionState::initial(hello.collation, database, multi);
        Session {
            client,
            caps: hello.caps,
            user: hello.user,
            nonce: hello.nonce,
            state: initial.clone(),
            initial,
            held: None,
            pins: Pins::default(),
            statements: ClientStatements::default(),
            next_statement: 1,
            long_data: LongData::default(),
            listed_as: (None, Pins::default()),
            insert_id: InsertId::new(ctx.insert_ids),
            warnings_held: false,
            checked_out_now: false,
            client_lost: false,
            ctx,
        }
    }

    /// Shows what the session holds and why in the pool's client list.
    fn update_listing(&mut self) {
        let now = (self.held.as_ref().map(BackendConn::connection_id), self.pins);
        if now == self.listed_as {
            return;
        }
        self.listed_as = now;
        if let Some(entry) = &self.ctx.listed {
            let holding = now.0;
            let pinned: Vec<&str> = self.pins.iter().map(PinReason::name).collect();
            entry.update(|row| {
                row.holding = holding;
                row.pinned = pinned.join(",");
            });
        }
    }

    fn found_rows(&self) -> bool {
        self.caps.contains(CapabilityFlags::CLIENT_FOUND_ROWS)
    }

    /// Serves commands until the client quits or goes away, then gives back (rolled back or
    /// reset as needed) whatever connection the session held.
    pub async fn run(mut self) {
        loop {
            let mut seq = Sequence::new();
            // Idle between commands for as long as the client likes, unless it holds a
            // transaction open; then the whole packet.
            if !self.wait_for_command(&mut seq).await {
                break;
            }
            let timeout = self.ctx.packet_timeout;
            let Ok(read) = tokio::time::timeout(timeout, self.client.read_packet(&mut seq)).await else {
                self.ctx.pool.stats().error(ErrorKind::ClientProtocol);
                let error = ClientError::read_interrupted(timeout);
                tracing::info!(pool = self.ctx.pool.config().name, "{error}");
                self.fail(&mut seq, &error).await;
                break;
            };
            let payload = match read {
                Ok(Some(payload)) => payload,
                Ok(None) => break,
                Err(error) => {
                    tracing::debug!(pool = self.ctx.pool.config().name, "client connection ended: {error}");
                    if !matches!(error, crate::protocol::framing::FrameError::Io(_)) {
                        self.ctx.pool.stats().error(ErrorKind::ClientProtocol);
                        self.fail(&mut seq, &ClientError::malformed(format!("bad packet: {error}"))).await;
                    }
                    break;
                }
            };
            self.client.shrink_input();
            if !self.command(&payload, &mut seq).await {
                break;
            }
            self.update_listing();
        }
        self.end().await;
    }

    /// Waits for the client's next command: false if the client went away, or stayed idle
    /// inside a transaction past `idle_transaction_timeout` (then it is rolled back when the
    /// connection is released, and the client told why).
    async fn wait_for_command(&mut self, seq: &mut Sequence) -> bool {
        let limit = self.ctx.idle_transaction_timeout;
        let in_transaction = self.held.as_ref().is_some_and(BackendConn::in_transaction);
        if !in_transaction || limit.is_zero() {
            return matches!(self.client.wait_for_input().await, Ok(true));
        }
        self.list_idle_in_transaction(Some(std::time::Instant::now()));
        let waited = tokio::time::timeout(limit, self.client.wait_for_input()).await;
        self.list_idle_in_transaction(None);
        match waited {
            Ok(input) => matches!(input, Ok(true)),
            Err(_) => {
                self.ctx.pool.stats().error(ErrorKind::IdleTransaction);
                let error = ClientError::idle_in_transaction(limit);
                tracing::info!(pool = self.ctx.pool.config().name, "{error}");
                self.fail(seq, &error).await;
                false
            }
        }
    }

    /// Shows in the client list since when the session has been idle inside a transaction.
    fn list_idle_in_transaction(&self, since: Option<std::time::Instant>) {
        if let Some(entry) = &self.ctx.listed {
            entry.update(|row| row.idle_in_transaction_since = since);
        }
    }

    /// Handles one command, in a `pool.query` span; false when the session is over.
    async fn command(&mut self, payload: &[u8], seq: &mut Sequence) -> bool {
        let request = match Request::parse(payload) {
            Ok(request) => request,
            Err(error) => {
                self.fail(seq, &error).await;
                return true;
            }
        };
        let statement = match request {
            Request::Query { sql } => leading_keyword(sql),
            _ => "",
        };
        let span = tracing::info_span!("pool.query", command = request.name(), statement);
        self.dispatch(request, payload, seq).instrument(span).await
    }

    /// Handles `request` (parsed from `payload`); false when the session is over.
    async fn dispatch(&mut self, request: Request<'_>, payload: &[u8], seq: &mut Sequence) -> bool {
        match request {
            Request::Quit => return false,
            Request::Ping => self.reply_ok(seq).await,
            Request::Query { sql } => self.query(sql, payload, seq).await,
            Request::InitDb { schema } => {
                if let Some(outcome) = self.forward(payload, seq, Expect::Ok, None, Needs::default()).await
                    && outcome.error.is_none()
                    && outcome.changes.schema.is_none()
                {
                    // A server that did not report it: the schema is what was asked for.
                    let schema = String::from_utf8_lossy(schema).into_owned();
                    self.state.set_schema(schema.clone());
                    if let Some(conn) = &mut self.held {
                        conn.set_schema(schema);
                    }
                }
            }
            Request::FieldList => {
                self.forward(payload, seq, Expect::FieldList, None, Needs::default()).await;
            }
            Request::Statistics => {
                self.forward(payload, seq, Expect::Single, None, Needs::default()).await;
            }
            Request::Prepare { sql } => self.prepare(sql, payload, seq).await,
            Request::Execute { id, flags } => self.execute(id, flags, payload, seq).await,
            Request::CloseStatement { id } => self.close_statement(id),
            Request::SendLongData { id } => self.send_long_data(id, payload),
            Request::ResetStatement { id } => self.reset_statement(id, seq).await,
            Request::SetOption { multi_statements } => self.set_option(multi_statements, seq).await,
            Request::ResetConnection => {
                self.reset().await;
                self.reply_ok(seq).await;
            }
            Request::ChangeUser(change) => self.change_user(change, seq).await,
            Request::Discard => {}
        }
        !self.client_lost
    }

    /// Tells the client why its command failed.
    async fn fail(&mut self, seq: &mut Sequence, error: &ClientError) {
        let _ = self.client.send(seq, &error.packet()).await;
    }

    async fn reply_ok(&mut self, seq: &mut Sequence) {
        let status = self.status();
        let _ = self.client.send(seq, &packets::ok(status, self.caps)).await;
    }

    /// The status the client should see: that of the held connection, else idle autocommit.
    fn status(&self) -> StatusFlags {
        match &self.held {
            Some(conn) => conn.status() - StatusFlags::SERVER_MORE_RESULTS_EXISTS,
            None if self.state.var("autocommit").is_some_and(|v| v.eq_ignore_ascii_case("OFF")) => {
                StatusFlags::empty()
            }
            None => StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        }
    }

    /// Scans statement text as this session's `sql_mode` has the server read it.
    fn scan(&self, sql: &[u8]) -> pins::Scan {
        pins::scan(sql, self.state.var("sql_mode"))
    }

    async fn query(&mut self, sql: &[u8], payload: &[u8], seq: &mut Sequence) {
        if self.answer_setup_reads(sql, seq).await || self.answer_setup_statement(sql, seq).await {
            return;
        }
        let scan = self.scan(sql);
        if scan.kills {
            let message = "KILL is not supported through the pooler: the connection ids a client sees are \
                           the pool's backend connections, which other clients' statements run on";
            self.fail(seq, &ClientError::new(ER_NOT_SUPPORTED_YET, *b"42000", message)).await;
            return;
        }
        self.pin_before(&scan);
        let Some(outcome) = self.forward(payload, seq, Expect::Results, None, Needs::of(&scan)).await else {
            return;
        };
        if scan.is_set {
            self.learn_setup_statement(sql, &outcome);
        }
        self.pin_after(&scan, &outcome, false);
        self.settle().await;
    }

    /// Pins for what a statement's text shows, before it runs: a statement that pins must not
    /// lose its connection on the way.
    fn pin_before(&mut self, scan: &pins::Scan) {
        let new = self.pins.union(scan.pins);
        for reason in new.iter() {
            self.ctx.pool.stats().pinned(reason);
        }
    }

    /// Pins for what the server reported a statement did: a `SET` whose effect tracking did
    /// not name, or any session state change that the statement's text does not explain as a
    /// tracked variable or schema (fail closed: multi-statements, `EXECUTE`, anything else).
    /// `switched_back`: a binary execute ran in the schema its statement was prepared in, and
    /// the server reported the session's own schema on the way back — no change at all.
    fn pin_after(&mut self, scan: &pins::Scan, outcome: &Outcome, switched_back: bool) {
        if scan.unlocks_tables {
            self.pins.remove(PinReason::LockTables);
        }
        let tracked = !outcome.changes.vars.is_empty() || outcome.changes.schema.is_some();
        let pinned_for_it = !scan.pins.is_empty();
        let explained = pinned_for_it || switched_back || (tracked && scan.changes_only_tracked_state);
        if scan.is_set && outcome.error.is_none() && !tracked && !pinned_for_it {
            self.pin(PinReason::UntrackedSet);
        } else if outcome.changes.state_changed && !explained {
            self.pin(PinReason::UntrackedState);
        }
    }

    fn pin(&mut self, reason: PinReason) {
        if !self.pins.contains(reason) {
            self.pins.insert(reason);
            self.ctx.pool.stats().pinned(reason);
        }
    }

    /// A connection for the next command: the held one, or a checked-out one brought to the
    /// session's state. On failure the client has been told why.
    async fn acquire(&mut self, seq: &mut Sequence) -> Option<BackendConn> {
        if let Some(conn) = self.held.take() {
            self.checked_out_now = false;
            return Some(conn);
        }
        self.checked_out_now = true;
        let mut conn = loop {
            let checkout = self.ctx.pool.checkout(self.found_rows(), Some(&self.state));
            let span = tracing::info_span!("pool.checkout", pool = self.ctx.pool.config().name);
            match checkout.instrument(span).await {
                // No statement takes a connection back to no schema: a session without one
                // never gets the schema another session chose (the pool opens a fresh one).
                Ok(conn) if self.state.schema().is_none() && conn.state().schema().is_some() => {
                    self.ctx.pool.discard(conn).await;
                }
                Ok(conn) => break conn,
                Err(error) => {
                    self.fail(seq, &ClientError::from(&error)).await;
                    return None;
                }
            }
        };
        if let Err(error) = conn.replay(&self.state).await {
            self.ctx.pool.stats().error(ErrorKind::Replay);
            tracing::warn!(pool = self.ctx.pool.config().name, "{error}");
            conn.mark_dirty();
            self.ctx.pool.release(conn).await;
            self.fail(seq, &ClientError::lost_backend(&self.ctx.pool.config().name, &error)).await;
            return None;
        }
        Some(conn)
    }

    /// Sends `payload` on a connection and relays its response; keeps or releases the
    /// connection. `None` if the command did not reach a backend or the backend broke.
    /// `needs`: what the statement needs of the connection (see [`Self::relay_on`]).
    async fn forward(
        &mut self,
        payload: &[u8],
        seq: &mut Sequence,
        expect: Expect,
        stmt_id: Option<u32>,
        needs: Needs,
    ) -> Option<Outcome> {
        let mut conn = self.acquire(seq).await?;
        let outcome = self.relay_on(&mut conn, payload, seq, expect, stmt_id, needs).await;
        self.held = Some(conn);
        if outcome.is_none() {
            self.lose_connection().await;
        } else {
            self.settle().await;
        }
        outcome
    }

    /// Sends `payload` on `conn` and relays the response to the client, following the state
    /// it reports. `None` if the backend broke (the client has been sent an ERR).
    ///
    /// `needs`: what `conn` must be brought to first (the session's `LAST_INSERT_ID()`, see
    /// `session/insert_id.rs`; no other session's warnings).
    async fn relay_on(
        &mut self,
        conn: &mut BackendConn,
        payload: &[u8],
        seq: &mut Sequence,
        expect: Expect,
        stmt_id: Option<u32>,
        needs: Needs,
    ) -> Option<Outcome> {
        if let Err(error) = self.ready(conn, needs).await {
            tracing::warn!(pool = self.ctx.pool.config().name, "{error}");
            self.fail(seq, &ClientError::lost_backend(&self.ctx.pool.config().name, &error)).await;
            return None;
        }
        self.ctx.pool.stats().query();
        let mut backend_seq = Sequence::new();
        let caps = conn.caps();
        let status = conn.status();
        let read_insert_id_behind = self.reads_insert_id_behind(needs);
        let result = async {
            if read_insert_id_behind {
                conn.send_with_insert_id_read(&mut backend_seq, payload).await?;
            } else {
                conn.packets().send(&mut backend_seq, payload).await?;
            }
            let write_timeout = self.ctx.client_write_timeout;
            let mut sink =
                Sink::Client { conn: &mut self.client, seq, caps: self.caps, stmt_id, write_timeout };
            relay::relay(conn.packets(), &mut backend_seq, caps, &mut sink, expect, status).await
        }
        .await;
        let result = match result {
            Ok(outcome) if read_insert_id_behind => match conn.read_insert_id_behind().await {
                Ok(value) => Ok((outcome, Some(value))),
                // The client has its whole response: it is not told of a failure after it. The
                // connection is marked broken (the pool drops it); the id is read from it in
                // vain when the session lets it go, and logged as lost, as without the read.
                Err(error) => {
                    tracing::warn!(pool = self.ctx.pool.config().name, "{error}");
                    Ok((outcome, None))
                }
            },
            Ok(outcome) => Ok((outcome, None)),
            Err(error) => Err(conn.broke(error)),
        };
        match result {
            Ok((mut outcome, insert_id_read)) => {
                if outcome.client_gone {
                    // Gone, or not reading: the response was drained, the connection is fine.
                    self.client_lost = true;
                    self.ctx.pool.stats().error(ErrorKind::SlowClient);
                    tracing::info!(
                        pool = self.ctx.pool.config().name,
                        "the client stopped taking its response (client_write_timeout {:?}, or gone); closed",
                        self.ctx.client_write_timeout
                    );
                }
                if needs.scoped_variables {
                    // Restored by the server after the statement, without a report.
                    outcome.changes.vars.clear();
                }
                match insert_id_read {
                    Some(value) => self.insert_id.ran_and_read(outcome.insert_id, value),
                    None if self.insert_id.ran(needs.insert_id, outcome.insert_id) => conn.forget_insert_id(),
                    None => {}
                }
                // An error is in the diagnostics area too (`SHOW WARNINGS` after it shows it),
                // and the area outlives statements that name no table.
                self.warnings_held = outcome.warnings > 0
                    || outcome.error.is_some()
                    || (self.warnings_held && !needs.clears_diagnostics);
                let applied = conn.absorb(&outcome);
                self.state.apply(&outcome.changes);
                if applied.untrackable {
                    self.pin(PinReason::UntrackedSet);
                }
                Some(outcome)
            }
            Err(error) => {
                self.ctx.pool.stats().error(ErrorKind::BackendBroken);
                tracing::warn!(pool = self.ctx.pool.config().name, "{error}");
                self.fail(seq, &ClientError::lost_backend(&self.ctx.pool.config().name, &error)).await;
                None
            }
        }
    }

    /// After a command: keeps the connection if the session needs it, else gives it back.
    async fn settle(&mut self) {
        let keep = self.ctx.mode == PoolMode::Session
            || !self.pins.is_empty()
            || self.warnings_held
            || self.held.as_ref().is_some_and(|c| c.in_transaction());
        if !keep && let Some(mut conn) = self.held.take() {
            if let Some(pending) = self.insert_id.take_pending() {
                match conn.read_insert_id().await {
                    Ok(value) => self.insert_id.read(&pending, value),
                    Err(error) => tracing::warn!(
                        pool = self.ctx.pool.config().name,
                        "this session's LAST_INSERT_ID() is lost with its connection: {error}"
                    ),
                }
            }
            self.ctx.pool.release(conn).await;
        }
    }

    /// The held connection broke: what lived on it (transaction, pins, statements) is gone.
    async fn lose_connection(&mut self) {
        if let Some(conn) = self.held.take() {
            self.ctx.pool.release(conn).await;
        }
        self.pins = Pins::default();
        self.insert_id.forget_pending();
        self.warnings_held = false;
    }
}

/// The first word of a statement (`SELECT`, `insert`, ...; at most 16 letters), for traces:
/// never more of the text, which may carry secrets (`IDENTIFIED BY ...`).
fn leading_keyword(sql: &[u8]) -> &str {
    let start = sql.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(sql.len());
    let word = &sql[start..];
    let end = word.iter().position(|b| !b.is_ascii_alphabetic()).unwrap_or(word.len()).min(16);
    std::str::from_utf8(&word[..end]).unwrap_or_default()
}
