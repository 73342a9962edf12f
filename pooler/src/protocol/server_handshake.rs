//! The server side of the handshake, as the pooler plays it to its clients: greeting, the
//! client's response, an auth switch if the client chose another method, the password check,
//! then OK or `ER_ACCESS_DENIED_ERROR`.
//!
//! ```text
//!   pooler ── HandshakeV10 (nonce, our capabilities, method) ──────────► client
//!          ◄── HandshakeResponse41 (capabilities, user, scramble, db) ──
//!          ── [AuthSwitchRequest (method, nonce) ──► ◄── scramble]       (other method)
//!          ── [AuthMoreData 0x03 "fast auth success"]                   (caching_sha2)
//!          ── OK | ERR 1045 ──────────────────────────────────────────►
//! ```

use mysql_common::constants::{CapabilityFlags, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthSwitchRequest, HandshakePacket, HandshakeResponse};
use mysql_common::proto::MySerialize;
use tokio::io::{AsyncRead, AsyncWrite};

use super::auth::{AuthMethod, nonce};
use super::framing::{FrameError, PacketConn, Sequence};
use super::packets::{self, Malformed};

/// Capabilities the pooler offers clients. Not offered: `LOCAL_FILES` (`LOAD DATA LOCAL` is
/// refused), `COMPRESS`, `SSL` (offered besides only on a published address with TLS set up,
/// see [`greet`]),
/// `IGNORE_SPACE` and `ODBC` (they would change how the backend parses every session's SQL).
pub const OFFERED: CapabilityFlags = CapabilityFlags::from_bits_truncate(
    CapabilityFlags::CLIENT_LONG_PASSWORD.bits()
        | CapabilityFlags::CLIENT_FOUND_ROWS.bits()
        | CapabilityFlags::CLIENT_LONG_FLAG.bits()
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB.bits()
        | CapabilityFlags::CLIENT_PROTOCOL_41.bits()
        | CapabilityFlags::CLIENT_INTERACTIVE.bits()
        | CapabilityFlags::CLIENT_TRANSACTIONS.bits()
        | CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS.bits()
        | CapabilityFlags::CLIENT_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH.bits()
        | CapabilityFlags::CLIENT_CONNECT_ATTRS.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits()
        | CapabilityFlags::CLIENT_SESSION_TRACK.bits()
        | CapabilityFlags::CLIENT_DEPRECATE_EOF.bits(),
);

pub use crate::client_error::ER_ACCESS_DENIED;
/// `ER_HANDSHAKE_ERROR` ("Bad handshake").
pub const ER_HANDSHAKE: u16 = 1043;

/// What the pooler announces and accepts in a handshake.
#[derive(Debug, Clone)]
pub struct Greeting {
    /// The server version clients see (the backend's, so that they pick the right dialect).
    pub server_version: String,
    /// Our id for the session (`CONNECTION_ID()` is the backend's and may differ).
    pub connection_id: u32,
    /// The method announced first; a client may switch to the other.
    pub method: AuthMethod,
    /// The user clients must log in as.
    pub user: String,
    /// That user's password.
    pub password: Vec<u8>,
}

/// A client that passed the handshake.
#[derive(Debug, Clone)]
pub struct Client {
    /// Capabilities both sides have.
    pub caps: CapabilityFlags,
    /// The collation the client asked for.
    pub collation: u8,
    /// The user it logged in as.
    pub user: String,
    /// The schema it named, if any.
    pub database: Option<String>,
    /// The nonce of this session (`COM_CHANGE_USER` scrambles against it).
    pub nonce: [u8; 20],
}

/// Why a handshake with a client failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The connection failed or sent bad framing.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Writing to the client failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// A packet did not parse.
    #[error(transparent)]
    Malformed(#[from] Malformed),
    /// The client left before finishing.
    #[error("client closed the connection during the handshake")]
    Closed,
    /// The client asked for something the pooler does not do (told to the client too).
    #[error("{0}")]
    Unsupported(String),
    /// Wrong user or password (told to the client as error 1045).
    #[error("access denied for user '{user}'")]
    AccessDenied {
        /// The user the client named.
        user: String,
    },
}

/// Runs the handshake on a fresh client connection, through the final OK. On failure the
/// client has been sent the ERR that says why, where the connection still works.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut PacketConn<S>,
    greeting: &Greeting,
) -> Result<Client, HandshakeError> {
    let (client, mut seq) = authenticate(conn, greeting).await?;
    conn.send(&mut seq, &packets::ok(StatusFlags::SERVER_STATUS_AUTOCOMMIT, client.caps)).await?;
    Ok(client)
}

/// Runs the handshake up to a verified password, without the final OK: the caller sends OK
/// (or an ERR, e.g. for a schema the backend refuses) with the returned sequence. TLS is not
/// offered (see [`greet`] for a handshake that offers it).
pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut PacketConn<S>,
    greeting: &Greeting,
) -> Result<(Client, Sequence), HandshakeError> {
    let (started, mut seq) = greet(conn, greeting, false).await?;
    let payload = conn.read_packet(&mut seq).await?.ok_or(HandshakeError::Closed)?;
    finish(conn, greeting, started, seq, &payload).await
}

/// A handshake after the greeting: what [`finish`] needs.
#[derive(Debug, Clone, Copy)]
pub struct Greeted {
    nonce: [u8; 20],
    offered: CapabilityFlags,
}

/// Sends the greeting (offering TLS if `tls`); the sequence to read the client's first packet
/// with.
pub async fn greet<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut PacketConn<S>,
    greeting: &Greeting,
    tls: bool,
) -> Result<(Greeted, Sequence), HandshakeError> {
    let nonce = nonce()?;
    let offered = if tls { OFFERED | CapabilityFlags::CLIENT_SSL } else { OFFERED };
    let mut seq = Sequence::new();
    let mut scramble_2 = nonce[8..].to_vec();
    scramble_2.push(0);
    let hello = HandshakePacket::new(
        10,
        greeting.server_version.as_bytes(),
        greeting.connection_id,
        nonce[..8].try_into().expect("8 bytes"),
        Some(scramble_2),
        offered,
        45, // utf8mb4_general_ci
        StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        Some(greeting.method.name().as_bytes()),
    );
    let mut out = Vec::with_capacity(128);
    hello.serialize(&mut out);
    conn.send(&mut seq, &out).await?;
    Ok((Greeted { nonce, offered }, seq))
}

/// Whether a client's first packet is an `SSLRequest`: the first 32 bytes of a handshake
/// response, with `CLIENT_SSL`, after which the client starts TLS.
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == 32
        && payload[..4]
            .try_into()
            .map(u32::from_le_bytes)
            .is_ok_and(|caps| caps & CapabilityFlags::CLIENT_SSL.bits() != 0)
}

/// Checks the client's handshake response (`payload`, read with `seq`) and its password, and
/// switches the method if the client chose one the pooler does not speak; the client and the
/// sequence for the final OK.
pub async fn finish<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut PacketConn<S>,
    greeting: &Greeting,
    greeted: Greeted,
    mut seq: Sequence,
    payload: &[u8],
) -> Result<(Client, Sequence), HandshakeError> {
    let nonce = greeted.nonce;
    let response: HandshakeResponse<'_> =
        ParseBuf(payload).parse(()).map_err(|e| Malformed::new("handshake response", e))?;
    let caps = response.capabilities() & OFFERED;
    if !caps.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
        let message = "the pooler needs a client that speaks protocol 4.1";
        conn.send(&mut seq, &packets::err(ER_HANDSHAKE, b"08S01", message)).await?;
        return Err(HandshakeError::Unsupported(message.to_owned()));
    }
    if response.capabilities().contains(CapabilityFlags::CLIENT_SSL)
        && !greeted.offered.contains(CapabilityFlags::CLIENT_SSL)
    {
        let message = "TLS was not offered; connect without it";
        conn.send(&mut seq, &packets::err(ER_HANDSHAKE, b"08S01", message)).await?;
        return Err(HandshakeError::Unsupported(message.to_owned()));
    }
    let user = String::from_utf8_lossy(response.user()).into_owned();
    let database =
        response.db_name().filter(|db| !db.is_empty()).map(|db| String::from_utf8_lossy(db).into_owned());
    let chosen = response.auth_plugin().map(|p| AuthMethod::from_name(p.as_bytes()));
    let mut scramble = response.scramble_buf().to_vec();
    let collation = response.collation();
    drop(response);

    let method = match chosen {
        // A client without CLIENT_PLUGIN_AUTH scrambles the native way and cannot switch.
        None => AuthMethod::NativePassword,
        // Either method we speak is checked as it came: we know the password.
        Some(Some(method)) => method,
        // A method we do not speak: ask for ours.
        Some(None) => {
            let switch = AuthSwitchRequest::new(greeting.method.name().as_bytes(), nonce_with_nul(&nonce));
            let mut out = Vec::new();
            switch.serialize(&mut out);
            conn.send(&mut seq, &out).await?;
            scramble = conn.read_packet(&mut seq).await?.ok_or(HandshakeError::Closed)?.to_vec();
            greeting.method
        }
    };
    let password_ok = user == greeting.user && method.verify(&nonce, &greeting.password, &scramble);
    if !password_ok {
        let using = if scramble.is_empty() { "NO" } else { "YES" };
        let message = format!("Access denied for user '{user}'@'switchyard' (using password: {using})");
        conn.send(&mut seq, &packets::err(ER_ACCESS_DENIED, b"28000", &message)).await?;
        return Err(HandshakeError::AccessDenied { user });
    }
    if method == AuthMethod::CachingSha2Password {
        // The pooler holds the password, so the fast path always decides: there is no cold
        // cache that full authentication would fill.
        conn.write_packet(&mut seq, &[0x01, 0x03]).await?; // fast auth success
    }
    Ok((Client { caps, collation, user, database, nonce }, seq))
}

fn nonce_with_nul(nonce: &[u8]) -> Vec<u8> {
    let mut data = nonce.to_vec();
    data.push(0);
    data
}
