//! The config: YAML (schema v1) parsed once into typed, validated values.
//!
//! Loading reports every problem, each with its key path and line, not only the first; secrets
//! are resolved from the environment and never shown. The schema is documented in `docs/config.md`.

mod decode;
mod diagnostics;
mod model;
mod path;
mod positions;
mod reader;
mod secret;
mod sections;

use std::net::SocketAddr;

pub use diagnostics::{Diagnostic, Severity};
pub use model::{
    Admin, AdminSql, Backend, Component, ComponentKind, Config, Dns, EnvValue, Forward, ForwardTls, Ingress,
    InsertIds, Pool, PoolMode, Profile, PublishAddr, PublishTls, Restart, Tenant, TenantLimits,
};
pub use path::KeyPath;
pub use secret::Secret;

use diagnostics::Diagnostics;
use positions::Positions;

/// Values given on the command line that replace the config's, field by field.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--profile`.
    pub profile: Option<Profile>,
    /// `--admin-listen`.
    pub admin_listen: Option<SocketAddr>,
}

/// A loaded config and the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The validated config.
    pub config: Config,
    /// Findings that did not prevent loading.
    pub warnings: Vec<Diagnostic>,
}

/// Parses and validates `text`. On failure, every finding (errors and warnings) is returned.
pub fn load(
    text: &str,
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, Vec<Diagnostic>> {
    load_checking_files(text, overrides, env, &|_| Ok(()))
}

/// As [`load`], also asking `wasm` about each component's file (`Err`: why it cannot run), so
/// that a missing file or one that is not a component is reported with the rest, at its key.
pub fn load_checking_files(
    text: &str,
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
    wasm: &dyn Fn(&str) -> Result<(), String>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let mut d = Diagnostics::new(Positions::index(text));
    let value: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            // At the end of a text that ends with a newline the parser points one line past
            // it: report the last line.
            let last_line = positions::line_count(text);
            let line = e.location().map(|l| l.line().min(last_line));
            let text = e.to_string();
            let (path, message) = match KeyPath::split_leading(&text) {
                Some((path, rest)) => (path, rest.to_owned()),
                None => (KeyPath::root(), text.clone()),
            };
            // A number beyond every integer type: say so rather than serde's "as u128".
            let message = match message.strip_prefix("invalid type: integer `") {
                Some(rest) if rest.contains("` as u128") || rest.contains("` as i128") => {
                    let number = rest.split('`').next().unwrap_or_default();
                    format!("the number {number} is too large for any setting")
                }
                _ => message,
            };
            return Err(vec![Diagnostic { severity: Severity::Error, path, line, message }]);
        }
    };
    let config = decode::root(&mut d, &value, overrides, env, wasm);
    match config {
        Some(config) if !d.has_errors() => Ok(Loaded { config, warnings: d.into_items() }),
        _ => {
            if !d.has_errors() {
                d.error(&KeyPath::root(), "the config could not be read");
            }
            let mut findings = d.into_items();
            findings.sort_by_key(|f| f.line.unwrap_or(usize::MAX));
            Err(findings)
        }
    }
}

#[cfg(test)]
mod tests;
