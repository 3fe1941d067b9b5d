//! The JWT key ring: the current ES256 signing key and the one it replaced,
//! each named by a `kid`, in the one JSON form both ticketd's key file and the
//! signing-keys secret hold, and the rotation that moves them along. What a
//! verifier needs (public keys and list-cursor keys, nothing that signs a
//! token) is [`VerifyKeys`](super::verify_keys::VerifyKeys), derived from it.

use super::verify_keys::{VerifyKey, VerifyKeys};
use super::{WeakSecret, check_jwt_secret};
use hmac::{Hmac, Mac};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The one algorithm admin tokens are signed with.
pub const ALG: &str = "ES256";

/// The kid of a fixed key (`--jwt-secret`): never rotated.
pub const FIXED_KID: &str = "0";

/// The kid the deployed signing secret starts with (template.yaml's
/// `SecretStringTemplate` and `create_missing_resources` write it).
pub const INITIAL_KID: &str = "1";

/// Longest kid accepted: it travels in every token's header.
pub const MAX_KID: usize = 64;

/// One ES256 signing key, derived from a stored seed of at least
/// [`super::MIN_JWT_SECRET`] characters (so that CloudFormation's
/// `GenerateSecretString` can make the first one). Never printed.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    seed: String,
    /// PKCS#8 DER of the derived P-256 private key, as jsonwebtoken takes it.
    pkcs8: Vec<u8>,
    verify: VerifyKey,
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid && self.seed == other.seed
    }
}

impl Eq for SigningKey {}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Weak(#[from] WeakSecret),
    #[error("a kid must be 1 to {MAX_KID} characters of A-Z a-z 0-9 . _ -")]
    BadKid,
    #[error("the current and previous keys must have different kids")]
    SameKid,
    #[error("an HS256 key ring of an earlier version (no \"alg\": \"ES256\")")]
    Hs256,
    #[error("a public key is not a P-256 point, or a cursor key is not 32 bytes")]
    BadPublicKey,
    #[error(
        "the key ring is not of the form {{\"alg\": \"ES256\", \"currentKid\", \"current\", \"previousKid\"?, \"previous\"?}}"
    )]
    Malformed,
}

/// Labels of the two keys a seed derives: never equal, so neither key
/// says anything about the other.
const SIGNING_LABEL: &[u8] = b"ticketing admin jwt es256 v1";
const CURSOR_LABEL: &[u8] = b"ticketing list cursor v2";

fn hmac(seed: &[u8], label: &[u8], counter: Option<u32>) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(seed).expect("HMAC takes any key length");
    mac.update(label);
    if let Some(counter) = counter {
        mac.update(&counter.to_be_bytes());
    }
    mac.finalize().into_bytes().into()
}

/// The P-256 private key of a seed: the first HMAC-SHA256 output (label,
/// counter) that is a valid scalar (1 ≤ d < n; one in 2^32 is not).
fn derive_secret(seed: &[u8]) -> p256::SecretKey {
    let mut counter = 0u32;
    loop {
        if let Ok(key) = p256::SecretKey::from_bytes(&hmac(seed, SIGNING_LABEL, Some(counter)).into()) {
            return key;
        }
        counter = counter.wrapping_add(1);
    }
}

impl SigningKey {
    /// A key derived from a seed passing [`check_jwt_secret`], under a kid of
    /// at most [`MAX_KID`] URL-safe characters.
    pub fn new(kid: impl Into<String>, seed: impl Into<String>) -> Result<Self, KeyRingError> {
        let (kid, seed) = (kid.into(), seed.into());
        check_kid(&kid)?;
        check_jwt_secret(&seed)?;
        let secret = derive_secret(seed.as_bytes());
        let pkcs8 = secret
            .to_pkcs8_der()
            .map_err(|_| KeyRingError::Malformed)?
            .as_bytes()
            .to_vec();
        let public = secret.public_key().to_encoded_point(false).as_bytes().to_vec();
        let cursor = hmac(seed.as_bytes(), CURSOR_LABEL, None);
        let verify = VerifyKey::new(kid.clone(), &public, cursor)?;
        Ok(Self {
            kid,
            seed,
            pkcs8,
            verify,
        })
    }

    /// A fresh key: a seed of 96 alphanumeric characters (~570 bits) under `kid`.
    pub fn generate(kid: impl Into<String>) -> Result<Self, KeyRingError> {
        Self::new(kid, super::generate_secret() + &super::generate_secret())
    }

    /// The private key, PKCS#8 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// What a verifier of this key's tokens holds.
    pub fn verify_key(&self) -> &VerifyKey {
        &self.verify
    }
}

pub(super) fn check_kid(kid: &str) -> Result<(), KeyRingError> {
    let ok = !kid.is_empty()
        && kid.len() <= MAX_KID
        && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok { Ok(()) } else { Err(KeyRingError::BadKid) }
}

/// The current key (signs, and verifies) and the previous one (only
/// verifies): a rotation logs nobody out, and a key two rotations old is
/// retired. Rotate at most once per token lifetime (10 h), so that no live
/// token was signed by the key a rotation retires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRing {
    pub current: SigningKey,
    pub previous: Option<SigningKey>,
}

/// The stored form. Flat, so that CloudFormation's `GenerateSecretString`
/// (which adds one generated string to a JSON template) can write the first one.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Stored {
    /// Absent in an earlier version's HS256 ring.
    #[serde(default)]
    alg: Option<String>,
    current_kid: String,
    current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
}

impl KeyRing {
    pub fn new(current: SigningKey, previous: Option<SigningKey>) -> Result<Self, KeyRingError> {
        if previous.as_ref().is_some_and(|p| p.kid == current.kid) {
            return Err(KeyRingError::SameKid);
        }
        Ok(Self { current, previous })
    }

    /// One key and no previous: a fixed `--jwt-secret`, or a fresh ring.
    pub fn single(current: SigningKey) -> Self {
        Self {
            current,
            previous: None,
        }
    }

    /// The key named `kid`.
    pub fn key(&self, kid: &str) -> Option<&SigningKey> {
        self.keys().find(|k| k.kid == kid)
    }

    /// Current first, then previous.
    pub fn keys(&self) -> impl Iterator<Item = &SigningKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// What the verifiers of this ring's tokens hold: its public keys and
    /// list-cursor keys, current first.
    pub fn verify_keys(&self) -> VerifyKeys {
        VerifyKeys::new(self.keys().map(|k| k.verify.clone()).collect()).expect("a ring's kids differ")
    }

    /// The ring after one rotation: a new current key (fresh kid), the
    /// current one as previous, and the previous one retired.
    pub fn rotated(&self) -> Self {
        let kid = loop {
            let kid = new_kid();
            if self.key(&kid).is_none() {
                break kid;
            }
        };
        Self {
            current: SigningKey::generate(kid).expect("a generated key passes the rules"),
            previous: Some(self.current.clone()),
        }
    }

    /// Parses the stored JSON; every key must pass the rules. The error
    /// never quotes the input (it holds the seeds).
    pub fn from_json(text: &str) -> Result<Self, KeyRingError> {
        let s: Stored = serde_json::from_str(text).map_err(|_| KeyRingError::Malformed)?;
        match s.alg.as_deref() {
            Some(ALG) => {}
            None => return Err(KeyRingError::Hs256),
            Some(_) => return Err(KeyRingError::Malformed),
        }
        let previous = match (s.previous_kid, s.previous) {
            (Some(kid), Some(seed)) => Some(SigningKey::new(kid, seed)?),
            (None, None) => None,
            _ => return Err(KeyRingError::Malformed),
        };
        Self::new(SigningKey::new(s.current_kid, s.current)?, previous)
    }

    pub fn to_json(&self) -> String {
        let s = Stored {
            alg: Some(ALG.into()),
            current_kid: self.current.kid.clone(),
            current: self.current.seed.clone(),
            previous_kid: self.previous.as_ref().map(|k| k.kid.clone()),
            previous: self.previous.as_ref().map(|k| k.seed.clone()),
        };
        serde_json::to_string(&s).expect("strings serialize")
    }
}

/// `k<unix seconds>-<4 hex>`: ordered by rotation time for an operator
/// reading it, and two rotations in one second still differ.
fn new_kid() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("k{secs}-{:04x}", rand::random::<u16>())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn kids_and_seeds_follow_the_rules() {
        assert!(SigningKey::new("k1", A).is_ok());
        assert_eq!(SigningKey::new("k1", "short"), Err(KeyRingError::Weak(WeakSecret)));
        for bad in ["", "a b", "a/b", "ké", &"k".repeat(MAX_KID + 1), "a\"b"] {
            assert_eq!(SigningKey::new(bad, A), Err(KeyRingError::BadKid), "{bad:?}");
        }
        let k = SigningKey::new("k1", A).unwrap();
        assert_eq!(
            KeyRing::new(k.clone(), Some(SigningKey::new("k1", B).unwrap())),
            Err(KeyRingError::SameKid)
        );
    }

    #[test]
    fn a_seed_derives_one_p256_key_pair_and_a_separate_cursor_key() {
        let (a, a_again, b) = (
            SigningKey::new("1", A).unwrap(),
            SigningKey::new("2", A).unwrap(),
            SigningKey::new("1", B).unwrap(),
        );
        assert_eq!(a.pkcs8_der(), a_again.pkcs8_der(), "deterministic");
        assert_ne!(a.pkcs8_der(), b.pkcs8_der());
        let public = a.verify_key().public_key();
        assert_eq!((public.len(), public[0]), (65, 4), "uncompressed SEC1 point");
        assert!(p256::PublicKey::from_sec1_bytes(public).is_ok());
        let secret = <p256::SecretKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_der(a.pkcs8_der()).unwrap();
        assert_eq!(secret.public_key().to_encoded_point(false).as_bytes(), public);
        assert_ne!(&a.verify_key().cursor_key()[..], &secret.to_bytes()[..]);
    }

    #[test]
    fn a_rotation_keeps_the_current_key_as_previous_and_retires_the_previous() {
        let first = KeyRing::single(SigningKey::new(INITIAL_KID, A).unwrap());
        let second = first.rotated();
        assert_eq!(second.previous.as_ref(), Some(&first.current));
        assert_ne!(second.current.kid, first.current.kid);
        assert_ne!(second.current.pkcs8_der(), first.current.pkcs8_der());
        assert!(second.current.seed.len() >= 64);
        let third = second.rotated();
        assert_eq!(third.previous.as_ref(), Some(&second.current));
        assert!(third.key(INITIAL_KID).is_none(), "retired two rotations later");
        assert!(third.key(&second.current.kid).is_some());
        assert!(third.key(&third.current.kid).is_some());
        let kids: Vec<_> = third.verify_keys().keys().map(|k| k.kid.clone()).collect();
        assert_eq!(kids, [third.current.kid.clone(), second.current.kid.clone()]);
    }

    #[test]
    fn json_round_trips_and_malformed_rings_are_refused_without_quoting_them() {
        let ring = KeyRing::single(SigningKey::new("1", A).unwrap()).rotated();
        assert_eq!(KeyRing::from_json(&ring.to_json()).unwrap(), ring);
        let generated = format!(r#"{{"alg":"ES256","currentKid":"1","current":"{A}"}}"#);
        assert!(KeyRing::from_json(&generated).unwrap().previous.is_none());
        let hs256 = format!(r#"{{"currentKid":"1","current":"{A}"}}"#);
        assert_eq!(KeyRing::from_json(&hs256), Err(KeyRingError::Hs256));
        for bad in [
            String::new(),
            format!(r#"{{"alg":"HS256","currentKid":"1","current":"{A}"}}"#),
            format!(r#"{{"alg":"ES256","current":"{A}"}}"#),
            format!(r#"{{"alg":"ES256","currentKid":"1","current":"{A}","previous":"{B}"}}"#),
            format!(r#"{{"alg":"ES256","currentKid":"1","current":"{A}","other":1}}"#),
            format!(r#"{{"alg":"ES256","currentKid":"1","current":"{A}","previousKid":"2","previous":"short"}}"#),
        ] {
            let err = KeyRing::from_json(&bad).expect_err(&bad).to_string();
            assert!(!err.contains(A) && !err.contains(B), "{err}");
        }
    }

    #[test]
    fn debug_output_names_kids_never_seeds() {
        let ring = KeyRing::single(SigningKey::new("1", A).unwrap()).rotated();
        let shown = format!("{ring:?} {:?}", ring.verify_keys());
        assert!(shown.contains("\"1\"") && !shown.contains(A), "{shown}");
    }
}
