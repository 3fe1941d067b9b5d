//! Credentials: org secrets and API keys, admin passwords, admin JWTs.

pub mod jwt;
pub mod keyring;
pub mod password;
pub mod reply;
pub mod secret;

pub use jwt::{Claims, DEFAULT_TOKEN_LIFETIME, JwtKeys, Rejected};
pub use keyring::{KeyRing, KeyRingError, SigningKey};
pub use reply::{ReplyKey, WeakReplyKey};
pub use secret::{SecretHash, generate_api_key, generate_secret};

/// The shortest JWT signing secret accepted: 32 bytes is HS256's key size.
pub const MIN_JWT_SECRET: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the JWT secret must be at least {MIN_JWT_SECRET} characters")]
pub struct WeakSecret;

/// The one rule every configuration path applies to the JWT signing secret.
pub fn check_jwt_secret(secret: &str) -> Result<(), WeakSecret> {
    if secret.len() < MIN_JWT_SECRET {
        return Err(WeakSecret);
    }
    Ok(())
}
