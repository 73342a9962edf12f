//! One workload's way out of its virtual network: every destination outside it is decided by the
//! workload's policy, names are resolved here and bound to their answers, and connections go only
//! to addresses that were decided.
//!
//! Denials are logged (`tracing`, target `switchyard::egress`) with the workload, the component,
//! the target, the rule that denied it and the entry that would allow it — at most
//! [`DENIAL_LOG_BURST`] at once and [`DENIAL_LOG_PER_SECOND`] a second per workload; the next line
//! written says how many were held back, so a tenant denied in a loop cannot flood the log.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use switchyard_policy::{
    Allowed, Decision, Denied, HostName, NameBindings, Policy, SocketDenied, SocketPath, Target,
};
use thiserror::Error;
use tokio::net::TcpStream;

use crate::denials::{DeniedEgress, RecentDenials};
use crate::dns::{DnsError, Resolver};
use crate::log_budget::LogGate;

/// Names a workload's DNS answers may bind at once (the oldest expire first).
pub const MAX_BOUND_NAMES: usize = 4096;
/// Denial log lines of one workload written at once.
pub const DENIAL_LOG_BURST: u32 = 20;
/// Denial log lines of one workload written a second, in the long run.
pub const DENIAL_LOG_PER_SECOND: u32 = 5;

/// The egress gate of one workload. Shared (`Arc`) by all its guests, forwards and services.
#[derive(Debug)]
pub struct Egress {
    workload: Arc<str>,
    policy: RwLock<Arc<Policy>>,
    denials: RecentDenials,
    bindings: Mutex<NameBindings>,
    resolver: Resolver,
    connect_timeout: Duration,
    denial_log: LogGate,
}

/// Why a guest's name lookup gave no addresses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LookupError {
    /// The string is not a valid DNS name (`invalid-argument`).
    #[error("workload `{workload}`: `{name}` is not a valid host name")]
    InvalidName {
        /// The workload.
        workload: String,
        /// What was asked.
        name: String,
    },
    /// No allowed_hosts entry covers the name (`access-denied`).
    #[error(
        "workload `{workload}`: lookup of `{name}` denied: no allowed_hosts entry covers it (add one such as `tcp://{name}:PORT`)"
    )]
    Denied {
        /// The workload.
        workload: String,
        /// The name.
        name: String,
    },
    /// The name resolved to an address in a blocked network (`access-denied`).
    #[error(
        "workload `{workload}`: lookup of `{name}` denied: it resolved to {addr}, which is in blocked network {network} (deny_networks)"
    )]
    Blocked {
        /// The workload.
        workload: String,
        /// The name.
        name: String,
        /// The blocked address.
        addr: IpAddr,
        /// The blocked network containing it.
        network: ipnet::IpNet,
    },
    /// Resolution failed.
    #[error("workload `{workload}`: {error}")]
    Dns {
        /// The workload.
        workload: String,
        /// What failed.
        error: DnsError,
    },
}

/// Why an egress connect failed.
#[derive(Debug, Error)]
pub enum EgressError {
    /// Policy denied the target (`access-denied`).
    #[error("workload `{workload}`: {denied}")]
    Denied {
        /// The workload.
        workload: String,
        /// The decision.
        denied: Box<Denied>,
    },
    /// The connect did not finish within the timeout (`timeout`).
    #[error("workload `{workload}`: connecting to {addr} took longer than {timeout:?}")]
    Timeout {
        /// The workload.
        workload: String,
        /// The address.
        addr: SocketAddr,
        /// The timeout.
        timeout: Duration,
    },
    /// The connect failed.
    #[error("workload `{workload}`: connecting to {addr} failed: {error}")]
    Io {
        /// The workload.
        workload: String,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
}

/// Why a connect to a unix socket failed.
#[derive(Debug, Error)]
pub enum SocketEgressError {
    /// No `unix:/path` entry allows the socket.
    #[error("workload `{workload}`: {denied}")]
    Denied {
        /// The workload.
        workload: String,
        /// The decision.
        denied: SocketDenied,
    },
    /// The connect did not finish within the timeout.
    #[error("workload `{workload}`: connecting to {path} took longer than {timeout:?}")]
    Timeout {
        /// The workload.
        workload: String,
        /// The socket.
        path: SocketPath,
        /// The timeout.
        timeout: Duration,
    },
    /// The connect failed.
    #[error("workload `{workload}`: connecting to {path} failed: {error}")]
    Io {
        /// The workload.
        workload: String,
        /// The socket.
        path: SocketPath,
        /// The OS error.
        error: std::io::Error,
    },
}

impl Egress {
    /// The gate of `workload`, deciding by `policy`, resolving with `resolver`, and giving each
    /// connect attempt at most `connect_timeout`.
    pub fn new(
        workload: impl Into<Arc<str>>,
        policy: Policy,
        resolver: Resolver,
        connect_timeout: Duration,
    ) -> Arc<Self> {
        let workload: Arc<str> = workload.into();
        let tenant = workload.clone();
        let denial_log = LogGate::new(DENIAL_LOG_PER_SECOND, DENIAL_LOG_BURST, move |held_back| {
            tracing::warn!(
                target: "switchyard::egress",
                tenant = %tenant,
                suppressed = held_back,
                "{held_back} more egress denials of this tenant were not logged (at most {DENIAL_LOG_PER_SECOND} a second)",
            );
        });
        Arc::new(Egress {
            workload,
            policy: RwLock::new(Arc::new(policy)),
            denials: RecentDenials::default(),
            bindings: Mutex::new(NameBindings::new(MAX_BOUND_NAMES)),
            resolver,
            connect_timeout,
            denial_log,
        })
    }

    /// The workload's name.
    pub fn workload(&self) -> &str {
        &self.workload
    }

    /// The policy in force: every decision from now on is made by it.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Puts `policy` in force for every later decision (a config reload). Connections already
    /// made stay; names bound by earlier lookups stay bound (they are DNS facts, not rules).
    pub fn replace_policy(&self, policy: Policy) {
        *self.policy.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(policy);
    }

    /// The last denials of this workload, oldest first (at most [`crate::denials::RECENT_DENIALS`]).
    pub fn recent_denials(&self) -> Vec<DeniedEgress> {
        self.denials.recent()
    }

    /// How many egress attempts of this workload were denied so far.
    pub fn denied_total(&self) -> u64 {
        self.denials.total()
    }

    fn bindings(&self) -> MutexGuard<'_, NameBindings> {
        // No code panics while holding the lock, so a poisoned table is still consistent.
        self.bindings.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Decides `target` with the names bound so far.
    pub fn decide(&self, target: &Target) -> Decision {
        self.policy().decide_with(target, &self.bindings(), Instant::now())
    }

    /// Decides `target` for `component`; a denial is logged with what would allow it.
    pub fn check(&self, component: &str, target: &Target) -> Result<Allowed, Denied> {
        self.decide(target).into_result().inspect_err(|denied| self.log_denied(component, denied))
    }

    /// Whether a denial line may be written now (the gate reports the lines it holds back).
    fn denial_log_allows(&self) -> bool {
        self.denial_log.allows()
    }

    /// Logs a denial (one line, with the rule and the suggested entry), within the workload's
    /// denial log budget.
    pub fn log_denied(&self, component: &str, denied: &Denied) {
        self.denials.record(component, denied.target.to_string(), denied.to_string());
        if !self.denial_log_allows() {
            return;
        }
        tracing::warn!(
            target: "switchyard::egress",
            tenant = %self.workload,
            component,
            target = %denied.target,
            suggestion = denied.suggestion().map(|e| e.to_string()).unwrap_or_default(),
            "egress denied: {denied}",
        );
    }

    /// Answers a guest's lookup of `name`: `localhost` is the virtual loopback; an address is
    /// itself; any other name must be covered by an allowed_hosts entry, is resolved, must not
    /// resolve into a blocked network, and its addresses are bound to it for later decisions.
    pub async fn lookup(&self, component: &str, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let literal = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let workload = || self.workload.to_string();
        let host = HostName::parse(name)
            .map_err(|_| LookupError::InvalidName { workload: workload(), name: name.to_owned() })?;
        if host.as_str() == "localhost" {
            return Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)]);
        }
        if self.policy().allows_lookup(&host).is_none() {
            self.denials.record(
                component,
                format!("dns:{host}"),
                "no allowed_hosts entry covers this name".to_owned(),
            );
            if !self.denial_log_allows() {
                return Err(LookupError::Denied { workload: workload(), name: host.to_string() });
            }
            tracing::warn!(
                target: "switchyard::egress",
                tenant = %self.workload,
                component,
                name = host.as_str(),
                "DNS lookup denied: no allowed_hosts entry covers `{host}`",
            );
            return Err(LookupError::Denied { workload: workload(), name: host.to_string() });
        }
        let answer = self
            .resolver
            .resolve(&host)
            .await
            .map_err(|error| LookupError::Dns { workload: workload(), error })?;
        if let Some((addr, network)) = self.policy().first_blocked(answer.addrs.iter().copied()) {
            let error = LookupError::Blocked { workload: workload(), name: host.to_string(), addr, network };
            self.denials.record(component, format!("dns:{host}"), error.to_string());
            if self.denial_log_allows() {
                tracing::warn!(target: "switchyard::egress", tenant = %self.workload, component, "{error}");
            }
            return Err(error);
        }
        self.bindings().bind(&host, &answer.addrs, answer.ttl, Instant::now());
        Ok(answer.addrs)
    }

    /// Resolves `host` (for a forward or a pool backend) and binds its addresses to it, so that
    /// deciding each address afterwards sees the name. The caller decides every address before
    /// connecting to it.
    pub async fn resolve(&self, host: &HostName) -> Result<crate::dns::Answer, DnsError> {
        let answer = self.resolver.resolve(host).await?;
        self.bindings().bind(host, &answer.addrs, answer.ttl, Instant::now());
        Ok(answer)
    }

    /// Decides `tcp://addr` for `component` and connects to it within the connect timeout.
    pub async fn connect_tcp(&self, component: &str, addr: SocketAddr) -> Result<TcpStream, EgressError> {
        self.check(component, &Target::tcp(addr)).map_err(|denied| EgressError::Denied {
            workload: self.workload.to_string(),
            denied: Box::new(denied),
        })?;
        self.connect_decided(addr).await
    }

    /// Decides the unix socket `path` for `component` (only a `unix:/path` entry naming it
    /// allows it; a denial is logged like any other) and connects to it within the connect
    /// timeout. Only the host's own declared pieces (a pool's `mysql+unix://` backend) connect
    /// to sockets: guests have no unix sockets.
    pub async fn connect_socket(
        &self,
        component: &str,
        path: &SocketPath,
    ) -> Result<tokio::net::UnixStream, SocketEgressError> {
        let workload = || self.workload.to_string();
        if let Err(denied) = self.policy().decide_socket(path) {
            self.denials.record(component, format!("unix:{}", path.as_str()), denied.to_string());
            if self.denial_log_allows() {
                tracing::warn!(
                    target: "switchyard::egress",
                    tenant = %self.workload,
                    component,
                    target = %denied.path,
                    suggestion = %denied.path,
                    "egress denied: {denied}",
                );
            }
            return Err(SocketEgressError::Denied { workload: workload(), denied });
        }
        let timeout = self.connect_timeout;
        match tokio::time::timeout(timeout, tokio::net::UnixStream::connect(path.as_str())).await {
            Err(_) => Err(SocketEgressError::Timeout { workload: workload(), path: path.clone(), timeout }),
            Ok(Err(error)) => Err(SocketEgressError::Io { workload: workload(), path: path.clone(), error }),
            Ok(Ok(stream)) => Ok(stream),
        }
    }

    /// Connects to an address that has already been decided, within the connect timeout.
    pub(crate) async fn connect_decided(&self, addr: SocketAddr) -> Result<TcpStream, EgressError> {
        self.connect_within(addr, self.connect_timeout).await
    }

    /// Connects to an address that has already been decided, within `timeout`.
    pub(crate) async fn connect_within(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<TcpStream, EgressError> {
        let workload = self.workload.to_string();
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Err(_) => Err(EgressError::Timeout { workload, addr, timeout }),
            Ok(Err(error)) => Err(EgressError::Io { workload, addr, error }),
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
        }
    }
}
