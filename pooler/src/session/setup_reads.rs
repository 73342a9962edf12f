//! The reads drivers send right after they connect, answered from what the pool knows, without
//! a checkout or a round trip to the backend.
//!
//! `mysql_async` sends `SELECT @@max_allowed_packet,@@wait_timeout` (and `,@@socket` when it
//! prefers a unix socket) on every connect. Through the pooler the answers are the pool's: the
//! backend's `max_allowed_packet` and `wait_timeout` (read once per pool; a `wait_timeout` the
//! session set is its own), and `@@socket` is `NULL`: the pooler offers no socket, so a client
//! on the same host never reconnects around the pooler to the backend's own socket (it did).
//!
//! Only exactly such a `SELECT` of only these variables is answered here, and only while the
//! pool does not know its backend to be down; anything else goes to the backend as before.

use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::protocol::framing::Sequence;
use crate::protocol::resultset;

/// A server variable a connecting driver reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupVar {
    /// `@@max_allowed_packet`.
    MaxAllowedPacket,
    /// `@@wait_timeout`.
    WaitTimeout,
    /// `@@socket`.
    Socket,
}

/// One column of the answer: the text the client wrote (its column name) and the variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupRead {
    /// The column name, as the server would name it (the expression as written).
    pub label: String,
    /// The variable.
    pub var: SetupVar,
}

/// The columns of `sql` if it is a `SELECT` of only set-up variables (`@@name` or
/// `@@session.name`, separated by commas, an optional `;` at the end), else `None`.
pub fn parse(sql: &[u8]) -> Option<Vec<SetupRead>> {
    let text = std::str::from_utf8(sql).ok()?.trim();
    let text = text.strip_suffix(';').unwrap_or(text).trim_end();
    let (keyword, rest) = text.split_at_checked(6)?;
    if !keyword.eq_ignore_ascii_case("select") || !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let mut reads = Vec::new();
    for item in rest.split(',') {
        let label = item.trim();
        let name = label.strip_prefix("@@")?;
        let name = match name.split_once('.') {
            Some((scope, name)) if scope.eq_ignore_ascii_case("session") => name,
            Some(_) => return None,
            None => name,
        };
        let var = match name.to_ascii_lowercase().as_str() {
            "max_allowed_packet" => SetupVar::MaxAllowedPacket,
            "wait_timeout" => SetupVar::WaitTimeout,
            "socket" => SetupVar::Socket,
            _ => return None,
        };
        reads.push(SetupRead { label: label.to_owned(), var });
    }
    Some(reads)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Answers `sql` here if it is a read of set-up variables and the session holds no
    /// connection (one it holds answers for itself, with its transaction's status); whether it
    /// did. `@@max_allowed_packet` is what the pooler takes from this client (the backend's,
    /// within the pool's cap).
    pub(super) async fn answer_setup_reads(&mut self, sql: &[u8], seq: &mut Sequence) -> bool {
        // A pool that knows its backend is down lets the read fail there, with the reason: a
        // driver that connects then learns at once (as without the pooler).
        if self.held.is_some() || self.ctx.pool.backend_problem().is_some() {
            return false;
        }
        let Some(reads) = parse(sql) else {
            return false;
        };
        let Some(server) = self.ctx.pool.server_settings().await else {
            return false;
        };
        let values: Vec<Option<String>> = reads
            .iter()
            .map(|read| match read.var {
                SetupVar::MaxAllowedPacket => Some(self.ctx.max_packet.to_string()),
                SetupVar::WaitTimeout => Some(
                    self.state
                        .var("wait_timeout")
                        .map_or_else(|| server.wait_timeout.to_string(), str::to_owned),
                ),
                SetupVar::Socket => None,
            })
            .collect();
        let labels: Vec<&str> = reads.iter().map(|read| read.label.as_str()).collect();
        let status = self.status();
        if resultset::write(&mut self.client, seq, self.caps, status, &labels, &[values]).await.is_err() {
            self.client_lost = true;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reads_of_connecting_drivers_are_recognised_and_nothing_else() {
        let reads =
            parse(b"SELECT @@max_allowed_packet,@@wait_timeout,@@socket").expect("mysql_async's read");
        let vars: Vec<SetupVar> = reads.iter().map(|r| r.var).collect();
        assert_eq!(vars, [SetupVar::MaxAllowedPacket, SetupVar::WaitTimeout, SetupVar::Socket]);
        assert_eq!(reads[0].label, "@@max_allowed_packet");
        let reads = parse(b" select @@SESSION.wait_timeout ; ").expect("spaced, scoped, terminated");
        assert_eq!(reads[0].label, "@@SESSION.wait_timeout");
        for other in [
            &b"SELECT @@version"[..],
            b"SELECT @@global.wait_timeout",
            b"SELECT @@wait_timeout, 1",
            b"SELECT @@wait_timeout FROM t",
            b"SELECT @@wait_timeout; DROP TABLE t",
            b"SELECT",
            b"SELECT@@wait_timeout",
            b"SET @@wait_timeout = 5",
            b"/* c */ SELECT @@wait_timeout",
        ] {
            assert_eq!(parse(other), None, "{}", String::from_utf8_lossy(other));
        }
    }
}
