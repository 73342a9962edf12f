//! Allowed-host and target parsing: no input panics, every parsed entry's `Display` parses
//! back to the same entry (and to the same text), and an IPv4 target written in any IPv6 form
//! that carries it (mapped, compatible, NAT64, 6to4) is the same target.

#![no_main]

use std::net::{IpAddr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use switchyard_policy::{AllowedHost, BlockedNetworks, DenyNetworkSpec, Policy, Target, TargetHost, is_loopback};

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
        if let TargetHost::Addr(IpAddr::V4(v4)) = target.host() {
            let [b0, b1, b2, b3] = v4.octets();
            let (hi, lo) = (u16::from_be_bytes([b0, b1]), u16::from_be_bytes([b2, b3]));
            let mut forms = vec![
                Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, hi, lo),
                Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo),
                Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 0),
            ];
            if u32::from(*v4) > 1 {
                forms.push(Ipv6Addr::new(0, 0, 0, 0, 0, 0, hi, lo));
            }
            for form in forms {
                let written = Target::new(target.scheme().clone(), TargetHost::Addr(IpAddr::V6(form)), target.port());
                assert_eq!(written, target, "{form} is not decided as {v4}");
                assert_eq!(is_loopback(IpAddr::V6(form)), v4.is_loopback(), "{form}");
            }
        }
    }
    let _ = text.parse::<DenyNetworkSpec>();
});
