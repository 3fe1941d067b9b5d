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
    fn hash_is_sha256_hex_and_never_the_secret() {
        let h = SecretHash::of("abc");
        assert_eq!(h.0, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
