//! Every way of writing an address is decided as the address it reaches (THREATS.md invariant 1):
//! IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4) are decided as that
//! IPv4 address by blocked networks, entries and the loopback test alike; numeric spellings that
//! are not dotted-quad IPv4 are not addresses and not names; trailing dots and IDNA spellings of a
//! name are that name.
//!
//! The expected forms are written out here, not computed by the code under test.

use std::net::IpAddr;

use switchyard_policy::{
    AllowedHost, BlockedNetworks, DenyNetworkSpec, HostName, Policy, Target, TargetHost, is_loopback,
};

fn target(text: &str) -> Target {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn policy(entries: &[&str], blocked: BlockedNetworks) -> Policy {
    Policy::new(entries.iter().map(|e| e.parse::<AllowedHost>().expect("entry")), blocked)
}

/// (an address as written, the IPv4 address it reaches)
const FORMS: &[(&str, &str)] = &[
    ("[::ffff:127.0.0.1]", "127.0.0.1"),
    ("[::ffff:7f00:1]", "127.0.0.1"),
    ("[::127.0.0.1]", "127.0.0.1"),
    ("[::7f00:1]", "127.0.0.1"),
    ("[64:ff9b::127.0.0.1]", "127.0.0.1"),
    ("[2002:7f00:1::]", "127.0.0.1"),
    ("[2002:7f00:1:ffff::1]", "127.0.0.1"),
    ("[::ffff:169.254.169.254]", "169.254.169.254"),
    ("[::a9fe:a9fe]", "169.254.169.254"),
    ("[64:ff9b::a9fe:a9fe]", "169.254.169.254"),
    ("[2002:a9fe:a9fe::]", "169.254.169.254"),
    ("[64:ff9b::10.1.2.3]", "10.1.2.3"),
    ("[2002:c0a8:101::1]", "192.168.1.1"),
    ("[::ffff:100.64.0.1]", "100.64.0.1"),
];

#[test]
fn every_ipv4_carrying_form_is_the_same_target_as_its_ipv4() {
    for (form, v4) in FORMS {
        assert_eq!(target(&format!("tcp://{form}:80")), target(&format!("tcp://{v4}:80")), "{form}");
    }
}

#[test]
fn blocked_networks_and_the_private_keyword_catch_every_form() {
    let private = BlockedNetworks::from_specs(&[DenyNetworkSpec::Default, DenyNetworkSpec::Private]);
    let anything = policy(&["*"], private);
    for (form, v4) in FORMS {
        let denied_as_v4 = !anything.decide(&target(&format!("tcp://{v4}:80"))).is_allowed();
        let denied = !anything.decide(&target(&format!("tcp://{form}:80"))).is_allowed();
        assert_eq!(denied, denied_as_v4, "{form}");
    }
    // What a DNS64 resolver answers for a private A record is private.
    for form in ["[64:ff9b::a00:5]", "[64:ff9b::c0a8:101]", "[2002:ac10:1::]", "[::a00:5]"] {
        assert!(!anything.decide(&target(&format!("tcp://{form}:443"))).is_allowed(), "{form}");
    }
    // Link-local metadata in every form is blocked by the defaults.
    let defaults = policy(&["*"], BlockedNetworks::defaults());
    for form in ["[::ffff:a9fe:a9fe]", "[::a9fe:a9fe]", "[64:ff9b::a9fe:a9fe]", "[2002:a9fe:a9fe::]"] {
        assert!(!defaults.decide(&target(&format!("tcp://{form}:80"))).is_allowed(), "{form}");
    }
}

#[test]
fn entries_written_in_one_form_match_the_addresses_of_every_form() {
    let p = policy(&["tcp://10.0.0.0/8"], BlockedNetworks::none());
    for form in ["10.1.2.3", "[::ffff:10.1.2.3]", "[::10.1.2.3]", "[64:ff9b::a01:203]", "[2002:a01:203::]"] {
        assert!(p.decide(&target(&format!("tcp://{form}:1"))).is_allowed(), "{form}");
    }
    let nat64 = policy(&["tcp://[64:ff9b::a00:0/104]"], BlockedNetworks::none());
    assert!(nat64.decide(&target("tcp://10.9.9.9:1")).is_allowed());
    assert!(!nat64.decide(&target("tcp://11.9.9.9:1")).is_allowed());
    // Addresses that only look alike are themselves.
    let v6 = policy(&["tcp://[2001:db8::/32]"], BlockedNetworks::none());
    assert!(v6.decide(&target("tcp://[2001:db8::a00:1]:1")).is_allowed());
    assert!(!v6.decide(&target("tcp://10.0.0.1:1")).is_allowed());
}

#[test]
fn loopback_is_recognised_in_every_form_and_only_there() {
    for (form, v4) in FORMS {
        let ip: IpAddr = form.trim_matches(['[', ']']).parse().expect("address");
        assert_eq!(is_loopback(ip), v4.starts_with("127."), "{form}");
    }
    for plain in ["127.0.0.1", "127.255.0.9", "::1"] {
        assert!(is_loopback(plain.parse().unwrap()), "{plain}");
    }
    for other in ["::", "::2", "2001:db8::7f00:1", "64:ff9b:1::7f00:1", "fe80::1"] {
        assert!(!is_loopback(other.parse().unwrap()), "{other}");
    }
}

#[test]
fn numeric_spellings_that_are_not_dotted_quads_are_neither_addresses_nor_names() {
    for host in
        ["2130706433", "127.1", "0x7f.0.0.1", "0x7f000001", "0177.0.0.1", "127.0.0.1.", "１２７.０.０.１"]
    {
        assert!(format!("tcp://{host}:80").parse::<Target>().is_err(), "{host} was taken as a target");
        assert!(HostName::parse(host).is_err(), "{host} was taken as a name");
    }
}

#[test]
fn trailing_dots_and_idna_spellings_are_the_name_they_spell() {
    for (written, canonical) in [
        ("localhost.", "localhost"),
        ("LOCALHOST", "localhost"),
        ("ｌｏｃａｌｈｏｓｔ", "localhost"),
        ("Bücher.Example.", "xn--bcher-kva.example"),
    ] {
        match target(&format!("tcp://{written}:80")).host() {
            TargetHost::Name(name) => assert_eq!(name.as_str(), canonical, "{written}"),
            other => panic!("{written} parsed as {other:?}"),
        }
    }
}
