//! The shared surface syntax of entries and targets: `[scheme://]host[:port]`.
//!
//! This layer only cuts the text into pieces and rejects what neither form may contain (paths,
//! queries, fragments, user info, white space); what each piece means is decided by
//! [`crate::entry`] and [`crate::target`].

use std::net::Ipv4Addr;

use thiserror::Error;

/// Why the text could not be cut into scheme, host and port.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SyntaxError {
    /// Nothing was given.
    #[error("it is empty")]
    Empty,
    /// White space or control characters anywhere.
    #[error("it contains white space or a control character")]
    WhiteSpace,
    /// A path (`/...`), query (`?...`) or fragment (`#...`).
    #[error("a path, query or fragment (`{0}`) is not allowed: give only [scheme://]host[:port]")]
    PathQueryFragment(String),
    /// `user@host`.
    #[error("user info (`...@`) is not allowed: give only [scheme://]host[:port]")]
    UserInfo,
    /// `[` without `]`, or text between `]` and `:`.
    #[error("malformed brackets: an IPv6 address is written `[2001:db8::1]` or `[2001:db8::1]:443`")]
    Brackets,
    /// Nothing between `://` (or the start) and the port.
    #[error("the host is empty")]
    EmptyHost,
}

/// The host part as written, with brackets removed and whether they were there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostText<'a> {
    /// The host without brackets.
    pub text: &'a str,
    /// Whether it was written in `[...]`.
    pub bracketed: bool,
}

/// The three parts of `[scheme://]host[:port]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts<'a> {
    /// The text before `://`, if any.
    pub scheme: Option<&'a str>,
    /// The host.
    pub host: HostText<'a>,
    /// The text after the host's `:`, if any.
    pub port: Option<&'a str>,
}

/// Cuts `[scheme://]host[:port]` into its parts.
///
/// An unbracketed host with two or more colons is a bare IPv6 address or network and takes no
/// port; a `/n` after an IPv4 address is a CIDR prefix, any other `/` starts a path.
pub fn split(text: &str) -> Result<Parts<'_>, SyntaxError> {
    if text.is_empty() {
        return Err(SyntaxError::Empty);
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(SyntaxError::WhiteSpace);
    }
    if let Some(i) = text.find(['?', '#']) {
        return Err(SyntaxError::PathQueryFragment(text[i..].to_owned()));
    }
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, text),
    };
    if rest.contains('@') {
        return Err(SyntaxError::UserInfo);
    }
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (host, after) = inner.split_once(']').ok_or(SyntaxError::Brackets)?;
        let port = if after.is_empty() {
            None
        } else if let Some(port) = after.strip_prefix(':') {
            Some(port)
        } else if after.starts_with('/') {
            return Err(SyntaxError::PathQueryFragment(after.to_owned()));
        } else {
            return Err(SyntaxError::Brackets);
        };
        (HostText { text: host, bracketed: true }, port)
    } else if rest.matches(':').count() >= 2 {
        (HostText { text: rest, bracketed: false }, None)
    } else {
        let (host, port) = match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        };
        if let Some(slash) = host.find('/') {
            let (addr, prefix) = (&host[..slash], &host[slash + 1..]);
            let is_cidr = addr.parse::<Ipv4Addr>().is_ok()
                && !prefix.is_empty()
                && prefix.len() <= 3
                && prefix.bytes().all(|b| b.is_ascii_digit());
            if !is_cidr {
                return Err(SyntaxError::PathQueryFragment(rest[slash..].to_owned()));
            }
        }
        if let Some(slash) = port.and_then(|p| p.find('/')) {
            let port = port.unwrap_or_default();
            return Err(SyntaxError::PathQueryFragment(port[slash..].to_owned()));
        }
        (HostText { text: host, bracketed: false }, port)
    };
    if host.text.is_empty() {
        return Err(SyntaxError::EmptyHost);
    }
    Ok(Parts { scheme, host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> (Option<&str>, &str, bool, Option<&str>) {
        let p = split(text).unwrap();
        (p.scheme, p.host.text, p.host.bracketed, p.port)
    }

    #[test]
    fn splits_every_form() {
        assert_eq!(parts("example.com"), (None, "example.com", false, None));
        assert_eq!(parts("https://example.com:8443"), (Some("https"), "example.com", false, Some("8443")));
        assert_eq!(parts("[::1]:80"), (None, "::1", true, Some("80")));
        assert_eq!(parts("2001:db8::/32"), (None, "2001:db8::/32", false, None));
        assert_eq!(parts("tcp://10.0.0.0/8:5432"), (Some("tcp"), "10.0.0.0/8", false, Some("5432")));
        assert_eq!(parts("*://*:*"), (Some("*"), "*", false, Some("*")));
    }

    #[test]
    fn rejects_paths_queries_user_info_and_space() {
        assert!(matches!(split("https://x/"), Err(SyntaxError::PathQueryFragment(p)) if p == "/"));
        assert!(matches!(split("https://x:443/a"), Err(SyntaxError::PathQueryFragment(p)) if p == "/a"));
        assert!(matches!(split("x?q=1"), Err(SyntaxError::PathQueryFragment(_))));
        assert!(matches!(split("x#frag"), Err(SyntaxError::PathQueryFragment(_))));
        assert!(matches!(split("[::1]/x"), Err(SyntaxError::PathQueryFragment(_))));
        assert_eq!(split("user@x"), Err(SyntaxError::UserInfo));
        assert_eq!(split(" x"), Err(SyntaxError::WhiteSpace));
        assert_eq!(split(""), Err(SyntaxError::Empty));
        assert_eq!(split("https://"), Err(SyntaxError::EmptyHost));
        assert_eq!(split(":80"), Err(SyntaxError::EmptyHost));
        assert_eq!(split("[::1"), Err(SyntaxError::Brackets));
        assert_eq!(split("[::1]x"), Err(SyntaxError::Brackets));
    }
}
