//! Config loading: arbitrary text never panics; a rejected config always has at least one error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::config::{Overrides, Severity, load};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let env = |name: &str| (name == "DB_PASSWORD").then(|| "fuzz".to_owned());
    if let Err(findings) = load(text, &Overrides::default(), &env) {
        assert!(findings.iter().any(|f| f.severity == Severity::Error));
    }
});
