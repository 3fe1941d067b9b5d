//! Admin session tokens: ES256 only, signed with the key ring's current key
//! and its `kid` by the processes that hold the ring (admin-signin, ticketd),
//! verified under the public key the `kid` names (current or previous) by
//! every JWT route. No symmetric algorithm is accepted, so no public key can
//! be used as an HMAC secret (the "alg confusion" forgery).

use super::verify_keys::KeySet;
use crate::domain::{AdminId, OrgId, Timestamp};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 3600);

/// How far in the future a token's `iat` may be: we issue every token
/// ourselves, from clocks kept by NTP to well under a second, so a minute only
/// absorbs a badly drifting host. A later `iat` is a forgery or a broken clock.
pub const MAX_IAT_AHEAD_SECS: i64 = 60;

/// Seconds of clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: i64 = 5;

/// Tokens remembered as verified, per loaded key set: an admin's token is
/// sent with every request, and an ES256 verification costs far more than a
/// lookup (bench/RESULTS.md, part c). Bounded: full, it is emptied.
const MAX_VERIFIED: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The admin.
    pub sub: AdminId,
    /// The admin's org; every ticket access is scoped to it.
    pub org: OrgId,
    pub iat: i64,
    pub exp: i64,
}

pub struct JwtKeys {
    /// The current signing key and its kid: only in a process holding the ring.
    signer: Option<(String, EncodingKey)>,
    /// By kid: the current key, then the previous one.
    decoding: Vec<(String, DecodingKey)>,
    validation: Validation,
    lifetime: Duration,
    /// SHA-256 of a token verified under these keys → its claims. Only a
    /// token whose signature verified gets here; `exp` is checked on each use.
    verified: Mutex<HashMap<[u8; 32], Claims>>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// Well-formed ES256, but its `kid` is neither our current nor our
    /// previous key's: retired, forged, or from a key this process has not
    /// loaded yet.
    UnknownKid,
    /// Anything else: bad signature, expired, malformed, wrong algorithm, no kid.
    Invalid,
}

/// Asked to sign without a signing key: a function that only verifies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this process holds no JWT signing key (only admin-signin and ticketd do)")]
pub struct NoSigningKey;

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("kid", &self.kid())
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    pub fn new(keys: &KeySet, lifetime: Duration) -> Self {
        // Pinned to ES256: a token naming any other algorithm (or none) is rejected.
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = LEEWAY_SECS as u64;
        // `nbf` is checked when the token carries one (we never set it), with
        // the same leeway; the library has no `iat` check: see [`JwtKeys::verify`].
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        let signer = match keys {
            KeySet::Signing(ring) => Some((
                ring.current.kid.clone(),
                EncodingKey::from_ec_der(ring.current.pkcs8_der()),
            )),
            KeySet::Verifying(_) => None,
        };
        Self {
            signer,
            decoding: keys
                .verify_keys()
                .keys()
                // The raw SEC1 point, which is what the ES256 verifier parses.
                .map(|k| (k.kid.clone(), DecodingKey::from_ec_der(k.public_key())))
                .collect(),
            validation,
            lifetime,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The kid new tokens carry; `None` where no token is signed.
    pub fn kid(&self) -> Option<&str> {
        self.signer.as_ref().map(|(kid, _)| kid.as_str())
    }

    pub fn issue(&self, admin: AdminId, org: OrgId, now: Timestamp) -> Result<(String, Timestamp), NoSigningKey> {
        let (kid, key) = self.signer.as_ref().ok_or(NoSigningKey)?;
        let exp = now.plus(self.lifetime);
        let claims = Claims {
            sub: admin,
            org,
            iat: now.millis() / 1000,
            exp: exp.millis() / 1000,
        };
        let header = Header {
            kid: Some(kid.clone()),
            ..Header::new(Algorithm::ES256)
        };
        // Signing a small struct with a key derived and checked at load fails only on a broken library.
        let token = encode(&header, &claims, key).map_err(|_| NoSigningKey)?;
        Ok((token, Timestamp::from_millis(claims.exp * 1000)))
    }

    /// The claims of a well-formed ES256 token signed with the key its `kid`
    /// names, unexpired, not before its `nbf`, and not issued in the future.
    pub fn verify(&self, token: &str) -> Result<Claims, Rejected> {
        // The same clock the library checks `exp` and `nbf` against.
        let now = i64::try_from(jsonwebtoken::get_current_timestamp()).map_err(|_| Rejected::Invalid)?;
        self.verify_at(token, now)
    }

    fn verify_at(&self, token: &str, now: i64) -> Result<Claims, Rejected> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cached = self.cache().get(&digest).cloned();
        if let Some(claims) = cached {
            // Verified before; only time can have made it invalid since.
            return if claims.exp < now - LEEWAY_SECS {
                Err(Rejected::Invalid)
            } else {
                Ok(claims)
            };
        }
        let header = decode_header(token).map_err(|_| Rejected::Invalid)?;
        if header.alg != Algorithm::ES256 {
            return Err(Rejected::Invalid);
        }
        let kid = header.kid.as_deref().ok_or(Rejected::Invalid)?;
        // Only a token that could be ours is worth a reload of the keys.
        let key = self
            .decoding
            .iter()
            .find(|(k, _)| k == kid)
            .map(|(_, key)| key)
            .ok_or(Rejected::UnknownKid)?;
        let claims = decode::<Claims>(token, key, &self.validation)
            .map_err(|_| Rejected::Invalid)?
            .claims;
        if claims.iat > now + MAX_IAT_AHEAD_SECS {
            return Err(Rejected::Invalid);
        }
        let mut cache = self.cache();
        if cache.len() >= MAX_VERIFIED {
            cache.clear();
        }
        cache.insert(digest, claims.clone());
        Ok(claims)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Claims>> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    use crate::auth::keyring::{FIXED_KID, KeyRing, SigningKey};

    const SECRET: &str = "test-secret-test-secret-test-secret";

    fn ring() -> KeyRing {
        KeyRing::single(SigningKey::new(FIXED_KID, SECRET).unwrap())
    }

    fn keys() -> JwtKeys {
        ring_keys(&ring())
    }

    fn ring_keys(ring: &KeyRing) -> JwtKeys {
        JwtKeys::new(&KeySet::Signing(ring.clone()), DEFAULT_TOKEN_LIFETIME)
    }

    fn verifier(ring: &KeyRing) -> JwtKeys {
        JwtKeys::new(&KeySet::Verifying(ring.verify_keys()), DEFAULT_TOKEN_LIFETIME)
    }

    fn b64(v: serde_json::Value) -> String {
        B64.encode(v.to_string())
    }

    fn header(alg: Algorithm, kid: Option<&str>) -> Header {
        Header {
            kid: kid.map(str::to_owned),
            ..Header::new(alg)
        }
    }

    /// Signed with the ring's key under its kid, whatever the claims.
    fn signed(payload: serde_json::Value) -> String {
        let key = EncodingKey::from_ec_der(ring().current.pkcs8_der());
        encode(&header(Algorithm::ES256, Some(FIXED_KID)), &payload, &key).unwrap()
    }

    fn now_secs() -> i64 {
        Timestamp::now().millis() / 1000
    }

    #[test]
    fn issued_token_is_es256_with_its_kid_claims_and_ten_hour_expiry() {
        let (a, o) = (AdminId::new(), OrgId::new());
        let (token, exp) = keys().issue(a, o, Timestamp::now()).unwrap();
        let h = decode_header(&token).unwrap();
        assert_eq!((h.alg, h.kid.as_deref()), (Algorithm::ES256, Some(FIXED_KID)));
        let c = verifier(&ring()).verify(&token).unwrap();
        assert_eq!((c.sub, c.org), (a, o));
        assert_eq!(c.exp - c.iat, 36_000);
        assert_eq!(exp.millis() / 1000, c.exp);
    }

    #[test]
    fn a_verifier_holds_no_signing_key() {
        let v = verifier(&ring());
        assert_eq!(v.kid(), None);
        assert_eq!(
            v.issue(AdminId::new(), OrgId::new(), Timestamp::now()),
            Err(NoSigningKey)
        );
    }

    #[test]
    fn wrong_signing_key_is_rejected() {
        let other = KeyRing::single(SigningKey::new(FIXED_KID, "another-key-another-key-another-key").unwrap());
        let (token, _) = ring_keys(&other)
            .issue(AdminId::new(), OrgId::new(), Timestamp::now())
            .unwrap();
        assert_eq!(keys().verify(&token), Err(Rejected::Invalid));
    }

    #[test]
    fn tampered_payload_is_rejected() {
        let (token, _) = keys().issue(AdminId::new(), OrgId::new(), Timestamp::now()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let forged =
            b64(serde_json::json!({"sub": AdminId::new(), "org": OrgId::new(), "iat": 1, "exp": 4_000_000_000i64}));
        assert!(keys().verify(&format!("{}.{}.{}", parts[0], forged, parts[2])).is_err());
    }

    #[test]
    fn alg_none_is_rejected() {
        let claims = b64(
            serde_json::json!({"sub": AdminId::new(), "org": OrgId::new(), "iat": now_secs(), "exp": 4_000_000_000i64}),
        );
        for header in [
            b64(serde_json::json!({"alg": "none", "typ": "JWT"})),
            b64(serde_json::json!({"alg": "none", "typ": "JWT", "kid": FIXED_KID})),
        ] {
            assert_eq!(keys().verify(&format!("{header}.{claims}.")), Err(Rejected::Invalid));
            assert_eq!(keys().verify(&format!("{header}.{claims}")), Err(Rejected::Invalid));
        }
    }

    /// The classic forgery against a verifier that takes `alg` from the
    /// token: HS256 with the (public) verify key as the HMAC secret, in every
    /// form a library might hand it over.
    #[test]
    fn an_hs256_token_signed_with_the_public_key_is_rejected() {
        let public = ring().verify_keys().key(FIXED_KID).unwrap().public_key().to_vec();
        let claims =
            serde_json::json!({"sub": AdminId::new(), "org": OrgId::new(), "iat": now_secs(), "exp": now_secs() + 600});
        for secret in [
            public.clone(),
            B64.encode(&public).into_bytes(),
            SECRET.as_bytes().to_vec(),
        ] {
            for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                let token = encode(
                    &header(alg, Some(FIXED_KID)),
                    &claims,
                    &EncodingKey::from_secret(&secret),
                )
                .unwrap();
                assert_eq!(keys().verify(&token), Err(Rejected::Invalid), "{alg:?}");
                assert_eq!(verifier(&ring()).verify(&token), Err(Rejected::Invalid), "{alg:?}");
            }
        }
    }

    #[test]
    fn a_token_without_kid_is_rejected() {
        let claims =
            serde_json::json!({"sub": AdminId::new(), "org": OrgId::new(), "iat": now_secs(), "exp": now_secs() + 600});
        let key = EncodingKey::from_ec_der(ring().current.pkcs8_der());
        let token = encode(&Header::new(Algorithm::ES256), &claims, &key).unwrap();
        assert_eq!(keys().verify(&token), Err(Rejected::Invalid));
    }

    #[test]
    fn expired_token_is_rejected() {
        let long_ago = Timestamp::from_millis(Timestamp::now().millis() - 11 * 3600 * 1000);
        let (token, _) = keys().issue(AdminId::new(), OrgId::new(), long_ago).unwrap();
        assert!(keys().verify(&token).is_err());
    }

    #[test]
    fn a_token_verified_once_still_expires() {
        let keys = keys();
        let (token, exp) = keys.issue(AdminId::new(), OrgId::new(), Timestamp::now()).unwrap();
        let exp = exp.millis() / 1000;
        assert!(keys.verify(&token).is_ok());
        assert!(keys.verify_at(&token, exp + LEEWAY_SECS).is_ok(), "remembered, in time");
        assert_eq!(keys.verify_at(&token, exp + LEEWAY_SECS + 1), Err(Rejected::Invalid));
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
        assert!(keys().verify(&signed(payload)).is_err());
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
        let (old, _) = ring_keys(&first).issue(admin, org, Timestamp::now()).unwrap();
        let (mid, _) = ring_keys(&second).issue(admin, org, Timestamp::now()).unwrap();
        assert_eq!(decode_header(&old).unwrap().kid.as_deref(), Some("1"));
        assert_eq!(
            decode_header(&mid).unwrap().kid.as_deref(),
            Some(second.current.kid.as_str())
        );
        assert_eq!(verifier(&second).verify(&old).unwrap().sub, admin, "previous key");
        assert!(verifier(&second).verify(&mid).is_ok());
        assert_eq!(verifier(&third).verify(&old), Err(Rejected::UnknownKid), "retired");
        assert!(verifier(&third).verify(&mid).is_ok());
        assert_eq!(
            verifier(&first).verify(&mid),
            Err(Rejected::UnknownKid),
            "not loaded yet"
        );
    }

    #[test]
    fn a_kid_naming_one_key_with_the_signature_of_another_is_invalid() {
        let ring = KeyRing::single(SigningKey::new("1", SECRET).unwrap()).rotated();
        let (token, _) = ring_keys(&ring)
            .issue(AdminId::new(), OrgId::new(), Timestamp::now())
            .unwrap();
        let header = b64(serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": "1"}));
        let rest = token.split_once('.').unwrap().1;
        assert_eq!(
            verifier(&ring).verify(&format!("{header}.{rest}")),
            Err(Rejected::Invalid)
        );
    }
}
