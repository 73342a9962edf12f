//! What a decision returns: an allow naming the entry that matched, or a deny naming the rule.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::entry::AllowedHost;
use crate::name::HostName;
use crate::target::Target;

/// The outcome of [`crate::Policy::decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The target may be reached.
    Allow(Allowed),
    /// The target may not be reached.
    Deny(Denied),
}

/// Why a target was allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowed {
    /// The first-declared entry that matched.
    pub entry: AllowedHost,
    /// For an address target allowed through a name binding: the allowed name it is bound to.
    pub via_name: Option<HostName>,
}

/// Why a target was denied, with the target, so that the message stands on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// The target that was asked about.
    pub target: Target,
    /// The rule that decided.
    pub reason: DenyReason,
}

/// The rule that denied a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DenyReason {
    /// The allow-list is empty, so everything is denied.
    NoEntries,
    /// The target address is in a blocked network.
    BlockedNetwork {
        /// The blocked network that contains the target address.
        network: IpNet,
    },
    /// The target name is bound (by DNS) to an address in a blocked network.
    NameBoundToBlocked {
        /// The offending address the name resolved to.
        addr: IpAddr,
        /// The blocked network that contains it.
        network: IpNet,
    },
    /// No entry matches.
    NoMatchingEntry {
        /// An entry that names this host but not this scheme or port, if there is one.
        near_miss: Option<AllowedHost>,
    },
}

impl Decision {
    /// Whether the target is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The decision as a `Result`, for `?` at enforcement sites.
    pub fn into_result(self) -> Result<Allowed, Denied> {
        match self {
            Decision::Allow(a) => Ok(a),
            Decision::Deny(d) => Err(d),
        }
    }
}

impl Denied {
    /// The narrowest entry that would allow this target, when an entry can (a target in a blocked
    /// network cannot be allowed by any entry).
    pub fn suggestion(&self) -> Option<AllowedHost> {
        match self.reason {
            DenyReason::NoEntries | DenyReason::NoMatchingEntry { .. } => {
                Some(AllowedHost::exactly(&self.target))
            }
            DenyReason::BlockedNetwork { .. } | DenyReason::NameBoundToBlocked { .. } => None,
        }
    }
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "allowed by entry `{}`", self.entry)?;
        if let Some(name) = &self.via_name {
            write!(f, " (the address is bound to allowed name `{name}` by DNS)")?;
        }
        Ok(())
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = &self.target;
        match &self.reason {
            DenyReason::NoEntries => {
                write!(f, "no allowed_hosts entries are declared, so everything is denied")?
            }
            DenyReason::BlockedNetwork { network } => write!(
                f,
                "{} is in blocked network {network} (deny_networks), which no allowed_hosts entry can override",
                target.host()
            )?,
            DenyReason::NameBoundToBlocked { addr, network } => write!(
                f,
                "{} resolved to {addr}, which is in blocked network {network} (deny_networks)",
                target.host()
            )?,
            DenyReason::NoMatchingEntry { near_miss } => {
                write!(f, "no allowed_hosts entry matches {target}")?;
                if let Some(entry) = near_miss {
                    write!(
                        f,
                        " (entry `{entry}` covers this host, but not scheme `{}` on port {})",
                        target.scheme(),
                        target.port()
                    )?;
                }
            }
        }
        if let Some(entry) = self.suggestion() {
            write!(f, "; to allow it, add `{entry}` to allowed_hosts")?;
        }
        Ok(())
    }
}

impl std::error::Error for Denied {}
