//! Config loading: arbitrary text never panics; a secret given through the environment never
//! appears in any finding nor in the loaded config's `Debug`; every finding's line lies within
//! the text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::config::{Overrides, load};

/// The value every `${env:NAME}` resolves to. The fuzzer never sees it compared with its input,
/// so it can only appear in a finding if the loader copied it there.
const SECRET: &str = "Zq7-fuzz-secret-9XkL2";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.contains(SECRET) {
        return;
    }
    let env = |_: &str| Some(SECRET.to_owned());
    // Lines as YAML counts them (`\r\n`, a lone `\r`, `\n` each end one).
    let breaks = text.replace("\r\n", "\n").chars().filter(|c| matches!(c, '\n' | '\r')).count();
    let lines = (breaks + usize::from(!text.ends_with(['\n', '\r']))).max(1);
    let findings = match load(text, &Overrides::default(), &env) {
        Ok(loaded) => {
            let shown = format!("{:?}", loaded.config);
            assert!(!shown.contains(SECRET), "a secret in the config's Debug: {shown}");
            loaded.warnings
        }
        Err(findings) => findings,
    };
    for finding in &findings {
        assert!(!finding.message.contains(SECRET), "a secret in a finding: {}", finding.message);
        assert!(!format!("{:?}", finding.path).contains(SECRET), "a secret in a key path");
        if let Some(line) = finding.line {
            assert!((1..=lines).contains(&line), "line {line} of a {lines}-line text: {}", finding.message);
        }
    }
});
