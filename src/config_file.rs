//! Reading a config file from disk and printing what loading found, as `FILE:LINE: ...` lines.

use std::path::Path;

use anyhow::Context;

use crate::config::{self, Diagnostic, Loaded, Overrides, Severity};

/// Loads `path`, printing every warning and error to stderr. `Ok(None)` means the config is
/// invalid (the errors were printed); `Err` means the file could not be read.
pub fn load_reporting(path: &Path, overrides: &Overrides) -> anyhow::Result<Option<Loaded>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read config {}", path.display()))?;
    match config::load(&text, overrides, &|name| std::env::var(name).ok()) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("{}", render(path, warning));
            }
            Ok(Some(loaded))
        }
        Err(findings) => {
            for finding in &findings {
                eprintln!("{}", render(path, finding));
            }
            let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
            eprintln!("{}: {errors} error{} found", path.display(), if errors == 1 { "" } else { "s" });
            Ok(None)
        }
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
