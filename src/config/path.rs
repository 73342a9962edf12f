//! Key paths into the config document, written the way users read them: `tenants[1].forwards[0].to`.

use std::fmt;

/// A path from the document root to one value. The root is the empty path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct KeyPath(String);

impl KeyPath {
    /// The document root.
    pub fn root() -> Self {
        KeyPath(String::new())
    }

    /// The value under mapping key `key`.
    pub fn key(&self, key: &str) -> Self {
        if self.0.is_empty() { KeyPath(key.to_owned()) } else { KeyPath(format!("{}.{key}", self.0)) }
    }

    /// The item at `index` of a sequence.
    pub fn index(&self, index: usize) -> Self {
        KeyPath(format!("{}[{index}]", self.0))
    }

    /// A path serde_yaml wrote at the start of its message (`tenants[0].port: ...`), and the
    /// rest of the message; `None` when the message does not start with one.
    pub fn split_leading(message: &str) -> Option<(KeyPath, &str)> {
        let (path, rest) = message.split_once(": ")?;
        let is_path = !path.is_empty()
            && path.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'));
        is_path.then(|| (KeyPath(path.to_owned()), rest))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "(document)" } else { &self.0 })
    }
}
