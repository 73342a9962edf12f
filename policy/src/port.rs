//! Port patterns of allow-list entries.

use std::fmt;

use thiserror::Error;

/// Which ports an entry allows: any, or an inclusive range `lo..=hi` with `1 <= lo <= hi`.
///
/// A single port is the range `p..=p`; it is written without a dash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortPattern {
    /// `*`: every port.
    Any,
    /// `lo-hi`, inclusive; `lo == hi` for a single port.
    Range {
        /// The lowest allowed port, at least 1.
        lo: u16,
        /// The highest allowed port, at least `lo`.
        hi: u16,
    },
}

/// Why a port or port range was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PortError {
    /// `host:` with nothing after the colon.
    #[error("the port after `:` is empty")]
    Empty,
    /// Not a decimal number.
    #[error("port `{0}` is not a number, `*` or a range `a-b`")]
    NotANumber(String),
    /// 0 or above 65535.
    #[error("port `{0}` is out of range: ports are 1 to 65535")]
    OutOfRange(String),
    /// `b-a` with `b > a`.
    #[error("port range `{0}` is reversed: the first port must not exceed the second")]
    Reversed(String),
}

/// Parses one port number: decimal digits only, 1 to 65535.
pub fn parse_port(text: &str) -> Result<u16, PortError> {
    if text.is_empty() {
        return Err(PortError::Empty);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortError::NotANumber(text.to_owned()));
    }
    match text.parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        _ => Err(PortError::OutOfRange(text.to_owned())),
    }
}

impl PortPattern {
    /// Parses `*`, `p` or `a-b`.
    pub fn parse(text: &str) -> Result<Self, PortError> {
        if text == "*" {
            return Ok(PortPattern::Any);
        }
        let (lo, hi) = match text.split_once('-') {
            Some((a, b)) => (parse_port(a)?, parse_port(b)?),
            None => {
                let p = parse_port(text)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(PortError::Reversed(text.to_owned()));
        }
        Ok(PortPattern::Range { lo, hi })
    }

    /// A pattern allowing exactly one port.
    pub fn single(port: u16) -> Self {
        PortPattern::Range { lo: port, hi: port }
    }

    /// Whether `port` is allowed.
    pub fn contains(&self, port: u16) -> bool {
        match *self {
            PortPattern::Any => true,
            PortPattern::Range { lo, hi } => lo <= port && port <= hi,
        }
    }
}

impl fmt::Display for PortPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PortPattern::Any => f.write_str("*"),
            PortPattern::Range { lo, hi } if lo == hi => write!(f, "{lo}"),
            PortPattern::Range { lo, hi } => write!(f, "{lo}-{hi}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_wildcards_and_ranges() {
        assert_eq!(PortPattern::parse("*"), Ok(PortPattern::Any));
        assert_eq!(PortPattern::parse("80"), Ok(PortPattern::single(80)));
        assert_eq!(PortPattern::parse("8000-8100"), Ok(PortPattern::Range { lo: 8000, hi: 8100 }));
        assert_eq!(PortPattern::parse("1-65535").unwrap().to_string(), "1-65535");
    }

    #[test]
    fn rejects_bad_ports() {
        assert_eq!(PortPattern::parse(""), Err(PortError::Empty));
        assert_eq!(PortPattern::parse("0"), Err(PortError::OutOfRange("0".into())));
        assert_eq!(PortPattern::parse("65536"), Err(PortError::OutOfRange("65536".into())));
        assert_eq!(PortPattern::parse("99999999999"), Err(PortError::OutOfRange("99999999999".into())));
        assert_eq!(PortPattern::parse("+80"), Err(PortError::NotANumber("+80".into())));
        assert_eq!(PortPattern::parse("90-80"), Err(PortError::Reversed("90-80".into())));
        assert_eq!(PortPattern::parse("0-80"), Err(PortError::OutOfRange("0".into())));
        assert_eq!(PortPattern::parse("80-"), Err(PortError::Empty));
        assert_eq!(PortPattern::parse("1-2-3"), Err(PortError::NotANumber("2-3".into())));
    }
}
