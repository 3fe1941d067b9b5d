//! Admin session tokens: HS256 only, signing key from configuration.

use crate::domain::{AdminId, OrgId, Timestamp};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
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
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    pub fn new(secret: &[u8], lifetime: Duration) -> Self {
        // Pinned to HS256: a token naming any other algorithm (or none) is rejected.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        // `nbf` is checked when the token carries one (we never set it), with
        // the same leeway; the library has no `iat` check: see [`JwtKeys::verify`].
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            lifetime,
        }
    }

    pub fn issue(&self, admin: AdminId, org: OrgId, now: Timestamp) -> (String, Timestamp) {
        let exp = now.plus(self.lifetime);
        let claims = Claims {
            sub: admin,
            org,
            iat: now.millis() / 1000,
            exp: exp.millis() / 1000,
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of a small struct cannot fail");
        (token, Timestamp::from_millis(claims.exp * 1000))
    }

    /// `None` for anything but a well-formed HS256 token signed with our key,
    /// unexpired, not before its `nbf`, and not issued in the future.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let claims = decode::<Claims>(token, &self.decoding, &self.validation).ok()?.claims;
        // The same clock the library checks `exp` and `nbf` against.
        let now = i64::try_from(jsonwebtoken::get_current_timestamp()).ok()?;
        (claims.iat <= now + MAX_IAT_AHEAD_SECS).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    fn keys() -> JwtKeys {
        JwtKeys::new(b"test-secret-test-secret-test-secret", DEFAULT_TOKEN_LIFETIME)
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
        let (token, _) =
            JwtKeys::new(b"another-key", DEFAULT_TOKEN_LIFETIME).issue(AdminId::new(), OrgId::new(), Timestamp::now());
        assert!(keys().verify(&token).is_none());
    }

    #[test]
    fn tampered_payload_is_rejected() {
        let (token, _) = keys().issue(AdminId::new(), OrgId::new(), Timestamp::now());
        let parts: Vec<&str> = token.split('.').collect();
        let forged =
            b64(serde_json::json!({"sub": AdminId::new(), "org": OrgId::new(), "iat": 1, "exp": 4_000_000_000i64}));
        assert!(
            keys()
                .verify(&format!("{}.{}.{}", parts[0], forged, parts[2]))
                .is_none()
        );
    }

    #[test]
    fn alg_none_is_rejected() {
        let header = b64(serde_json::json!({"alg": "none", "typ": "JWT"}));
        let claims =
            b64(serde_json::json!({"sub": AdminId::new(), "org": OrgId::new(), "iat": 1, "exp": 4_000_000_000i64}));
        assert!(keys().verify(&format!("{header}.{claims}.")).is_none());
        assert!(keys().verify(&format!("{header}.{claims}")).is_none());
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
            &EncodingKey::from_secret(b"test-secret-test-secret-test-secret"),
        )
        .unwrap();
        assert!(keys().verify(&token).is_none());
    }

    #[test]
    fn expired_token_is_rejected() {
        let long_ago = Timestamp::from_millis(Timestamp::now().millis() - 11 * 3600 * 1000);
        let (token, _) = keys().issue(AdminId::new(), OrgId::new(), long_ago);
        assert!(keys().verify(&token).is_none());
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        for bad in ["", "abc", "a.b.c", "....", "eyJ.eyJ.sig", "\u{0}"] {
            assert!(keys().verify(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn token_without_org_claim_is_rejected() {
        let payload = serde_json::json!({"sub": AdminId::new(), "iat": 1, "exp": 4_000_000_000i64});
        let token = encode(
            &Header::new(Algorithm::HS256),
            &payload,
            &EncodingKey::from_secret(b"test-secret-test-secret-test-secret"),
        )
        .unwrap();
        assert!(keys().verify(&token).is_none());
    }

    fn signed(payload: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &payload,
            &EncodingKey::from_secret(b"test-secret-test-secret-test-secret"),
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
        assert!(keys().verify(&signed(claims(now + 600))).is_none(), "not valid yet");
        let ok = keys().verify(&signed(claims(now - 10))).unwrap();
        assert_eq!((ok.sub, ok.org), (sub, org));
        assert!(keys().verify(&signed(claims(now))).is_some());
    }

    #[test]
    fn token_issued_in_the_future_is_rejected_beyond_a_minute_of_skew() {
        let (sub, org, now) = (AdminId::new(), OrgId::new(), now_secs());
        let claims = |iat: i64| serde_json::json!({"sub": sub, "org": org, "iat": iat, "exp": iat + 3600});
        assert!(keys().verify(&signed(claims(now + 3600))).is_none(), "an hour ahead");
        assert!(keys().verify(&signed(claims(now + MAX_IAT_AHEAD_SECS + 30))).is_none());
        assert!(
            keys().verify(&signed(claims(now + 20))).is_some(),
            "small skew is tolerated"
        );
        assert!(keys().verify(&signed(claims(now - 60))).is_some());
    }

    #[test]
    fn token_without_iat_or_exp_is_rejected() {
        let (sub, org, now) = (AdminId::new(), OrgId::new(), now_secs());
        assert!(
            keys()
                .verify(&signed(serde_json::json!({"sub": sub, "org": org, "exp": now + 60})))
                .is_none()
        );
        assert!(
            keys()
                .verify(&signed(serde_json::json!({"sub": sub, "org": org, "iat": now})))
                .is_none()
        );
    }
}
