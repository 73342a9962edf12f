//! Typed reads from a YAML value tree that record a diagnostic (with its key path) instead of
//! stopping, so that one pass over the document finds every mistake.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::diagnostics::Diagnostics;
use super::path::KeyPath;

/// A mapping whose keys were checked against the keys a section allows.
pub struct Fields<'v> {
    map: &'v Mapping,
    path: KeyPath,
}

impl<'v> Fields<'v> {
    /// The value under `key`, with its path, if present and not null.
    pub fn get(&self, key: &str) -> Option<(&'v Value, KeyPath)> {
        let value = self.map.get(key)?;
        if value.is_null() {
            return None;
        }
        Some((value, self.path.key(key)))
    }

    /// The value under `key`, recording an error when it is missing.
    pub fn required(&self, d: &mut Diagnostics, key: &str) -> Option<(&'v Value, KeyPath)> {
        let found = self.get(key);
        if found.is_none() {
            d.error(&self.path, format!("missing required key `{key}`"));
        }
        found
    }

    /// Reads `key` with `read` when present: `Some(None)` when absent, `None` when unreadable.
    pub fn optional<T>(&self, d: &mut Diagnostics, key: &str, read: impl Read<'v, T>) -> Option<Option<T>> {
        match self.get(key) {
            Some((v, p)) => read(d, v, &p).map(Some),
            None => Some(None),
        }
    }

    /// Reads `key` with `read` when present, else `default`; `None` when unreadable.
    pub fn or<T>(&self, d: &mut Diagnostics, key: &str, default: T, read: impl Read<'v, T>) -> Option<T> {
        self.optional(d, key, read).map(|v| v.unwrap_or(default))
    }

    /// Whether `key` is written at all (even as null).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }
}

/// A typed read of one value that records its own diagnostics.
pub trait Read<'v, T>: FnOnce(&mut Diagnostics, &'v Value, &KeyPath) -> Option<T> {}

impl<'v, T, F: FnOnce(&mut Diagnostics, &'v Value, &KeyPath) -> Option<T>> Read<'v, T> for F {}

/// The name of a YAML value's type, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// The known key nearest to `unknown`, if it is near enough to be a likely typo.
pub fn nearest<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (strsim::levenshtein(unknown, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Reads a mapping, reporting every key not in `known` (with the nearest known key).
pub fn mapping<'v>(
    d: &mut Diagnostics,
    value: &'v Value,
    path: &KeyPath,
    known: &[&str],
) -> Option<Fields<'v>> {
    let Value::Mapping(map) = value else {
        d.error(path, format!("expected a mapping with keys {}, found {}", list(known), kind(value)));
        return None;
    };
    for key in map.keys() {
        let Some(k) = key.as_str() else {
            d.error(path, format!("keys must be strings, found {}", kind(key)));
            continue;
        };
        let key_path = path.key(k);
        if !known.contains(&k) {
            let hint = match nearest(k, known) {
                Some(near) => format!("; did you mean `{near}`?"),
                None => format!("; expected one of {}", list(known)),
            };
            d.error(&key_path, format!("unknown key `{k}`{hint}"));
        }
    }
    Some(Fields { map, path: path.clone() })
}

fn list(keys: &[&str]) -> String {
    keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

/// Reads a list; each item comes with its path.
pub fn sequence<'v>(d: &mut Diagnostics, value: &'v Value, path: &KeyPath) -> Vec<(&'v Value, KeyPath)> {
    match value {
        Value::Sequence(items) => items.iter().enumerate().map(|(i, v)| (v, path.index(i))).collect(),
        other => {
            d.error(path, format!("expected a list, found {}", kind(other)));
            Vec::new()
        }
    }
}

/// Reads a string (numbers and booleans are not silently converted).
pub fn string(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        other => {
            d.error(path, format!("expected a string, found {}", kind(other)));
            None
        }
    }
}

/// Reads one of the words in `options` (`what` names the setting in the error).
pub fn choice<T: Copy>(
    d: &mut Diagnostics,
    value: &Value,
    path: &KeyPath,
    what: &str,
    options: &[(&str, T)],
) -> Option<T> {
    let text = string(d, value, path)?;
    let found = options.iter().find(|(word, _)| *word == text).map(|(_, v)| *v);
    if found.is_none() {
        let words: Vec<String> = options.iter().map(|(w, _)| format!("`{w}`")).collect();
        d.error(path, format!("unknown {what} `{text}`: expected {}", words.join(" or ")));
    }
    found
}

/// Reads a string and parses it with `FromStr`, reporting the parser's message.
pub fn parsed<T>(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    let text = string(d, value, path)?;
    text.parse().map_err(|e| d.error(path, e)).ok()
}

/// Reads a non-negative integer that fits `T`.
pub fn integer<T: TryFrom<u64>>(d: &mut Diagnostics, value: &Value, path: &KeyPath, what: &str) -> Option<T> {
    match value.as_u64().and_then(|n| T::try_from(n).ok()) {
        Some(n) => Some(n),
        None => {
            d.error(path, format!("expected {what}, found {}", describe(value)));
            None
        }
    }
}

/// Reads a port number, 1 to 65535.
pub fn port(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<u16> {
    integer::<u16>(d, value, path, "a port number from 1 to 65535").filter(|p| *p != 0).or_else(|| {
        if value.as_u64() == Some(0) {
            d.error(path, "expected a port number from 1 to 65535, found 0");
        }
        None
    })
}

/// Reads a boolean.
pub fn boolean(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        other => {
            d.error(path, format!("expected true or false, found {}", describe(other)));
            None
        }
    }
}

/// Reads a duration written with a unit: `250ms`, `5s`, `10m`, `1h`.
pub fn duration(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<Duration> {
    let Value::String(text) = value else {
        d.error(
            path,
            format!("expected a duration with a unit such as `5s` or `250ms`, found {}", describe(value)),
        );
        return None;
    };
    match humantime::parse_duration(text) {
        Ok(duration) => Some(duration),
        Err(e) => {
            d.error(path, format!("`{text}` is not a duration ({e}); write e.g. `5s`, `250ms` or `10m`"));
            None
        }
    }
}

/// Reads a duration that must not be zero (a time-out that would fire at once).
pub fn positive_duration(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<Duration> {
    let parsed = duration(d, value, path)?;
    if parsed.is_zero() {
        d.error(path, "must be longer than zero");
        return None;
    }
    Some(parsed)
}

/// Reads `ip:port` (IPv6 as `[::1]:8080`).
pub fn socket_addr(d: &mut Diagnostics, value: &Value, path: &KeyPath) -> Option<SocketAddr> {
    let text = string(d, value, path)?;
    match text.parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            d.error(path, format!("`{text}` is not an address like `127.0.0.1:8080` or `[::1]:8080`"));
            None
        }
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Number(n) => format!("{n}"),
        Value::String(s) => format!("\"{s}\""),
        Value::Bool(b) => format!("{b}"),
        other => kind(other).to_owned(),
    }
}
