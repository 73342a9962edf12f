//! Port accounting for one address family of one workload's virtual network, with ephemeral
//! allocation (port 0) that never scans the port space.
//!
//! Memory is proportional to the ports in use and recently released, not to the range: an idle
//! workload costs a few words, which matters at thousands of workloads per host.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::RangeInclusive;

use thiserror::Error;

/// The IANA dynamic port range, which ephemeral ports are taken from.
pub const EPHEMERAL: RangeInclusive<u16> = 49152..=65535;

/// Every port of the ephemeral range is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("no ephemeral port is free in {lo}-{hi}", lo = EPHEMERAL.start(), hi = EPHEMERAL.end())]
pub struct PortsExhausted;

/// Which ports are in use (by any address of the family), and which ephemeral port to hand out
/// next.
///
/// Invariants: `allocate` returns a port of the ephemeral range that was not in use and marks it
/// used; a port is in use while its use count is above zero; a released ephemeral port becomes
/// allocatable again (after those released before it, so reuse is spread out). Each operation is
/// O(1) amortised: a stale queue entry is dropped the one time it is seen.
#[derive(Debug, Clone)]
pub struct PortTable {
    range: RangeInclusive<u16>,
    /// Use counts of ports in use (several addresses of a family may use one port).
    used: HashMap<u16, u32>,
    /// Ports of the range never handed out start here (`None` once the range is used up).
    next_fresh: Option<u16>,
    /// Released ephemeral ports, oldest first; entries may have become used again (stale).
    released: VecDeque<u16>,
    /// The ports in `released`, so that none is queued twice.
    queued: HashSet<u16>,
}

impl Default for PortTable {
    fn default() -> Self {
        PortTable::new(EPHEMERAL)
    }
}

impl PortTable {
    /// A table whose ephemeral ports are `range` (a non-empty range of non-zero ports).
    pub fn new(range: RangeInclusive<u16>) -> Self {
        let start = (*range.start()).max(1);
        let next_fresh = (start <= *range.end()).then_some(start);
        PortTable {
            range,
            used: HashMap::new(),
            next_fresh,
            released: VecDeque::new(),
            queued: HashSet::new(),
        }
    }

    /// Whether any address uses `port`.
    pub fn is_used(&self, port: u16) -> bool {
        self.used.contains_key(&port)
    }

    /// Counts one more use of `port` (an explicit bind; the caller checked address conflicts).
    pub fn acquire(&mut self, port: u16) {
        *self.used.entry(port).or_insert(0) += 1;
    }

    /// Hands out an ephemeral port that no address uses, and counts its use.
    pub fn allocate(&mut self) -> Result<u16, PortsExhausted> {
        while let Some(port) = self.released.pop_front() {
            self.queued.remove(&port);
            if !self.is_used(port) {
                self.acquire(port);
                return Ok(port);
            }
        }
        while let Some(port) = self.next_fresh {
            self.next_fresh = port.checked_add(1).filter(|p| p <= self.range.end());
            if !self.is_used(port) {
                self.acquire(port);
                return Ok(port);
            }
        }
        Err(PortsExhausted)
    }

    /// Counts one use of `port` less; when none remain an ephemeral port is queued for reuse.
    /// Releasing a port that is not in use does nothing.
    pub fn release(&mut self, port: u16) {
        let Some(count) = self.used.get_mut(&port) else { return };
        *count -= 1;
        if *count > 0 {
            return;
        }
        self.used.remove(&port);
        let handed_out = self.next_fresh.is_none_or(|fresh| port < fresh);
        if self.range.contains(&port) && handed_out && self.queued.insert(port) {
            self.released.push_back(port);
        }
    }

    /// How many ports are in use.
    pub fn used_count(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_fresh_ports_then_reuses_released_ones_oldest_first() {
        let mut t = PortTable::new(100..=103);
        assert_eq!(t.allocate(), Ok(100));
        assert_eq!(t.allocate(), Ok(101));
        t.release(100);
        t.release(101);
        assert_eq!(t.allocate(), Ok(100));
        assert_eq!(t.allocate(), Ok(101));
        assert_eq!(t.allocate(), Ok(102));
    }

    #[test]
    fn skips_explicitly_bound_ports_and_reports_exhaustion() {
        let mut t = PortTable::new(100..=102);
        t.acquire(101);
        assert_eq!(t.allocate(), Ok(100));
        assert_eq!(t.allocate(), Ok(102));
        assert_eq!(t.allocate(), Err(PortsExhausted));
        t.release(101);
        assert_eq!(t.allocate(), Ok(101));
    }

    #[test]
    fn a_port_shared_by_two_addresses_is_freed_by_the_last_release() {
        let mut t = PortTable::default();
        t.acquire(7777);
        t.acquire(7777);
        t.release(7777);
        assert!(t.is_used(7777));
        t.release(7777);
        assert!(!t.is_used(7777));
        t.release(7777);
        assert_eq!(t.used_count(), 0);
    }

    #[test]
    fn the_top_of_the_port_space_does_not_overflow() {
        let mut t = PortTable::new(65534..=65535);
        assert_eq!(t.allocate(), Ok(65534));
        assert_eq!(t.allocate(), Ok(65535));
        assert_eq!(t.allocate(), Err(PortsExhausted));
    }
}
