//! A client's command, parsed once from its packet into what the session acts on. Session code
//! matches on [`Request`], never on command bytes; a packet that does not parse is answered
//! with the [`ClientError`] the parse returns.

use mysql_common::constants::Command;

use crate::client_error::{ClientError, ER_MALFORMED_PACKET, ER_UNKNOWN_COM};
use crate::protocol::packets::{self, ChangeUser};

/// One client command.
#[derive(Debug)]
pub(crate) enum Request<'a> {
    /// `COM_QUIT`.
    Quit,
    /// `COM_PING`.
    Ping,
    /// `COM_QUERY` with its SQL text.
    Query { sql: &'a [u8] },
    /// `COM_INIT_DB` with the schema named.
    InitDb { schema: &'a [u8] },
    /// `COM_FIELD_LIST` (relayed as sent).
    FieldList,
    /// `COM_STATISTICS`.
    Statistics,
    /// `COM_STMT_PREPARE` with its SQL text.
    Prepare { sql: &'a [u8] },
    /// `COM_STMT_EXECUTE` of the client's statement `id`, with its cursor flags.
    Execute { id: u32, flags: u8 },
    /// `COM_STMT_CLOSE` (no response is due).
    CloseStatement { id: u32 },
    /// `COM_STMT_SEND_LONG_DATA` (no response is due).
    SendLongData { id: u32 },
    /// `COM_STMT_RESET`.
    ResetStatement { id: Option<u32> },
    /// `COM_SET_OPTION`: multi-statements on or off.
    SetOption { multi_statements: bool },
    /// `COM_RESET_CONNECTION`.
    ResetConnection,
    /// `COM_CHANGE_USER`.
    ChangeUser(ChangeUser<'a>),
    /// A command that gets no response and whose packet is too short to act on: dropped, as
    /// servers drop it.
    Discard,
}

fn statement_id(payload: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(payload.get(1..5)?.try_into().ok()?))
}

impl<'a> Request<'a> {
    /// Parses a command packet.
    pub(crate) fn parse(payload: &'a [u8]) -> Result<Request<'a>, ClientError> {
        let Some(&code) = payload.first() else {
            return Err(ClientError::malformed("empty command packet"));
        };
        let body = &payload[1..];
        let is = |command: Command| code == command as u8;
        let request = if is(Command::COM_QUIT) {
            Request::Quit
        } else if is(Command::COM_PING) {
            Request::Ping
        } else if is(Command::COM_QUERY) {
            Request::Query { sql: body }
        } else if is(Command::COM_INIT_DB) {
            Request::InitDb { schema: body }
        } else if is(Command::COM_FIELD_LIST) {
            Request::FieldList
        } else if is(Command::COM_STATISTICS) {
            Request::Statistics
        } else if is(Command::COM_STMT_PREPARE) {
            Request::Prepare { sql: body }
        } else if is(Command::COM_STMT_EXECUTE) {
            match (statement_id(payload), payload.get(5)) {
                (Some(id), Some(&flags)) => Request::Execute { id, flags },
                _ => {
                    let message = "COM_STMT_EXECUTE shorter than its header";
                    return Err(ClientError::new(ER_MALFORMED_PACKET, *b"HY000", message));
                }
            }
        } else if is(Command::COM_STMT_CLOSE) {
            statement_id(payload).map_or(Request::Discard, |id| Request::CloseStatement { id })
        } else if is(Command::COM_STMT_SEND_LONG_DATA) {
            statement_id(payload).map_or(Request::Discard, |id| Request::SendLongData { id })
        } else if is(Command::COM_STMT_RESET) {
            Request::ResetStatement { id: statement_id(payload) }
        } else if is(Command::COM_SET_OPTION) {
            match body.get(..2) {
                Some([0, 0]) => Request::SetOption { multi_statements: true },
                Some([1, 0]) => Request::SetOption { multi_statements: false },
                _ => {
                    let message = "COM_SET_OPTION takes 0 (on) or 1 (off)";
                    return Err(ClientError::new(ER_UNKNOWN_COM, *b"HY000", message));
                }
            }
        } else if is(Command::COM_RESET_CONNECTION) {
            Request::ResetConnection
        } else if is(Command::COM_CHANGE_USER) {
            let change =
                packets::parse_change_user(payload).map_err(|e| ClientError::malformed(e.to_string()))?;
            Request::ChangeUser(change)
        } else {
            let message = format!("command 0x{code:02x} is not supported through the pooler");
            return Err(ClientError::unknown_command(message));
        };
        Ok(request)
    }

    /// The command's name, for traces.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Request::Quit => "COM_QUIT",
            Request::Ping => "COM_PING",
            Request::Query { .. } => "COM_QUERY",
            Request::InitDb { .. } => "COM_INIT_DB",
            Request::FieldList => "COM_FIELD_LIST",
            Request::Statistics => "COM_STATISTICS",
            Request::Prepare { .. } => "COM_STMT_PREPARE",
            Request::Execute { .. } => "COM_STMT_EXECUTE",
            Request::CloseStatement { .. } => "COM_STMT_CLOSE",
            Request::SendLongData { .. } => "COM_STMT_SEND_LONG_DATA",
            Request::ResetStatement { .. } => "COM_STMT_RESET",
            Request::SetOption { .. } => "COM_SET_OPTION",
            Request::ResetConnection => "COM_RESET_CONNECTION",
            Request::ChangeUser(_) => "COM_CHANGE_USER",
            Request::Discard => "discarded",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_command_parses_and_bad_packets_get_their_error() {
        assert!(matches!(Request::parse(&[3, b'S']), Ok(Request::Query { sql: b"S" })));
        assert!(matches!(Request::parse(&[0x17, 7, 0, 0, 0, 0]), Ok(Request::Execute { id: 7, flags: 0 })));
        assert!(matches!(Request::parse(&[0x19, 1]), Ok(Request::Discard)));
        assert!(matches!(Request::parse(&[0x1b, 1, 0]), Ok(Request::SetOption { multi_statements: false })));
        let code = |payload: &[u8]| Request::parse(payload).map(|_| ()).unwrap_err().code();
        assert_eq!(code(&[]), ER_MALFORMED_PACKET);
        assert_eq!(code(&[0x17, 7, 0]), ER_MALFORMED_PACKET);
        assert_eq!(code(&[0x1b, 9, 9]), ER_UNKNOWN_COM);
        assert_eq!(code(&[0x1d]), ER_UNKNOWN_COM);
        assert_eq!(code(&[0x11]), ER_MALFORMED_PACKET);
    }
}
