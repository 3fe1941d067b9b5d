//! The JWT key ring: the current signing key and the one it replaced, each
//! named by a `kid`, in the one JSON form both ticketd's key file and the
//! Secrets Manager secret hold, and the rotation that moves them along.

use super::{WeakSecret, check_jwt_secret};
use serde::{Deserialize, Serialize};

/// The kid of a key that predates key ids: ticketd's migrated `jwt-secret`
/// file, a fixed `--jwt-secret`. A token without a `kid` (issued before kids
/// existed) is checked against this key, so upgrading logs nobody out; it
/// retires like any other key, two rotations later.
pub const LEGACY_KID: &str = "0";

/// The kid the deployed secret starts with (template.yaml's
/// `SecretStringTemplate` and `create_missing_resources` write it).
pub const INITIAL_KID: &str = "1";

/// Longest kid accepted: it travels in every token's header.
pub const MAX_KID: usize = 64;

/// One signing key. Its bytes are never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    secret: String,
}

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
    #[error("the key ring is not of the form {{\"currentKid\", \"current\", \"previousKid\"?, \"previous\"?}}")]
    Malformed,
}

impl SigningKey {
    /// A key passing [`check_jwt_secret`] under a kid of at most
    /// [`MAX_KID`] URL-safe characters.
    pub fn new(kid: impl Into<String>, secret: impl Into<String>) -> Result<Self, KeyRingError> {
        let (kid, secret) = (kid.into(), secret.into());
        let kid_ok = !kid.is_empty()
            && kid.len() <= MAX_KID
            && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !kid_ok {
            return Err(KeyRingError::BadKid);
        }
        check_jwt_secret(&secret)?;
        Ok(Self { kid, secret })
    }

    /// A fresh key: 96 alphanumeric characters (~570 bits) under `kid`.
    pub fn generate(kid: impl Into<String>) -> Result<Self, KeyRingError> {
        Self::new(kid, super::generate_secret() + &super::generate_secret())
    }

    pub fn secret(&self) -> &[u8] {
        self.secret.as_bytes()
    }
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

    /// The key named `kid`; a token without one is checked against [`LEGACY_KID`].
    pub fn key(&self, kid: Option<&str>) -> Option<&SigningKey> {
        let kid = kid.unwrap_or(LEGACY_KID);
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.kid == kid)
    }

    /// Current first, then previous.
    pub fn keys(&self) -> impl Iterator<Item = &SigningKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// The ring after one rotation: a new current key (fresh kid), the
    /// current one as previous, and the previous one retired.
    pub fn rotated(&self) -> Self {
        let kid = loop {
            let kid = new_kid();
            if self.key(Some(&kid)).is_none() {
                break kid;
            }
        };
        Self {
            current: SigningKey::generate(kid).expect("a generated key passes the rules"),
            previous: Some(self.current.clone()),
        }
    }

    /// Parses the stored JSON; every key must pass the rules. The error
    /// never quotes the input (it holds the secrets).
    pub fn from_json(text: &str) -> Result<Self, KeyRingError> {
        let s: Stored = serde_json::from_str(text).map_err(|_| KeyRingError::Malformed)?;
        let previous = match (s.previous_kid, s.previous) {
            (Some(kid), Some(secret)) => Some(SigningKey::new(kid, secret)?),
            (None, None) => None,
            _ => return Err(KeyRingError::Malformed),
        };
        Self::new(SigningKey::new(s.current_kid, s.current)?, previous)
    }

    pub fn to_json(&self) -> String {
        let s = Stored {
            current_kid: self.current.kid.clone(),
            current: self.current.secret.clone(),
            previous_kid: self.previous.as_ref().map(|k| k.kid.clone()),
            previous: self.previous.as_ref().map(|k| k.secret.clone()),
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
    fn kids_and_secrets_follow_the_rules() {
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
    fn a_rotation_keeps_the_current_key_as_previous_and_retires_the_previous() {
        let first = KeyRing::single(SigningKey::new(INITIAL_KID, A).unwrap());
        let second = first.rotated();
        assert_eq!(second.previous.as_ref(), Some(&first.current));
        assert_ne!(second.current.kid, first.current.kid);
        assert_ne!(second.current.secret(), first.current.secret());
        assert!(second.current.secret().len() >= 64);
        let third = second.rotated();
        assert_eq!(third.previous.as_ref(), Some(&second.current));
        assert!(third.key(Some(INITIAL_KID)).is_none(), "retired two rotations later");
        assert!(third.key(Some(&second.current.kid)).is_some());
        assert!(third.key(Some(&third.current.kid)).is_some());
    }

    #[test]
    fn a_token_without_kid_is_checked_against_the_legacy_key_only() {
        let legacy = KeyRing::single(SigningKey::new(LEGACY_KID, A).unwrap());
        assert_eq!(legacy.key(None).map(|k| k.kid.as_str()), Some(LEGACY_KID));
        assert!(legacy.rotated().key(None).is_some(), "still the previous key");
        assert!(legacy.rotated().rotated().key(None).is_none());
        let fresh = KeyRing::single(SigningKey::new(INITIAL_KID, A).unwrap());
        assert!(fresh.key(None).is_none());
    }

    #[test]
    fn json_round_trips_and_malformed_rings_are_refused_without_quoting_them() {
        let ring = KeyRing::single(SigningKey::new("1", A).unwrap()).rotated();
        assert_eq!(KeyRing::from_json(&ring.to_json()).unwrap(), ring);
        let generated = format!(r#"{{"currentKid":"1","current":"{A}"}}"#);
        assert!(KeyRing::from_json(&generated).unwrap().previous.is_none());
        for bad in [
            String::new(),
            format!(r#"{{"current":"{A}"}}"#),
            format!(r#"{{"currentKid":"1","current":"{A}","previous":"{B}"}}"#),
            format!(r#"{{"currentKid":"1","current":"{A}","other":1}}"#),
            format!(r#"{{"currentKid":"1","current":"{A}","previousKid":"2","previous":"short"}}"#),
        ] {
            let err = KeyRing::from_json(&bad).expect_err(&bad).to_string();
            assert!(!err.contains(A) && !err.contains(B), "{err}");
        }
    }

    #[test]
    fn debug_output_names_kids_never_secrets() {
        let ring = KeyRing::single(SigningKey::new("1", A).unwrap()).rotated();
        let shown = format!("{ring:?}");
        assert!(shown.contains("\"1\"") && !shown.contains(A), "{shown}");
    }
}
