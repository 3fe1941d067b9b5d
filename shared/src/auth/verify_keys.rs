//! What a process that verifies admin tokens but never signs one holds: each
//! live key's P-256 public key and list-cursor key, by kid, current first.
//! Stored as JSON in the verify-keys secret every JWT function reads:
//! `{"alg": "ES256", "keys": [{"kid", "publicKey", "cursorKey"}]}` (base64url,
//! the public key an uncompressed SEC1 point). `keys` may be empty: nothing
//! was signed yet, so every token is refused.

use super::keyring::{ALG, KeyRing, KeyRingError, check_kid};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

/// One key as its verifiers hold it. The cursor key is a secret (it signs
/// list cursors) and is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyKey {
    pub kid: String,
    /// Uncompressed SEC1 point (65 bytes), checked to be on P-256.
    public: Vec<u8>,
    cursor: [u8; 32],
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl VerifyKey {
    /// A kid passing the rules and a valid P-256 public key (any SEC1 form).
    pub fn new(kid: String, public: &[u8], cursor: [u8; 32]) -> Result<Self, KeyRingError> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        check_kid(&kid)?;
        let point = p256::PublicKey::from_sec1_bytes(public).map_err(|_| KeyRingError::BadPublicKey)?;
        Ok(Self {
            kid,
            public: point.to_encoded_point(false).as_bytes().to_vec(),
            cursor,
        })
    }

    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    pub fn cursor_key(&self) -> &[u8; 32] {
        &self.cursor
    }
}

/// The live keys, current first: none, one, or two with different kids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyKeys {
    keys: Vec<VerifyKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    alg: String,
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StoredKey {
    kid: String,
    public_key: String,
    cursor_key: String,
}

impl VerifyKeys {
    pub fn new(keys: Vec<VerifyKey>) -> Result<Self, KeyRingError> {
        match keys.as_slice() {
            [a, b] if a.kid == b.kid => Err(KeyRingError::SameKid),
            [] | [_] | [_, _] => Ok(Self { keys }),
            _ => Err(KeyRingError::Malformed),
        }
    }

    /// Current first.
    pub fn keys(&self) -> impl Iterator<Item = &VerifyKey> {
        self.keys.iter()
    }

    pub fn key(&self, kid: &str) -> Option<&VerifyKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether these keys verify the tokens `ring` signs now: its current
    /// key is here, with the same public key.
    pub fn serve(&self, ring: &KeyRing) -> bool {
        self.key(&ring.current.kid) == Some(ring.current.verify_key())
    }

    /// Parses the stored JSON; every key must pass the rules. The error
    /// never quotes the input (cursor keys are secrets).
    pub fn from_json(text: &str) -> Result<Self, KeyRingError> {
        let s: Stored = serde_json::from_str(text).map_err(|_| KeyRingError::Malformed)?;
        if s.alg != ALG {
            return Err(KeyRingError::Malformed);
        }
        let keys = s
            .keys
            .into_iter()
            .map(|k| {
                let public = B64.decode(&k.public_key).map_err(|_| KeyRingError::BadPublicKey)?;
                let cursor = B64.decode(&k.cursor_key).map_err(|_| KeyRingError::BadPublicKey)?;
                let cursor = cursor.try_into().map_err(|_| KeyRingError::BadPublicKey)?;
                VerifyKey::new(k.kid, &public, cursor)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    pub fn to_json(&self) -> String {
        let s = Stored {
            alg: ALG.into(),
            keys: self
                .keys
                .iter()
                .map(|k| StoredKey {
                    kid: k.kid.clone(),
                    public_key: B64.encode(&k.public),
                    cursor_key: B64.encode(k.cursor),
                })
                .collect(),
        };
        serde_json::to_string(&s).expect("strings serialize")
    }
}

/// What a key source yields: the signing ring (a process that signs tokens:
/// admin-signin, ticketd), or only the verify keys (every other JWT function).
#[derive(Debug, Clone, PartialEq, Eq)]
// Built once per read of the keys and kept behind an `Arc`: the size is moot.
#[allow(clippy::large_enum_variant)]
pub enum KeySet {
    Signing(KeyRing),
    Verifying(VerifyKeys),
}

impl KeySet {
    pub fn verify_keys(&self) -> VerifyKeys {
        match self {
            KeySet::Signing(ring) => ring.verify_keys(),
            KeySet::Verifying(keys) => keys.clone(),
        }
    }

    /// The kid new tokens carry (a signing ring), else the current verify key's.
    pub fn current_kid(&self) -> Option<&str> {
        match self {
            KeySet::Signing(ring) => Some(&ring.current.kid),
            KeySet::Verifying(keys) => keys.keys().next().map(|k| k.kid.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::SigningKey;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn verify_keys_round_trip_and_hold_no_seed() {
        let ring = KeyRing::single(SigningKey::new("1", A).unwrap()).rotated();
        let keys = ring.verify_keys();
        let json = keys.to_json();
        assert_eq!(VerifyKeys::from_json(&json).unwrap(), keys);
        assert!(keys.serve(&ring));
        assert!(!keys.serve(&ring.rotated()), "a newer current key is missing");
        assert!(!json.contains(A), "the previous key's seed");
        let empty = VerifyKeys::from_json(r#"{"alg":"ES256","keys":[]}"#).unwrap();
        assert!(empty.is_empty() && !empty.serve(&ring));
    }

    #[test]
    fn a_public_key_off_the_curve_or_a_short_cursor_key_is_refused() {
        let key = SigningKey::new("1", A).unwrap();
        let good = key.verify_key();
        let (public, cursor) = (B64.encode(good.public_key()), B64.encode(good.cursor_key()));
        let mut off_curve = good.public_key().to_vec();
        off_curve[64] ^= 1;
        let json = |p: &str, c: &str| {
            format!(r#"{{"alg":"ES256","keys":[{{"kid":"1","publicKey":"{p}","cursorKey":"{c}"}}]}}"#)
        };
        assert!(VerifyKeys::from_json(&json(&public, &cursor)).is_ok());
        for (p, c) in [
            (B64.encode(&off_curve), cursor.clone()),
            (B64.encode([0u8; 65]), cursor.clone()),
            (B64.encode(b"not a key"), cursor.clone()),
            (public.clone(), B64.encode([0u8; 16])),
        ] {
            assert_eq!(VerifyKeys::from_json(&json(&p, &c)), Err(KeyRingError::BadPublicKey));
        }
        assert!(VerifyKeys::from_json(&json(&public, &cursor).replace("ES256", "HS256")).is_err());
    }
}
