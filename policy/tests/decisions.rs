//! Table-driven decisions: the policy spec, case by case.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use switchyard_policy::{
    AllowedHost, BlockedNetworks, Decision, DenyReason, HostName, NameBindings, Policy, Target,
};

fn policy(entries: &[&str]) -> Policy {
    let entries = entries.iter().map(|e| e.parse::<AllowedHost>().unwrap_or_else(|err| panic!("{err}")));
    Policy::new(entries.collect::<Vec<_>>(), BlockedNetworks::defaults())
}

fn target(t: &str) -> Target {
    t.parse().unwrap_or_else(|err| panic!("{err}"))
}

/// (entries, target, allowed?)
const CASES: &[(&[&str], &str, bool)] = &[
    // Default deny.
    (&[], "tcp://10.1.2.3:5432", false),
    (&[], "https://api.example.com", false),
    // `*` allows everything outside blocked networks.
    (&["*"], "tcp://10.1.2.3:5432", true),
    (&["*"], "https://api.example.com", true),
    (&["*"], "tcp://169.254.169.254:80", false),
    (&["*"], "tcp://[fe80::1]:80", false),
    (&["*"], "tcp://[::ffff:169.254.169.254]:80", false),
    (&["*"], "tcp://224.0.0.1:5353", false),
    (&["*"], "tcp://127.0.0.1:80", true),
    // Schemes: absent/`*` any; `tcp` covers protocols over TCP; others match themselves.
    (&["db.internal"], "postgres://db.internal", true),
    (&["*://db.internal"], "udp://db.internal:53", true),
    (&["tcp://db.internal"], "https://db.internal", true),
    (&["tcp://db.internal"], "mysql://db.internal:3307", true),
    (&["tcp://db.internal"], "udp://db.internal:53", false),
    (&["https://db.internal"], "tcp://db.internal:443", false),
    (&["mysql://db.internal"], "tcp://db.internal:3306", false),
    (&["mysql://db.internal"], "mysql://db.internal", true),
    (&["mysql://db.internal"], "mysql://db.internal:3307", false),
    (&["foo://h.example:1"], "bar://h.example:1", false),
    // Default ports.
    (&["https://api.example.com"], "https://api.example.com:443", true),
    (&["https://api.example.com"], "https://api.example.com:8443", false),
    (&["http://api.example.com"], "http://api.example.com", true),
    (&["https://api.example.com:*"], "https://api.example.com:8443", true),
    (&["redis://cache.internal"], "redis://cache.internal:6379", true),
    // Port ranges.
    (&["tcp://h.example:8000-8100"], "tcp://h.example:7999", false),
    (&["tcp://h.example:8000-8100"], "tcp://h.example:8000", true),
    (&["tcp://h.example:8000-8100"], "tcp://h.example:8100", true),
    (&["tcp://h.example:8000-8100"], "tcp://h.example:8101", false),
    // Suffixes: one or more labels, never the apex, never a look-alike.
    (&["https://*.example.com"], "https://api.example.com", true),
    (&["https://*.example.com"], "https://a.b.example.com", true),
    (&["https://*.example.com"], "https://example.com", false),
    (&["https://*.example.com"], "https://xexample.com", false),
    (&["https://*.example.com"], "https://example.com.evil.net", false),
    // Canonical names.
    (&["https://API.Example.COM."], "https://api.example.com", true),
    (&["https://api.example.com"], "https://API.EXAMPLE.com.", true),
    (&["https://bücher.example"], "https://xn--bcher-kva.example", true),
    // Names and addresses never match each other.
    (&["tcp://localhost"], "tcp://127.0.0.1:80", false),
    (&["tcp://127.0.0.1"], "tcp://localhost:80", false),
    (&["*.example.com"], "tcp://192.0.2.1:443", false),
    // Addresses and networks.
    (&["tcp://10.0.0.0/8"], "tcp://10.1.2.3:5432", true),
    (&["tcp://10.0.0.0/8"], "tcp://11.0.0.1:5432", false),
    (&["tcp://10.0.0.0/8"], "tcp://[::ffff:10.1.2.3]:5432", true),
    (&["tcp://[::ffff:10.1.2.3]"], "tcp://10.1.2.3:1", true),
    (&["tcp://[2001:db8::/32]:443"], "tcp://[2001:db8::5]:443", true),
    (&["tcp://[2001:db8::/32]:443"], "tcp://[2001:db9::5]:443", false),
    (&["2001:db8::/32"], "tcp://[2001:db8::5]:1", true),
    (&["tcp://0.0.0.0/0"], "tcp://203.0.113.9:22", true),
    (&["tcp://0.0.0.0/0"], "tcp://0.0.0.1:22", false),
    // Any matching entry allows.
    (&["https://a.example", "tcp://10.0.0.0/8"], "tcp://10.9.9.9:1", true),
];

#[test]
fn decisions_follow_the_spec() {
    for (entries, t, allowed) in CASES {
        let decision = policy(entries).decide(&target(t));
        assert_eq!(decision.is_allowed(), *allowed, "entries {entries:?}, target {t}: {decision:?}");
    }
}

#[test]
fn an_allow_names_the_first_matching_entry() {
    let p = policy(&["tcp://10.0.0.0/8", "*", "tcp://10.1.2.3"]);
    match p.decide(&target("tcp://10.1.2.3:1")) {
        Decision::Allow(a) => assert_eq!(a.entry.to_string(), "tcp://10.0.0.0/8"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn deny_reasons_say_what_to_do() {
    let deny = |entries: &[&str], t: &str| match policy(entries).decide(&target(t)) {
        Decision::Deny(d) => d,
        other => panic!("{other:?}"),
    };
    let d = deny(&[], "tcp://10.1.2.3:5432");
    assert_eq!(d.reason, DenyReason::NoEntries);
    assert!(d.to_string().contains("add `tcp://10.1.2.3:5432`"), "{d}");

    let d = deny(&["*"], "tcp://169.254.169.254:80");
    assert!(matches!(d.reason, DenyReason::BlockedNetwork { .. }));
    assert!(d.to_string().contains("169.254.0.0/16"), "{d}");
    assert_eq!(d.suggestion(), None);

    let d = deny(&["https://api.example.com"], "tcp://api.example.com:443");
    assert!(d.to_string().contains("entry `https://api.example.com` covers this host"), "{d}");
    assert!(d.to_string().contains("add `tcp://api.example.com:443`"), "{d}");
}

#[test]
fn name_bindings_let_allowed_names_reach_their_addresses() {
    let p = policy(&["tcp://*.example.com:443"]);
    let now = Instant::now();
    let mut b = NameBindings::default();
    let name = HostName::parse("api.example.com").unwrap();
    let addr: IpAddr = "192.0.2.7".parse().unwrap();
    let t = target("tcp://192.0.2.7:443");
    assert!(!p.decide_with(&t, &b, now).is_allowed(), "unbound address is denied");
    b.bind(&name, &[addr], Duration::from_secs(60), now);
    match p.decide_with(&t, &b, now) {
        Decision::Allow(a) => assert_eq!(a.via_name, Some(name.clone())),
        other => panic!("{other:?}"),
    }
    assert!(!p.decide_with(&target("tcp://192.0.2.7:80"), &b, now).is_allowed(), "port still applies");
    let expired = now + Duration::from_secs(61);
    assert!(!p.decide_with(&t, &b, expired).is_allowed(), "binding expired with its TTL");
}

#[test]
fn a_name_bound_to_a_blocked_address_is_denied() {
    let p = policy(&["tcp://db.internal:5432"]);
    let now = Instant::now();
    let mut b = NameBindings::default();
    let name = HostName::parse("db.internal").unwrap();
    b.bind(
        &name,
        &["10.0.0.5".parse().unwrap(), "169.254.169.254".parse().unwrap()],
        Duration::from_secs(5),
        now,
    );
    match p.decide_with(&target("tcp://db.internal:5432"), &b, now) {
        Decision::Deny(d) => {
            assert!(matches!(d.reason, DenyReason::NameBoundToBlocked { .. }));
            assert!(d.to_string().contains("resolved to 169.254.169.254"), "{d}");
        }
        other => panic!("{other:?}"),
    }
    // The blocked address itself stays denied even though it is bound to an allowed name.
    assert!(!p.decide_with(&target("tcp://169.254.169.254:5432"), &b, now).is_allowed());
}

#[test]
fn deny_networks_are_configurable() {
    let entries = vec!["*".parse::<AllowedHost>().unwrap()];
    let p = Policy::new(entries.clone(), BlockedNetworks::new(["10.0.0.0/8".parse().unwrap()]));
    assert!(!p.decide(&target("tcp://10.1.1.1:1")).is_allowed());
    assert!(p.decide(&target("tcp://169.254.169.254:80")).is_allowed(), "defaults replaced");
    let none = Policy::new(entries, BlockedNetworks::none());
    assert!(none.decide(&target("tcp://0.0.0.1:1")).is_allowed());
}

#[test]
fn lookups_are_allowed_for_names_an_entry_covers_whatever_its_scheme_and_port() {
    let p = policy(&["https://*.example.com", "tcp://db.internal:5432", "10.0.0.0/8"]);
    let name = |n: &str| HostName::parse(n).expect("valid name");
    let entry = |n: &str| p.allows_lookup(&name(n)).map(|e| e.to_string());
    assert_eq!(entry("api.example.com").as_deref(), Some("https://*.example.com"));
    assert_eq!(entry("DB.internal.").as_deref(), Some("tcp://db.internal:5432"));
    assert_eq!(entry("example.com"), None, "a suffix never covers its apex");
    assert_eq!(entry("other.internal"), None);
    let any = policy(&["tcp://db.internal:5432", "*"]);
    assert_eq!(any.allows_lookup(&name("anything.test")).map(|e| e.to_string()).as_deref(), Some("*"));
    assert_eq!(
        any.allows_lookup(&name("db.internal")).map(|e| e.to_string()).as_deref(),
        Some("tcp://db.internal:5432"),
        "the first-declared entry is named"
    );
}
