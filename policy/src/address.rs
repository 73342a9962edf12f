//! The one classification of addresses that every egress path uses: which IPv4 address an IPv6
//! address carries, and so which address a decision (blocked networks, entries, "is this the
//! tenant's virtual network") is made on.
//!
//! An IPv6 address in one of these forms reaches the IPv4 host it embeds, through the kernel's
//! dual stack or a translator on the path, so it is decided as that IPv4 address:
//!
//! | form | range | embedded IPv4 |
//! |---|---|---|
//! | IPv4-mapped (RFC 4291) | `::ffff:0:0/96` | the last 32 bits |
//! | IPv4-compatible (RFC 4291, deprecated) | `::/96` but `::` and `::1` | the last 32 bits |
//! | NAT64 well-known prefix (RFC 6052) | `64:ff9b::/96` | the last 32 bits |
//! | 6to4 (RFC 3056) | `2002::/16` | bits 16–47 |
//!
//! Every other address is itself. Networks are canonicalised the same way when they lie wholly
//! inside one form's range, so that an entry or a blocked network written in an IPv6 form matches
//! the addresses it covers.
//!
//! Not covered: NAT64 prefixes an operator chose (RFC 6052 network-specific prefixes, the
//! local-use `64:ff9b:1::/48`) and Teredo (`2001::/32`): list them in `deny_networks` where a
//! translator for them is on the path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// An IPv6 form that embeds an IPv4 address: where its range starts, how long its prefix is, and
/// where the IPv4 address sits (the bit offset of its first bit).
struct Embedding {
    prefix: Ipv6Addr,
    prefix_len: u8,
    v4_offset: u8,
    /// Whether `0.0.0.0` and `0.0.0.1` are not of this form (in `::/96` they are IPv6's own `::`
    /// and `::1`).
    skips_ipv6_own: bool,
}

const MAPPED: Embedding = Embedding {
    prefix: Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0),
    prefix_len: 96,
    v4_offset: 96,
    skips_ipv6_own: false,
};
const COMPATIBLE: Embedding =
    Embedding { prefix: Ipv6Addr::UNSPECIFIED, prefix_len: 96, v4_offset: 96, skips_ipv6_own: true };
const NAT64: Embedding = Embedding {
    prefix: Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0),
    prefix_len: 96,
    v4_offset: 96,
    skips_ipv6_own: false,
};
const SIX_TO_FOUR: Embedding = Embedding {
    prefix: Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0),
    prefix_len: 16,
    v4_offset: 16,
    skips_ipv6_own: false,
};

const EMBEDDINGS: [Embedding; 4] = [MAPPED, COMPATIBLE, NAT64, SIX_TO_FOUR];

impl Embedding {
    fn contains(&self, addr: Ipv6Addr) -> bool {
        let mask = u128::MAX << (128 - u32::from(self.prefix_len));
        u128::from(addr) & mask == u128::from(self.prefix)
    }

    fn ipv4(&self, addr: Ipv6Addr) -> Ipv4Addr {
        Ipv4Addr::from((u128::from(addr) >> (96 - u32::from(self.v4_offset))) as u32)
    }

    /// The IPv4 address `addr` carries in this form, if it is of this form.
    fn embedded(&self, addr: Ipv6Addr) -> Option<Ipv4Addr> {
        if !self.contains(addr) {
            return None;
        }
        let v4 = self.ipv4(addr);
        if self.skips_ipv6_own && u32::from(v4) <= 1 {
            return None;
        }
        Some(v4)
    }

    /// The IPv4 network `net` covers in this form, if `net` lies wholly inside the form's range
    /// (for 6to4, a network longer than /48 lies inside one site and stands for its one address).
    /// A network whose first address is not of the form (`::/127` holds `::` and `::1`) is not.
    fn embedded_net(&self, net: Ipv6Net) -> Option<Ipv4Net> {
        if net.prefix_len() < self.prefix_len {
            return None;
        }
        let v4 = self.embedded(net.network())?;
        let v4_len = (net.prefix_len() - self.v4_offset).min(32);
        Ipv4Net::new(v4, v4_len).ok().map(|n| n.trunc())
    }
}

/// The IPv4 address an IPv6 address carries (IPv4-mapped, IPv4-compatible, NAT64 well-known
/// prefix, 6to4), if it is of one of those forms.
pub fn embedded_ipv4(addr: Ipv6Addr) -> Option<Ipv4Addr> {
    EMBEDDINGS.iter().find_map(|form| form.embedded(addr))
}

/// The address every decision is made on: an IPv6 address that carries an IPv4 address becomes
/// that IPv4 address (see the module documentation for the forms); every other address is itself.
pub fn canonical_ip(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => embedded_ipv4(v6).map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

/// Whether `addr`, in any of its forms, is a loopback address (`127.0.0.0/8`, `::1`, or an IPv6
/// form carrying a `127.0.0.0/8` address). Such an address is never the host's own loopback to a
/// guest: it names the tenant's virtual network.
pub fn is_loopback(addr: IpAddr) -> bool {
    canonical_ip(addr).is_loopback()
}

/// The network decisions are made on: a network lying wholly inside one IPv4-carrying form
/// becomes the IPv4 network it covers; every other network is itself.
pub fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) => EMBEDDINGS.iter().find_map(|form| form.embedded_net(v6)).map_or(net, IpNet::V4),
        IpNet::V4(_) => net,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn every_ipv4_carrying_form_is_decided_as_its_ipv4_address() {
        for (form, v4) in [
            ("::ffff:127.0.0.1", "127.0.0.1"),
            ("::ffff:7f00:1", "127.0.0.1"),
            ("::127.0.0.1", "127.0.0.1"),
            ("::a9fe:a9fe", "169.254.169.254"),
            ("64:ff9b::10.1.2.3", "10.1.2.3"),
            ("64:ff9b::7f00:1", "127.0.0.1"),
            ("2002:7f00:1::", "127.0.0.1"),
            ("2002:a9fe:a9fe:1234::5", "169.254.169.254"),
            ("2002:c0a8:101::1", "192.168.1.1"),
        ] {
            assert_eq!(canonical_ip(ip(form)), ip(v4), "{form}");
        }
    }

    #[test]
    fn other_addresses_are_themselves() {
        for addr in ["::", "::1", "2001:db8::1", "64:ff9b:1::7f00:1", "fe80::1", "10.1.2.3", "127.0.0.1"] {
            assert_eq!(canonical_ip(ip(addr)), ip(addr), "{addr}");
        }
    }

    #[test]
    fn loopback_in_any_form_is_loopback() {
        for addr in [
            "127.0.0.1",
            "127.9.8.7",
            "::1",
            "::ffff:127.0.0.2",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
        ] {
            assert!(is_loopback(ip(addr)), "{addr}");
        }
        for addr in ["::", "::2", "10.0.0.1", "2002:a00:1::", "::ffff:10.0.0.1"] {
            assert!(!is_loopback(ip(addr)), "{addr}");
        }
    }

    #[test]
    fn networks_inside_one_form_become_ipv4_networks() {
        for (form, v4) in [
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("::a00:0/104", "10.0.0.0/8"),
            ("64:ff9b::a9fe:0/112", "169.254.0.0/16"),
            ("2002::/16", "0.0.0.0/0"),
            ("2002:a00::/24", "10.0.0.0/8"),
            ("2002:a00:1:5::/64", "10.0.0.1/32"),
        ] {
            assert_eq!(canonical_net(net(form)), net(v4), "{form}");
        }
        for plain in ["2001:db8::/32", "::/128", "::1/128", "::/96", "64:ff9b::/95", "2000::/3", "10.0.0.0/8"]
        {
            assert_eq!(canonical_net(net(plain)), net(plain), "{plain}");
        }
    }
}
