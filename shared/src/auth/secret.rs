//! Org secrets: random, shown once, stored only as a SHA-256 hash.

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

pub const SECRET_LEN: usize = 48;

/// A fresh secret: 48 alphanumeric characters (~285 bits) from the OS-seeded CSPRNG.
pub fn generate_secret() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(SECRET_LEN)
        .map(char::from)
        .collect()
}

/// The characters after `tk_` that name an API key in lists.
const KEY_PREFIX_LEN: usize = 8;

/// A fresh API key and its prefix: `tk_` + 8 + `_` + 40 alphanumerics (~238
/// random bits in the part after the prefix). The `tk_` start tells keys from
/// org secrets at a glance (and to secret scanners); the prefix, shown in
/// lists, recognises a key without revealing it.
pub fn generate_api_key() -> (String, String) {
    let random = |n: usize| -> String { rand::rng().sample_iter(&Alphanumeric).take(n).map(char::from).collect() };
    let prefix = format!("tk_{}", random(KEY_PREFIX_LEN));
    (format!("{prefix}_{}", random(40)), prefix)
}

/// A secret's hash, as stored and looked up. A fast hash is right here: the
/// secret is high-entropy, so there is nothing to brute-force.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretHash(pub String);

impl SecretHash {
    pub fn of(secret: &str) -> Self {
        Self(hex(&Sha256::digest(secret.as_bytes())))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_alphanumeric_and_distinct() {
        let a = generate_secret();
        assert_eq!(a.len(), SECRET_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, generate_secret());
    }

    #[test]
    fn api_keys_start_with_their_prefix_and_differ() {
        let (key, prefix) = generate_api_key();
        assert!(key.starts_with(&prefix) && prefix.starts_with("tk_"), "{key} {prefix}");
        assert_eq!((prefix.len(), key.len()), (11, 52));
        assert_ne!(key, generate_api_key().0);
    }

    #[test]
    fn hash_is_sha256_hex_and_never_the_secret() {
        let h = SecretHash::of("abc");
        assert_eq!(h.0, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
