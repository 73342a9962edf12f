//! The example host runs the example guests (built by `bash scripts/test.sh`) and every step
//! goes as its documentation says.

use std::path::PathBuf;
use std::process::Command;

fn guest(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/guests/wasm32-wasip2/release")
        .join(name);
    assert!(path.exists(), "{}: build the guests first (bash scripts/test.sh builds them)", path.display());
    path.display().to_string()
}

#[test]
fn a_host_of_its_own_gives_its_guests_the_virtual_network_and_the_policy() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard-embed-host"))
        .args([guest("echo-service.wasm"), guest("echo-client.wasm")])
        .output()
        .expect("run the example host");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[1].starts_with("2. echo-service listens on 127.0.0.1:7777"), "{stdout}");
    assert!(lines[2].starts_with("3. echo-client -> 127.0.0.1:7777: rounds=3 micros="), "{stdout}");
    assert!(lines[3].starts_with("4. echo-client -> 203.0.113.7:7777: refused by the policy"), "{stdout}");
}
