//! URL schemes as they appear in allow-list entries and targets.

use std::fmt;

use thiserror::Error;

/// Schemes whose traffic is carried over TCP, so that a `tcp` entry allows them too.
///
/// Schemes outside this list (for example `udp`) are never allowed by a `tcp` entry: the list is the
/// conservative reading of "every protocol carried over TCP".
const CARRIED_OVER_TCP: &[&str] = &[
    "tcp",
    "http",
    "https",
    "ws",
    "wss",
    "mysql",
    "mariadb",
    "postgres",
    "postgresql",
    "redis",
    "rediss",
    "mongodb",
    "amqp",
    "amqps",
    "mqtt",
    "mqtts",
    "nats",
    "smtp",
    "smtps",
    "imap",
    "imaps",
    "pop3",
    "pop3s",
    "ldap",
    "ldaps",
    "ssh",
    "ftp",
    "ftps",
    "git",
    "grpc",
    "grpcs",
    "memcached",
    "tls",
];

/// A scheme: a non-empty string of lowercase ASCII letters, digits, `+`, `-` and `.`.
///
/// The invariant (checked by [`Scheme::parse`]) is that the text is already canonical, so two schemes
/// are equal exactly when their texts are.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scheme(Box<str>);

/// Why a scheme was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SchemeError {
    /// The scheme was empty (`://host`).
    #[error("the scheme before `://` is empty")]
    Empty,
    /// The scheme contained uppercase letters; schemes are written in lowercase.
    #[error("scheme `{0}` must be lowercase: write `{lower}`", lower = .0.to_ascii_lowercase())]
    Uppercase(String),
    /// The scheme contained a character outside `a-z 0-9 + - .`.
    #[error("scheme `{0}` may contain only lowercase letters, digits, `+`, `-` and `.`")]
    BadCharacter(String),
}

impl Scheme {
    /// Parses a scheme, rejecting anything that is not already canonical.
    pub fn parse(text: &str) -> Result<Self, SchemeError> {
        if text.is_empty() {
            return Err(SchemeError::Empty);
        }
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c);
        if text.chars().all(valid) {
            return Ok(Scheme(text.into()));
        }
        let lowered = text.to_ascii_lowercase();
        if lowered.chars().all(valid) {
            Err(SchemeError::Uppercase(text.to_owned()))
        } else {
            Err(SchemeError::BadCharacter(text.to_owned()))
        }
    }

    /// The `tcp` scheme, which raw socket connects are decided as.
    pub fn tcp() -> Self {
        Scheme("tcp".into())
    }

    /// The scheme's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The port implied when an entry or target of this scheme names none.
    ///
    /// Only these schemes have one: `http` 80, `https` 443, `mysql` 3306, `postgres` 5432,
    /// `redis` 6379.
    pub fn default_port(&self) -> Option<u16> {
        match self.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            "mysql" => Some(3306),
            "postgres" => Some(5432),
            "redis" => Some(6379),
            _ => None,
        }
    }

    /// Whether this scheme's traffic runs over TCP (so a `tcp` entry covers it).
    pub fn is_carried_over_tcp(&self) -> bool {
        CARRIED_OVER_TCP.contains(&self.as_str())
    }

    /// Whether an entry written with scheme `self` allows a target of scheme `target`.
    ///
    /// A scheme allows itself; `tcp` also allows every scheme carried over TCP. Nothing else.
    pub fn allows(&self, target: &Scheme) -> bool {
        self == target || (self.as_str() == "tcp" && target.is_carried_over_tcp())
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_canonical_schemes_only() {
        assert_eq!(Scheme::parse("svn+ssh").unwrap().as_str(), "svn+ssh");
        assert_eq!(Scheme::parse("h2.c-1").unwrap().as_str(), "h2.c-1");
        assert_eq!(Scheme::parse(""), Err(SchemeError::Empty));
        assert!(matches!(Scheme::parse("HTTPS"), Err(SchemeError::Uppercase(_))));
        assert!(matches!(Scheme::parse("ht_tp"), Err(SchemeError::BadCharacter(_))));
    }

    #[test]
    fn tcp_allows_protocols_over_tcp_but_not_the_reverse() {
        let tcp = Scheme::tcp();
        let https = Scheme::parse("https").unwrap();
        let udp = Scheme::parse("udp").unwrap();
        assert!(tcp.allows(&https));
        assert!(tcp.allows(&Scheme::parse("mysql").unwrap()));
        assert!(!tcp.allows(&udp));
        assert!(!https.allows(&tcp));
        assert!(https.allows(&https));
        assert!(!Scheme::parse("foo").unwrap().allows(&Scheme::parse("bar").unwrap()));
    }
}
