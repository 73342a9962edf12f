//! Destinations that a decision is asked about: `scheme://host:port`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use thiserror::Error;

use crate::address::canonical_ip;
use crate::name::{HostName, NameError};
use crate::port::{PortError, parse_port};
use crate::scheme::{Scheme, SchemeError};
use crate::syntax::{self, SyntaxError};

/// The host of a target: a canonical name, or a canonical address (IPv4-mapped IPv6 as IPv4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TargetHost {
    /// A DNS name.
    Name(HostName),
    /// An IP address.
    Addr(IpAddr),
}

/// A concrete destination: one scheme, one host, one port. Always canonical.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    scheme: Scheme,
    host: TargetHost,
    port: u16,
}

/// Why a target was rejected; the message names the target and the part that is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid target `{target}`: {kind}")]
pub struct TargetError {
    /// The target as given.
    pub target: String,
    /// What is wrong with it.
    pub kind: TargetErrorKind,
}

/// The part of a target that is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TargetErrorKind {
    /// The overall shape.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// No `scheme://`.
    #[error("a target needs a scheme, e.g. `tcp://10.1.2.3:5432` or `https://api.example.com`")]
    MissingScheme,
    /// The scheme.
    #[error(transparent)]
    Scheme(#[from] SchemeError),
    /// A pattern where a concrete destination is needed.
    #[error("a target names one destination: `*`, `*.name`, ranges and networks are for entries")]
    Pattern,
    /// No port and the scheme has no default one.
    #[error("scheme `{0}` has no default port: give one, e.g. `{0}://host:1234`")]
    NoDefaultPort(Scheme),
    /// The port.
    #[error(transparent)]
    Port(#[from] PortError),
    /// An IPv6 address without brackets.
    #[error("an IPv6 address in a target is written in brackets, e.g. `tcp://[::1]:5432`")]
    UnbracketedIpv6,
    /// Something in brackets that is not an IPv6 address.
    #[error("`{0}` is not a valid IPv6 address")]
    BadIpv6(String),
    /// The host name.
    #[error(transparent)]
    Name(#[from] NameError),
}

impl Target {
    /// A target; an IPv4-mapped IPv6 address is stored as its IPv4 address.
    pub fn new(scheme: Scheme, host: TargetHost, port: u16) -> Self {
        let host = match host {
            TargetHost::Addr(addr) => TargetHost::Addr(canonical_ip(addr)),
            name => name,
        };
        Target { scheme, host, port }
    }

    /// The target of a raw TCP connect to `addr`.
    pub fn tcp(addr: SocketAddr) -> Self {
        Target::new(Scheme::tcp(), TargetHost::Addr(addr.ip()), addr.port())
    }

    /// The scheme.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// The host.
    pub fn host(&self) -> &TargetHost {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

fn parse_target(text: &str) -> Result<Target, TargetErrorKind> {
    let parts = syntax::split(text)?;
    let scheme = Scheme::parse(parts.scheme.ok_or(TargetErrorKind::MissingScheme)?)?;
    let host_text = parts.host.text;
    if host_text.contains('*') || host_text.contains('/') {
        return Err(TargetErrorKind::Pattern);
    }
    let host = if parts.host.bracketed {
        let v6 = host_text.parse::<Ipv6Addr>().map_err(|_| TargetErrorKind::BadIpv6(host_text.to_owned()))?;
        TargetHost::Addr(IpAddr::V6(v6))
    } else if host_text.contains(':') {
        return Err(TargetErrorKind::UnbracketedIpv6);
    } else if let Ok(v4) = host_text.parse::<Ipv4Addr>() {
        TargetHost::Addr(IpAddr::V4(v4))
    } else {
        TargetHost::Name(HostName::parse(host_text)?)
    };
    let port = match parts.port {
        Some(p) if p.contains('-') => return Err(TargetErrorKind::Pattern),
        Some(p) => parse_port(p)?,
        None => scheme.default_port().ok_or_else(|| TargetErrorKind::NoDefaultPort(scheme.clone()))?,
    };
    Ok(Target::new(scheme, host, port))
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_target(text).map_err(|kind| TargetError { target: text.to_owned(), kind })
    }
}

impl fmt::Display for TargetHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetHost::Name(n) => write!(f, "{n}"),
            TargetHost::Addr(IpAddr::V4(a)) => write!(f, "{a}"),
            TargetHost::Addr(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> TargetErrorKind {
        text.parse::<Target>().unwrap_err().kind
    }

    #[test]
    fn parses_and_canonicalises_targets() {
        let t: Target = "https://API.Example.com.".parse().unwrap();
        assert_eq!(t.to_string(), "https://api.example.com:443");
        let t: Target = "tcp://[::ffff:10.1.2.3]:5432".parse().unwrap();
        assert_eq!(t.to_string(), "tcp://10.1.2.3:5432");
        assert_eq!("mysql://db.internal".parse::<Target>().unwrap().port(), 3306);
        assert_eq!("tcp://[::1]:80".parse::<Target>().unwrap().to_string(), "tcp://[::1]:80");
    }

    #[test]
    fn rejects_incomplete_or_pattern_targets() {
        assert_eq!(kind("tcp://db.internal"), TargetErrorKind::NoDefaultPort(Scheme::tcp()));
        assert_eq!(kind("db.internal:5432"), TargetErrorKind::MissingScheme);
        assert_eq!(kind("tcp://*.x:1"), TargetErrorKind::Pattern);
        assert_eq!(kind("tcp://10.0.0.0/8:1"), TargetErrorKind::Pattern);
        assert_eq!(kind("tcp://x:1-2"), TargetErrorKind::Pattern);
        assert_eq!(kind("tcp://::1"), TargetErrorKind::UnbracketedIpv6);
        assert!(matches!(kind("tcp://x:0"), TargetErrorKind::Port(_)));
        assert!(matches!(kind("https://x/path"), TargetErrorKind::Syntax(_)));
    }
}
