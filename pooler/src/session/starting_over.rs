//! What starts a session over or ends it: `COM_SET_OPTION`, `COM_RESET_CONNECTION`,
//! `COM_CHANGE_USER`, and the client going away. A connection the session gives back is marked
//! for what the session may have left on it, so that the pool resets it (or empties its
//! diagnostics) before anyone else gets it.

use mysql_common::constants::CapabilityFlags;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{PoolMode, Session};
use crate::client_error::{ClientError, ER_ACCESS_DENIED};
use crate::pins::Pins;
use crate::protocol::auth::AuthMethod;
use crate::protocol::framing::Sequence;
use crate::protocol::packets::{self, ChangeUser};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// `COM_SET_OPTION`: multi-statements on or off, on the held connection too.
    pub(super) async fn set_option(&mut self, on: bool, seq: &mut Sequence) {
        self.state.set_multi_statements(on);
        if let Some(conn) = &mut self.held
            && let Err(error) = conn.replay(&self.state).await
        {
            tracing::warn!(pool = self.ctx.pool.config().name, "{error}");
            self.lose_connection().await;
        }
        let status = self.status();
        let reply = if self.caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF) {
            packets::ok(status, self.caps)
        } else {
            packets::eof(0, status)
        };
        let _ = self.client.send(seq, &reply).await;
    }

    /// `COM_RESET_CONNECTION`: the session starts over (state, statements, pins); a held
    /// connection is rolled back and reset before anyone else uses it.
    pub(super) async fn reset(&mut self) {
        self.give_back().await;
        self.state = self.initial.clone();
        self.statements.clear();
        self.long_data.clear();
        self.insert_id.reset();
        self.warnings_held = false;
        self.pins = Pins::default();
    }

    /// Gives the held connection back to the pool, marked for what the session may have left
    /// on it: reset if it was pinned (or held for a whole session), its diagnostics emptied if
    /// they may be the session's.
    async fn give_back(&mut self) {
        if let Some(mut conn) = self.held.take() {
            if !self.pins.is_empty() || self.ctx.mode == PoolMode::Session {
                conn.mark_dirty();
            }
            if self.warnings_held {
                conn.mark_diagnostics_left();
            }
            self.ctx.pool.release(conn).await;
        }
    }

    /// `COM_CHANGE_USER`: checked against the pool's one user, then a reset.
    pub(super) async fn change_user(&mut self, change: ChangeUser<'_>, seq: &mut Sequence) {
        let user = String::from_utf8_lossy(change.user).into_owned();
        let method = change.plugin.map_or(Some(AuthMethod::NativePassword), AuthMethod::from_name);
        let ok = user == self.user
            && method.is_some_and(|m| m.verify(&self.nonce, &self.ctx.password, change.auth));
        if !ok {
            let message = format!("Access denied for user '{user}'@'switchyard' (using password: YES)");
            self.fail(seq, &ClientError::new(ER_ACCESS_DENIED, *b"28000", message)).await;
            return;
        }
        let database =
            Some(change.database).filter(|d| !d.is_empty()).map(|d| String::from_utf8_lossy(d).into_owned());
        self.reset().await;
        if let Some(database) = database {
            self.initial.set_schema(database.clone());
            self.state.set_schema(database);
        }
        self.reply_ok(seq).await;
    }

    /// The client is gone: roll back, reset if pinned, and give the connection back.
    pub(super) async fn end(mut self) {
        self.give_back().await;
        let _ = self.client.shutdown().await;
    }
}
