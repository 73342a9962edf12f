//! What a client statement needs of its connection before it runs, beyond the session's tracked
//! state (no other session's diagnostics, the session's own `LAST_INSERT_ID()`), and whether the
//! connection's `LAST_INSERT_ID()` is read right behind it.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{PoolMode, Session};
use crate::backend::{BackendConn, BackendError};
use crate::pins;

/// What a client statement needs from its connection beyond the session's tracked state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Needs {
    /// It reads or sets `LAST_INSERT_ID()`: the session's own value first.
    pub(super) insert_id: bool,
    /// It reads what the statement before it left (diagnostics, `FOUND_ROWS()`, ...): on a
    /// connection just checked out, another session's is cleared first (the session's own
    /// stays on a connection it holds).
    pub(super) reads_previous: bool,
    /// `SET STATEMENT ... FOR`: the variables the server reports set are not the session's.
    pub(super) scoped_variables: bool,
    /// It names a table: the server empties the diagnostics area before it runs.
    pub(super) clears_diagnostics: bool,
    /// It is an `INSERT`, `REPLACE` or `LOAD` that pins nothing: its OK may report an insert
    /// id, and the session may let the connection go right after it.
    pub(super) may_insert: bool,
    /// It is a `COMMIT` or `ROLLBACK`: the session may let its connection go after it.
    pub(super) ends_transaction: bool,
}

impl Needs {
    /// What a statement whose text scanned as `scan` needs.
    pub(super) fn of(scan: &pins::Scan) -> Needs {
        Needs {
            insert_id: scan.insert_id,
            reads_previous: scan.reads_previous,
            scoped_variables: scan.statement_scoped_set,
            clears_diagnostics: scan.uses_table,
            may_insert: scan.may_insert && scan.pins.is_empty(),
            ends_transaction: scan.ends_transaction && scan.pins.is_empty(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Brings `conn` to what a statement `needs`: no other session's diagnostics, and for a
    /// statement that reads or sets `LAST_INSERT_ID()` the session's own value (anything
    /// pending read back first).
    pub(super) async fn ready(&mut self, conn: &mut BackendConn, needs: Needs) -> Result<(), BackendError> {
        if needs.reads_previous && self.checked_out_now {
            conn.clear_diagnostics().await?;
        }
        if !needs.insert_id || self.insert_id.connection_holds_own() {
            return Ok(());
        }
        if let Some(pending) = self.insert_id.take_pending() {
            let value = conn.read_insert_id().await?;
            self.insert_id.read(&pending, value);
        }
        conn.set_insert_id(self.insert_id.value()).await
    }

    /// Whether `SELECT LAST_INSERT_ID()` goes right behind a statement that `needs` this (in
    /// the same write), rather than in a round trip of its own when the session lets the
    /// connection go: for an `INSERT` on a connection checked out for it (so no transaction,
    /// pin or warnings held it) with autocommit on, and for a `COMMIT` or `ROLLBACK` after
    /// inserts, in `transaction` mode, when nothing pins. The session may still keep the
    /// connection (the statement left warnings, or opened a transaction): then the read was
    /// early, never wrong — the value it reads is the statement's.
    pub(super) fn reads_insert_id_behind(&self, needs: Needs) -> bool {
        if needs.insert_id || !self.insert_id.reads_back() || self.ctx.mode != PoolMode::Transaction {
            return false;
        }
        let autocommit = !self.state.var("autocommit").is_some_and(|v| v.eq_ignore_ascii_case("OFF"));
        (needs.may_insert && self.checked_out_now && autocommit)
            || (needs.ends_transaction && self.insert_id.is_pending() && self.pins.is_empty())
    }
}
