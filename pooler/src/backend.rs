//! One backend connection: its packet stream, what it negotiated, its tracked session state,
//! the prepared statements it holds, and the pooler's own commands on it (setup, state replay,
//! rollback, reset, ping; what no tracking reports is in `backend/untracked.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_common::constants::{CapabilityFlags, Command, StatusFlags};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::pool::Slot;
use crate::protocol::client_handshake::{self, Login, LoginError};
use crate::protocol::framing::{PacketConn, Sequence};
use crate::registry::{Entry, Registry, ServerRow};
use crate::relay::{self, Expect, Outcome, Prepared, RelayError, Sink};
use crate::state::{ParseContext, Replay, SessionState};

mod untracked;

/// A byte stream to a backend server.
pub trait BackendStream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> BackendStream for T {}

/// A boxed backend stream.
pub type BoxedStream = Box<dyn BackendStream>;

/// The future a [`Connector`] returns.
pub type ConnectFuture<'a> = Pin<Box<dyn Future<Output = std::io::Result<BoxedStream>> + Send + 'a>>;

/// How a pool reaches its backend. Given by the pool's owner, so that every backend connection
/// passes the owner's checks (Switchyard's: the tenant's egress policy, DNS, TLS).
pub trait Connector: Send + Sync + 'static {
    /// Opens a new stream to the backend.
    fn connect(&self) -> ConnectFuture<'_>;
    /// The backend's address, for messages.
    fn describe(&self) -> String;
}

/// Session tracking the pooler turns on for every backend connection.
const SETUP: &str = "SET SESSION session_track_system_variables = '*', session_track_schema = ON, \
                     session_track_state_change = ON";

/// Why a backend connection could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The connector failed.
    #[error("cannot connect to {backend}: {error}")]
    Connect {
        /// The backend's address.
        backend: String,
        /// What failed.
        error: std::io::Error,
    },
    /// The login failed.
    #[error("cannot log in to {backend}: {error}")]
    Login {
        /// The backend's address.
        backend: String,
        /// What failed.
        error: LoginError,
    },
    /// A command of the pooler's own failed on the server.
    #[error("{what} failed on {backend}: error {code}: {message}")]
    Command {
        /// What the pooler was doing.
        what: &'static str,
        /// The backend's address.
        backend: String,
        /// The server's error code.
        code: u16,
        /// Its message.
        message: String,
    },
    /// The TLS handshake with the server failed.
    #[error("TLS with {backend} failed: {message}")]
    Tls {
        /// The backend's address.
        backend: String,
        /// What failed (certificate, name, protocol).
        message: String,
    },
    /// Opening the connection took longer than `connect_timeout`.
    #[error("{backend} did not finish connecting and logging in within {timeout:?}")]
    Timeout {
        /// The backend's address.
        backend: String,
        /// The time allowed.
        timeout: Duration,
    },
    /// The connection broke.
    #[error("connection to {backend} broke: {error}")]
    Broken {
        /// The backend's address.
        backend: String,
        /// What failed.
        error: RelayError,
    },
}

/// What a pool opens connections with.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    /// User name.
    pub user: String,
    /// Password.
    pub password: Vec<u8>,
    /// Default schema.
    pub database: Option<String>,
    /// Largest packet accepted from the server.
    pub max_packet: usize,
    /// Opening a connection — connect, login, turning on session tracking — must finish
    /// within this; a server that accepts and then says nothing costs no more.
    pub connect_timeout: Duration,
    /// TLS to the server (MySQL's `SSLRequest`, then the login over TLS), if wanted.
    pub tls: Option<BackendTls>,
}

/// TLS to a backend: whom to trust, and the name its certificate must carry.
#[derive(Clone)]
pub struct BackendTls {
    /// The rustls connector (its roots decide whom to trust).
    pub connector: tokio_rustls::TlsConnector,
    /// The name sent as SNI and verified in the certificate.
    pub server_name: String,
}

impl std::fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendTls").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

/// One logged-in backend connection.
pub struct BackendConn {
    conn: PacketConn<BoxedStream>,
    backend: Arc<str>,
    caps: CapabilityFlags,
    server_version: String,
    connection_id: u32,
    status: StatusFlags,
    state: SessionState,
    /// Server-side statements by text, each with the context the server bound it to.
    statements: HashMap<Arc<[u8]>, (Prepared, ParseContext)>,
    /// What `LAST_INSERT_ID()` returns here, when known (`None`: a statement may have changed
    /// it since it was last read or set).
    insert_id: Option<u64>,
    created: Instant,
    last_used: Instant,
    broken: bool,
    dirty: bool,
    /// The diagnostics area may hold a session's warnings or errors: emptied before the
    /// connection serves anyone else.
    diagnostics_left: bool,
    listed: Entry<ServerRow>,
    /// Its place under the pool's `max_connections`, given back when the connection drops
    /// (declared last: the socket is closed first).
    slot: Option<Slot>,
}

impl std::fmt::Debug for BackendConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendConn")
            .field("backend", &self.backend)
            .field("connection_id", &self.connection_id)
            .field("found_rows", &self.found_rows())
            .finish_non_exhaustive()
    }
}

impl BackendConn {
    /// Makes this connection hold `slot` (given back when it drops).
    pub(crate) fn hold(&mut self, slot: Slot) {
        self.slot = Some(slot);
    }

    /// The slot this connection holds, taken out (to open its replacement in it).
    pub(crate) fn take_slot(&mut self) -> Option<Slot> {
        self.slot.take()
    }

    /// Connects through `connector`, logs in and turns on session tracking.
    pub async fn open(
        connector: &dyn Connector,
        settings: &BackendSettings,
        found_rows: bool,
        servers: &Registry<ServerRow>,
    ) -> Result<BackendConn, BackendError> {
        let timeout = settings.connect_timeout;
        match tokio::time::timeout(timeout, Self::open_now(connector, settings, found_rows, servers)).await {
            Ok(opened) => opened,
            Err(_) => Err(BackendError::Timeout { backend: connector.describe(), timeout }),
        }
    }

    async fn open_now(
        connector: &dyn Connector,
        settings: &BackendSettings,
        found_rows: bool,
        servers: &Registry<ServerRow>,
    ) -> Result<BackendConn, BackendError> {
        let backend: Arc<str> = connector.describe().into();
        let stream = connector
            .connect()
            .await
            .map_err(|error| BackendError::Connect { backend: backend.to_string(), error })?;
        let mut conn = PacketConn::new(stream, settings.max_packet);
        let collation = 45; // utf8mb4_general_ci
        let login = Login {
            user: &settings.user,
            password: &settings.password,
            database: settings.database.as_deref(),
            collation,
            found_rows,
            max_packet: u32::try_from(settings.max_packet).unwrap_or(u32::MAX),
        };
        let login_error = |error| BackendError::Login { backend: backend.to_string(), error };
        let mut greeting = client_handshake::read_greeting(&mut conn, &login).await.map_err(login_error)?;
        let (mut conn, secure) = match &settings.tls {
            None => (conn, false),
            Some(tls) => {
                client_handshake::request_tls(&mut conn, &mut greeting, &login).await.map_err(login_error)?;
                (Self::start_tls(conn, tls, &backend, settings.max_packet).await?, true)
            }
        };
        let session =
            client_handshake::authenticate(&mut conn, greeting, &login, secure).await.map_err(login_error)?;
        let now = Instant::now();
        let listed = servers.insert(ServerRow {
            connection_id: session.connection_id,
            backend: backend.to_string(),
            since: now,
            in_use: true,
            changed: now,
        });
        let mut backend_conn = BackendConn {
            conn,
            backend,
            caps: session.caps,
            server_version: session.server_version,
            connection_id: session.connection_id,
            status: StatusFlags::SERVER_STATUS_AUTOCOMMIT,
            state: SessionState::initial(collation, settings.database.clone(), true),
            statements: HashMap::new(),
            insert_id: Some(0),
            created: now,
            last_used: now,
            broken: false,
            dirty: false,
            diagnostics_left: false,
            listed,
            slot: None,
        };
        backend_conn.setup().await?;
        Ok(backend_conn)
    }

    /// Runs the TLS handshake on the stream under `conn` (after the `SSLRequest`).
    async fn start_tls(
        conn: PacketConn<BoxedStream>,
        tls: &BackendTls,
        backend: &str,
        max_packet: usize,
    ) -> Result<PacketConn<BoxedStream>, BackendError> {
        let tls_error = |message: String| BackendError::Tls { backend: backend.to_owned(), message };
        let stream =
            conn.into_inner().ok_or_else(|| tls_error("the server sent data before TLS began".into()))?;
        let name = rustls::pki_types::ServerName::try_from(tls.server_name.clone())
            .map_err(|_| tls_error(format!("`{}` is not a valid TLS server name", tls.server_name)))?;
        let stream = tls.connector.connect(name, stream).await.map_err(|e| tls_error(e.to_string()))?;
        Ok(PacketConn::new(Box::new(stream) as BoxedStream, max_packet))
    }

    async fn setup(&mut self) -> Result<(), BackendError> {
        let outcome = self.command(Command::COM_QUERY, SETUP.as_bytes(), Expect::Results).await?;
        // Our own tracking variables changed: that is what setup is for, not a session's doing.
        self.dirty = false;
        self.check("turning on session tracking", &outcome)
    }

    fn check(&self, what: &'static str, outcome: &Outcome) -> Result<(), BackendError> {
        match &outcome.error {
            None => Ok(()),
            Some((code, message)) => Err(BackendError::Command {
                what,
                backend: self.backend.to_string(),
                code: *code,
                message: message.clone(),
            }),
        }
    }

    /// Makes `schema` the connection's default schema (`COM_INIT_DB`): `Ok(Err(..))` with the
    /// server's error code and message when the server refuses it.
    pub async fn use_schema(&mut self, schema: &str) -> Result<Result<(), (u16, String)>, BackendError> {
        let outcome = self.command(Command::COM_INIT_DB, schema.as_bytes(), Expect::Ok).await?;
        match outcome.error {
            Some(error) => Ok(Err(error)),
            None => {
                if outcome.changes.schema.is_none() {
                    self.set_schema(schema.to_owned());
                }
                Ok(Ok(()))
            }
        }
    }

    /// Sends a command of the pooler's own and drains its response, following state changes.
    async fn command(
        &mut self,
        command: Command,
        body: &[u8],
        expect: Expect,
    ) -> Result<Outcome, BackendError> {
        let mut payload = Vec::with_capacity(1 + body.len());
        payload.push(command as u8);
        payload.extend_from_slice(body);
        let mut seq = Sequence::new();
        let mut sink = Sink::<BoxedStream>::Drain;
        let result = async {
            self.conn.send(&mut seq, &payload).await?;
            relay::relay(&mut self.conn, &mut seq, self.caps, &mut sink, expect, self.status).await
        }
        .await;
        let outcome = result.map_err(|error| self.broke(error))?;
        self.absorb(&outcome);
        Ok(outcome)
    }

    /// Marks the connection broken; the error to report.
    pub fn broke(&mut self, error: RelayError) -> BackendError {
        self.broken = true;
        BackendError::Broken { backend: self.backend.to_string(), error }
    }

    /// Takes in the outcome of a relayed response: status and tracked state. Returns what the
    /// state saw (an untrackable change marks the connection dirty).
    pub fn absorb(&mut self, outcome: &Outcome) -> crate::state::Applied {
        self.status = outcome.status;
        self.last_used = Instant::now();
        let applied = self.state.apply(&outcome.changes);
        if applied.untrackable {
            self.dirty = true;
        }
        applied
    }

    /// Brings the connection's state to `target`.
    pub async fn replay(&mut self, target: &SessionState) -> Result<(), BackendError> {
        if self.state == *target {
            return Ok(()); // the common case: the pool handed out a connection in this state
        }
        let Replay { schema, set, multi_statements } = self.state.replay_to(target);
        if let Some(schema) = schema {
            let outcome = self.command(Command::COM_INIT_DB, schema.as_bytes(), Expect::Ok).await?;
            self.check("restoring the session's schema", &outcome)?;
            self.state.set_schema(schema);
        }
        if let Some(set) = set {
            let outcome = self.command(Command::COM_QUERY, set.as_bytes(), Expect::Results).await?;
            self.check("restoring the session's variables", &outcome)?;
        }
        if let Some(on) = multi_statements {
            let option: u16 = if on { 0 } else { 1 };
            let outcome = self.command(Command::COM_SET_OPTION, &option.to_le_bytes(), Expect::Ok).await?;
            self.check("restoring the multi-statement option", &outcome)?;
            self.state.set_multi_statements(on);
        }
        Ok(())
    }

    /// Rolls back an open transaction.
    pub async fn rollback(&mut self) -> Result<(), BackendError> {
        let outcome = self.command(Command::COM_QUERY, b"ROLLBACK", Expect::Results).await?;
        self.check("rolling back", &outcome)
    }

    /// Resets the server session (`COM_RESET_CONNECTION`) and turns tracking on again: the
    /// connection is as fresh, with no prepared statements, but in the schema it was in (a
    /// reset keeps the current database).
    pub async fn reset(&mut self, mut initial: SessionState) -> Result<(), BackendError> {
        let outcome = self.command(Command::COM_RESET_CONNECTION, &[], Expect::Ok).await?;
        self.check("resetting the connection", &outcome)?;
        self.statements.clear();
        self.insert_id = Some(0);
        initial.set_schema_to(self.state.schema().map(str::to_owned));
        self.state = initial;
        self.dirty = false;
        self.setup().await
    }

    /// Without waiting: whether the server closed this (idle) connection or sent something
    /// unasked; then it is marked broken and must not be used.
    pub fn peer_closed_or_spoke(&mut self) -> bool {
        let gone = self.conn.peer_closed_or_spoke();
        if gone {
            self.broken = true;
        }
        gone
    }

    /// Checks that the server answers.
    pub async fn ping(&mut self) -> Result<(), BackendError> {
        let outcome = self.command(Command::COM_PING, &[], Expect::Ok).await?;
        self.check("ping", &outcome)
    }

    /// Prepares `sql` for the pooler's statement cache (no client sees the response), in the
    /// connection's current state.
    pub async fn prepare_quietly(
        &mut self,
        sql: &Arc<[u8]>,
    ) -> Result<Result<Prepared, (u16, String)>, BackendError> {
        let outcome = self.command(Command::COM_STMT_PREPARE, sql, Expect::Prepare).await?;
        match (outcome.error, outcome.prepared) {
            (Some(error), _) => Ok(Err(error)),
            (None, Some(prepared)) => {
                self.statements.insert(sql.clone(), (prepared, self.state.parse_context()));
                Ok(Ok(prepared))
            }
            (None, None) => {
                Err(self.broke(crate::protocol::packets::Malformed::new("prepare", "no statement").into()))
            }
        }
    }

    /// Closes the statement the server prepared for `sql`, if any (no response comes).
    pub async fn close_statement(&mut self, sql: &[u8]) -> Result<(), BackendError> {
        if let Some((prepared, _)) = self.statements.remove(sql) {
            let mut payload = vec![Command::COM_STMT_CLOSE as u8];
            payload.extend_from_slice(&prepared.id.to_le_bytes());
            if let Err(e) = self.conn.send(&mut Sequence::new(), &payload).await {
                return Err(self.broke(e.into()));
            }
        }
        Ok(())
    }

    /// Sends COM_QUIT and drops the connection.
    pub async fn quit(mut self) {
        let _ = self.conn.send(&mut Sequence::new(), &[Command::COM_QUIT as u8]).await;
        let _ = self.conn.shutdown().await;
    }

    /// The packet stream, for relaying a client's command.
    pub fn packets(&mut self) -> &mut PacketConn<BoxedStream> {
        &mut self.conn
    }

    /// Capabilities negotiated with the server.
    pub fn caps(&self) -> CapabilityFlags {
        self.caps
    }

    /// Whether affected rows count found rows (`CLIENT_FOUND_ROWS`), fixed at login.
    pub fn found_rows(&self) -> bool {
        self.caps.contains(CapabilityFlags::CLIENT_FOUND_ROWS)
    }

    /// Status flags after the last response.
    pub fn status(&self) -> StatusFlags {
        self.status
    }

    /// Whether a transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.status.contains(StatusFlags::SERVER_STATUS_IN_TRANS)
    }

    /// The tracked state.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// The server's version string.
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The server's id of this connection.
    pub fn connection_id(&self) -> u32 {
        self.connection_id
    }

    /// The backend's address.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// When it was opened.
    pub fn created(&self) -> Instant {
        self.created
    }

    /// When it last answered.
    pub fn last_used(&self) -> Instant {
        self.last_used
    }

    /// Whether it failed and must be closed.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Whether a session changed what the pooler cannot follow: reset before reuse.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Records whether a session holds it (for `SHOW SERVERS`).
    pub fn set_in_use(&self, in_use: bool) {
        self.listed.update(|row| {
            row.in_use = in_use;
            row.changed = Instant::now();
        });
    }

    /// Marks it to be reset before reuse.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// The statement prepared here for `sql` in `context`; `None` if there is none, or the
    /// one there is was bound to another context.
    pub fn statement(&self, sql: &[u8], context: &ParseContext) -> Option<Prepared> {
        self.statements.get(sql).filter(|(_, bound)| bound.serves(context)).map(|(prepared, _)| *prepared)
    }

    /// Records a schema change the server did not report.
    pub fn set_schema(&mut self, schema: String) {
        self.state.set_schema(schema);
    }

    /// Records the statement the server prepared for `sql` (relayed to a client) in the
    /// connection's current state.
    pub fn remember_statement(&mut self, sql: Arc<[u8]>, prepared: Prepared) {
        self.statements.insert(sql, (prepared, self.state.parse_context()));
    }

    /// Statements prepared here.
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    /// Any one prepared statement's text (the one to evict when over the cap).
    pub fn any_statement(&self) -> Option<Arc<[u8]>> {
        self.statements.keys().next().cloned()
    }
}
