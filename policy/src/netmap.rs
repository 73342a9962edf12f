//! A map from IP networks to values, answering "which networks contain this address" with one hash
//! probe per distinct prefix length in use, never a scan of the networks.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

/// Networks of one address family, keyed by (prefix length, masked address bits).
#[derive(Clone, Debug)]
struct Family<V> {
    /// The distinct prefix lengths present, ascending (at most 33 or 129 of them).
    lengths: Vec<u8>,
    nets: HashMap<(u8, u128), Vec<V>>,
}

impl<V> Default for Family<V> {
    fn default() -> Self {
        Family { lengths: Vec::new(), nets: HashMap::new() }
    }
}

impl<V> Family<V> {
    fn insert(&mut self, bits: u128, width: u8, len: u8, value: V) {
        if let Err(at) = self.lengths.binary_search(&len) {
            self.lengths.insert(at, len);
        }
        self.nets.entry((len, mask(bits, width, len))).or_default().push(value);
    }

    fn containing(&self, bits: u128, width: u8) -> impl Iterator<Item = (u8, &V)> {
        self.lengths.iter().flat_map(move |&len| {
            self.nets.get(&(len, mask(bits, width, len))).into_iter().flatten().map(move |v| (len, v))
        })
    }
}

/// Keeps the top `len` of `width` bits.
fn mask(bits: u128, width: u8, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let keep = u128::MAX << (128 - u32::from(len));
        (bits << (128 - u32::from(width))) & keep
    }
}

/// The invariant: a value inserted under a network is returned for exactly the addresses that
/// network contains (as `ipnet` defines containment).
#[derive(Clone, Debug)]
pub struct NetMap<V> {
    v4: Family<V>,
    v6: Family<V>,
}

impl<V> Default for NetMap<V> {
    fn default() -> Self {
        NetMap { v4: Family::default(), v6: Family::default() }
    }
}

impl<V> NetMap<V> {
    /// Adds `value` under `net` (its host bits are ignored).
    pub fn insert(&mut self, net: IpNet, value: V) {
        match net {
            IpNet::V4(n) => self.v4.insert(u32::from(n.addr()).into(), 32, n.prefix_len(), value),
            IpNet::V6(n) => self.v6.insert(u128::from(n.addr()), 128, n.prefix_len(), value),
        }
    }

    /// Every value whose network contains `addr`, with that network's prefix length, shortest
    /// prefix first.
    pub fn containing(&self, addr: IpAddr) -> impl Iterator<Item = (u8, &V)> {
        let (family, bits, width) = match addr {
            IpAddr::V4(a) => (&self.v4, u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => (&self.v6, u128::from(a), 128),
        };
        family.containing(bits, width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_containing_network() {
        let mut map = NetMap::default();
        for (i, net) in ["10.0.0.0/8", "10.1.0.0/16", "0.0.0.0/0", "10.1.2.3/32", "2001:db8::/32", "::/0"]
            .iter()
            .enumerate()
        {
            map.insert(net.parse().unwrap(), i);
        }
        let hits = |a: &str| -> Vec<usize> { map.containing(a.parse().unwrap()).map(|(_, v)| *v).collect() };
        assert_eq!(hits("10.1.2.3"), [2, 0, 1, 3]);
        assert_eq!(hits("10.2.0.1"), [2, 0]);
        assert_eq!(hits("192.0.2.1"), [2]);
        assert_eq!(hits("2001:db8::1"), [5, 4]);
        assert_eq!(hits("2001:db9::1"), [5]);
    }
}
