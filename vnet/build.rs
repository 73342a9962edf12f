//! Copies the standard WASI WIT files that `bindgen!` needs from the pinned `wasmtime-wasi` crate
//! into `wit/deps/` (ignored by git), so that our `wasi:sockets` bindings always match the
//! wasmtime-wasi they shadow, and no copy of them is committed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// The WIT files of `wasmtime-wasi` that our world depends on.
const PACKAGES: &[&str] = &["io.wit", "clocks.wit", "sockets.wit"];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=wit/vnet.wit");
    let source = wasmtime_wasi_dir(&manifest_dir).join("src/p2/wit/deps");
    let target = manifest_dir.join("wit/deps");
    fs::create_dir_all(&target).unwrap_or_else(|e| panic!("cannot create {}: {e}", target.display()));
    for file in PACKAGES {
        let from = source.join(file);
        let text = fs::read(&from).unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()));
        let to = target.join(file);
        // Rewrite only on change, so the bindings are not regenerated on every build.
        if fs::read(&to).ok().as_deref() != Some(text.as_slice()) {
            fs::write(&to, &text).unwrap_or_else(|e| panic!("cannot write {}: {e}", to.display()));
        }
    }
}

/// The source folder of the `wasmtime-wasi` package this build resolved, from `cargo metadata`.
fn wasmtime_wasi_dir(manifest_dir: &Path) -> PathBuf {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--manifest-path"])
        .arg(manifest_dir.join("Cargo.toml"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run `cargo metadata`: {e}"));
    if !output.status.success() {
        panic!("`cargo metadata` failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("`cargo metadata` output: {e}"));
    let packages = metadata["packages"].as_array().map(Vec::as_slice).unwrap_or_default();
    let manifest = packages
        .iter()
        .find(|p| p["name"] == "wasmtime-wasi")
        .and_then(|p| p["manifest_path"].as_str())
        .unwrap_or_else(|| panic!("`cargo metadata` lists no wasmtime-wasi package"));
    Path::new(manifest).parent().map(Path::to_path_buf).unwrap_or_default()
}
