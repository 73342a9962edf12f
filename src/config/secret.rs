//! Secrets: referenced in the config as `${env:NAME}`, resolved once at load, never printed.

use std::fmt;

/// A resolved secret and the reference it came from.
///
/// Invariant: the value is reachable only through [`Secret::expose`]; `Debug` and `Display` show the
/// reference, so a secret cannot reach a log, an error or `map` output by formatting.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    reference: String,
    value: String,
}

/// Why a secret reference could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The text is not of the form `${env:NAME}`.
    #[error("a secret must be a reference like `${{env:DB_PASSWORD}}`, not a literal value")]
    NotAReference,
    /// The variable name is empty or has characters environment names do not use.
    #[error("`{0}` is not a valid environment variable name (use letters, digits and `_`)")]
    BadName(String),
    /// The variable is not set.
    #[error("environment variable `{0}` is not set")]
    Missing(String),
    /// The variable is set but empty: an empty password is no password.
    #[error("environment variable `{0}` is empty; a secret cannot be empty")]
    Empty(String),
}

impl Secret {
    /// Resolves `${env:NAME}` through `lookup` (the process environment, in production).
    pub fn resolve(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, SecretError> {
        let name = text
            .strip_prefix("${env:")
            .and_then(|rest| rest.strip_suffix('}'))
            .ok_or(SecretError::NotAReference)?;
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(SecretError::BadName(name.to_owned()));
        }
        let value = lookup(name).ok_or_else(|| SecretError::Missing(name.to_owned()))?;
        if value.is_empty() {
            return Err(SecretError::Empty(name.to_owned()));
        }
        Ok(Secret { reference: text.to_owned(), value })
    }

    /// A reference whose variable is not set (or empty): stands in for the secret while the
    /// rest of a config is checked, in a config that is then refused (its error was reported).
    pub(crate) fn unresolved(reference: &str) -> Self {
        Secret { reference: reference.to_owned(), value: String::new() }
    }

    /// The secret value, for the one place that must use it (authentication).
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The reference as written in the config (`${env:NAME}`), safe to show.
    pub fn reference(&self) -> &str {
        &self.reference
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.reference)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "DB_PASSWORD").then(|| "hunter2".to_owned())
    }

    #[test]
    fn resolves_references_and_never_formats_the_value() {
        let s = Secret::resolve("${env:DB_PASSWORD}", &env).unwrap();
        assert_eq!(s.expose(), "hunter2");
        assert!(!format!("{s} {s:?}").contains("hunter2"));
    }

    #[test]
    fn rejects_literals_bad_names_and_missing_variables() {
        assert_eq!(Secret::resolve("hunter2", &env), Err(SecretError::NotAReference));
        assert_eq!(Secret::resolve("${env:1X}", &env), Err(SecretError::BadName("1X".into())));
        assert_eq!(Secret::resolve("${env:NOPE}", &env), Err(SecretError::Missing("NOPE".into())));
        let empty = |_: &str| Some(String::new());
        assert_eq!(
            Secret::resolve("${env:DB_PASSWORD}", &empty),
            Err(SecretError::Empty("DB_PASSWORD".into()))
        );
    }
}
