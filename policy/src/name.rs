//! Canonical DNS names.

use std::fmt;

use thiserror::Error;

/// The longest name DNS can carry, in its textual form without the trailing dot.
const MAX_NAME_LEN: usize = 253;
/// The longest label DNS can carry.
const MAX_LABEL_LEN: usize = 63;

/// A DNS host name in canonical form: ASCII, lowercase, no trailing dot, IDNA (punycode) labels.
///
/// Every label is 1–63 characters of `a-z 0-9 - _`, not starting or ending with `-`, and the last
/// label is not a number, decimal or `0x` hexadecimal (that would be an IPv4 address in a form
/// that C's `inet_aton` reads, such as `127.1` or `0x7f000001`, not a name). Two names are equal exactly
/// when they name the same host, which is what lets matching compare strings.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostName(Box<str>);

/// Why a name was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum NameError {
    /// Nothing was given.
    #[error("the host name is empty")]
    Empty,
    /// Two dots in a row, or a leading dot.
    #[error("host name `{0}` has an empty label")]
    EmptyLabel(String),
    /// A label over 63 characters.
    #[error("host name `{0}` has a label longer than 63 characters")]
    LabelTooLong(String),
    /// A name over 253 characters.
    #[error("host name `{0}` is longer than 253 characters")]
    TooLong(String),
    /// A character DNS names cannot hold.
    #[error("host name `{name}` contains `{ch}`; names may contain letters, digits, `-` and `_`")]
    BadCharacter {
        /// The name as given.
        name: String,
        /// The offending character.
        ch: char,
    },
    /// A label starting or ending with `-`.
    #[error("host name `{0}` has a label that starts or ends with `-`")]
    Hyphen(String),
    /// A `*` outside the one place it may stand.
    #[error("`*` may only be the whole host or its first label (`*.example.com`), not part of `{0}`")]
    Wildcard(String),
    /// The last label is a number (decimal or `0x` hexadecimal), so this was meant as an IPv4
    /// address but is not a dotted quad.
    #[error("`{0}` is neither a valid IPv4 address nor a host name")]
    NumericLastLabel(String),
    /// A non-ASCII name that IDNA could not convert.
    #[error("host name `{0}` is not a valid internationalised domain name")]
    Idna(String),
}

impl HostName {
    /// Parses and canonicalises a name: lowercase, one trailing dot removed, IDNA to punycode.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let trimmed = input.strip_suffix('.').unwrap_or(input);
        if trimmed.is_empty() {
            return Err(NameError::Empty);
        }
        if trimmed.contains('*') {
            return Err(NameError::Wildcard(input.to_owned()));
        }
        let ascii = if trimmed.is_ascii() {
            trimmed.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(trimmed).map_err(|_| NameError::Idna(input.to_owned()))?
        };
        validate(&ascii, input)?;
        Ok(HostName(ascii.into_boxed_str()))
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The names this one is a strict subdomain of, nearest first: `a.b.c` gives `b.c`, then `c`.
    pub fn parent_suffixes(&self) -> impl Iterator<Item = &str> {
        let text = self.as_str();
        text.match_indices('.').map(move |(i, _)| &text[i + 1..])
    }
}

fn validate(ascii: &str, input: &str) -> Result<(), NameError> {
    if ascii.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(input.to_owned()));
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel(input.to_owned()));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(NameError::LabelTooLong(input.to_owned()));
        }
        if let Some(ch) =
            label.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
        {
            return Err(NameError::BadCharacter { name: input.to_owned(), ch });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NameError::Hyphen(input.to_owned()));
        }
    }
    let last = ascii.rsplit('.').next().unwrap_or(ascii);
    let hex = last.strip_prefix("0x").is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
    if hex || last.chars().all(|c| c.is_ascii_digit()) {
        return Err(NameError::NumericLastLabel(input.to_owned()));
    }
    Ok(())
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises_case_trailing_dot_and_idna() {
        assert_eq!(HostName::parse("Example.COM.").unwrap().as_str(), "example.com");
        assert_eq!(HostName::parse("bücher.example").unwrap().as_str(), "xn--bcher-kva.example");
        assert_eq!(HostName::parse("_srv.db-1.internal").unwrap().as_str(), "_srv.db-1.internal");
    }

    #[test]
    fn rejects_malformed_names() {
        assert_eq!(HostName::parse(""), Err(NameError::Empty));
        assert_eq!(HostName::parse("."), Err(NameError::Empty));
        assert!(matches!(HostName::parse("a..b"), Err(NameError::EmptyLabel(_))));
        assert!(matches!(HostName::parse("example.com.."), Err(NameError::EmptyLabel(_))));
        assert!(matches!(HostName::parse("-a.b"), Err(NameError::Hyphen(_))));
        assert!(matches!(HostName::parse("a*.b"), Err(NameError::Wildcard(_))));
        assert!(matches!(HostName::parse("256.1.1.1"), Err(NameError::NumericLastLabel(_))));
        assert!(matches!(HostName::parse("a b"), Err(NameError::BadCharacter { .. })));
        assert!(matches!(HostName::parse(&"a".repeat(64)), Err(NameError::LabelTooLong(_))));
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(matches!(HostName::parse(&long), Err(NameError::TooLong(_))));
    }

    #[test]
    fn parent_suffixes_are_strict() {
        let name = HostName::parse("a.b.c").unwrap();
        assert_eq!(name.parent_suffixes().collect::<Vec<_>>(), ["b.c", "c"]);
        let single = HostName::parse("localhost").unwrap();
        assert_eq!(single.parent_suffixes().count(), 0);
    }
}
