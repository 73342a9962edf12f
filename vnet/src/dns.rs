//! Name resolution for egress (guest lookups and forwards): `hickory-resolver` with the system's
//! configuration (`/etc/resolv.conf`, `/etc/hosts`), every lookup bounded by a timeout, and the
//! answer's TTL kept so that name bindings expire with it. Fixed answers declared in the config
//! (`dns.hosts`) are consulted first.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::ResolverConfig;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use switchyard_policy::HostName;
use thiserror::Error;

/// The longest a resolved name stays bound, whatever TTL the answer carried (hosts-file answers
/// carry a very long one).
pub const MAX_TTL: Duration = Duration::from_secs(300);

/// A DNS resolver shared by every workload of a host. Cheap to clone.
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
    timeout: Duration,
    fixed: Arc<BTreeMap<HostName, Vec<IpAddr>>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("timeout", &self.timeout)
            .field("fixed", &self.fixed)
            .finish_non_exhaustive()
    }
}

/// What a lookup answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The addresses, in the resolver's order (at least one).
    pub addrs: Vec<IpAddr>,
    /// How long the answer may be used (at most [`MAX_TTL`]).
    pub ttl: Duration,
}

/// Why a lookup gave no addresses; each names the name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DnsError {
    /// The name does not exist or has no address records (`name-unresolvable`).
    #[error("DNS: `{name}` has no address records")]
    NotFound {
        /// The name looked up.
        name: String,
    },
    /// The resolver did not answer in time (`temporary-resolver-failure`).
    #[error("DNS: looking up `{name}` took longer than {timeout:?}")]
    Timeout {
        /// The name looked up.
        name: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// Any other resolver failure (`temporary-resolver-failure`).
    #[error("DNS: looking up `{name}` failed: {message}")]
    Failed {
        /// The name looked up.
        name: String,
        /// The resolver's error.
        message: String,
    },
    /// The system resolver configuration could not be read.
    #[error("DNS: cannot read the system resolver configuration: {0}")]
    Config(String),
}

impl Resolver {
    /// A resolver with the system's configuration; each lookup gives up after `timeout`.
    ///
    /// Must be called inside a tokio runtime.
    pub fn system(timeout: Duration) -> Result<Self, DnsError> {
        let mut builder = TokioResolver::builder_tokio().map_err(|e| DnsError::Config(e.to_string()))?;
        builder.options_mut().timeout = timeout;
        let inner = builder.build().map_err(|e| DnsError::Config(e.to_string()))?;
        Ok(Resolver { inner, timeout, fixed: Arc::default() })
    }

    /// A resolver that asks no name server: only the hosts file answers (for hosts without
    /// `/etc/resolv.conf`, and for tests that must not leave the machine).
    pub fn hosts_file_only(timeout: Duration) -> Result<Self, DnsError> {
        let config = ResolverConfig::from_parts(None, vec![], vec![]);
        let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        builder.options_mut().timeout = timeout;
        let inner = builder.build().map_err(|e| DnsError::Config(e.to_string()))?;
        Ok(Resolver { inner, timeout, fixed: Arc::default() })
    }

    /// This resolver, answering the names in `fixed` with their addresses (TTL [`MAX_TTL`])
    /// before asking anything else. Names with an empty list are ignored.
    pub fn with_fixed_answers(mut self, fixed: BTreeMap<HostName, Vec<IpAddr>>) -> Self {
        self.fixed = Arc::new(fixed.into_iter().filter(|(_, addrs)| !addrs.is_empty()).collect());
        self
    }

    /// Resolves `name` to its addresses, within the timeout.
    pub async fn resolve(&self, name: &HostName) -> Result<Answer, DnsError> {
        if let Some(addrs) = self.fixed.get(name) {
            return Ok(Answer { addrs: addrs.clone(), ttl: MAX_TTL });
        }
        let text = name.as_str();
        // A trailing dot makes the name absolute: no search-domain queries.
        let fqdn = format!("{text}.");
        let lookup = tokio::time::timeout(self.timeout, self.inner.lookup_ip(fqdn.as_str()))
            .await
            .map_err(|_| DnsError::Timeout { name: text.to_owned(), timeout: self.timeout })?
            .map_err(|e| {
                if e.is_no_records_found() {
                    DnsError::NotFound { name: text.to_owned() }
                } else {
                    DnsError::Failed { name: text.to_owned(), message: e.to_string() }
                }
            })?;
        let addrs: Vec<IpAddr> = lookup.iter().collect();
        if addrs.is_empty() {
            return Err(DnsError::NotFound { name: text.to_owned() });
        }
        let ttl = lookup.valid_until().saturating_duration_since(Instant::now()).min(MAX_TTL);
        Ok(Answer { addrs, ttl })
    }
}
