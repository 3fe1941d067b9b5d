//! Credentials: org secrets and API keys, admin passwords, admin JWTs.

pub mod jwt;
pub mod keyring;
pub mod password;
pub mod reply;
pub mod secret;
pub mod verify_keys;

pub use jwt::{Claims, DEFAULT_TOKEN_LIFETIME, JwtKeys, NoSigningKey, Rejected};
pub use keyring::{KeyRing, KeyRingError, SigningKey};
pub use reply::{ReplyKey, WeakReplyKey};
pub use secret::{SecretHash, generate_api_key, generate_secret};
pub use verify_keys::{KeySet, VerifyKey, VerifyKeys};

/// The shortest JWT key seed accepted (a configured `--jwt-secret`, a seed in
/// the signing-keys secret): 32 characters, the ES256 private key's size.
pub const MIN_JWT_SECRET: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the JWT secret must be at least {MIN_JWT_SECRET} characters")]
pub struct WeakSecret;

/// The one rule every configuration path applies to a JWT key seed (from
/// which the P-256 signing key is derived: see [`keyring::SigningKey`]).
pub fn check_jwt_secret(secret: &str) -> Result<(), WeakSecret> {
    if secret.len() < MIN_JWT_SECRET {
        return Err(WeakSecret);
    }
    Ok(())
}
