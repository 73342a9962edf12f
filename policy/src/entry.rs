//! The allow-list grammar: `*` or `[scheme://]host[:port]`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use thiserror::Error;

use crate::address::{canonical_ip, canonical_net};
use crate::name::{HostName, NameError};
use crate::port::{PortError, PortPattern};
use crate::scheme::{Scheme, SchemeError};
use crate::syntax::{self, HostText, SyntaxError};
use crate::target::{Target, TargetHost};

/// Which schemes an entry allows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SchemePattern {
    /// No scheme, or `*`: every scheme.
    Any,
    /// One scheme (and, for `tcp`, every scheme carried over TCP).
    Exact(Scheme),
}

/// Which hosts an entry allows. Names and addresses are kept in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `*`: every host, by name or by address.
    Any,
    /// Exactly this name.
    Name(HostName),
    /// `*.suffix`: every name with one or more labels before `suffix`, never `suffix` itself.
    Suffix(HostName),
    /// Exactly this address (IPv4-mapped IPv6 stored as IPv4).
    Addr(IpAddr),
    /// Every address in this network (no host bits set; IPv4-mapped stored as IPv4).
    Net(IpNet),
}

/// One allow-list entry, in canonical form.
///
/// The port is kept as written (`None` when absent) so that `Display` round-trips; what it means is
/// [`AllowedHost::effective_port`]: the written pattern, else the scheme's default port, else any.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AllowedHost {
    scheme: SchemePattern,
    host: HostPattern,
    port: Option<PortPattern>,
}

/// Why an entry was rejected; the message names the entry and the part that is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid allowed-hosts entry `{entry}`: {kind}")]
pub struct EntryError {
    /// The entry as given.
    pub entry: String,
    /// What is wrong with it.
    pub kind: EntryErrorKind,
}

/// The part of an entry that is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EntryErrorKind {
    /// The overall shape.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// The scheme.
    #[error(transparent)]
    Scheme(#[from] SchemeError),
    /// The host name.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The port or port range.
    #[error(transparent)]
    Port(#[from] PortError),
    /// A bracketed or colon-separated host that is not an IPv6 address or network.
    #[error("`{0}` is not a valid IPv6 address or network")]
    BadIpv6(String),
    /// Brackets around something that is not IPv6.
    #[error("brackets are only for IPv6 addresses; write `{0}` without them")]
    BracketedNonIpv6(String),
    /// A `/` after something that is not a valid network.
    #[error("`{0}` is not a valid network: write it as address/prefix-length, e.g. 10.0.0.0/8")]
    BadNetwork(String),
    /// A CIDR whose address has bits set below the prefix.
    #[error("network `{given}` has host bits set; did you mean `{network}`?")]
    HostBitsSet {
        /// The network as written.
        given: String,
        /// The network address it was probably meant to be.
        network: IpNet,
    },
}

impl AllowedHost {
    /// The entry `*`: every scheme, host and port.
    pub fn any() -> Self {
        AllowedHost { scheme: SchemePattern::Any, host: HostPattern::Any, port: None }
    }

    /// The narrowest entry that allows `target`: its scheme, its exact host and its port.
    pub fn exactly(target: &Target) -> Self {
        let host = match target.host() {
            TargetHost::Name(name) => HostPattern::Name(name.clone()),
            TargetHost::Addr(addr) => HostPattern::Addr(*addr),
        };
        AllowedHost {
            scheme: SchemePattern::Exact(target.scheme().clone()),
            host,
            port: Some(PortPattern::single(target.port())),
        }
    }

    /// The schemes allowed.
    pub fn scheme(&self) -> &SchemePattern {
        &self.scheme
    }

    /// The hosts allowed.
    pub fn host(&self) -> &HostPattern {
        &self.host
    }

    /// The port pattern as written, `None` when the entry names no port.
    pub fn written_port(&self) -> Option<PortPattern> {
        self.port
    }

    /// The ports allowed: as written, else the scheme's default port, else every port.
    pub fn effective_port(&self) -> PortPattern {
        self.port.unwrap_or(match &self.scheme {
            SchemePattern::Exact(s) => s.default_port().map_or(PortPattern::Any, PortPattern::single),
            SchemePattern::Any => PortPattern::Any,
        })
    }

    /// Whether the entry allows this scheme and port (whatever the host).
    pub fn allows_scheme_and_port(&self, scheme: &Scheme, port: u16) -> bool {
        let scheme_ok = match &self.scheme {
            SchemePattern::Any => true,
            SchemePattern::Exact(s) => s.allows(scheme),
        };
        scheme_ok && self.effective_port().contains(port)
    }

    /// Whether the host pattern covers this name. Address patterns never match names.
    pub fn matches_name(&self, name: &HostName) -> bool {
        match &self.host {
            HostPattern::Any => true,
            HostPattern::Name(n) => n == name,
            HostPattern::Suffix(s) => name.parent_suffixes().any(|p| p == s.as_str()),
            HostPattern::Addr(_) | HostPattern::Net(_) => false,
        }
    }

    /// Whether the host pattern covers this (canonical) address. Name patterns never match addresses.
    pub fn matches_addr(&self, addr: IpAddr) -> bool {
        match &self.host {
            HostPattern::Any => true,
            HostPattern::Addr(a) => *a == addr,
            HostPattern::Net(n) => n.contains(&addr),
            HostPattern::Name(_) | HostPattern::Suffix(_) => false,
        }
    }

    /// Whether this entry alone allows `target`, ignoring blocked networks and name bindings.
    pub fn matches(&self, target: &Target) -> bool {
        let host_ok = match target.host() {
            TargetHost::Name(name) => self.matches_name(name),
            TargetHost::Addr(addr) => self.matches_addr(*addr),
        };
        host_ok && self.allows_scheme_and_port(target.scheme(), target.port())
    }
}

fn parse_host(host: HostText<'_>) -> Result<HostPattern, EntryErrorKind> {
    let text = host.text;
    if host.bracketed {
        return parse_ipv6(text).map_err(|kind| match kind {
            EntryErrorKind::BadIpv6(_)
                if text.parse::<IpNet>().is_ok() || text.parse::<Ipv4Addr>().is_ok() =>
            {
                EntryErrorKind::BracketedNonIpv6(text.to_owned())
            }
            other => other,
        });
    }
    if text == "*" {
        return Ok(HostPattern::Any);
    }
    if let Some(suffix) = text.strip_prefix("*.") {
        return Ok(HostPattern::Suffix(HostName::parse(suffix)?));
    }
    if text.contains(':') {
        return parse_ipv6(text);
    }
    if text.contains('/') {
        return parse_net(text);
    }
    if let Ok(v4) = text.parse::<Ipv4Addr>() {
        return Ok(HostPattern::Addr(IpAddr::V4(v4)));
    }
    Ok(HostPattern::Name(HostName::parse(text)?))
}

fn parse_ipv6(text: &str) -> Result<HostPattern, EntryErrorKind> {
    if text.contains('/') {
        if text.parse::<IpNet>().is_ok_and(|n| matches!(n, IpNet::V6(_))) {
            return parse_net(text);
        }
        return Err(EntryErrorKind::BadIpv6(text.to_owned()));
    }
    match text.parse::<Ipv6Addr>() {
        Ok(v6) => Ok(HostPattern::Addr(canonical_ip(IpAddr::V6(v6)))),
        Err(_) => Err(EntryErrorKind::BadIpv6(text.to_owned())),
    }
}

fn parse_net(text: &str) -> Result<HostPattern, EntryErrorKind> {
    let net: IpNet = text.parse().map_err(|_| EntryErrorKind::BadNetwork(text.to_owned()))?;
    if net.trunc() != net {
        return Err(EntryErrorKind::HostBitsSet { given: text.to_owned(), network: net.trunc() });
    }
    Ok(HostPattern::Net(canonical_net(net)))
}

fn parse_entry(text: &str) -> Result<AllowedHost, EntryErrorKind> {
    if text == "*" {
        return Ok(AllowedHost::any());
    }
    let parts = syntax::split(text)?;
    let scheme = match parts.scheme {
        None | Some("*") => SchemePattern::Any,
        Some(s) => SchemePattern::Exact(Scheme::parse(s)?),
    };
    let host = parse_host(parts.host)?;
    let port = parts.port.map(PortPattern::parse).transpose()?;
    Ok(AllowedHost { scheme, host, port })
}

impl FromStr for AllowedHost {
    type Err = EntryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_entry(text).map_err(|kind| EntryError { entry: text.to_owned(), kind })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Name(n) => write!(f, "{n}"),
            HostPattern::Suffix(s) => write!(f, "*.{s}"),
            HostPattern::Addr(IpAddr::V4(a)) => write!(f, "{a}"),
            HostPattern::Addr(IpAddr::V6(a)) => write!(f, "[{a}]"),
            HostPattern::Net(IpNet::V4(n)) => write!(f, "{n}"),
            HostPattern::Net(IpNet::V6(n)) => write!(f, "[{n}]"),
        }
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let SchemePattern::Exact(s) = &self.scheme {
            write!(f, "{s}://")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for AllowedHost {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AllowedHost {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
