//! Property tests of the policy engine (proptest).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use switchyard_policy::{AllowedHost, BlockedNetworks, Policy, Target};

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["a", "b", "api", "db", "x-1", "_srv"]).prop_map(str::to_owned),
        1 => "[a-z][a-z0-9-]{0,8}[a-z0-9]",
    ]
}

fn name() -> impl Strategy<Value = String> {
    (prop::collection::vec(label(), 0..3), prop::sample::select(vec!["com", "internal", "example"]))
        .prop_map(|(labels, tld)| labels.into_iter().chain([tld.to_owned()]).collect::<Vec<_>>().join("."))
}

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        (0u8..4).prop_map(|i| Ipv4Addr::new(10, 0, 0, i)),
        (0u8..4).prop_map(|i| Ipv4Addr::new(169, 254, 0, i)),
        any::<u32>().prop_map(Ipv4Addr::from),
    ]
}

fn scheme() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["tcp", "https", "http", "mysql", "redis", "udp", "foo"])
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![prop::sample::select(vec![80u16, 443, 3306, 5432, 6379, 8080]), 1u16..=65535]
}

/// Entry texts covering every host form, scheme form and port form.
fn entry_text() -> impl Strategy<Value = String> {
    let scheme =
        prop_oneof![Just(String::new()), Just("*://".to_owned()), scheme().prop_map(|s| format!("{s}://"))];
    let host = prop_oneof![
        Just("*".to_owned()),
        name(),
        name().prop_map(|n| format!("*.{n}")),
        ipv4().prop_map(|a| a.to_string()),
        (ipv4(), 0u8..=32)
            .prop_map(|(a, p)| Ipv4Net::new(a, p).map(|n| n.trunc().to_string()).unwrap_or_default()),
        any::<u128>().prop_map(|a| format!("[{}]", Ipv6Addr::from(a))),
    ];
    let port = prop_oneof![
        Just(String::new()),
        Just(":*".to_owned()),
        port().prop_map(|p| format!(":{p}")),
        (1u16..=65535, 0u16..2000).prop_map(|(a, d)| format!(":{a}-{}", a.saturating_add(d))),
    ];
    (scheme, host, port).prop_map(|(s, h, p)| format!("{s}{h}{p}"))
}

fn entry() -> impl Strategy<Value = AllowedHost> {
    entry_text().prop_map(|t| t.parse().unwrap_or_else(|e| panic!("generated entry {t}: {e}")))
}

fn target_text() -> impl Strategy<Value = String> {
    let host = prop_oneof![name(), ipv4().prop_map(|a| a.to_string())];
    (scheme(), host, port()).prop_map(|(s, h, p)| format!("{s}://{h}:{p}"))
}

fn target() -> impl Strategy<Value = Target> {
    target_text().prop_map(|t| t.parse().unwrap_or_else(|e| panic!("generated target {t}: {e}")))
}

fn allowed(entries: &[AllowedHost], target: &Target) -> bool {
    Policy::new(entries.to_vec(), BlockedNetworks::defaults()).decide(target).is_allowed()
}

/// The default blocked networks as docs/policy.md lists them: the oracle, written apart from the
/// code under test.
const DOCUMENTED_DEFAULTS: [&str; 7] =
    ["0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "::/128", "fe80::/10", "ff00::/8"];

/// The IPv4 address an IPv6 address carries, by the standards (std's mapped and compatible
/// forms, NAT64's well-known prefix, 6to4), not by the policy crate.
fn carried_ipv4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = a.segments();
    let low = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = a.to_ipv4_mapped() {
        Some(v4)
    } else if (s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1)) || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // IPv4-compatible (not `::` and `::1`), or NAT64's well-known prefix.
        Some(low())
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8))
    } else {
        None
    }
}

fn blocked_by_default(target: &Target) -> bool {
    let documented: Vec<IpNet> = DOCUMENTED_DEFAULTS.iter().map(|n| n.parse().expect("a network")).collect();
    match target.host() {
        switchyard_policy::TargetHost::Addr(a) => {
            let decided = match a {
                IpAddr::V6(v6) => carried_ipv4(*v6).map_or(*a, IpAddr::V4),
                v4 => *v4,
            };
            documented.iter().any(|net| net.contains(&decided))
        }
        switchyard_policy::TargetHost::Name(_) => false,
    }
}

#[test]
fn the_default_blocked_networks_are_the_documented_ones() {
    let documented: Vec<IpNet> = DOCUMENTED_DEFAULTS.iter().map(|n| n.parse().expect("a network")).collect();
    assert_eq!(BlockedNetworks::defaults().networks(), documented.as_slice());
}

/// The IPv6 spellings of `a` that reach it, built by hand: IPv4-mapped, IPv4-compatible (not for
/// `0.0.0.0` and `0.0.0.1`, which are `::` and `::1`), NAT64 well-known prefix, 6to4.
fn ipv6_forms(a: Ipv4Addr) -> Vec<Ipv6Addr> {
    let [b0, b1, b2, b3] = a.octets();
    let (hi, lo) = (u16::from_be_bytes([b0, b1]), u16::from_be_bytes([b2, b3]));
    let mut forms = vec![
        Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, hi, lo),
        Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo),
        Ipv6Addr::new(0x2002, hi, lo, 0x1234, 0, 0, 0, 1),
    ];
    if u32::from(a) > 1 {
        forms.push(Ipv6Addr::new(0, 0, 0, 0, 0, 0, hi, lo));
    }
    forms
}

/// Whether `a` lies in a range whose addresses carry an IPv4 address (written out by hand).
fn carries_ipv4(a: Ipv6Addr) -> bool {
    let s = a.segments();
    s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0)
        || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
        || s[0] == 0x2002
}

/// Upper-cases the characters selected by `mask` and optionally adds a trailing dot to the host.
fn vary_case(text: &str, mask: u64, dot: bool) -> String {
    let (scheme, rest) = text.split_once("://").map_or(("", text), |(s, r)| (s, r));
    let (host, port) = rest.rsplit_once(':').map_or((rest, None), |(h, p)| (h, Some(p)));
    let mut host: String = host
        .chars()
        .enumerate()
        .map(|(i, c)| if mask >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c })
        .collect();
    let is_name = host != "*" && !host.contains(['[', '/']) && host.parse::<Ipv4Addr>().is_err();
    if dot && is_name {
        host.push('.');
    }
    let prefix = if scheme.is_empty() { String::new() } else { format!("{scheme}://") };
    format!("{prefix}{host}{}", port.map(|p| format!(":{p}")).unwrap_or_default())
}

/// The case proptest once found and saved in `properties.proptest-regressions` (which this file's
/// config does not read back, `failure_persistence: None`): kept here so that it runs every time.
#[test]
fn saved_regression_a_network_entry_never_matches_a_name_even_varied() {
    let plain: AllowedHost = "0.0.0.0/0".parse().unwrap();
    let varied: AllowedHost = vary_case("0.0.0.0/0", 0, true).parse().unwrap();
    assert_eq!(plain, varied);
    let plain_target: Target = "tcp://com:80".parse().unwrap();
    let varied_target: Target = vary_case("tcp://com:80", 0u64.rotate_left(7), false).parse().unwrap();
    assert_eq!(allowed(std::slice::from_ref(&plain), &plain_target), allowed(&[varied], &varied_target));
    assert!(!allowed(&[plain], &plain_target), "an address entry allowed a name");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn an_empty_policy_denies_everything(t in target()) {
        prop_assert!(!allowed(&[], &t));
    }

    #[test]
    fn star_allows_everything_outside_blocked_networks(t in target()) {
        prop_assert_eq!(allowed(&[AllowedHost::any()], &t), !blocked_by_default(&t));
    }

    #[test]
    fn adding_an_entry_never_turns_an_allow_into_a_deny(
        entries in prop::collection::vec(entry(), 0..8), extra in entry(), at in any::<prop::sample::Index>(), t in target()
    ) {
        if allowed(&entries, &t) {
            let mut more = entries.clone();
            more.insert(at.index(entries.len() + 1), extra);
            prop_assert!(allowed(&more, &t));
        }
    }

    #[test]
    fn decisions_are_invariant_under_case_and_a_trailing_dot(
        texts in prop::collection::vec(entry_text(), 0..6), t in target_text(), mask in any::<u64>(), dot in any::<bool>()
    ) {
        let plain: Vec<AllowedHost> = texts.iter().map(|e| e.parse().unwrap()).collect();
        let varied: Vec<AllowedHost> = texts.iter().map(|e| vary_case(e, mask, dot).parse().unwrap()).collect();
        let plain_target: Target = t.parse().unwrap();
        let varied_target: Target = vary_case(&t, mask.rotate_left(7), !dot).parse().unwrap();
        prop_assert_eq!(&plain, &varied);
        prop_assert_eq!(allowed(&plain, &plain_target), allowed(&varied, &varied_target));
    }

    #[test]
    fn a_suffix_never_matches_its_apex_and_matches_every_subdomain(l in label(), d in name(), p in port()) {
        let entry: AllowedHost = format!("*.{d}").parse().unwrap();
        let apex: Target = format!("tcp://{d}:{p}").parse().unwrap();
        let sub: Target = format!("tcp://{l}.{d}:{p}").parse().unwrap();
        let lookalike: Target = format!("tcp://{l}{d}:{p}").parse().unwrap();
        prop_assert!(!allowed(std::slice::from_ref(&entry), &apex));
        prop_assert!(allowed(std::slice::from_ref(&entry), &sub));
        prop_assert!(!allowed(&[entry], &lookalike));
    }

    #[test]
    fn names_never_match_address_entries_and_addresses_never_match_name_entries(
        entries in prop::collection::vec(entry(), 0..8), t in target()
    ) {
        use switchyard_policy::{HostPattern, TargetHost};
        let (addr_entries, name_entries): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .filter(|e| *e.host() != HostPattern::Any)
            .partition(|e| matches!(e.host(), HostPattern::Addr(_) | HostPattern::Net(_)));
        match t.host() {
            TargetHost::Name(_) => prop_assert!(!allowed(&addr_entries, &t)),
            TargetHost::Addr(_) => prop_assert!(!allowed(&name_entries, &t)),
        }
    }

    #[test]
    fn every_ipv6_form_of_an_ipv4_address_decides_like_it(
        entries in prop::collection::vec(entry(), 0..8), a in ipv4(), s in scheme(), p in port()
    ) {
        let v4: Target = format!("{s}://{a}:{p}").parse().unwrap();
        for form in ipv6_forms(a) {
            let written: Target = format!("{s}://[{form}]:{p}").parse().unwrap();
            prop_assert_eq!(allowed(&entries, &v4), allowed(&entries, &written), "{}", form);
        }
    }

    #[test]
    fn a_cidr_entry_allows_exactly_what_ipnet_says_it_contains(
        net_addr in any::<u32>(), len in 0u8..=32, probe in any::<u32>(), near in any::<bool>(),
        v6_addr in any::<u128>(), v6_len in 0u8..=128, v6_probe in any::<u128>()
    ) {
        let net = IpNet::V4(Ipv4Net::new(Ipv4Addr::from(net_addr), len).unwrap().trunc());
        // Half of the probes land near the network so that both outcomes are exercised.
        let addr = IpAddr::V4(Ipv4Addr::from(if near { net_addr ^ (probe & 0xff) } else { probe }));
        let v6_net = IpNet::V6(Ipv6Net::new(Ipv6Addr::from(v6_addr), v6_len).unwrap().trunc());
        let v6 = IpAddr::V6(Ipv6Addr::from(if near { v6_addr ^ (v6_probe & 0xffff) } else { v6_probe }));
        // Networks and probes in the IPv4-carrying ranges are decided as IPv4: the property above
        // covers them.
        prop_assume!(!carries_ipv4(Ipv6Addr::from(v6_addr)) && !carries_ipv4(Ipv6Addr::from(v6_probe)));
        prop_assume!(!matches!(v6, IpAddr::V6(a) if carries_ipv4(a)));
        prop_assume!(!matches!(v6_net, IpNet::V6(n) if carries_ipv4(n.network())));
        for (net, addr) in [(net, addr), (v6_net, v6)] {
            let entry: AllowedHost = format!("tcp://{}", match net { IpNet::V6(n) => format!("[{n}]"), n => n.to_string() }).parse().unwrap();
            let policy = Policy::new([entry], BlockedNetworks::none());
            let t = Target::tcp((addr, 80).into());
            // An IPv4-mapped probe is decided as IPv4, so compare against its canonical form.
            let canonical = match addr { IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4), a => a };
            prop_assert_eq!(policy.decide(&t).is_allowed(), net.contains(&canonical), "{} {}", net, addr);
        }
    }

    #[test]
    fn a_port_range_allows_exactly_the_ports_inside_it(a in 1u16..=65535, b in 1u16..=65535, p in 1u16..=65535) {
        let (lo, hi) = (a.min(b), a.max(b));
        let entry: AllowedHost = format!("tcp://h.example:{lo}-{hi}").parse().unwrap();
        let t: Target = format!("tcp://h.example:{p}").parse().unwrap();
        prop_assert_eq!(allowed(&[entry], &t), lo <= p && p <= hi);
    }

    #[test]
    fn display_then_parse_is_the_identity_on_parsed_entries(text in entry_text()) {
        let entry: AllowedHost = text.parse().unwrap();
        let shown = entry.to_string();
        let again: AllowedHost = shown.parse().unwrap();
        prop_assert_eq!(&again, &entry);
        prop_assert_eq!(again.to_string(), shown);
    }

    #[test]
    fn no_input_string_panics_the_parsers(text in "\\PC{0,40}", shaped in "[a-zA-Z0-9*.:/\\[\\]@?#%_ü-]{0,40}") {
        for t in [&text, &shaped] {
            let _ = t.parse::<AllowedHost>();
            let _ = t.parse::<Target>();
            let _ = t.parse::<switchyard_policy::DenyNetworkSpec>();
        }
    }
}
