//! Unix-domain sockets as egress: an allowed-hosts entry `unix:/absolute/path` allows exactly
//! that socket, nothing else does (not even `*`: a local socket is a door into the host, opened
//! only by name).
//!
//! Paths are compared as written after one check of their form: absolute, no `.` or `..`
//! component, no empty component (`//`), no trailing `/`, no NUL, and short enough for a
//! socket address (`sun_path`: 107 bytes and the NUL). So `/run/x/../y.sock` is never taken
//! for `/run/y.sock` or the other way round.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The prefix of a socket entry or target.
pub const UNIX_PREFIX: &str = "unix:";

/// The longest socket path (`sun_path` holds 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// A unix-domain socket path in the form this crate compares.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketPath(String);

/// Why a socket path or entry was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid unix socket `{path}`: {reason}")]
pub struct SocketPathError {
    /// The path as given.
    pub path: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl SocketPath {
    /// `path` if it is in the compared form (see the module's doc).
    pub fn parse(path: &str) -> Result<Self, SocketPathError> {
        let bad = |reason| Err(SocketPathError { path: path.to_owned(), reason });
        if !path.starts_with('/') {
            return bad("the path must be absolute");
        }
        if path.len() > MAX_SOCKET_PATH {
            return bad("the path is longer than a socket address holds (107 bytes)");
        }
        if path.contains('\0') {
            return bad("the path contains a NUL byte");
        }
        if path.len() > 1 && path.ends_with('/') {
            return bad("the path ends with `/`");
        }
        if path[1..].split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            return bad("the path has an empty, `.` or `..` component");
        }
        Ok(SocketPath(path.to_owned()))
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SocketPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{UNIX_PREFIX}{}", self.0)
    }
}

/// An allowed-hosts entry `unix:/absolute/path`: allows connecting to exactly that socket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AllowedSocket(SocketPath);

impl AllowedSocket {
    /// The socket it allows.
    pub fn path(&self) -> &SocketPath {
        &self.0
    }
}

impl FromStr for AllowedSocket {
    type Err = SocketPathError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some(path) = text.strip_prefix(UNIX_PREFIX) else {
            return Err(SocketPathError {
                path: text.to_owned(),
                reason: "a socket entry starts with `unix:`",
            });
        };
        SocketPath::parse(path).map(AllowedSocket)
    }
}

impl fmt::Display for AllowedSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A connect to a unix socket that no entry allows.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{path} is not allowed: no allowed_hosts entry `{path}` (a socket is allowed only by its own entry)")]
pub struct SocketDenied {
    /// The socket.
    pub path: SocketPath,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_absolute_paths_are_taken() {
        let entry: AllowedSocket = "unix:/run/mysqld/mysqld.sock".parse().expect("entry");
        assert_eq!(entry.path().as_str(), "/run/mysqld/mysqld.sock");
        assert_eq!(entry.to_string(), "unix:/run/mysqld/mysqld.sock");
        for bad in [
            "/run/mysqld.sock",
            "unix:run/mysqld.sock",
            "unix:/run/../etc/x.sock",
            "unix:/run/./x.sock",
            "unix:/run//x.sock",
            "unix:/run/x/",
            "unix:/run/x\0",
            "unix:",
        ] {
            assert!(bad.parse::<AllowedSocket>().is_err(), "{bad:?}");
        }
        let long = format!("unix:/{}", "a".repeat(MAX_SOCKET_PATH));
        assert!(long.parse::<AllowedSocket>().is_err());
    }

    #[test]
    fn a_socket_is_allowed_by_its_own_entry_only() {
        let policy = crate::Policy::new([crate::AllowedHost::any()], crate::BlockedNetworks::defaults())
            .with_sockets(["unix:/run/mysqld/mysqld.sock".parse().expect("entry")]);
        let path = |p: &str| SocketPath::parse(p).expect("path");
        assert!(policy.decide_socket(&path("/run/mysqld/mysqld.sock")).is_ok());
        let denied = policy.decide_socket(&path("/run/mysqld/other.sock")).expect_err("not its entry");
        assert!(
            denied.to_string().contains("no allowed_hosts entry `unix:/run/mysqld/other.sock`"),
            "{denied}"
        );
        let open_to_all = crate::Policy::new([crate::AllowedHost::any()], crate::BlockedNetworks::defaults());
        assert!(open_to_all.decide_socket(&path("/run/mysqld/mysqld.sock")).is_err(), "`*` allowed a socket");
    }
}
