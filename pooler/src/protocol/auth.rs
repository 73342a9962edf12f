//! The password methods both sides of the pooler speak: `mysql_native_password` and
//! `caching_sha2_password` (scrambles are `mysql_common`'s), nonces, and a comparison that
//! takes the same time wherever the first difference is.

use mysql_common::scramble::{scramble_native, scramble_sha256};

/// Length of an authentication nonce.
pub const NONCE_LEN: usize = 20;

/// An authentication method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `mysql_native_password` (SHA-1 scramble; MariaDB's default).
    NativePassword,
    /// `caching_sha2_password` (SHA-256 scramble; MySQL 8's default).
    CachingSha2Password,
}

impl AuthMethod {
    /// The plugin name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::NativePassword => "mysql_native_password",
            AuthMethod::CachingSha2Password => "caching_sha2_password",
        }
    }

    /// The method called `name`, if it is one we speak.
    pub fn from_name(name: &[u8]) -> Option<Self> {
        match name {
            b"mysql_native_password" => Some(AuthMethod::NativePassword),
            b"caching_sha2_password" => Some(AuthMethod::CachingSha2Password),
            _ => None,
        }
    }

    /// What a client sends for `password` against `nonce` (empty for an empty password).
    pub fn scramble(self, nonce: &[u8], password: &[u8]) -> Vec<u8> {
        match self {
            AuthMethod::NativePassword => scramble_native(nonce, password).map(Vec::from),
            AuthMethod::CachingSha2Password => scramble_sha256(nonce, password).map(Vec::from),
        }
        .unwrap_or_default()
    }

    /// Whether `response` is the scramble of `password` against `nonce`.
    pub fn verify(self, nonce: &[u8], password: &[u8], response: &[u8]) -> bool {
        constant_time_eq(&self.scramble(nonce, password), response)
    }
}

/// A fresh nonce: 20 random printable bytes (never NUL, which would end it on the wire).
pub fn nonce() -> std::io::Result<[u8; NONCE_LEN]> {
    let mut bytes = [0u8; NONCE_LEN];
    getrandom::fill(&mut bytes)
        .map_err(|e| std::io::Error::other(format!("no randomness for a nonce: {e}")))?;
    for b in &mut bytes {
        *b = 0x21 + *b % 94;
    }
    Ok(bytes)
}

/// Compares without returning early at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Known answers computed apart from this code, with Python's `hashlib`, by the formulas of
    /// the MySQL protocol documentation: native is `SHA1(p) XOR SHA1(nonce ‖ SHA1(SHA1(p)))`,
    /// caching_sha2 is `SHA256(p) XOR SHA256(SHA256(SHA256(p)) ‖ nonce)`.
    #[test]
    fn scrambles_match_known_answers() {
        let nonce = b"abcdefghijklmnopqrst";
        assert_eq!(
            hex(&AuthMethod::NativePassword.scramble(nonce, b"secret")),
            "8817c50fa779daef010ee7577825b0847df9842e"
        );
        assert_eq!(
            hex(&AuthMethod::CachingSha2Password.scramble(nonce, b"secret")),
            "c76e2898612a4cf042c77fa8c4702c4c64c0c2c557c53c4d75595aaa6abae809"
        );
    }

    #[test]
    fn scrambles_verify_only_the_right_password() {
        let nonce = nonce().expect("nonce");
        assert!(nonce.iter().all(|b| (0x21..0x7F).contains(b)));
        for method in [AuthMethod::NativePassword, AuthMethod::CachingSha2Password] {
            let response = method.scramble(&nonce, b"secret");
            assert!(method.verify(&nonce, b"secret", &response));
            assert!(!method.verify(&nonce, b"secreT", &response));
            assert!(!method.verify(&nonce, b"secret", &response[1..]));
            assert!(method.verify(&nonce, b"", &[]), "an empty password scrambles to nothing");
            assert_eq!(AuthMethod::from_name(method.name().as_bytes()), Some(method));
        }
    }
}
