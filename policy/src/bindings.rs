//! Name → address bindings learned from DNS answers, each valid until its TTL runs out.
//!
//! Time is passed in (`now`), never read here, so the engine stays pure and tests need no sleeps.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::address::canonical_ip;
use crate::name::HostName;

/// The most addresses kept for one name; a longer DNS answer keeps its first ones.
pub const MAX_ADDRS_PER_NAME: usize = 32;

/// Which addresses each name resolved to, and until when.
///
/// Invariants: both directions hold the same (name, address, expiry) facts; at most `max_names`
/// names are held, the soonest-expiring evicted first when a new name needs room (evicting only
/// ever turns an allow into a deny); an expired binding is never returned.
#[derive(Clone, Debug)]
pub struct NameBindings {
    max_names: usize,
    by_name: HashMap<HostName, Vec<(IpAddr, Instant)>>,
    by_addr: HashMap<IpAddr, Vec<(HostName, Instant)>>,
}

impl NameBindings {
    /// An empty set that holds at most `max_names` names (at least one).
    pub fn new(max_names: usize) -> Self {
        NameBindings { max_names: max_names.max(1), by_name: HashMap::new(), by_addr: HashMap::new() }
    }

    /// Records that `name` resolved to `addrs`, valid for `ttl` from `now`. Addresses already bound
    /// to the name keep the later of their two expiries.
    pub fn bind(&mut self, name: &HostName, addrs: &[IpAddr], ttl: Duration, now: Instant) {
        if addrs.is_empty() {
            return;
        }
        let expires = now.checked_add(ttl).unwrap_or(now);
        if !self.by_name.contains_key(name) && self.by_name.len() >= self.max_names {
            self.purge_expired(now);
            if self.by_name.len() >= self.max_names {
                self.evict_soonest();
            }
        }
        let bound = self.by_name.entry(name.clone()).or_default();
        for addr in addrs.iter().map(|a| canonical_ip(*a)) {
            match bound.iter().position(|(a, _)| *a == addr) {
                Some(i) => bound[i].1 = bound[i].1.max(expires),
                None if bound.len() < MAX_ADDRS_PER_NAME => bound.push((addr, expires)),
                None => continue,
            }
            let names = self.by_addr.entry(addr).or_default();
            match names.iter_mut().find(|(n, _)| n == name) {
                Some((_, until)) => *until = (*until).max(expires),
                None => names.push((name.clone(), expires)),
            }
        }
    }

    /// The unexpired addresses `name` is bound to.
    pub fn addrs_of<'a>(&'a self, name: &HostName, now: Instant) -> impl Iterator<Item = IpAddr> + 'a {
        self.by_name.get(name).into_iter().flatten().filter(move |(_, t)| *t > now).map(|(a, _)| *a)
    }

    /// The unexpired names bound to this address.
    pub fn names_of(&self, addr: IpAddr, now: Instant) -> impl Iterator<Item = &HostName> + '_ {
        let addr = canonical_ip(addr);
        self.by_addr.get(&addr).into_iter().flatten().filter(move |(_, t)| *t > now).map(|(n, _)| n)
    }

    /// How many names are held (expired ones included until purged).
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether no name is held.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Drops every binding that has expired at `now`.
    pub fn purge_expired(&mut self, now: Instant) {
        for list in self.by_name.values_mut() {
            list.retain(|(_, t)| *t > now);
        }
        self.by_name.retain(|_, list| !list.is_empty());
        for list in self.by_addr.values_mut() {
            list.retain(|(_, t)| *t > now);
        }
        self.by_addr.retain(|_, list| !list.is_empty());
    }

    fn evict_soonest(&mut self) {
        let soonest = self
            .by_name
            .iter()
            .min_by_key(|(_, list)| list.iter().map(|(_, t)| *t).max())
            .map(|(name, _)| name.clone());
        let Some(name) = soonest else { return };
        for (addr, _) in self.by_name.remove(&name).unwrap_or_default() {
            if let Some(names) = self.by_addr.get_mut(&addr) {
                names.retain(|(n, _)| *n != name);
                if names.is_empty() {
                    self.by_addr.remove(&addr);
                }
            }
        }
    }
}

impl Default for NameBindings {
    /// Room for 4,096 names.
    fn default() -> Self {
        NameBindings::new(4096)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> HostName {
        HostName::parse(s).unwrap()
    }

    #[test]
    fn bindings_expire_with_their_ttl() {
        let now = Instant::now();
        let mut b = NameBindings::default();
        let addr: IpAddr = "192.0.2.10".parse().unwrap();
        b.bind(&name("api.example.com"), &[addr], Duration::from_secs(30), now);
        assert_eq!(b.addrs_of(&name("api.example.com"), now).collect::<Vec<_>>(), [addr]);
        assert_eq!(b.names_of(addr, now).count(), 1);
        let later = now + Duration::from_secs(31);
        assert_eq!(b.names_of(addr, later).count(), 0);
        b.purge_expired(later);
        assert!(b.is_empty());
    }

    #[test]
    fn mapped_addresses_bind_as_ipv4() {
        let now = Instant::now();
        let mut b = NameBindings::default();
        b.bind(&name("a.example"), &["::ffff:192.0.2.1".parse().unwrap()], Duration::from_secs(5), now);
        assert_eq!(b.names_of("192.0.2.1".parse().unwrap(), now).count(), 1);
    }

    #[test]
    fn a_full_set_evicts_the_soonest_expiring_name() {
        let now = Instant::now();
        let mut b = NameBindings::new(2);
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        b.bind(&name("short.example"), &[ip("192.0.2.1")], Duration::from_secs(1), now);
        b.bind(&name("long.example"), &[ip("192.0.2.2")], Duration::from_secs(100), now);
        b.bind(&name("new.example"), &[ip("192.0.2.3")], Duration::from_secs(50), now);
        assert_eq!(b.len(), 2);
        assert_eq!(b.names_of(ip("192.0.2.1"), now).count(), 0);
        assert_eq!(b.names_of(ip("192.0.2.2"), now).count(), 1);
        assert_eq!(b.names_of(ip("192.0.2.3"), now).count(), 1);
    }
}
