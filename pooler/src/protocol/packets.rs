//! The few packets the pooler reads or writes itself (OK, EOF, ERR, the classification of a
//! response packet); everything else is relayed as bytes. Parsing is `mysql_common`'s.

use std::borrow::Cow;

use mysql_common::constants::{CapabilityFlags, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{
    CommonOkPacket, ErrPacket, OkPacket, OkPacketDeserializer, ResultSetTerminator, ServerError, SqlState,
};
use mysql_common::proto::MySerialize;

use super::framing::MAX_CHUNK;

/// First byte of an OK packet.
pub const OK_HEADER: u8 = 0x00;
/// First byte of an ERR packet.
pub const ERR_HEADER: u8 = 0xFF;
/// First byte of an EOF packet (and of the OK that ends a result set under `DEPRECATE_EOF`).
pub const EOF_HEADER: u8 = 0xFE;
/// First byte of a `LOCAL INFILE` request.
pub const LOCAL_INFILE_HEADER: u8 = 0xFB;

/// A packet that is not what the protocol allows at that point.
#[derive(Debug, thiserror::Error)]
#[error("malformed {what} packet: {reason}")]
pub struct Malformed {
    /// Which packet.
    pub what: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl Malformed {
    /// A malformed `what`, because of `reason`.
    pub fn new(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Malformed { what, reason: reason.to_string() }
    }
}

/// Whether `payload` ends a result set (an EOF, or an OK with the EOF header): a row never
/// starts with 0xFE unless it is at least 16 MiB long.
pub fn is_terminator(payload: &[u8]) -> bool {
    payload.first() == Some(&EOF_HEADER) && payload.len() < MAX_CHUNK
}

/// Parses an OK packet (`terminator`: the 0xFE form that ends a result set) sent under
/// `caps`.
pub fn parse_ok(payload: &[u8], caps: CapabilityFlags, terminator: bool) -> Result<OkPacket<'_>, Malformed> {
    let mut buf = ParseBuf(payload);
    let parsed = if terminator {
        buf.parse::<OkPacketDeserializer<'_, ResultSetTerminator>>(caps).map(OkPacket::from)
    } else {
        buf.parse::<OkPacketDeserializer<'_, CommonOkPacket>>(caps).map(OkPacket::from)
    };
    parsed.map_err(|e| Malformed::new("OK", e))
}

/// The code and message of an ERR packet, for logs and stats.
pub fn parse_err(payload: &[u8], caps: CapabilityFlags) -> Result<(u16, String), Malformed> {
    match ParseBuf(payload).parse::<ErrPacket<'_>>(caps) {
        Ok(ErrPacket::Error(e)) => Ok((e.error_code(), e.message_str().into_owned())),
        Ok(ErrPacket::Progress(_)) => Ok((0xFFFF, "progress report".to_owned())),
        Err(e) => Err(Malformed::new("ERR", e)),
    }
}

/// An ERR packet with `code`, SQL state `state` and `message`.
pub fn err(code: u16, state: &[u8; 5], message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + message.len());
    ErrPacket::Error(ServerError::new(code, Some(SqlState::new(*state)), message.as_bytes()))
        .serialize(&mut out);
    out
}

/// An ERR packet sent instead of the greeting (too many clients, no backend): before the
/// handshake the client's capabilities are unknown, so it carries no SQL state, as servers send
/// it (a client would show a `#` state as part of the message).
pub fn err_before_handshake(code: u16, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + message.len());
    out.push(ERR_HEADER);
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(message.as_bytes());
    out
}

/// Appends `n` as a length-encoded integer.
pub fn put_lenenc(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=250 => out.push(n as u8),
        251..=0xFFFF => {
            out.push(0xFC);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            out.push(0xFD);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xFE);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// A plain OK with `status`, for a client that negotiated `caps`.
pub fn ok(status: StatusFlags, caps: CapabilityFlags) -> Vec<u8> {
    let mut out = vec![OK_HEADER, 0, 0];
    out.extend_from_slice(&(status - StatusFlags::SERVER_SESSION_STATE_CHANGED).bits().to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    if caps.contains(CapabilityFlags::CLIENT_SESSION_TRACK) {
        out.push(0); // empty info
    }
    out
}

/// An EOF packet (the form without `DEPRECATE_EOF`).
pub fn eof(warnings: u16, status: StatusFlags) -> Vec<u8> {
    let mut out = vec![EOF_HEADER];
    out.extend_from_slice(&warnings.to_le_bytes());
    out.extend_from_slice(&(status - StatusFlags::SERVER_SESSION_STATE_CHANGED).bits().to_le_bytes());
    out
}

/// An OK (or result-set terminator) from a backend that negotiated `backend` capabilities,
/// in the form a client that negotiated `client` expects: unchanged when both agree;
/// otherwise an EOF (client without `DEPRECATE_EOF`) or an OK without session-state data
/// (client without `SESSION_TRACK`).
pub fn ok_for_client<'a>(
    payload: &'a [u8],
    ok: &OkPacket<'_>,
    terminator: bool,
    backend: CapabilityFlags,
    client: CapabilityFlags,
) -> Cow<'a, [u8]> {
    let track = CapabilityFlags::CLIENT_SESSION_TRACK;
    if terminator && !client.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF) {
        return Cow::Owned(eof(ok.warnings(), ok.status_flags()));
    }
    if client.contains(track) || !backend.contains(track) {
        return Cow::Borrowed(payload);
    }
    let mut out = vec![if terminator { EOF_HEADER } else { OK_HEADER }];
    put_lenenc(&mut out, ok.affected_rows());
    put_lenenc(&mut out, ok.last_insert_id().unwrap_or(0));
    out.extend_from_slice(
        &(ok.status_flags() - StatusFlags::SERVER_SESSION_STATE_CHANGED).bits().to_le_bytes(),
    );
    out.extend_from_slice(&ok.warnings().to_le_bytes());
    // Servers send a non-empty info as a length-encoded string whatever the capabilities
    // (sql/protocol_classic.cc, net_send_ok), and clients parse it so.
    if let Some(info) = ok.info_ref().filter(|info| !info.is_empty()) {
        put_lenenc(&mut out, info.len() as u64);
        out.extend_from_slice(info);
    }
    Cow::Owned(out)
}

/// Reads a length-encoded integer at the start of `payload` (a column count).
pub fn lenenc_int(payload: &[u8]) -> Option<u64> {
    ParseBuf(payload).checked_eat_lenenc_int()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eof_and_plain_ok_encode_status() {
        let status = StatusFlags::SERVER_STATUS_AUTOCOMMIT | StatusFlags::SERVER_SESSION_STATE_CHANGED;
        assert_eq!(eof(3, status), vec![0xFE, 3, 0, 2, 0]);
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_SESSION_TRACK;
        let packet = ok(status, caps);
        let parsed = parse_ok(&packet, caps, false).expect("our OK parses");
        assert_eq!(parsed.status_flags(), StatusFlags::SERVER_STATUS_AUTOCOMMIT);
    }

    #[test]
    fn ok_loses_session_state_for_a_client_that_did_not_ask() {
        // OK: 1 row, insert id 7, status AUTOCOMMIT|SESSION_STATE_CHANGED, 0 warnings, info "",
        // state: schema change to "db".
        let payload = [0x00, 1, 7, 0x02, 0x40, 0, 0, 0, 5, 1, 3, 2, b'd', b'b'];
        let backend = CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_SESSION_TRACK;
        let ok_packet = parse_ok(&payload, backend, false).expect("parses");
        assert!(ok_packet.session_state_info_ref().is_some());
        let client = CapabilityFlags::CLIENT_PROTOCOL_41;
        let out = ok_for_client(&payload, &ok_packet, false, backend, client);
        let reparsed = parse_ok(&out, client, false).expect("reparses");
        assert_eq!((reparsed.affected_rows(), reparsed.last_insert_id()), (1, Some(7)));
        assert_eq!(reparsed.status_flags(), StatusFlags::SERVER_STATUS_AUTOCOMMIT);
        assert!(matches!(ok_for_client(&payload, &ok_packet, false, backend, backend), Cow::Borrowed(_)));

        // The same with an info text ("Rows matched: 1"): kept, length-encoded.
        let mut payload = vec![0x00, 1, 0, 0x02, 0x40, 0, 0, 15];
        payload.extend_from_slice(b"Rows matched: 1");
        payload.extend_from_slice(&[5, 1, 3, 2, b'd', b'b']);
        let ok_packet = parse_ok(&payload, backend, false).expect("parses");
        let out = ok_for_client(&payload, &ok_packet, false, backend, client);
        let reparsed = parse_ok(&out, client, false).expect("reparses");
        assert_eq!(reparsed.info_ref(), Some(&b"Rows matched: 1"[..]));
        assert_eq!(out.len(), 8 + 15, "no session state left behind");
    }

    #[test]
    fn terminators_are_told_from_rows() {
        assert!(is_terminator(&[0xFE, 0, 0, 2, 0]));
        assert!(!is_terminator(&[0x00, 1]));
        assert!(!is_terminator(&[]));
    }
}

/// The parts of a `COM_CHANGE_USER` the pooler checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeUser<'a> {
    /// The user to become.
    pub user: &'a [u8],
    /// The scramble, against the session's original nonce.
    pub auth: &'a [u8],
    /// The schema to use (empty: none).
    pub database: &'a [u8],
    /// The auth method named, if any.
    pub plugin: Option<&'a [u8]>,
}

/// Parses a `COM_CHANGE_USER` (protocol 4.1, secure connection).
pub fn parse_change_user(payload: &[u8]) -> Result<ChangeUser<'_>, Malformed> {
    let bad = |reason: &str| Malformed::new("COM_CHANGE_USER", reason);
    let mut buf = ParseBuf(payload.get(1..).ok_or_else(|| bad("empty"))?);
    let null_str = |buf: &mut ParseBuf<'_>, what: &str| -> Result<(), Malformed> {
        if buf.0.contains(&0) { Ok(()) } else { Err(bad(what)) }
    };
    null_str(&mut buf, "user not terminated")?;
    let user = buf.eat_null_str();
    let auth = buf.checked_eat_u8_str().ok_or_else(|| bad("auth data cut short"))?;
    null_str(&mut buf, "database not terminated")?;
    let database = buf.eat_null_str();
    let plugin = if buf.len() >= 2 {
        buf.skip(2); // character set
        (!buf.is_empty()).then(|| buf.eat_null_str())
    } else {
        None
    };
    Ok(ChangeUser { user, auth, database, plugin })
}

#[cfg(test)]
mod change_user_tests {
    use super::*;

    #[test]
    fn change_user_parses_and_rejects_truncation() {
        let mut payload = vec![0x11];
        payload.extend_from_slice(b"app\0");
        payload.extend_from_slice(&[3, 1, 2, 3]);
        payload.extend_from_slice(b"db\0");
        payload.extend_from_slice(&[45, 0]);
        payload.extend_from_slice(b"mysql_native_password\0");
        let parsed = parse_change_user(&payload).expect("parses");
        assert_eq!(parsed.user, b"app");
        assert_eq!(parsed.auth, &[1, 2, 3]);
        assert_eq!(parsed.database, b"db");
        assert_eq!(parsed.plugin, Some(&b"mysql_native_password"[..]));
        for cut in 1..10 {
            assert!(parse_change_user(&payload[..cut]).is_err(), "cut at {cut} parsed");
        }
    }
}
