use super::*;

/// Entries that parse, and their canonical form.
const VALID: &[(&str, &str)] = &[
    ("*", "*"),
    ("*://*", "*"),
    ("*://*:*", "*:*"),
    ("example.com", "example.com"),
    ("Example.COM.", "example.com"),
    ("https://api.example.com", "https://api.example.com"),
    ("https://API.example.com.:8443", "https://api.example.com:8443"),
    ("*.example.com", "*.example.com"),
    ("https://*.Example.com.", "https://*.example.com"),
    ("tcp://10.1.2.3:5432", "tcp://10.1.2.3:5432"),
    ("tcp://10.0.0.0/8", "tcp://10.0.0.0/8"),
    ("10.0.0.0/8:5432", "10.0.0.0/8:5432"),
    ("[2001:db8::1]", "[2001:db8::1]"),
    ("[2001:DB8::1]:443", "[2001:db8::1]:443"),
    ("[2001:db8::/32]:443", "[2001:db8::/32]:443"),
    ("2001:db8::/32", "[2001:db8::/32]"),
    ("::1", "[::1]"),
    ("[::ffff:10.1.2.3]:80", "10.1.2.3:80"),
    ("[::ffff:10.0.0.0/104]", "10.0.0.0/8"),
    ("mysql://db.internal", "mysql://db.internal"),
    ("tcp://db.internal:3000-3999", "tcp://db.internal:3000-3999"),
    ("redis://cache:6379-6379", "redis://cache:6379"),
    ("svn+ssh://repo.example:22", "svn+ssh://repo.example:22"),
    ("bücher.example", "xn--bcher-kva.example"),
    ("*:443", "*:443"),
    ("https://*", "https://*"),
    ("0.0.0.0/0", "0.0.0.0/0"),
];

#[test]
fn valid_entries_parse_to_their_canonical_form() {
    for (input, canonical) in VALID {
        let entry: AllowedHost = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(entry.to_string(), *canonical, "canonical form of {input}");
        let again: AllowedHost = canonical.parse().unwrap();
        assert_eq!(again, entry, "{canonical} round-trips");
    }
}

/// Entries that are rejected, and a word the message must contain.
const INVALID: &[(&str, &str)] = &[
    ("", "empty"),
    ("https://", "host is empty"),
    ("https://x/", "path"),
    ("https://x/api", "path"),
    ("x?y=1", "query"),
    ("x#top", "fragment"),
    ("user:pw@x", "user info"),
    ("HTTPS://x", "lowercase"),
    ("ht_tp://x", "may contain only"),
    ("x:0", "out of range"),
    ("x:65536", "out of range"),
    ("x:", "empty"),
    ("x:http", "not a number"),
    ("x:90-80", "reversed"),
    ("x:*-80", "not a number"),
    ("*.*.example.com", "`*` may only"),
    ("a*.example.com", "`*` may only"),
    ("example.*", "`*` may only"),
    ("**", "`*` may only"),
    ("*.", "empty"),
    ("10.0.0.1/8", "did you mean `10.0.0.0/8`"),
    ("[2001:db8::1/32]", "did you mean `2001:db8::/32`"),
    ("10.0.0.0/33", "not a valid network"),
    ("[10.0.0.1]", "only for IPv6"),
    ("[10.0.0.0/8]", "only for IPv6"),
    ("2001:db8::1:80:x", "IPv6"),
    ("[::1]x", "brackets"),
    ("256.1.1.1", "neither a valid IPv4"),
    ("1.2.3", "neither a valid IPv4"),
    ("a..b", "empty label"),
    ("exa mple.com", "white space"),
    ("-bad.example", "starts or ends with `-`"),
];

#[test]
fn invalid_entries_are_rejected_with_a_useful_message() {
    for (input, needle) in INVALID {
        let err = input.parse::<AllowedHost>().expect_err(input);
        let message = err.to_string();
        assert!(message.contains(needle), "{input}: `{message}` should mention `{needle}`");
        assert!(message.contains(&format!("`{input}`")), "{input}: the message names the entry");
    }
}

#[test]
fn effective_port_uses_the_scheme_default_only_when_no_port_is_written() {
    let port = |e: &str| e.parse::<AllowedHost>().unwrap().effective_port();
    assert_eq!(port("https://x"), PortPattern::single(443));
    assert_eq!(port("http://x"), PortPattern::single(80));
    assert_eq!(port("mysql://x"), PortPattern::single(3306));
    assert_eq!(port("postgres://x"), PortPattern::single(5432));
    assert_eq!(port("redis://x"), PortPattern::single(6379));
    assert_eq!(port("tcp://x"), PortPattern::Any);
    assert_eq!(port("x"), PortPattern::Any);
    assert_eq!(port("https://x:*"), PortPattern::Any);
}

#[test]
fn serde_round_trips_through_yaml_strings() {
    let entries: Vec<AllowedHost> = serde_yaml::from_str("- https://*.example.com\n- '*'\n").unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(serde_yaml::to_string(&entries).unwrap(), "- https://*.example.com\n- '*'\n");
    let err = serde_yaml::from_str::<Vec<AllowedHost>>("- https://x/path\n").unwrap_err();
    assert!(err.to_string().contains("path"), "{err}");
}
