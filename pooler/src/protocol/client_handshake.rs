//! The client side of the handshake, as the pooler plays it to a backend server: read the
//! greeting, answer with our capabilities and the scramble of the method the server named,
//! follow an auth switch, and finish `caching_sha2_password`'s fast path.
//!
//! Full `caching_sha2_password` authentication (the server's cache is cold) needs TLS or the
//! server's RSA key; the pooler does not send a password in clear over plain TCP, so it fails
//! with an error that says to warm the cache or use `mysql_native_password`.

use mysql_common::constants::CapabilityFlags;
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, AuthSwitchRequest, HandshakePacket, HandshakeResponse, SslRequest};
use mysql_common::proto::MySerialize;
use tokio::io::{AsyncRead, AsyncWrite};

use super::auth::AuthMethod;
use super::framing::{FrameError, PacketConn, Sequence};
use super::packets::{self, ERR_HEADER, Malformed, OK_HEADER};

/// Capabilities the pooler asks of a backend: `DEPRECATE_EOF` and `SESSION_TRACK` so that it
/// can follow session state, multi-statements and results as its clients may use them, never
/// `LOCAL_FILES`. `FOUND_ROWS` is added per connection to match the client.
pub const WANTED: CapabilityFlags = CapabilityFlags::from_bits_truncate(
    CapabilityFlags::CLIENT_LONG_PASSWORD.bits()
        | CapabilityFlags::CLIENT_LONG_FLAG.bits()
        | CapabilityFlags::CLIENT_PROTOCOL_41.bits()
        | CapabilityFlags::CLIENT_TRANSACTIONS.bits()
        | CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS.bits()
        | CapabilityFlags::CLIENT_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits()
        | CapabilityFlags::CLIENT_SESSION_TRACK.bits()
        | CapabilityFlags::CLIENT_DEPRECATE_EOF.bits(),
);

/// Capabilities a backend must have for the pooler to follow its sessions.
const REQUIRED: CapabilityFlags = CapabilityFlags::from_bits_truncate(
    CapabilityFlags::CLIENT_PROTOCOL_41.bits()
        | CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH.bits()
        | CapabilityFlags::CLIENT_SESSION_TRACK.bits()
        | CapabilityFlags::CLIENT_DEPRECATE_EOF.bits(),
);

/// What the pooler logs in with.
#[derive(Debug, Clone)]
pub struct Login<'a> {
    /// User name.
    pub user: &'a str,
    /// Password.
    pub password: &'a [u8],
    /// Default schema, if any.
    pub database: Option<&'a str>,
    /// Collation id of the connection.
    pub collation: u8,
    /// Whether affected-row counts are "found" rather than "changed" rows (`CLIENT_FOUND_ROWS`).
    pub found_rows: bool,
    /// `max_packet_size` announced to the server.
    pub max_packet: u32,
}

/// A logged-in backend session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Capabilities both sides have.
    pub caps: CapabilityFlags,
    /// The server's version string.
    pub server_version: String,
    /// The server's id for this connection (what `KILL` takes).
    pub connection_id: u32,
}

/// Why logging in to a backend failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The connection failed or sent bad framing.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Writing failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// A packet did not parse.
    #[error(transparent)]
    Malformed(#[from] Malformed),
    /// The server closed the connection.
    #[error("the server closed the connection during the handshake")]
    Closed,
    /// The server refused the login.
    #[error("the server refused the login: error {code}: {message}")]
    Refused {
        /// Its error code.
        code: u16,
        /// Its message.
        message: String,
    },
    /// The server cannot serve the pooler.
    #[error("{0}")]
    Unsupported(String),
}

/// The server's greeting, read and checked: what the rest of the login needs.
#[derive(Debug)]
pub struct Greeting {
    /// The session as it will be once logged in.
    pub session: Session,
    /// Capabilities the server offers.
    pub offered: CapabilityFlags,
    nonce: Vec<u8>,
    method: AuthMethod,
    version: (u16, u16, u16),
    seq: Sequence,
}

/// Logs in on a fresh connection to a backend (no TLS).
pub async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut PacketConn<S>,
    login: &Login<'_>,
) -> Result<Session, LoginError> {
    let greeting = read_greeting(conn, login).await?;
    authenticate(conn, greeting, login, false).await
}

/// Reads and checks the server's greeting on a fresh connection.
pub async fn read_greeting<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut PacketConn<S>,
    login: &Login<'_>,
) -> Result<Greeting, LoginError> {
    let mut seq = Sequence::new();
    let payload = conn.read_packet(&mut seq).await?.ok_or(LoginError::Closed)?;
    if payload.first() == Some(&ERR_HEADER) {
        let (code, message) = packets::parse_err(&payload, CapabilityFlags::CLIENT_PROTOCOL_41)?;
        return Err(LoginError::Refused { code, message });
    }
    let hello: HandshakePacket<'_> =
        ParseBuf(&payload).parse(()).map_err(|e| Malformed::new("server greeting", e))?;
    let missing = REQUIRED - hello.capabilities();
    if !missing.is_empty() {
        return Err(LoginError::Unsupported(format!(
            "the server ({}) lacks {missing:?}, which the pooler needs to follow session state",
            hello.server_version_str()
        )));
    }
    let mut caps = WANTED & hello.capabilities();
    if login.found_rows {
        caps |= CapabilityFlags::CLIENT_FOUND_ROWS;
    }
    if login.database.is_some() {
        caps |= CapabilityFlags::CLIENT_CONNECT_WITH_DB;
    }
    Ok(Greeting {
        session: Session {
            caps,
            server_version: hello.server_version_str().into_owned(),
            connection_id: hello.connection_id(),
        },
        offered: hello.capabilities(),
        nonce: hello.nonce(),
        method: hello
            .auth_plugin_name_ref()
            .and_then(AuthMethod::from_name)
            .unwrap_or(AuthMethod::NativePassword),
        version: hello.server_version_parsed().unwrap_or((5, 7, 0)),
        seq,
    })
}

/// Asks the server to switch to TLS (MySQL's `SSLRequest`). The caller then runs the TLS
/// handshake on the same stream and continues with [`authenticate`] over TLS.
pub async fn request_tls<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut PacketConn<S>,
    greeting: &mut Greeting,
    login: &Login<'_>,
) -> Result<(), LoginError> {
    if !greeting.offered.contains(CapabilityFlags::CLIENT_SSL) {
        return Err(LoginError::Unsupported(format!(
            "the server ({}) does not offer TLS, and the pool asks for it",
            greeting.session.server_version
        )));
    }
    greeting.session.caps |= CapabilityFlags::CLIENT_SSL;
    let request = SslRequest::new(greeting.session.caps, login.max_packet, login.collation);
    let mut out = Vec::with_capacity(32);
    request.serialize(&mut out);
    conn.send(&mut greeting.seq, &out).await?;
    Ok(())
}

/// Sends the login and follows the server's auth exchange to OK. `secure` (TLS) allows
/// `caching_sha2_password`'s full authentication, which sends the password itself.
pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut PacketConn<S>,
    greeting: Greeting,
    login: &Login<'_>,
    secure: bool,
) -> Result<Session, LoginError> {
    let Greeting { session, nonce, method, version, mut seq, .. } = greeting;
    let (caps, mut nonce, mut method) = (session.caps, nonce, method);
    let response = HandshakeResponse::new(
        Some(method.scramble(&nonce, login.password)),
        version,
        Some(login.user.as_bytes()),
        login.database.map(str::as_bytes),
        Some(AuthPlugin::from_bytes(method.name().as_bytes())),
        caps,
        None,
        login.max_packet,
    );
    let mut out = Vec::with_capacity(128);
    response.serialize(&mut out);
    // The collation byte sits after capabilities (4) and max packet size (4).
    out[8] = login.collation;
    conn.send(&mut seq, &out).await?;

    loop {
        let payload = conn.read_packet(&mut seq).await?.ok_or(LoginError::Closed)?;
        match payload.first() {
            Some(&OK_HEADER) => return Ok(session),
            Some(&ERR_HEADER) => {
                let (code, message) = packets::parse_err(&payload, caps)?;
                return Err(LoginError::Refused { code, message });
            }
            Some(&0xFE) => {
                let switch: AuthSwitchRequest<'_> =
                    ParseBuf(&payload).parse(()).map_err(|e| Malformed::new("auth switch request", e))?;
                let name = switch.auth_plugin().as_bytes().to_vec();
                method = AuthMethod::from_name(&name).ok_or_else(|| {
                    LoginError::Unsupported(format!(
                        "the server asks for the auth method {}, which the pooler does not speak",
                        String::from_utf8_lossy(&name)
                    ))
                })?;
                nonce = switch.plugin_data().to_vec();
                conn.send(&mut seq, &method.scramble(&nonce, login.password)).await?;
            }
            Some(&0x01) if method == AuthMethod::CachingSha2Password => match payload.get(1) {
                Some(0x03) => {} // fast auth success: the OK follows
                Some(0x04) if secure => {
                    // Full authentication over TLS: the password itself, NUL-terminated.
                    let mut clear = login.password.to_vec();
                    clear.push(0);
                    conn.send(&mut seq, &clear).await?;
                }
                Some(0x04) => {
                    return Err(LoginError::Unsupported(
                        "the server wants full caching_sha2_password authentication (its cache is \
                         cold), which would send the password without TLS; log in once with a \
                         client over TLS or a socket, or use mysql_native_password for this user"
                            .to_owned(),
                    ));
                }
                _ => return Err(Malformed::new("caching_sha2_password data", "unknown status").into()),
            },
            _ => return Err(Malformed::new("login reply", "neither OK, ERR nor an auth request").into()),
        }
    }
}
