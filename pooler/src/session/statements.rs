//! Binary prepared statements across backend connections. A client's statement id maps to the
//! statement's SQL and the context it was prepared in (schema, `sql_mode`, character set: what
//! a server binds a statement to); each backend connection keeps its own server-side statements
//! by SQL with the context each was bound to (at most `max_prepared_per_connection`, the
//! surplus closed), and a statement is prepared again, quietly, on a connection that does not
//! have it in the client's context — in that context, so the same text prepared by two clients
//! in two schemas never reads the other's tables. Parameter types are remembered per client
//! statement and sent with every execute, since the server a later execute lands on may never
//! have seen them. `COM_STMT_SEND_LONG_DATA` is buffered (bounded) and sent just before the
//! execute it belongs to, on the same connection.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::backend::{BackendConn, BackendError};
use crate::client_error::{
    ClientError, ER_MALFORMED_PACKET, ER_MAX_PREPARED_STMT_COUNT, ER_NOT_SUPPORTED_YET,
    ER_UNKNOWN_STMT_HANDLER,
};
use crate::protocol::framing::Sequence;
use crate::relay::Expect;
use crate::state::ParseContext;

/// Prepared statements one session may keep open (MariaDB's `max_prepared_stmt_count` is
/// 16,382 for the whole server).
pub(super) const MAX_STATEMENTS_PER_SESSION: usize = 1024;
/// The SQL text of one session's open prepared statements, in bytes.
pub(super) const MAX_STATEMENT_TEXT_PER_SESSION: usize = 1 << 20;

/// A statement as its client knows it.
#[derive(Debug, Clone)]
pub(super) struct ClientStatement {
    sql: Arc<[u8]>,
    /// What the statement was bound to when the client prepared it.
    context: Arc<ParseContext>,
    /// What its text says (pins, needs), as read when it was prepared.
    scan: crate::pins::Scan,
    params: u16,
    /// The parameter types the client last bound (2 bytes each).
    types: Option<Vec<u8>>,
}

/// A session's open prepared statements, bounded in number and in text.
#[derive(Debug, Default)]
pub(super) struct ClientStatements {
    by_id: HashMap<u32, ClientStatement>,
    text_bytes: usize,
}

impl ClientStatements {
    /// Whether one more statement of `sql_len` bytes fits.
    fn has_room_for(&self, sql_len: usize) -> bool {
        self.by_id.len() < MAX_STATEMENTS_PER_SESSION
            && self.text_bytes + sql_len <= MAX_STATEMENT_TEXT_PER_SESSION
    }

    fn insert(&mut self, id: u32, statement: ClientStatement) {
        self.text_bytes += statement.sql.len();
        if let Some(old) = self.by_id.insert(id, statement) {
            self.text_bytes -= old.sql.len();
        }
    }

    fn remove(&mut self, id: u32) {
        if let Some(old) = self.by_id.remove(&id) {
            self.text_bytes -= old.sql.len();
        }
    }

    fn get(&self, id: u32) -> Option<&ClientStatement> {
        self.by_id.get(&id)
    }

    fn get_mut(&mut self, id: u32) -> Option<&mut ClientStatement> {
        self.by_id.get_mut(&id)
    }

    fn contains(&self, id: u32) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Forgets every statement (`COM_RESET_CONNECTION`).
    pub(super) fn clear(&mut self) {
        self.by_id.clear();
        self.text_bytes = 0;
    }
}

/// Buffered `COM_STMT_SEND_LONG_DATA` payloads, in order.
#[derive(Debug, Default)]
pub(super) struct LongData {
    chunks: Vec<(u32, Vec<u8>)>,
    bytes: usize,
    /// A statement whose long data went over the limit: its next execute fails.
    overflowed: Option<u32>,
}

impl LongData {
    pub(super) fn clear(&mut self) {
        self.chunks.clear();
        self.bytes = 0;
        self.overflowed = None;
    }

    fn clear_statement(&mut self, id: u32) {
        self.chunks.retain(|(stmt, _)| *stmt != id);
        self.bytes = self.chunks.iter().map(|(_, c)| c.len()).sum();
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Makes room for one more statement on `conn`, and drops the one it has for `sql` (which
    /// is about to be prepared again, for a client to see the definitions).
    async fn make_room(&self, conn: &mut BackendConn, sql: &[u8]) -> Result<(), BackendError> {
        conn.close_statement(sql).await?;
        while conn.statement_count() >= self.ctx.max_prepared_per_connection.max(1) {
            match conn.any_statement() {
                Some(old) => conn.close_statement(&old).await?,
                None => break,
            }
        }
        Ok(())
    }

    /// Prepares `statement` on `conn`, where it is missing, bound as the client's was: in the
    /// statement's context, then back to the session's state. The backend's id, or the error
    /// the server gave the statement.
    async fn prepare_again(
        &self,
        conn: &mut BackendConn,
        statement: &ClientStatement,
    ) -> Result<Result<u32, (u16, String)>, BackendError> {
        if conn.state().parse_context().serves(&statement.context) {
            return conn.prepare_quietly(&statement.sql).await.map(|r| r.map(|p| p.id));
        }
        let prepared = match conn.replay(&self.state.with_parse_context(&statement.context)).await {
            Ok(()) => conn.prepare_quietly(&statement.sql).await?,
            // The server refused the context (its schema dropped since): the client's error.
            Err(BackendError::Command { code, message, .. }) => Err((code, message)),
            Err(error) => return Err(error),
        };
        conn.replay(&self.state).await?;
        Ok(prepared.map(|p| p.id))
    }

    pub(super) async fn prepare(&mut self, sql: &[u8], payload: &[u8], seq: &mut Sequence) {
        if !self.statements.has_room_for(sql.len()) {
            let message = format!(
                "Can't create more than max_prepared_stmt_count statements: a session through the pooler \
                 keeps at most {MAX_STATEMENTS_PER_SESSION} prepared statements and {} KiB of their text; \
                 close some (COM_STMT_CLOSE)",
                MAX_STATEMENT_TEXT_PER_SESSION >> 10
            );
            self.fail(seq, &ClientError::new(ER_MAX_PREPARED_STMT_COUNT, *b"42000", message)).await;
            return;
        }
        let sql: Arc<[u8]> = sql.into();
        let id = self.next_statement;
        self.next_statement = self.next_statement.checked_add(1).unwrap_or(1);
        let Some(mut conn) = self.acquire(seq).await else { return };
        if let Err(error) = self.make_room(&mut conn, &sql).await {
            tracing::warn!(pool = self.ctx.pool.config().name, "{error}");
        }
        let outcome = if conn.is_broken() {
            None
        } else {
            self.relay_on(&mut conn, payload, seq, Expect::Prepare, Some(id), super::Needs::default()).await
        };
        if let Some(prepared) = outcome.as_ref().and_then(|o| o.prepared) {
            conn.remember_statement(sql.clone(), prepared);
            let context = Arc::new(self.state.parse_context());
            let scan = self.scan(&sql);
            let statement = ClientStatement { sql, context, scan, params: prepared.params, types: None };
            self.statements.insert(id, statement);
        }
        self.held = Some(conn);
        if outcome.is_none() {
            self.lose_connection().await;
        } else {
            self.settle().await;
        }
    }

    pub(super) async fn execute(&mut self, id: u32, flags: u8, payload: &[u8], seq: &mut Sequence) {
        let Some(statement) = self.statements.get(id).cloned() else {
            let message = format!("Unknown prepared statement handler ({id}) given to mysqld_stmt_execute");
            self.fail(seq, &ClientError::new(ER_UNKNOWN_STMT_HANDLER, *b"HY000", message)).await;
            return;
        };
        if self.long_data.overflowed == Some(id) {
            self.long_data.overflowed = None;
            let message = format!(
                "long data over {} bytes for one execute (the server's max_allowed_packet)",
                self.ctx.max_packet
            );
            self.fail(seq, &ClientError::new(ER_MALFORMED_PACKET, *b"HY000", message)).await;
            return;
        }
        if flags & 0x07 != 0 {
            let message =
                "server-side cursors are not supported through the pooler; execute without a cursor";
            self.fail(seq, &ClientError::new(ER_NOT_SUPPORTED_YET, *b"42000", message)).await;
            return;
        }
        let Some(rewritten) = self.with_types(id, &statement, payload) else {
            let message = "COM_STMT_EXECUTE parameters cut short";
            self.fail(seq, &ClientError::new(ER_MALFORMED_PACKET, *b"HY000", message)).await;
            return;
        };
        let Some(mut conn) = self.acquire(seq).await else { return };
        let backend_id = match conn.statement(&statement.sql, &statement.context) {
            Some(prepared) => Ok(Ok(prepared.id)),
            None => match self.make_room(&mut conn, &statement.sql).await {
                Ok(()) => self.prepare_again(&mut conn, &statement).await,
                Err(error) => Err(error),
            },
        };
        let backend_id = match backend_id {
            Ok(Ok(backend_id)) => backend_id,
            Ok(Err((code, message))) => {
                // The statement no longer prepares (a table dropped since): the client's error.
                self.held = Some(conn);
                self.fail(seq, &ClientError::new(code, *b"HY000", message)).await;
                self.settle().await;
                return;
            }
            Err(error) => {
                tracing::warn!(pool = self.ctx.pool.config().name, "{error}");
                self.held = Some(conn);
                self.lose_connection().await;
                self.fail(seq, &ClientError::lost_backend(&self.ctx.pool.config().name, &error)).await;
                return;
            }
        };
        let sent = self.send_long_data_to(&mut conn, id, backend_id).await;
        let mut rewritten = rewritten;
        rewritten[1..5].copy_from_slice(&backend_id.to_le_bytes());
        self.pin_before(&statement.scan);
        let needs = super::Needs::of(&statement.scan);
        let schema_before = self.state.schema().map(str::to_owned);
        let outcome = if sent {
            self.relay_on(&mut conn, &rewritten, seq, Expect::Results, None, needs).await
        } else {
            None
        };
        self.held = Some(conn);
        match outcome {
            Some(outcome) => {
                let changes = &outcome.changes;
                let switched_back = changes.vars.is_empty()
                    && changes.schema.is_some()
                    && changes.schema.as_deref() == schema_before.as_deref();
                self.pin_after(&statement.scan, &outcome, switched_back);
                self.settle().await;
            }
            None => self.lose_connection().await,
        }
    }

    /// The execute payload with parameter types always present (remembering new ones).
    fn with_types(&mut self, id: u32, statement: &ClientStatement, payload: &[u8]) -> Option<Vec<u8>> {
        let params = usize::from(statement.params);
        if params == 0 {
            return Some(payload.to_vec());
        }
        let flag_at = 10 + params.div_ceil(8);
        let bound = *payload.get(flag_at)?;
        if bound == 1 {
            let types = payload.get(flag_at + 1..flag_at + 1 + 2 * params)?.to_vec();
            if let Some(entry) = self.statements.get_mut(id) {
                entry.types = Some(types);
            }
            return Some(payload.to_vec());
        }
        let Some(types) = &statement.types else {
            return Some(payload.to_vec()); // never bound: the server will say so
        };
        let mut out = Vec::with_capacity(payload.len() + types.len());
        out.extend_from_slice(&payload[..flag_at]);
        out.push(1);
        out.extend_from_slice(types);
        out.extend_from_slice(&payload[flag_at + 1..]);
        Some(out)
    }

    /// Sends the buffered long data of client statement `id` as `backend_id`; false if the
    /// connection broke (the client has been told).
    async fn send_long_data_to(&mut self, conn: &mut BackendConn, id: u32, backend_id: u32) -> bool {
        for (stmt, chunk) in &mut self.long_data.chunks {
            if *stmt != id {
                continue;
            }
            chunk[1..5].copy_from_slice(&backend_id.to_le_bytes());
            if let Err(error) = conn.packets().send(&mut Sequence::new(), chunk).await {
                conn.broke(error.into());
                return false;
            }
        }
        self.long_data.clear_statement(id);
        true
    }

    pub(super) fn close_statement(&mut self, id: u32) {
        self.statements.remove(id);
        self.long_data.clear_statement(id);
    }

    /// Buffers long data; no response goes to the client (none is due), so going over the
    /// limit fails the statement's next execute instead.
    pub(super) fn send_long_data(&mut self, id: u32, payload: &[u8]) {
        if !self.statements.contains(id) {
            return; // an unknown id fails at execute
        }
        if self.long_data.bytes + payload.len() > self.ctx.max_packet {
            self.long_data.clear_statement(id);
            self.long_data.overflowed = Some(id);
            return;
        }
        self.long_data.bytes += payload.len();
        self.long_data.chunks.push((id, payload.to_vec()));
    }

    pub(super) async fn reset_statement(&mut self, id: Option<u32>, seq: &mut Sequence) {
        match id {
            Some(id) if self.statements.contains(id) => {
                self.long_data.clear_statement(id);
                self.reply_ok(seq).await;
            }
            _ => {
                let message = "Unknown prepared statement handler given to mysqld_stmt_reset";
                self.fail(seq, &ClientError::new(ER_UNKNOWN_STMT_HANDLER, *b"HY000", message)).await;
            }
        }
    }
}
