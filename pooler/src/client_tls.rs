//! TLS for a pool's clients: the server side of MySQL's in-protocol TLS, as MariaDB does it.
//! The greeting offers `CLIENT_SSL`; a client that wants TLS answers with an `SSLRequest` (the
//! first 32 bytes of its handshake response), both sides run a TLS handshake on the same
//! connection, and the login goes on inside TLS. A pool that requires TLS refuses a client that
//! does not ask for it, before the client sends its password's scramble.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// A pool's TLS for its clients: a certificate and key, and whether plain clients are refused.
#[derive(Clone)]
pub struct ClientTls {
    acceptor: TlsAcceptor,
    required: bool,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").field("required", &self.required).finish_non_exhaustive()
    }
}

/// Why a pool's TLS could not be set up; names the file.
#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
    /// The certificate chain file could not be read or holds no certificate.
    #[error("certificate {path}: {message}")]
    Certificate {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The key file could not be read or holds no private key.
    #[error("private key {path}: {message}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the pair (the key does not match the certificate, ...).
    #[error("certificate and key: {0}")]
    Pair(String),
}

impl ClientTls {
    /// TLS with the PEM certificate chain at `cert` and the PEM private key at `key`;
    /// `required`: clients that do not start TLS are refused.
    pub fn from_pem_files(cert: &Path, key: &Path, required: bool) -> Result<Self, ClientTlsError> {
        let cert_error =
            |message: String| ClientTlsError::Certificate { path: cert.display().to_string(), message };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| cert_error(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| cert_error(e.to_string()))?;
        if chain.is_empty() {
            return Err(cert_error("no certificate in the file".to_owned()));
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| ClientTlsError::Key { path: key.display().to_string(), message: e.to_string() })?;
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| ClientTlsError::Pair(e.to_string()))?
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .map_err(|e| ClientTlsError::Pair(e.to_string()))?;
        Ok(ClientTls { acceptor: TlsAcceptor::from(Arc::new(config)), required })
    }

    /// Whether clients that do not start TLS are refused.
    pub fn required(&self) -> bool {
        self.required
    }

    /// The acceptor that runs the server side of a TLS handshake.
    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}
