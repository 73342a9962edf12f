//! Name resolution for egress (guest lookups and forwards): `hickory-resolver` with the system's
//! configuration (`/etc/resolv.conf`, `/etc/hosts`), every lookup bounded by a timeout, and the
//! answer's TTL kept so that name bindings expire with it. Fixed answers declared in the config
//! (`dns.hosts`) are consulted first.
//!
//! Each workload resolves through its own [`Resolver::for_workload`], whose answer cache is its
//! own: one tenant's lookups never warm another's, so the time a lookup takes tells a tenant
//! nothing about which names other tenants use. A workload's cache holds at most
//! [`CACHE_RESPONSES`] responses.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use switchyard_policy::HostName;
use thiserror::Error;

/// The longest a resolved name stays bound, whatever TTL the answer carried (hosts-file answers
/// carry a very long one).
pub const MAX_TTL: Duration = Duration::from_secs(300);

/// The most DNS responses one workload's resolver keeps cached.
pub const CACHE_RESPONSES: u64 = 256;

/// A DNS resolver with an answer cache of its own. Cheap to clone; a clone shares the cache, so a
/// workload gets a new one from [`Resolver::for_workload`] instead.
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
    config: ResolverConfig,
    options: ResolverOpts,
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
    /// Whether the answer is one the config declared (`dns.hosts`), not one DNS gave.
    pub fixed: bool,
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
        let (config, options) =
            hickory_resolver::system_conf::read_system_conf().map_err(|e| DnsError::Config(e.to_string()))?;
        Resolver::new(config, options, timeout)
    }

    /// A resolver that asks no name server: only the hosts file answers (for hosts without
    /// `/etc/resolv.conf`, and for tests that must not leave the machine).
    pub fn hosts_file_only(timeout: Duration) -> Result<Self, DnsError> {
        Resolver::new(ResolverConfig::from_parts(None, vec![], vec![]), ResolverOpts::default(), timeout)
    }

    /// A resolver asking exactly these name servers over UDP (for example one on loopback).
    pub fn with_name_servers(servers: &[SocketAddr], timeout: Duration) -> Result<Self, DnsError> {
        let servers = servers
            .iter()
            .map(|addr| {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                NameServerConfig::new(addr.ip(), true, vec![udp])
            })
            .collect();
        Resolver::new(ResolverConfig::from_parts(None, vec![], servers), ResolverOpts::default(), timeout)
    }

    fn new(config: ResolverConfig, mut options: ResolverOpts, timeout: Duration) -> Result<Self, DnsError> {
        options.timeout = timeout;
        options.cache_size = CACHE_RESPONSES;
        let inner = build(&config, &options)?;
        Ok(Resolver { inner, config, options, timeout, fixed: Arc::default() })
    }

    /// A resolver for one workload: the same name servers, options and fixed answers as this one,
    /// and an empty cache that no other workload shares.
    pub fn for_workload(&self) -> Result<Self, DnsError> {
        Ok(Resolver { inner: build(&self.config, &self.options)?, ..self.clone() })
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
            return Ok(Answer { addrs: addrs.clone(), ttl: MAX_TTL, fixed: true });
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
        Ok(Answer { addrs, ttl, fixed: false })
    }
}

fn build(config: &ResolverConfig, options: &ResolverOpts) -> Result<TokioResolver, DnsError> {
    let mut builder = TokioResolver::builder_with_config(config.clone(), TokioRuntimeProvider::default());
    *builder.options_mut() = options.clone();
    builder.build().map_err(|e| DnsError::Config(e.to_string()))
}
