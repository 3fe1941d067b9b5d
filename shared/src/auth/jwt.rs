//! Admin session tokens: HS256 only, signed with the key ring's current key
//! and its `kid`, verified under the key the `kid` names (current or previous).

use super::keyring::KeyRing;
use crate::domain::{AdminId, OrgId, Timestamp};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 3600);

/// How far in the future a token's `iat` may be: we issue every token
/// ourselves, from clocks kept by NTP to well under a second, so a minute only
/// absorbs a badly drifting host. A later `iat` is a forgery or a broken clock.
pub const MAX_IAT_AHEAD_SECS: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The admin.
    pub sub: AdminId,
    /// The admin's org; every ticket access is scoped to it.
    pub org: OrgId,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Clone)]
pub struct JwtKeys {
    kid: String,
    encoding: EncodingKey,
    /// By kid: the current key, then the previous one.
    decoding: Vec<(String, DecodingKey)>,
    /// Whether a token without a `kid` has a key (see [`super::keyring::LEGACY_KID`]).
    legacy: Option<DecodingKey>,
    validation: Validation,
    lifetime: Duration,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// Well-formed, but its `kid` is neither our current nor our previous
    /// key's: retired, forged, or from a key this process has not loaded yet.
    UnknownKid,
    /// Anything else: bad signature, expired, malformed, wrong algorithm.
    Invalid,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    pub fn new(ring: &KeyRing, lifetime: Duration) -> Self {
        // Pinned to HS256: a token naming any other algorithm (or none) is rejected.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        // `nbf` is checked when the token carries one (we never set it), with
        // the same leeway; the library has no `iat` check: see [`JwtKeys::verify`].
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Self {
            kid: ring.current.kid.clone(),
            encoding: EncodingKey::from_secret(ring.current.secret()),
            decoding: ring
                .keys()
                .map(|k| (k.kid.clone(), DecodingKey::from_secret(k.secret())))
                .collect(),
            legacy: ring.key(None).map(|k| DecodingKey::from_secret(k.secret())),
            validation,
            lifetime,
        }
    }

    /// The kid new tokens carry.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn issue(&self, admin: AdminId, org: OrgId, now: Timestamp) -> (String, Timestamp) {
        let exp = now.plus(self.lifetime);
        let claims = Claims {
            sub: admin,
            org,
            iat: now.millis() / 1000,
            exp: exp.millis() / 1000,
        };
        let header = Header {
            kid: Some(self.kid.clone()),
            ..Header::new(Algorithm::HS256)
        };
        let token = encode(&header, &claims, &self.encoding).expect("HS256 signing of a small struct cannot fail");
        (token, Timestamp::from_millis(claims.exp * 1000))
    }

    /// The claims of a well-formed HS256 token signed with the key its `kid`
    /// names, unexpired, not before its `nbf`, and not issued in the future.
    pub fn verify(&self, token: &str) -> Result<Claims, Rejected> {
        let header = decode_header(token).map_err(|_| Rejected::Invalid)?;
        let key = match header.kid.as_deref() {
            None => self.legacy.as_ref(),
            Some(kid) => self.decoding.iter().find(|(k, _)| k == kid).map(|(_, key)| key),
        };
        // Only a token that could be ours is worth a reload of the keys.
        let key = match key {
            Some(key) => key,
            None if header.alg == Algorithm::HS256 && header.kid.is_some() => return Err(Rejected::UnknownKid),
            None => return Err(Rejected::Invalid),
        };
        let claims = decode::<Claims>(token, key, &self.validation)
            .map_err(|_| Rejected::Invalid)?
            .claims;
        // The same clock the library checks `exp` and `nbf` against.
        let now = i64::try_from(jsonwebtoken::get_current_timestamp()).map_err(|_| Rejected::Invalid)?;
        if claims.iat > now + MAX_IAT_AHEAD_SECS {
            return Err(Rejected::Invalid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    use crate::auth::keyring::{LEGACY_KID, SigningKey};

    const SECRET: &str = "test-secret-test-secret-test-secret";

    /// The legacy kid, so that the hand-made tokens below (no `kid`) verify.
    fn keys() -> JwtKeys {
        ring_keys(&KeyRing::single(SigningKey::new(LEGACY_KID, SECRET).unwrap()))
    }

    fn ring_keys(ring: &KeyRing) -> JwtKeys {
        JwtKeys::new(ring, DEFAULT_TOKEN_LIFETIME)
    }

    fn b64(v: serde_json::Value) -> String {
        B64.encode(v.to_string())
    }

    #[test]
    fn issued_token_verifies_with_its_claims_and_ten_hour_expiry() {
        let (a, o) = (AdminId::new(), OrgId::new());
        let (token, exp) = keys().issue(a, o, Timestamp::now());
        let c = keys().verify(&token).unwrap();
        assert_eq!((c.sub, c.org), (a, o));
        assert_eq!(c.exp - c.iat, 36_000);
        assert_eq!(exp.millis() / 1000, c.exp);
    }

    #[test]
    fn wrong_signing_key_is_rejected() {
        let other = KeyRing::single(SigningKey::new(LEGACY_KID, "another-key-another-key-another-key").unwrap());
        let (token, _) = ring_keys(&other).issue(AdminId::new(), OrgId::new(), Timestamp::now());
        assert_eq!(keys().verify(&token), Err(Rejected::Invalid));
    }

    #[test]
    fn tampered_payload_is_rejected() {
        let (token, _) = keys().issue(AdminId::new(), OrgId::new(), Timestamp::now());
        let parts: Vec<&str> = token.split('.').collect();
        let forged =
            b64(serde_json::json!({"sub": AdminId::new(), "org": OrgId::new(), "iat": 1, "exp": 4_000_000_000i64}));
        assert!(keys().verify(&format!("{}.{}.{}", parts[0], forged, parts[2])).is_err());
    }

    #[test]
    fn alg_none_is_rejected() {
        let header = b64(serde_json::json!({"alg": "none", "typ": "JWT"}));
        let claims =
            b64(serde_json::json!({"sub": AdminId::new(), "org": OrgId::new(), "iat": 1, "exp": 4_000_000_000i64}));
        assert!(keys().verify(&format!("{header}.{claims}.")).is_err());
        assert!(keys().verify(&format!("{header}.{claims}")).is_err());
    }

    #[test]
    fn other_algorithms_are_rejected_even_when_signed_with_our_key() {
        let claims = Claims {
            sub: AdminId::new(),
            org: OrgId::new(),
            iat: 1,
            exp: 4_000_000_000,
        };
        let token = encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(keys().verify(&token).is_err());
    }

    #[test]
    fn expired_token_is_rejected() {
        let long_ago = Timestamp::from_millis(Timestamp::now().millis() - 11 * 3600 * 1000);
        let (token, _) = keys().issue(AdminId::new(), OrgId::new(), long_ago);
        assert!(keys().verify(&token).is_err());
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        for bad in ["", "abc", "a.b.c", "....", "eyJ.eyJ.sig", "\u{0}"] {
            assert!(keys().verify(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn token_without_org_claim_is_rejected() {
        let payload = serde_json::json!({"sub": AdminId::new(), "iat": 1, "exp": 4_000_000_000i64});
        let token = encode(
            &Header::new(Algorithm::HS256),
            &payload,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(keys().verify(&token).is_err());
    }

    fn signed(payload: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &payload,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    fn now_secs() -> i64 {
        Timestamp::now().millis() / 1000
    }

    #[test]
    fn token_before_its_nbf_is_rejected_and_after_it_accepted() {
        let (sub, org, now) = (AdminId::new(), OrgId::new(), now_secs());
        let claims = |nbf: i64| serde_json::json!({"sub": sub, "org": org, "iat": now, "exp": now + 3600, "nbf": nbf});
        assert!(keys().verify(&signed(claims(now + 600))).is_err(), "not valid yet");
        let ok = keys().verify(&signed(claims(now - 10))).unwrap();
        assert_eq!((ok.sub, ok.org), (sub, org));
        assert!(keys().verify(&signed(claims(now))).is_ok());
    }

    #[test]
    fn token_issued_in_the_future_is_rejected_beyond_a_minute_of_skew() {
        let (sub, org, now) = (AdminId::new(), OrgId::new(), now_secs());
        let claims = |iat: i64| serde_json::json!({"sub": sub, "org": org, "iat": iat, "exp": iat + 3600});
        assert!(keys().verify(&signed(claims(now + 3600))).is_err(), "an hour ahead");
        assert!(keys().verify(&signed(claims(now + MAX_IAT_AHEAD_SECS + 30))).is_err());
        assert!(
            keys().verify(&signed(claims(now + 20))).is_ok(),
            "small skew is tolerated"
        );
        assert!(keys().verify(&signed(claims(now - 60))).is_ok());
    }

    #[test]
    fn token_without_iat_or_exp_is_rejected() {
        let (sub, org, now) = (AdminId::new(), OrgId::new(), now_secs());
        assert!(
            keys()
                .verify(&signed(serde_json::json!({"sub": sub, "org": org, "exp": now + 60})))
                .is_err()
        );
        assert!(
            keys()
                .verify(&signed(serde_json::json!({"sub": sub, "org": org, "iat": now})))
                .is_err()
        );
    }

    #[test]
    fn tokens_carry_the_current_kid_and_verify_until_their_key_retires() {
        let first = KeyRing::single(SigningKey::new("1", SECRET).unwrap());
        let (second, (org, admin)) = (first.rotated(), (OrgId::new(), AdminId::new()));
        let third = second.rotated();
        let (old, _) = ring_keys(&first).issue(admin, org, Timestamp::now());
        let (mid, _) = ring_keys(&second).issue(admin, org, Timestamp::now());
        assert_eq!(decode_header(&old).unwrap().kid.as_deref(), Some("1"));
        assert_eq!(
            decode_header(&mid).unwrap().kid.as_deref(),
            Some(second.current.kid.as_str())
        );
        assert_eq!(ring_keys(&second).verify(&old).unwrap().sub, admin, "previous key");
        assert!(ring_keys(&second).verify(&mid).is_ok());
        assert_eq!(ring_keys(&third).verify(&old), Err(Rejected::UnknownKid), "retired");
        assert!(ring_keys(&third).verify(&mid).is_ok());
        assert_eq!(
            ring_keys(&first).verify(&mid),
            Err(Rejected::UnknownKid),
            "not loaded yet"
        );
    }

    #[test]
    fn a_kid_naming_one_key_with_the_signature_of_another_is_invalid() {
        let ring = KeyRing::single(SigningKey::new("1", SECRET).unwrap()).rotated();
        let (token, _) = ring_keys(&ring).issue(AdminId::new(), OrgId::new(), Timestamp::now());
        let header = b64(serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "1"}));
        let rest = token.split_once('.').unwrap().1;
        assert_eq!(
            ring_keys(&ring).verify(&format!("{header}.{rest}")),
            Err(Rejected::Invalid)
        );
    }
}
