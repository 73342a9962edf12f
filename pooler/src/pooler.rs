//! A pooler: one [`Pool`] and the client sessions on it. Its owner accepts client streams
//! wherever it likes (a virtual port, a loopback address) and hands each to
//! [`Pooler::serve`]; the pooler bounds how many sessions run at once, how many logins are in
//! progress, how large a packet a client may send before it has logged in, and how long it may
//! take to log in. A session slot is taken only once the client has authenticated.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mysql_common::constants::StatusFlags;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

use crate::backend::Connector;
use crate::client_error::ClientError;
use crate::client_tls::ClientTls;
use crate::login_gate::{LoginGate, MAX_LOGINS_IN_PROGRESS};
use crate::pool::{Pool, PoolConfig};
use crate::protocol::auth::AuthMethod;
use crate::protocol::framing::{PacketConn, Sequence};
use crate::protocol::packets;
use crate::protocol::prefixed::Prefixed;
use crate::protocol::server_handshake::{self, Client, Greeting, HandshakeError};
use crate::registry::ClientRow;
use crate::session::{InsertIds, KnownSets, PoolMode, Session, SessionContext};
use crate::stats::ErrorKind;

/// The largest packet a client may send before it has logged in: a handshake response with
/// connection attributes fits in a fraction of it (MySQL and MariaDB clients send a few
/// hundred bytes). A larger announced packet closes the connection without reading it.
pub const MAX_LOGIN_PACKET: usize = 8 * 1024;

/// Everything a pooler is told by its owner.
#[derive(Debug, Clone)]
pub struct PoolerConfig {
    /// The pool.
    pub pool: PoolConfig,
    /// How sessions share connections.
    pub mode: PoolMode,
    /// Client sessions at once; more are refused with error 1040.
    pub max_client_sessions: usize,
    /// A client must finish logging in within this.
    pub handshake_timeout: Duration,
    /// Once a logged-in client has started a packet, it must send the rest within this; a
    /// slower client gets an ERR and is closed (an idle client, between packets, may wait).
    pub packet_timeout: Duration,
    /// The method announced to clients first.
    pub auth_method: AuthMethod,
    /// Prepared statements kept per backend connection.
    pub max_prepared_per_connection: usize,
    /// A client idle inside a transaction longer than this is rolled back, told and closed, so
    /// that its backend connection serves others (zero: never).
    pub idle_transaction_timeout: Duration,
    /// A client that takes none of a response for this long (it stopped reading) is closed;
    /// the rest of the response is drained and the backend connection released.
    pub client_write_timeout: Duration,
    /// How a session's `LAST_INSERT_ID()` is learnt after an insert.
    pub insert_ids: InsertIds,
    /// TLS for the clients of published addresses ([`Pooler::serve_published`]), if any.
    pub client_tls: Option<ClientTls>,
}

/// A client past the handshake, on its plain stream or inside TLS.
enum Handshaken<S> {
    Plain(PacketConn<S>, Client, Sequence),
    Tls(Box<PacketConn<tokio_rustls::server::TlsStream<Prefixed<S>>>>, Client, Sequence),
}

/// A per-tenant MySQL pooler.
#[derive(Debug, Clone)]
pub struct Pooler {
    config: Arc<PoolerConfig>,
    pool: Pool,
    sessions: Arc<Semaphore>,
    logins: LoginGate,
    next_id: Arc<AtomicU32>,
    /// What the backend answered to drivers' set-up `SET`s, for the sessions to come.
    known_sets: Arc<KnownSets>,
}

impl Pooler {
    /// A pooler whose backend connections come from `connector`.
    pub fn new(config: PoolerConfig, connector: Arc<dyn Connector>) -> Self {
        let pool = Pool::new(config.pool.clone(), connector);
        let sessions = Arc::new(Semaphore::new(config.max_client_sessions));
        let logins = LoginGate::new(MAX_LOGINS_IN_PROGRESS);
        Pooler {
            config: Arc::new(config),
            pool,
            sessions,
            logins,
            next_id: Arc::new(AtomicU32::new(1)),
            known_sets: Arc::default(),
        }
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The config.
    pub fn config(&self) -> &PoolerConfig {
        &self.config
    }

    /// The logins in progress.
    pub fn logins(&self) -> &LoginGate {
        &self.logins
    }

    /// Serves one client stream until the session ends, without TLS (a guest's virtual
    /// connection). `peer` names the client in logs.
    pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: S, peer: &str) {
        self.serve_with(stream, peer, None).await;
    }

    /// Serves a client of a published address: with the pool's client TLS, if it has one
    /// (offered, or required).
    pub async fn serve_published<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: S, peer: &str) {
        let tls = self.config.client_tls.clone();
        self.serve_with(stream, peer, tls.as_ref()).await;
    }

    async fn serve_with<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        peer: &str,
        tls: Option<&ClientTls>,
    ) {
        let name = &self.config.pool.name;
        let login = self.logins.enter();
        let mut conn = PacketConn::new(stream, MAX_LOGIN_PACKET);
        let server_version = match self.pool.server_version().await {
            Ok(version) => version,
            Err(error) => {
                let refusal = ClientError::from(&error);
                tracing::warn!(pool = name, peer, "{refusal}");
                let _ = conn.send(&mut Sequence::new(), &refusal.packet_before_handshake()).await;
                return;
            }
        };
        let greeting = Greeting {
            server_version,
            connection_id: self.next_id.fetch_add(1, Ordering::Relaxed),
            method: self.config.auth_method,
            user: self.config.pool.backend.user.clone(),
            password: self.config.pool.backend.password.clone(),
        };
        let accepted = tokio::select! {
            accepted = tokio::time::timeout(
                self.config.handshake_timeout,
                self.handshake(conn, &greeting, tls),
            ) => accepted,
            () = login.evicted() => {
                self.pool.stats().error(ErrorKind::ClientProtocol);
                tracing::info!(
                    pool = name,
                    peer,
                    "client login closed unfinished: {MAX_LOGINS_IN_PROGRESS} logins in progress, this the oldest"
                );
                return;
            }
        };
        drop(login);
        match accepted {
            Ok(Ok(Handshaken::Plain(conn, hello, seq))) => {
                self.session(conn, hello, seq, &greeting, peer).await
            }
            Ok(Ok(Handshaken::Tls(conn, hello, seq))) => {
                self.session(*conn, hello, seq, &greeting, peer).await
            }
            Ok(Err(error)) => {
                if !matches!(error, HandshakeError::Closed) {
                    self.pool.stats().error(ErrorKind::ClientProtocol);
                }
                tracing::info!(pool = name, peer, "client handshake failed: {error}");
            }
            Err(_) => {
                self.pool.stats().error(ErrorKind::ClientProtocol);
                tracing::info!(
                    pool = name,
                    peer,
                    "client did not log in within {:?}; closed",
                    self.config.handshake_timeout
                );
            }
        }
    }

    /// The handshake up to a verified password, inside TLS when the client asks for it and
    /// `tls` is set; a client that does not ask is refused where `tls` requires it.
    async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut conn: PacketConn<S>,
        greeting: &Greeting,
        tls: Option<&ClientTls>,
    ) -> Result<Handshaken<S>, HandshakeError> {
        let (greeted, mut seq) = server_handshake::greet(&mut conn, greeting, tls.is_some()).await?;
        let payload = conn.read_packet(&mut seq).await?.ok_or(HandshakeError::Closed)?;
        match tls {
            Some(tls) if server_handshake::is_ssl_request(&payload) => {
                // The client's ClientHello may have come in the same read as its SSLRequest.
                let (stream, early) = conn.into_parts();
                let stream = tls.acceptor().accept(Prefixed::new(early, stream)).await?;
                let mut conn = PacketConn::new(stream, MAX_LOGIN_PACKET);
                let payload = conn.read_packet(&mut seq).await?.ok_or(HandshakeError::Closed)?;
                let (hello, seq) =
                    server_handshake::finish(&mut conn, greeting, greeted, seq, &payload).await?;
                Ok(Handshaken::Tls(Box::new(conn), hello, seq))
            }
            Some(tls) if tls.required() => {
                let refusal = ClientError::tls_required(&self.config.pool.name);
                conn.send(&mut seq, &refusal.packet()).await?;
                Err(HandshakeError::Unsupported(refusal.to_string()))
            }
            _ => {
                let (hello, seq) =
                    server_handshake::finish(&mut conn, greeting, greeted, seq, &payload).await?;
                Ok(Handshaken::Plain(conn, hello, seq))
            }
        }
    }

    /// The rest of a session whose client passed the handshake: the session slot, the schema
    /// it named, the final OK, then its commands until it leaves.
    async fn session<T: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut conn: PacketConn<T>,
        hello: Client,
        mut seq: Sequence,
        greeting: &Greeting,
        peer: &str,
    ) {
        let name = &self.config.pool.name;
        let Ok(_permit) = self.sessions.clone().try_acquire_owned() else {
            self.pool.stats().error(ErrorKind::TooManyClients);
            let refusal = ClientError::too_many_clients(name, self.config.max_client_sessions);
            tracing::warn!(pool = name, peer, "{refusal}");
            let _ = conn.send(&mut seq, &refusal.packet()).await;
            return;
        };
        // A schema other than the pool's own is checked now, so that a wrong one fails the
        // login as it would on the server, not the client's first statement.
        if let Some(schema) = hello.database.as_deref()
            && Some(schema) != self.config.pool.backend.database.as_deref()
            && let Err(refusal) = self.check_schema(schema).await
        {
            tracing::info!(pool = name, peer, schema, "client login refused: {refusal}");
            let _ = conn.send(&mut seq, &refusal.packet()).await;
            return;
        }
        let max_packet = self.pool.max_client_packet().await;
        conn.set_max_payload(max_packet);
        if conn.send(&mut seq, &packets::ok(StatusFlags::SERVER_STATUS_AUTOCOMMIT, hello.caps)).await.is_err()
        {
            return;
        }
        let listed = self.pool.clients().insert(ClientRow {
            id: greeting.connection_id,
            peer: peer.to_owned(),
            user: hello.user.clone(),
            since: std::time::Instant::now(),
            holding: None,
            pinned: String::new(),
            idle_in_transaction_since: None,
        });
        let ctx = SessionContext {
            pool: self.pool.clone(),
            mode: self.config.mode,
            password: self.config.pool.backend.password.clone().into(),
            max_prepared_per_connection: self.config.max_prepared_per_connection,
            packet_timeout: self.config.packet_timeout,
            max_packet,
            idle_transaction_timeout: self.config.idle_transaction_timeout,
            client_write_timeout: self.config.client_write_timeout,
            insert_ids: self.config.insert_ids,
            known_sets: self.known_sets.clone(),
            listed: Some(Arc::new(listed)),
        };
        self.pool.stats().client_opened();
        // Boxed: a login in progress then holds a small future, not a whole session's.
        Box::pin(Session::new(conn, hello, ctx).run()).await;
        self.pool.stats().client_closed();
    }

    /// Runs the pool's upkeep (idle timeout, lifetime, `min_idle`) every `period`, forever.
    pub async fn maintain(&self, period: Duration) {
        let mut ticks = tokio::time::interval(period);
        loop {
            ticks.tick().await;
            self.pool.maintain().await;
        }
    }
}

impl Pooler {
    /// Whether the backend lets this pool's user use `schema`: `Err` with what the client is
    /// told (the server's own refusal, or why no connection was to be had).
    async fn check_schema(&self, schema: &str) -> Result<(), ClientError> {
        let mut conn = self.pool.checkout(false, None).await.map_err(|error| ClientError::from(&error))?;
        let outcome = conn.use_schema(schema).await;
        self.pool.release(conn).await;
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err((code, message))) => Err(ClientError::new(code, *b"42000", message)),
            Err(error) => Err(ClientError::lost_backend(&self.config.pool.name, &error)),
        }
    }
}
