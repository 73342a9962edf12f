//! What a backend connection holds that no session tracking reports, read or set with queries
//! of the pooler's own: `LAST_INSERT_ID()`, the diagnostics area a statement leaves, and the
//! server settings a pool reads once.

use mysql_common::constants::Command;
use mysql_common::io::ParseBuf;

use super::{BackendConn, BackendError};
use crate::pool::ServerSettings;
use crate::protocol::framing::{FrameError, Sequence};
use crate::protocol::packets::{self, Malformed};
use crate::relay::{Expect, RelayError};

impl BackendConn {
    /// A statement just run may have changed `LAST_INSERT_ID()` here.
    pub fn forget_insert_id(&mut self) {
        self.insert_id = None;
    }

    /// Makes `LAST_INSERT_ID()` return `value` here (`DO LAST_INSERT_ID(value)`), unless it
    /// already does.
    pub async fn set_insert_id(&mut self, value: u64) -> Result<(), BackendError> {
        if self.insert_id == Some(value) {
            return Ok(());
        }
        let sql = format!("DO LAST_INSERT_ID({value})");
        let outcome = self.command(Command::COM_QUERY, sql.as_bytes(), Expect::Results).await?;
        self.check("restoring the session's LAST_INSERT_ID()", &outcome)?;
        self.insert_id = Some(value);
        Ok(())
    }

    /// Empties the diagnostics area (warnings and errors) the last statements left here. Only
    /// a statement that uses a table does (MariaDB 10.11: `DO 0` or `SELECT 2` leave the
    /// list as it was), hence the derived table.
    pub async fn clear_diagnostics(&mut self) -> Result<(), BackendError> {
        let sql = b"DO (SELECT 1 FROM (SELECT 1) AS t)";
        let outcome = self.command(Command::COM_QUERY, sql, Expect::Results).await?;
        self.check("clearing another session's warnings", &outcome)?;
        self.diagnostics_left = false;
        Ok(())
    }

    /// The session giving the connection back may have left warnings or errors in its
    /// diagnostics area (see [`Self::clear_diagnostics`]).
    pub fn mark_diagnostics_left(&mut self) {
        self.diagnostics_left = true;
    }

    /// Whether the diagnostics area may hold the last session's warnings or errors.
    pub fn diagnostics_left(&self) -> bool {
        self.diagnostics_left
    }

    /// Reads what `LAST_INSERT_ID()` returns here (`SELECT LAST_INSERT_ID()`).
    pub async fn read_insert_id(&mut self) -> Result<u64, BackendError> {
        let value = match self.query_number(READ_INSERT_ID).await {
            Ok(value) => value,
            Err(error) => return Err(self.broke(error)),
        };
        self.insert_id = Some(value);
        Ok(value)
    }

    /// Sends a client's command `payload` (sequence ids from `seq`) with
    /// `SELECT LAST_INSERT_ID()` queued behind it in the same write. The server runs the two
    /// in turn without waiting for the pooler, so learning what the command left costs one
    /// small statement, not a round trip (with its two wake-ups). The command's response
    /// comes first; [`Self::read_insert_id_behind`] then reads the value.
    pub async fn send_with_insert_id_read(
        &mut self,
        seq: &mut Sequence,
        payload: &[u8],
    ) -> std::io::Result<()> {
        self.conn.write_packet(seq, payload).await?;
        self.conn.write_packet(&mut Sequence::new(), &command(READ_INSERT_ID)).await?;
        self.conn.flush().await
    }

    /// Reads the value of the `SELECT LAST_INSERT_ID()` that
    /// [`Self::send_with_insert_id_read`] queued, once the command's response has been read.
    pub async fn read_insert_id_behind(&mut self) -> Result<u64, BackendError> {
        let value = match self.read_number(&mut Sequence::at(1)).await {
            Ok(value) => value,
            Err(error) => return Err(self.broke(error)),
        };
        self.insert_id = Some(value);
        Ok(value)
    }

    /// Reads the server's settings that clients ask about (`@@max_allowed_packet`, the largest
    /// packet it takes from a client, and a fresh session's `@@wait_timeout`).
    pub async fn read_server_settings(&mut self) -> Result<ServerSettings, BackendError> {
        let max_allowed_packet =
            self.query_number(b"SELECT @@max_allowed_packet").await.map_err(|error| self.broke(error))?;
        let wait_timeout =
            self.query_number(b"SELECT @@global.wait_timeout").await.map_err(|error| self.broke(error))?;
        Ok(ServerSettings { max_allowed_packet, wait_timeout })
    }

    /// Runs a query of one unsigned number (one column, one row) and reads it.
    async fn query_number(&mut self, sql: &[u8]) -> Result<u64, RelayError> {
        let mut seq = Sequence::new();
        self.conn.send(&mut seq, &command(sql)).await?;
        self.read_number(&mut seq).await
    }

    /// Reads the response to a query of one unsigned number.
    async fn read_number(&mut self, seq: &mut Sequence) -> Result<u64, RelayError> {
        let bad = |what: &str| Malformed::new("a query of one number", what.to_owned());
        let mut next = async || self.conn.read_packet(seq).await?.ok_or(FrameError::Truncated);
        let header = next().await?;
        if header.first() == Some(&packets::ERR_HEADER) {
            let (code, message) = packets::parse_err(&header, self.caps)?;
            return Err(bad(&format!("error {code}: {message}")).into());
        }
        if packets::lenenc_int(&header) != Some(1) {
            return Err(bad("not one column").into());
        }
        next().await?; // the column definition
        let row = next().await?;
        let mut data = ParseBuf(&row);
        let value = data
            .checked_eat_lenenc_str()
            .and_then(|text| std::str::from_utf8(text).ok()?.parse::<u64>().ok())
            .ok_or_else(|| bad("not a number"))?;
        let end = next().await?;
        if !packets::is_terminator(&end) {
            return Err(bad("more than one row").into());
        }
        self.status = packets::parse_ok(&end, self.caps, true)?.status_flags();
        Ok(value)
    }
}

/// The pooler's query for what `LAST_INSERT_ID()` returns on a connection.
const READ_INSERT_ID: &[u8] = b"SELECT LAST_INSERT_ID()";

/// `sql` as a `COM_QUERY` payload.
fn command(sql: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(1 + sql.len());
    payload.push(Command::COM_QUERY as u8);
    payload.extend_from_slice(sql);
    payload
}
