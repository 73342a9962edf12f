//! Switchyard's default-deny egress policy: the allowed-hosts grammar and one decision function.
//!
//! ```text
//!   guest connect / DNS lookup / outgoing HTTP / forward / pool backend
//!                               │  Target { scheme, host, port }
//!                               ▼
//!      Policy::decide ── blocked networks ── allow-list index ── name bindings (from DNS)
//!                               │
//!                 Allow { entry } │ Deny { reason }
//! ```
//!
//! Every egress path of every tenant asks [`Policy::decide`]. Nothing is allowed unless an entry
//! allows it, and nothing in a blocked network is allowed at all.
//!
//! The crate is pure: no I/O, no clocks (time is passed in), no async. It does not resolve names,
//! open sockets or read configuration; callers do, and tell it what DNS answered through
//! [`NameBindings`].
//!
//! The entry grammar (`*` or `[scheme://]host[:port]`) is specified in `docs/policy.md` at the
//! repository root.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod address;
mod bindings;
mod blocked;
mod decision;
mod entry;
mod index;
mod name;
mod netmap;
mod port;
mod scheme;
mod socket;
mod syntax;
mod target;

use std::net::IpAddr;
use std::time::Instant;

pub use address::{canonical_ip, canonical_net, embedded_ipv4, is_loopback};
pub use bindings::{MAX_ADDRS_PER_NAME, NameBindings};
pub use blocked::{BlockedNetworks, DEFAULT_BLOCKED, DenyNetworkError, DenyNetworkSpec, PRIVATE};
pub use decision::{Allowed, Decision, Denied, DenyReason};
pub use entry::{AllowedHost, EntryError, EntryErrorKind, HostPattern, SchemePattern};
pub use name::{HostName, NameError};
pub use port::{PortError, PortPattern, parse_port};
pub use scheme::{Scheme, SchemeError};
pub use socket::{AllowedSocket, MAX_SOCKET_PATH, SocketDenied, SocketPath, SocketPathError, UNIX_PREFIX};
pub use syntax::SyntaxError;
pub use target::{Target, TargetError, TargetErrorKind, TargetHost};

use index::EntryIndex;

/// One tenant's egress policy: its allow-list, indexed, and its blocked networks.
///
/// Immutable once built; decisions take `&self` and never allocate on the allow path, so one
/// policy can be shared by every connection of a tenant.
#[derive(Clone, Debug)]
pub struct Policy {
    entries: Vec<AllowedHost>,
    index: EntryIndex,
    blocked: BlockedNetworks,
    sockets: Vec<AllowedSocket>,
}

impl Policy {
    /// A policy allowing what `entries` allow, outside `blocked`.
    pub fn new(entries: impl IntoIterator<Item = AllowedHost>, blocked: BlockedNetworks) -> Self {
        let entries: Vec<AllowedHost> = entries.into_iter().collect();
        let index = EntryIndex::build(&entries);
        Policy { entries, index, blocked, sockets: Vec::new() }
    }

    /// This policy, also allowing the unix sockets `sockets` (`unix:/path` entries).
    pub fn with_sockets(mut self, sockets: impl IntoIterator<Item = AllowedSocket>) -> Self {
        self.sockets.extend(sockets);
        self
    }

    /// The unix socket entries, in declaration order.
    pub fn sockets(&self) -> &[AllowedSocket] {
        &self.sockets
    }

    /// Decides a connect to the unix socket `path`: allowed only by an entry naming exactly it
    /// (`*` does not).
    pub fn decide_socket(&self, path: &SocketPath) -> Result<&AllowedSocket, SocketDenied> {
        self.sockets
            .iter()
            .find(|entry| entry.path() == path)
            .ok_or_else(|| SocketDenied { path: path.clone() })
    }

    /// The policy that denies everything.
    pub fn deny_all() -> Self {
        Policy::new([], BlockedNetworks::defaults())
    }

    /// The entries, in declaration order.
    pub fn entries(&self) -> &[AllowedHost] {
        &self.entries
    }

    /// The blocked networks.
    pub fn blocked(&self) -> &BlockedNetworks {
        &self.blocked
    }

    /// Decides `target` knowing no name bindings: names match name entries, addresses match
    /// address entries, and never the other way round.
    pub fn decide(&self, target: &Target) -> Decision {
        self.decide_with(target, &NameBindings::new(1), Instant::now())
    }

    /// Decides `target` using what DNS answered (`bindings`, as of `now`).
    ///
    /// - An address in a blocked network is denied.
    /// - A name is allowed if an entry allows it and none of its bound addresses is blocked.
    /// - An address is allowed if an address entry allows it, or if it is bound to a name that an
    ///   entry allows for this scheme and port.
    pub fn decide_with(&self, target: &Target, bindings: &NameBindings, now: Instant) -> Decision {
        let deny = |reason| Decision::Deny(Denied { target: target.clone(), reason });
        let allow = |index: usize, via_name: Option<&HostName>| match self.entries.get(index) {
            Some(entry) => Decision::Allow(Allowed { entry: entry.clone(), via_name: via_name.cloned() }),
            None => deny(DenyReason::NoMatchingEntry { near_miss: None }),
        };
        let (scheme, port) = (target.scheme(), target.port());
        match target.host() {
            TargetHost::Addr(addr) => {
                if let Some(network) = self.blocked.find(*addr) {
                    return deny(DenyReason::BlockedNetwork { network });
                }
                if self.entries.is_empty() {
                    return deny(DenyReason::NoEntries);
                }
                if let Some(i) = self.index.first_for_addr(&self.entries, *addr, scheme, port) {
                    return allow(i, None);
                }
                for name in bindings.names_of(*addr, now) {
                    if let Some(i) = self.index.first_for_name(&self.entries, name, scheme, port) {
                        return allow(i, Some(name));
                    }
                }
                deny(self.no_match(None, Some(*addr)))
            }
            TargetHost::Name(name) => {
                if let Some((addr, network)) = self.first_blocked(bindings.addrs_of(name, now)) {
                    return deny(DenyReason::NameBoundToBlocked { addr, network });
                }
                if self.entries.is_empty() {
                    return deny(DenyReason::NoEntries);
                }
                match self.index.first_for_name(&self.entries, name, scheme, port) {
                    Some(i) => allow(i, None),
                    None => deny(self.no_match(Some(name), None)),
                }
            }
        }
    }

    /// Decides a DNS lookup of `name` (what a guest's `ip-name-lookup` asks): allowed when an entry
    /// covers the name for some scheme and port (host `*` included), since a lookup carries
    /// neither. Gives the first such entry in declaration order.
    ///
    /// Connections to the answers are still decided one by one; the lookup only lets the caller
    /// bind the answers to the name (see [`NameBindings`]).
    pub fn allows_lookup(&self, name: &HostName) -> Option<&AllowedHost> {
        let any = self.index.first_any_host();
        let named = self.index.first_host_match(Some(name), None);
        any.into_iter().chain(named).min().and_then(|i| self.entries.get(i))
    }

    /// The first of `addrs` that is in a blocked network, with that network.
    pub fn first_blocked(&self, addrs: impl IntoIterator<Item = IpAddr>) -> Option<(IpAddr, ipnet::IpNet)> {
        addrs.into_iter().find_map(|a| self.blocked.find(a).map(|n| (a, n)))
    }

    fn no_match(&self, name: Option<&HostName>, addr: Option<IpAddr>) -> DenyReason {
        let near_miss = self.index.first_host_match(name, addr).and_then(|i| self.entries.get(i)).cloned();
        DenyReason::NoMatchingEntry { near_miss }
    }
}
