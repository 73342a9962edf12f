//! Start-up: a component is compiled once per distinct content however many tenants use it, and
//! a restart reads the compiled artifact from `state_dir` instead of compiling again (a broken
//! artifact is compiled anew).

mod support;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{Switchyard, echo_service_tenants, free_port};

const TENANTS: usize = 40;

/// Starts the host on `state_dir`, waits until every tenant's service listens, and gives the
/// line that says how its components were obtained.
fn start(state_dir: &Path) -> (Switchyard, String) {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let switchyard = Switchyard::start("startup", admin, &echo_service_tenants(admin, state_dir, TENANTS));
    switchyard.wait_for_log_count("echo-service: listening on", TENANTS, Duration::from_secs(60));
    let log = switchyard.log();
    let line = log.lines().find(|l| l.contains("components ready:")).unwrap_or_default().to_owned();
    (switchyard, line)
}

fn stop(switchyard: Switchyard) {
    let (status, log) = switchyard.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");
}

/// The compiled artifacts kept in `state_dir`.
fn artifacts(state_dir: &Path) -> Vec<PathBuf> {
    let dir = state_dir.join("compiled");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|f| f.extension().is_some_and(|e| e == "cwasm"));
    files
}

#[test]
fn a_component_is_compiled_once_for_all_its_tenants_and_not_again_on_restart() {
    let state_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("startup-state");
    let _ = std::fs::remove_dir_all(&state_dir);

    let (switchyard, line) = start(&state_dir);
    assert!(line.contains("components ready: 1 compiled, 0 read from state_dir, 39 shared"), "{line}");
    stop(switchyard);
    let kept = artifacts(&state_dir);
    assert_eq!(kept.len(), 1, "one artifact for one distinct component: {kept:?}");
    let mode = std::fs::metadata(state_dir.join("compiled")).expect("compiled folder").permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "the compiled folder is its owner's alone");

    // A restart compiles nothing.
    let (switchyard, line) = start(&state_dir);
    assert!(line.contains("components ready: 0 compiled, 1 read from state_dir, 39 shared"), "{line}");
    stop(switchyard);

    // A torn or foreign artifact is compiled again, and replaced.
    std::fs::write(&kept[0], b"not a compiled component").expect("break the artifact");
    let (switchyard, line) = start(&state_dir);
    assert!(line.contains("components ready: 1 compiled, 0 read from state_dir, 39 shared"), "{line}");
    assert!(switchyard.log().contains("does not load"), "no warning about the broken artifact");
    stop(switchyard);
    let (switchyard, line) = start(&state_dir);
    assert!(line.contains("0 compiled, 1 read from state_dir"), "the artifact was not replaced: {line}");
    stop(switchyard);
}
