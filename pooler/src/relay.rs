//! Relays one command's response from a backend connection to a client (or drains it, for the
//! pooler's own commands), packet by packet, reading only what tells where the response ends:
//! packet headers, column counts, and the status flags and session-state changes of OK packets.
//! Rows and column definitions pass as bytes.
//!
//! The backend always speaks `DEPRECATE_EOF` and `SESSION_TRACK`; for a client without them the
//! relay adds the EOF packets it expects and drops session-state data from OKs.
//!
//! If the client goes away mid-response the rest is still read (and dropped), so that the
//! backend connection stays usable.

use mysql_common::constants::{CapabilityFlags, SessionStateType, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::OkPacket;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::protocol::framing::{FrameError, PacketConn, Sequence};
use crate::protocol::packets::{
    self, ERR_HEADER, LOCAL_INFILE_HEADER, Malformed, OK_HEADER, is_terminator, ok_for_client,
};

/// The shape of response a command gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Result sets, OKs or an ERR, chained while `MORE_RESULTS_EXISTS` is set
    /// (`COM_QUERY`, `COM_STMT_EXECUTE`).
    Results,
    /// `COM_STMT_PREPARE_OK` with parameter and column definitions, or an ERR.
    Prepare,
    /// Column definitions ended by an EOF, or an ERR (`COM_FIELD_LIST`).
    FieldList,
    /// One OK or ERR.
    Ok,
    /// One packet of any kind (`COM_STATISTICS`).
    Single,
}

/// A prepared statement as the backend created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    /// The backend's statement id.
    pub id: u32,
    /// Its parameters.
    pub params: u16,
    /// Its result columns.
    pub columns: u16,
}

/// Session state the backend reported changed during a response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateChanges {
    /// System variables set, in order (name, value).
    pub vars: Vec<(String, String)>,
    /// The new current schema.
    pub schema: Option<String>,
    /// The server said session state changed (user variables, temporary tables, ...).
    pub state_changed: bool,
}

impl StateChanges {
    fn record(&mut self, ok: &OkPacket<'_>) -> Result<(), Malformed> {
        let infos = ok.session_state_info().map_err(|e| Malformed::new("session state", e))?;
        for info in infos {
            let mut data = ParseBuf(info.data_ref());
            let bad = || Malformed::new("session state", format!("{:?} entry cut short", info.data_type()));
            match info.data_type() {
                SessionStateType::SESSION_TRACK_SYSTEM_VARIABLES => {
                    while !data.is_empty() {
                        let name = data.checked_eat_lenenc_str().ok_or_else(bad)?;
                        let value = data.checked_eat_lenenc_str().ok_or_else(bad)?;
                        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
                        self.vars.push((name, String::from_utf8_lossy(value).into_owned()));
                    }
                }
                SessionStateType::SESSION_TRACK_SCHEMA => {
                    let schema = data.checked_eat_lenenc_str().ok_or_else(bad)?;
                    self.schema = Some(String::from_utf8_lossy(schema).into_owned());
                }
                // "1", as a length-encoded string (MySQL) or bare (some MariaDB versions).
                SessionStateType::SESSION_TRACK_STATE_CHANGE => {
                    self.state_changed |= info.data_ref().ends_with(b"1")
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// What a relayed response came to.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Status flags of the last OK or EOF (the ones passed in if it ended with an ERR).
    pub status: StatusFlags,
    /// The error that ended it, if one did (code, message).
    pub error: Option<(u16, String)>,
    /// Session state changes the backend reported.
    pub changes: StateChanges,
    /// For a prepare: the statement the backend created.
    pub prepared: Option<Prepared>,
    /// Packets relayed (or drained).
    pub packets: u64,
    /// Whether the client went away during the response.
    pub client_gone: bool,
    /// The insert id the last OK that reported one reported.
    pub insert_id: Option<u64>,
    /// The warnings the last OK counted (0 after an ERR).
    pub warnings: u16,
}

impl Outcome {
    /// Takes in an OK (or an OK-shaped terminator): its status, insert id, warnings and
    /// session-state changes.
    fn record_ok(&mut self, ok: &OkPacket<'_>) -> Result<(), Malformed> {
        self.status = ok.status_flags();
        self.insert_id = ok.last_insert_id().or(self.insert_id);
        self.warnings = ok.warnings();
        self.changes.record(ok)
    }
}

/// Why a response could not be relayed: the backend connection is unusable after it.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The backend connection failed.
    #[error("backend connection failed: {0}")]
    Backend(#[from] FrameError),
    /// The backend sent what the protocol does not allow there.
    #[error("backend sent a bad response: {0}")]
    Malformed(#[from] Malformed),
    /// Writing to the backend failed.
    #[error("backend connection failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the response goes.
pub enum Sink<'a, C> {
    /// To a client that negotiated `caps`, with sequence ids from `seq`.
    Client {
        /// The client connection.
        conn: &'a mut PacketConn<C>,
        /// The exchange's sequence.
        seq: &'a mut Sequence,
        /// The client's capabilities.
        caps: CapabilityFlags,
        /// Replaces the statement id in a `COM_STMT_PREPARE_OK` (the client's id).
        stmt_id: Option<u32>,
        /// A write that makes no progress for this long gives the client up.
        write_timeout: std::time::Duration,
    },
    /// Nowhere: the pooler's own command.
    Drain,
}

struct Writer<'a, 'b, C> {
    sink: &'b mut Sink<'a, C>,
    backend_caps: CapabilityFlags,
    gone: bool,
}

impl<C: AsyncRead + AsyncWrite + Unpin> Writer<'_, '_, C> {
    /// Sends `payload` on; a client that fails or stops reading is given up (the rest of the
    /// response is drained so that the backend connection stays usable).
    async fn raw(&mut self, payload: &[u8]) {
        if let Sink::Client { conn, seq, write_timeout, .. } = self.sink
            && !self.gone
            && !matches!(
                tokio::time::timeout(*write_timeout, conn.write_packet(seq, payload)).await,
                Ok(Ok(()))
            )
        {
            self.gone = true;
        }
    }

    async fn ok(&mut self, payload: &[u8], ok: &OkPacket<'_>, terminator: bool) {
        if let Sink::Client { caps, .. } = self.sink {
            let out = ok_for_client(payload, ok, terminator, self.backend_caps, *caps);
            self.raw(&out).await;
        }
    }

    /// The EOF after definitions that a client without `DEPRECATE_EOF` expects.
    async fn eof_if_expected(&mut self, status: StatusFlags) {
        if let Sink::Client { caps, .. } = self.sink
            && !caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
        {
            self.raw(&packets::eof(0, status)).await;
        }
    }

    fn client_stmt_id(&mut self) -> Option<u32> {
        match self.sink {
            Sink::Client { stmt_id, .. } => *stmt_id,
            Sink::Drain => None,
        }
    }

    async fn finish(&mut self) {
        if let Sink::Client { conn, write_timeout, .. } = self.sink
            && !self.gone
            && !matches!(tokio::time::timeout(*write_timeout, conn.flush()).await, Ok(Ok(())))
        {
            self.gone = true;
        }
    }
}

/// Relays the response to the command just sent on `backend` (whose exchange is `seq`), as
/// `expect` says it is shaped. `status` is the connection's status before the command.
pub async fn relay<B, C>(
    backend: &mut PacketConn<B>,
    seq: &mut Sequence,
    backend_caps: CapabilityFlags,
    sink: &mut Sink<'_, C>,
    expect: Expect,
    status: StatusFlags,
) -> Result<Outcome, RelayError>
where
    B: AsyncRead + AsyncWrite + Unpin,
    C: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = Outcome { status, ..Outcome::default() };
    let mut writer = Writer { sink, backend_caps, gone: false };
    let result = relay_inner(backend, seq, backend_caps, &mut writer, expect, &mut out).await;
    writer.finish().await;
    out.client_gone = writer.gone;
    result.map(|()| out)
}

async fn next<B: AsyncRead + AsyncWrite + Unpin>(
    backend: &mut PacketConn<B>,
    seq: &mut Sequence,
    out: &mut Outcome,
) -> Result<bytes::Bytes, RelayError> {
    let packet = backend.read_packet(seq).await?.ok_or(FrameError::Truncated)?;
    out.packets += 1;
    Ok(packet)
}

async fn relay_inner<B, C>(
    backend: &mut PacketConn<B>,
    seq: &mut Sequence,
    caps: CapabilityFlags,
    writer: &mut Writer<'_, '_, C>,
    expect: Expect,
    out: &mut Outcome,
) -> Result<(), RelayError>
where
    B: AsyncRead + AsyncWrite + Unpin,
    C: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let first = next(backend, seq, out).await?;
        match (first.first().copied(), expect) {
            (Some(ERR_HEADER), _) => {
                out.error = Some(packets::parse_err(&first, caps)?);
                writer.raw(&first).await;
                return Ok(());
            }
            (_, Expect::Single) => {
                writer.raw(&first).await;
                return Ok(());
            }
            (Some(OK_HEADER), Expect::Results | Expect::Ok) => {
                let ok = packets::parse_ok(&first, caps, false)?;
                out.record_ok(&ok)?;
                writer.ok(&first, &ok, false).await;
                if expect == Expect::Results && out.status.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS) {
                    continue;
                }
                return Ok(());
            }
            (Some(_), Expect::Ok) if is_terminator(&first) => {
                let ok = packets::parse_ok(&first, caps, true)?;
                out.record_ok(&ok)?;
                writer.ok(&first, &ok, true).await;
                return Ok(());
            }
            (Some(LOCAL_INFILE_HEADER), Expect::Results) => {
                // Never offered; should a server ask anyway, send it no data and refuse.
                backend.send(seq, &[]).await?;
                let reply = next(backend, seq, out).await?;
                if reply.first() == Some(&OK_HEADER) {
                    out.status = packets::parse_ok(&reply, caps, false)?.status_flags();
                }
                let message = "LOAD DATA LOCAL INFILE is not allowed through the pooler";
                out.error = Some((1148, message.to_owned()));
                writer.raw(&packets::err(1148, b"42000", message)).await;
                return Ok(());
            }
            (Some(_), Expect::Results) => {
                let columns = packets::lenenc_int(&first)
                    .ok_or_else(|| Malformed::new("result set header", "no column count"))?;
                writer.raw(&first).await;
                for _ in 0..columns {
                    let column = next(backend, seq, out).await?;
                    writer.raw(&column).await;
                }
                writer.eof_if_expected(out.status).await;
                let more = rows(backend, seq, caps, writer, out).await?;
                if !more {
                    return Ok(());
                }
            }
            (Some(OK_HEADER), Expect::Prepare) => {
                return prepare(first, backend, seq, writer, out).await;
            }
            (Some(_), Expect::FieldList) => {
                let mut packet = first;
                while !is_terminator(&packet) {
                    writer.raw(&packet).await;
                    packet = next(backend, seq, out).await?;
                    if packet.first() == Some(&ERR_HEADER) {
                        out.error = Some(packets::parse_err(&packet, caps)?);
                        writer.raw(&packet).await;
                        return Ok(());
                    }
                }
                let ok = packets::parse_ok(&packet, caps, true)?;
                out.status = ok.status_flags();
                writer.ok(&packet, &ok, true).await;
                return Ok(());
            }
            (None, _) | (Some(_), Expect::Ok | Expect::Prepare) => {
                return Err(
                    Malformed::new("response", format!("unexpected first packet for {expect:?}")).into()
                );
            }
        }
    }
}

/// Relays rows up to the terminator; whether more result sets follow.
async fn rows<B, C>(
    backend: &mut PacketConn<B>,
    seq: &mut Sequence,
    caps: CapabilityFlags,
    writer: &mut Writer<'_, '_, C>,
    out: &mut Outcome,
) -> Result<bool, RelayError>
where
    B: AsyncRead + AsyncWrite + Unpin,
    C: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let row = next(backend, seq, out).await?;
        if row.first() == Some(&ERR_HEADER) {
            out.error = Some(packets::parse_err(&row, caps)?);
            writer.raw(&row).await;
            return Ok(false);
        }
        if is_terminator(&row) {
            let ok = packets::parse_ok(&row, caps, true)?;
            out.record_ok(&ok)?;
            writer.ok(&row, &ok, true).await;
            return Ok(out.status.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS));
        }
        writer.raw(&row).await;
    }
}

/// Relays a `COM_STMT_PREPARE_OK` and the definitions after it.
async fn prepare<B, C>(
    first: bytes::Bytes,
    backend: &mut PacketConn<B>,
    seq: &mut Sequence,
    writer: &mut Writer<'_, '_, C>,
    out: &mut Outcome,
) -> Result<(), RelayError>
where
    B: AsyncRead + AsyncWrite + Unpin,
    C: AsyncRead + AsyncWrite + Unpin,
{
    if first.len() < 12 {
        return Err(Malformed::new("COM_STMT_PREPARE_OK", "shorter than 12 bytes").into());
    }
    let le16 = |at: usize| u16::from_le_bytes([first[at], first[at + 1]]);
    let prepared = Prepared {
        id: u32::from_le_bytes([first[1], first[2], first[3], first[4]]),
        columns: le16(5),
        params: le16(7),
    };
    out.prepared = Some(prepared);
    match writer.client_stmt_id() {
        Some(id) => {
            let mut rewritten = first.to_vec();
            rewritten[1..5].copy_from_slice(&id.to_le_bytes());
            writer.raw(&rewritten).await;
        }
        None => writer.raw(&first).await,
    }
    for count in [prepared.params, prepared.columns] {
        for _ in 0..count {
            let definition = next(backend, seq, out).await?;
            writer.raw(&definition).await;
        }
        if count > 0 {
            writer.eof_if_expected(out.status).await;
        }
    }
    Ok(())
}
