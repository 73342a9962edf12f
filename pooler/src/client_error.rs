//! A failure as a client is told it: the MySQL error code, SQL state and message of the ERR
//! packet the pooler sends. Every refusal at the client edge is one of these, built in one
//! place per kind, so that each kind keeps its code (an exhausted pool is `1040`, a backend that
//! cannot be reached `2003`, a lost one `2013`, ...) and no message carries a password.

use std::fmt;

use crate::backend::BackendError;
use crate::pool::CheckoutError;
use crate::protocol::packets;

/// `ER_CON_COUNT_ERROR`: too many connections (the pool is exhausted, or the pooler serves as
/// many sessions as it may).
pub const ER_CON_COUNT: u16 = 1040;
/// `ER_ACCESS_DENIED_ERROR`.
pub const ER_ACCESS_DENIED: u16 = 1045;
/// `ER_UNKNOWN_COM_ERROR`.
pub const ER_UNKNOWN_COM: u16 = 1047;
/// `ER_NET_READ_INTERRUPTED`: a packet did not arrive in time.
pub const ER_NET_READ_INTERRUPTED: u16 = 1159;
/// `ER_NOT_SUPPORTED_YET`.
pub const ER_NOT_SUPPORTED_YET: u16 = 1235;
/// `ER_UNKNOWN_STMT_HANDLER`.
pub const ER_UNKNOWN_STMT_HANDLER: u16 = 1243;
/// `ER_MAX_PREPARED_STMT_COUNT_REACHED`.
pub const ER_MAX_PREPARED_STMT_COUNT: u16 = 1461;
/// `ER_MALFORMED_PACKET`.
pub const ER_MALFORMED_PACKET: u16 = 1835;
/// `ER_SECURE_TRANSPORT_REQUIRED`.
pub const ER_SECURE_TRANSPORT_REQUIRED: u16 = 3159;
/// `ER_CLIENT_INTERACTION_TIMEOUT` (MySQL 8's code for a client closed for inactivity).
pub const ER_CLIENT_INTERACTION_TIMEOUT: u16 = 4031;
/// `CR_CONN_HOST_ERROR`, as proxies report a backend they cannot reach.
pub const CR_CONN_HOST_ERROR: u16 = 2003;
/// `CR_SERVER_LOST`, as proxies report a backend lost mid-command.
pub const CR_SERVER_LOST: u16 = 2013;

/// What a client is told when the pooler refuses or fails a login or a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ClientError {
    code: u16,
    state: [u8; 5],
    message: String,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error {} ({}): {}", self.code, String::from_utf8_lossy(&self.state), self.message)
    }
}

impl ClientError {
    /// An error with this code, SQL state and message (a server's own error, passed on).
    pub fn new(code: u16, state: [u8; 5], message: impl Into<String>) -> Self {
        ClientError { code, state, message: message.into() }
    }

    /// The MySQL error code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The SQL state.
    pub fn state(&self) -> &[u8; 5] {
        &self.state
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The pooler already serves `max` sessions.
    pub fn too_many_clients(pool: &str, max: usize) -> Self {
        let message = format!(
            "Too many connections: pool {pool} serves at most {max} client sessions (max_client_sessions)"
        );
        ClientError::new(ER_CON_COUNT, *b"08004", message)
    }

    /// The pool requires TLS and the client did not start it (MySQL's
    /// `ER_SECURE_TRANSPORT_REQUIRED`, sent before the client sends its scramble).
    pub fn tls_required(pool: &str) -> Self {
        let message = format!(
            "Connections using insecure transport are prohibited: pool {pool} requires TLS (publish_tls.required); connect with TLS"
        );
        ClientError::new(ER_SECURE_TRANSPORT_REQUIRED, *b"HY000", message)
    }

    /// The backend connection broke during a command.
    pub fn lost_backend(pool: &str, error: &BackendError) -> Self {
        let message = format!("pool {pool} lost its backend connection during the command: {error}");
        ClientError::new(CR_SERVER_LOST, *b"HY000", message)
    }

    /// A packet that does not parse.
    pub fn malformed(message: impl Into<String>) -> Self {
        ClientError::new(ER_MALFORMED_PACKET, *b"08S01", message)
    }

    /// A command the pooler does not serve.
    pub fn unknown_command(message: impl Into<String>) -> Self {
        ClientError::new(ER_UNKNOWN_COM, *b"08S01", message)
    }

    /// A packet the client did not finish within `timeout`.
    pub fn read_interrupted(timeout: std::time::Duration) -> Self {
        let message = format!("the client did not finish its packet within {timeout:?}; closed");
        ClientError::new(ER_NET_READ_INTERRUPTED, *b"08S01", message)
    }

    /// The client stayed idle inside a transaction past `limit`.
    pub fn idle_in_transaction(limit: std::time::Duration) -> Self {
        let message = format!(
            "idle inside a transaction for longer than {limit:?} (idle_transaction_timeout): rolled back and closed"
        );
        ClientError::new(ER_CLIENT_INTERACTION_TIMEOUT, *b"HY000", message)
    }

    /// The ERR packet, for a client that has logged in (or sent its handshake response).
    pub fn packet(&self) -> Vec<u8> {
        packets::err(self.code, &self.state, &self.message)
    }

    /// The ERR packet sent in place of the greeting (no SQL state, as servers send it).
    pub fn packet_before_handshake(&self) -> Vec<u8> {
        packets::err_before_handshake(self.code, &self.message)
    }
}

impl From<&CheckoutError> for ClientError {
    /// An exhausted pool is `1040`; a backend that could not be reached, refused the login or
    /// was denied by policy is a connection error, `2003`, naming the pool.
    fn from(error: &CheckoutError) -> Self {
        match error {
            CheckoutError::Timeout { .. } => ClientError::new(ER_CON_COUNT, *b"08004", error.to_string()),
            CheckoutError::Backend { pool, error } => {
                let message = format!("pool {pool} cannot reach its backend: {error}");
                ClientError::new(CR_CONN_HOST_ERROR, *b"HY000", message)
            }
        }
    }
}
