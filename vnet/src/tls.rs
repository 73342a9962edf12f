//! TLS origination (`rustls`): for forwards with `tls`, and for guests' outgoing HTTPS. The
//! server's certificate is always verified, against the webpki roots or a configured CA, for the
//! name the connection was declared with (also sent as SNI).

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Why a TLS client could not be set up or a handshake failed.
#[derive(Debug, Error)]
pub enum TlsError {
    /// The CA file could not be read or holds no certificate.
    #[error("TLS: cannot use CA file {path}: {message}")]
    Ca {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The crypto provider refused the configuration.
    #[error("TLS: cannot build a client configuration: {0}")]
    Config(String),
    /// The server name is not a valid DNS name or address.
    #[error("TLS: `{0}` is not a valid server name")]
    ServerName(String),
    /// The handshake failed (includes certificate verification failures).
    #[error("TLS handshake with `{server}` failed: {error}")]
    Handshake {
        /// The server name.
        server: String,
        /// The error.
        error: io::Error,
    },
}

/// A TLS client configuration, cheap to clone.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsClient")
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsClient {
    /// Trusts the Mozilla roots shipped in `webpki-roots`.
    pub fn webpki() -> Result<Self, TlsError> {
        let roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        Self::with_roots(roots)
    }

    /// Trusts only the certificates in the PEM file at `path`.
    pub fn with_ca_file(path: &Path) -> Result<Self, TlsError> {
        let ca_error = |message: String| TlsError::Ca { path: path.display().to_string(), message };
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| ca_error(e.to_string()))?;
        for cert in certs {
            let cert = cert.map_err(|e| ca_error(e.to_string()))?;
            roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(ca_error("no certificate found".into()));
        }
        Self::with_roots(roots)
    }

    fn with_roots(roots: RootCertStore) -> Result<Self, TlsError> {
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsClient { connector: TlsConnector::from(Arc::new(config)) })
    }

    /// The rustls connector, for protocols that start TLS inside their own handshake (MySQL's
    /// `SSLRequest`) rather than on a fresh connection.
    pub fn connector(&self) -> TlsConnector {
        self.connector.clone()
    }

    /// Runs the client handshake over `stream` for `server_name`.
    pub async fn connect<S>(&self, server_name: &str, stream: S) -> Result<TlsStream<S>, TlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| TlsError::ServerName(server_name.to_owned()))?;
        self.connector
            .connect(name, stream)
            .await
            .map_err(|error| TlsError::Handshake { server: server_name.to_owned(), error })
    }
}
