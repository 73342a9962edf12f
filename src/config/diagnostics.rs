//! Config errors and warnings, each with its key path and line, collected rather than stopping at
//! the first.

use std::fmt;

use super::path::KeyPath;
use super::positions::Positions;

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The config cannot be used.
    Error,
    /// The config is used, but probably not as meant.
    Warning,
}

/// One finding about the config, anchored at a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where in the document.
    pub path: KeyPath,
    /// The line of `path` (or its nearest ancestor), when known.
    pub line: Option<usize>,
    /// What is wrong and, where possible, what to write instead.
    pub message: String,
}

/// The findings of one load, in document order of discovery.
#[derive(Debug, Default)]
pub struct Diagnostics {
    positions: Positions,
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Findings for a document whose positions are `positions`.
    pub fn new(positions: Positions) -> Self {
        Diagnostics { positions, items: Vec::new() }
    }

    /// Records an error at `path`.
    pub fn error(&mut self, path: &KeyPath, message: impl fmt::Display) {
        self.push(Severity::Error, path, message);
    }

    /// Records a warning at `path`.
    pub fn warning(&mut self, path: &KeyPath, message: impl fmt::Display) {
        self.push(Severity::Warning, path, message);
    }

    fn push(&mut self, severity: Severity, path: &KeyPath, message: impl fmt::Display) {
        let line = self.positions.line(path);
        self.items.push(Diagnostic { severity, path: path.clone(), line, message: message.to_string() });
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// The findings, consumed.
    pub fn into_items(self) -> Vec<Diagnostic> {
        self.items
    }
}
