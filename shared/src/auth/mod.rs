//! Credentials: org secrets, admin passwords, admin JWTs.

pub mod jwt;
pub mod password;
pub mod secret;

pub use jwt::{Claims, DEFAULT_TOKEN_LIFETIME, JwtKeys};
pub use secret::{SecretHash, generate_secret};
