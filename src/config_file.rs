//! Reading a config file from disk and printing what loading found, as `FILE:LINE: ...` lines.

use std::path::Path;

use anyhow::Context;

use crate::config::{self, Diagnostic, Loaded, Overrides, Severity};

/// Loads `path`, printing every warning and error to stderr. `Ok(None)` means the config is
/// invalid (the errors were printed); `Err` means the file could not be read. With
/// `check_files`, each component's `wasm` file must be there and be a component (relative paths
/// are relative to the config's folder), reported with the other errors.
pub fn load_reporting(
    path: &Path,
    overrides: &Overrides,
    check_files: bool,
) -> anyhow::Result<Option<Loaded>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read config {}", path.display()))?;
    match load_text(path, &text, overrides, check_files) {
        Ok((loaded, warnings)) => {
            for warning in &warnings {
                eprintln!("{warning}");
            }
            Ok(Some(loaded))
        }
        Err(lines) => {
            for line in &lines {
                eprintln!("{line}");
            }
            Ok(None)
        }
    }
}

/// Loads `path` as [`load_reporting`] does (files checked), for a reload: the config and its
/// warning lines, or every error line (a file that cannot be read is one of them).
pub fn load_collecting(path: &Path, overrides: &Overrides) -> Result<(Loaded, Vec<String>), Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("{}: error: cannot read the config: {e}", path.display())])?;
    load_text(path, &text, overrides, true)
}

/// Loads `text` read from `path`: the config and its warning lines, or its warning and error
/// lines and a count of the errors last.
fn load_text(
    path: &Path,
    text: &str,
    overrides: &Overrides,
    check_files: bool,
) -> Result<(Loaded, Vec<String>), Vec<String>> {
    let base = path.parent().unwrap_or(Path::new("."));
    let wasm = |file: &str| if check_files { check_component(&base.join(file)) } else { Ok(()) };
    match config::load_checking_files(text, overrides, &|name| std::env::var(name).ok(), &wasm) {
        Ok(loaded) => {
            let warnings = loaded.warnings.iter().map(|w| render(path, w)).collect();
            Ok((loaded, warnings))
        }
        Err(findings) => {
            let mut lines: Vec<String> = findings.iter().map(|f| render(path, f)).collect();
            let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
            lines.push(format!(
                "{}: {errors} error{} found",
                path.display(),
                if errors == 1 { "" } else { "s" }
            ));
            Err(lines)
        }
    }
}

/// The magic number and version every wasm binary starts with, and the version of a core
/// module (a component has version `0x0d`, layer 1: `0d 00 01 00`).
const WASM_MAGIC: &[u8; 4] = b"\0asm";
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];

/// Whether `file` can be read and holds a wasm component (by its header; `up` compiles it).
fn check_component(file: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut header = [0u8; 8];
    let read = std::fs::File::open(file).and_then(|mut f| {
        let mut filled = 0;
        while filled < header.len() {
            match f.read(&mut header[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        Ok(filled)
    });
    match read {
        Err(e) => Err(format!("cannot read {}: {e}", file.display())),
        Ok(8) if header[..4] == *WASM_MAGIC && header[4..] == COMPONENT_VERSION => Ok(()),
        Ok(8) if header[..4] == *WASM_MAGIC => Err(format!(
            "not a component: {} is a core wasm module; build it as a component (e.g. for wasm32-wasip2)",
            file.display()
        )),
        Ok(_) => Err(format!("not a component: {} is not a wasm binary", file.display())),
    }
}

/// `FILE:LINE: error: PATH: message`, the form editors and CI logs link to.
pub fn render(file: &Path, d: &Diagnostic) -> String {
    let kind = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    match d.line {
        Some(line) => format!("{}:{line}: {kind}: {}: {}", file.display(), d.path, d.message),
        None => format!("{}: {kind}: {}: {}", file.display(), d.path, d.message),
    }
}
