//! An index over allow-list entries so that a decision never scans the list.
//!
//! Entries are bucketed by host pattern: exact names and `*.suffix` patterns in hash maps (a name
//! probes itself and each of its parent suffixes), addresses and networks in a [`NetMap`], and
//! host `*` in a short list. A decision looks only at the buckets its host can hit.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::entry::{AllowedHost, HostPattern};
use crate::name::HostName;
use crate::netmap::NetMap;
use crate::scheme::Scheme;

/// Positions (into the policy's entry list) of the entries that may match a host.
#[derive(Clone, Debug, Default)]
pub struct EntryIndex {
    any_host: Vec<usize>,
    names: HashMap<Box<str>, Vec<usize>>,
    suffixes: HashMap<Box<str>, Vec<usize>>,
    nets: NetMap<usize>,
}

impl EntryIndex {
    /// Indexes `entries`; positions refer to that slice.
    pub fn build(entries: &[AllowedHost]) -> Self {
        let mut index = EntryIndex::default();
        for (i, entry) in entries.iter().enumerate() {
            match entry.host() {
                HostPattern::Any => index.any_host.push(i),
                HostPattern::Name(n) => index.names.entry(n.as_str().into()).or_default().push(i),
                HostPattern::Suffix(s) => index.suffixes.entry(s.as_str().into()).or_default().push(i),
                HostPattern::Addr(a) => index.nets.insert(IpNet::from(*a), i),
                HostPattern::Net(n) => index.nets.insert(*n, i),
            }
        }
        index
    }

    /// The first-declared entry whose host pattern covers `name` and which allows `scheme` and
    /// `port`.
    pub fn first_for_name(
        &self,
        entries: &[AllowedHost],
        name: &HostName,
        scheme: &Scheme,
        port: u16,
    ) -> Option<usize> {
        first_allowing(entries, self.any_host.iter().chain(self.naming(name)), scheme, port)
    }

    /// Entries whose exact-name or `*.suffix` pattern covers `name` (not host `*`).
    fn naming<'a>(&'a self, name: &'a HostName) -> impl Iterator<Item = &'a usize> {
        let exact = self.names.get(name.as_str()).into_iter().flatten();
        exact.chain(name.parent_suffixes().flat_map(|s| self.suffixes.get(s).into_iter().flatten()))
    }

    /// The first-declared entry whose host pattern covers `addr` and which allows `scheme` and
    /// `port`.
    pub fn first_for_addr(
        &self,
        entries: &[AllowedHost],
        addr: IpAddr,
        scheme: &Scheme,
        port: u16,
    ) -> Option<usize> {
        let nets = self.nets.containing(addr).map(|(_, i)| i);
        first_allowing(entries, self.any_host.iter().chain(nets), scheme, port)
    }

    /// The first-declared entry whose host is `*`.
    pub fn first_any_host(&self) -> Option<usize> {
        self.any_host.first().copied()
    }

    /// The first-declared entry naming this host at all (whatever its scheme and port), used to
    /// explain a near miss.
    pub fn first_host_match(&self, name: Option<&HostName>, addr: Option<IpAddr>) -> Option<usize> {
        let by_name = name.into_iter().flat_map(|n| self.naming(n));
        let by_addr = addr.into_iter().flat_map(|a| self.nets.containing(a).map(|(_, i)| i));
        by_name.chain(by_addr).copied().min()
    }
}

fn first_allowing<'a>(
    entries: &[AllowedHost],
    candidates: impl Iterator<Item = &'a usize>,
    scheme: &Scheme,
    port: u16,
) -> Option<usize> {
    candidates
        .copied()
        .filter(|&i| entries.get(i).is_some_and(|e| e.allows_scheme_and_port(scheme, port)))
        .min()
}
