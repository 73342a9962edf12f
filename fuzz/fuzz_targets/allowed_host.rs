//! Allowed-host and target parsing: no input panics, and every parsed entry's `Display` parses
//! back to the same entry (and to the same text).

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_policy::{AllowedHost, BlockedNetworks, DenyNetworkSpec, Policy, Target};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(entry) = text.parse::<AllowedHost>() {
        let shown = entry.to_string();
        let again: AllowedHost = shown.parse().expect("Display output parses");
        assert_eq!(again, entry, "{text:?} -> {shown:?}");
        assert_eq!(again.to_string(), shown);
        if let Ok(target) = shown.parse::<Target>() {
            // A concrete entry allows itself as a target unless it names a blocked address.
            let policy = Policy::new([entry], BlockedNetworks::none());
            assert!(policy.decide(&target).is_allowed(), "{shown} should allow itself");
        }
    }
    if let Ok(target) = text.parse::<Target>() {
        let again: Target = target.to_string().parse().expect("Display output parses");
        assert_eq!(again, target);
    }
    let _ = text.parse::<DenyNetworkSpec>();
});
