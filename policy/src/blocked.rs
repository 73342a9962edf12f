//! Networks that are denied whatever the allow-list says.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use thiserror::Error;

use crate::address::{canonical_ip, canonical_net};
use crate::netmap::NetMap;

/// The networks blocked when a tenant declares no `deny_networks`: "this network", link-local,
/// multicast, reserved, the unspecified IPv6 address, IPv6 link-local and multicast.
pub const DEFAULT_BLOCKED: &[&str] =
    &["0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "::/128", "fe80::/10", "ff00::/8"];

/// The private ranges that the `private` keyword stands for: RFC 1918, carrier-grade NAT and IPv6
/// unique-local addresses. Not blocked by default.
pub const PRIVATE: &[&str] = &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"];

/// One item of a `deny_networks` list: a keyword or a network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DenyNetworkSpec {
    /// `default`: the [`DEFAULT_BLOCKED`] networks.
    Default,
    /// `private`: the [`PRIVATE`] networks.
    Private,
    /// One network (a bare address stands for a /32 or /128).
    Net(IpNet),
}

/// Why a `deny_networks` item was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid deny_networks item `{0}`: expected `default`, `private`, an address or a CIDR network")]
pub struct DenyNetworkError(pub String);

impl FromStr for DenyNetworkSpec {
    type Err = DenyNetworkError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "default" => Ok(DenyNetworkSpec::Default),
            "private" => Ok(DenyNetworkSpec::Private),
            _ => {
                let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
                let net = bare
                    .parse::<IpNet>()
                    .or_else(|_| bare.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| DenyNetworkError(text.to_owned()))?;
                Ok(DenyNetworkSpec::Net(canonical_net(net.trunc())))
            }
        }
    }
}

impl fmt::Display for DenyNetworkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyNetworkSpec::Default => f.write_str("default"),
            DenyNetworkSpec::Private => f.write_str("private"),
            DenyNetworkSpec::Net(n) => write!(f, "{n}"),
        }
    }
}

/// A set of blocked networks; lookups cost one probe per distinct prefix length.
#[derive(Clone, Debug)]
pub struct BlockedNetworks {
    networks: Vec<IpNet>,
    map: NetMap<usize>,
}

fn parse_const(list: &[&str]) -> impl Iterator<Item = IpNet> {
    list.iter().filter_map(|n| n.parse().ok())
}

impl BlockedNetworks {
    /// Blocks exactly these networks (host bits are cleared, IPv4-mapped become IPv4).
    pub fn new(networks: impl IntoIterator<Item = IpNet>) -> Self {
        let mut blocked = BlockedNetworks { networks: Vec::new(), map: NetMap::default() };
        for net in networks {
            let net = canonical_net(net.trunc());
            if !blocked.networks.contains(&net) {
                blocked.map.insert(net, blocked.networks.len());
                blocked.networks.push(net);
            }
        }
        blocked
    }

    /// The [`DEFAULT_BLOCKED`] networks.
    pub fn defaults() -> Self {
        BlockedNetworks::new(parse_const(DEFAULT_BLOCKED))
    }

    /// Nothing blocked.
    pub fn none() -> Self {
        BlockedNetworks::new([])
    }

    /// The networks a `deny_networks` list stands for, keywords expanded.
    pub fn from_specs<'a>(specs: impl IntoIterator<Item = &'a DenyNetworkSpec>) -> Self {
        let nets = specs.into_iter().flat_map(|spec| -> Vec<IpNet> {
            match spec {
                DenyNetworkSpec::Default => parse_const(DEFAULT_BLOCKED).collect(),
                DenyNetworkSpec::Private => parse_const(PRIVATE).collect(),
                DenyNetworkSpec::Net(n) => vec![*n],
            }
        });
        BlockedNetworks::new(nets.collect::<Vec<_>>())
    }

    /// The blocked networks, in the order given.
    pub fn networks(&self) -> &[IpNet] {
        &self.networks
    }

    /// The first-declared blocked network containing `addr`, decided as its canonical form (an
    /// IPv6 form carrying an IPv4 address is that IPv4 address), if any.
    pub fn find(&self, addr: IpAddr) -> Option<IpNet> {
        let index = self.map.containing(canonical_ip(addr)).map(|(_, &i)| i).min()?;
        self.networks.get(index).copied()
    }
}

impl Default for BlockedNetworks {
    fn default() -> Self {
        BlockedNetworks::defaults()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_block_metadata_multicast_and_reserved_but_not_loopback_or_private() {
        let b = BlockedNetworks::defaults();
        assert_eq!(b.find(ip("169.254.169.254")), Some("169.254.0.0/16".parse().unwrap()));
        assert!(b.find(ip("0.1.2.3")).is_some());
        assert!(b.find(ip("239.1.1.1")).is_some());
        assert!(b.find(ip("255.255.255.255")).is_some());
        assert!(b.find(ip("::")).is_some());
        assert!(b.find(ip("fe80::1")).is_some());
        assert!(b.find(ip("ff02::1")).is_some());
        assert!(b.find(ip("127.0.0.1")).is_none());
        assert!(b.find(ip("10.1.2.3")).is_none());
        assert!(b.find(ip("::1")).is_none());
        // Every form of a blocked IPv4 address is blocked: DNS answers are checked with this too.
        for form in ["::ffff:169.254.169.254", "::a9fe:a9fe", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::"] {
            assert_eq!(b.find(ip(form)), Some("169.254.0.0/16".parse().unwrap()), "{form}");
        }
    }

    #[test]
    fn specs_expand_keywords_and_parse_networks() {
        let specs: Vec<DenyNetworkSpec> = ["default", "private", "198.51.100.7", "[2001:db8::/32]"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let b = BlockedNetworks::from_specs(&specs);
        assert!(b.find(ip("192.168.1.1")).is_some());
        assert!(b.find(ip("198.51.100.7")).is_some());
        assert!(b.find(ip("198.51.100.8")).is_none());
        assert!(b.find(ip("2001:db8::5")).is_some());
        assert!("10.0.0.0/33".parse::<DenyNetworkSpec>().is_err());
        assert!("privat".parse::<DenyNetworkSpec>().is_err());
    }
}
