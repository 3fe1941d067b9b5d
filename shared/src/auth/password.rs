//! Admin passwords: Argon2id with OWASP parameters, off the async runtime.

use crate::error::Error;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::LazyLock;

pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 128;

/// OWASP: 19 MiB, 2 iterations, 1 lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Verified in place of a real hash when the email is unknown, so that an
/// unknown email costs as much as a wrong password and timing reveals nothing.
static FALLBACK_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking("not-a-real-password-fallback").expect("hashing a constant works"));

pub fn check_password_rules(field: &str, password: &str) -> Result<(), Error> {
    let n = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        return Err(Error::invalid(
            field,
            format!("must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        ));
    }
    // Spaces inside a passphrase are fine; a password of nothing but
    // whitespace is a mistake (or a form that sent its padding).
    if password.chars().all(char::is_whitespace) {
        return Err(Error::invalid(field, "must not be only spaces"));
    }
    Ok(())
}

fn hash_blocking(password: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(anyhow::anyhow!("argon2 hash: {e}")))
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| argon2().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

pub async fn hash_password(password: String) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(Error::internal)?
}

/// Verifies against `hash`, or against the fallback hash when there is none
/// (and then always fails).
pub async fn verify_password(password: String, hash: Option<String>) -> Result<bool, Error> {
    tokio::task::spawn_blocking(move || match hash {
        Some(h) => verify_blocking(&password, &h),
        None => {
            verify_blocking(&password, &FALLBACK_HASH);
            false
        }
    })
    .await
    .map_err(Error::internal)
}

/// Computes the fallback hash now, so the first unknown-email sign-in is not slower.
pub fn warm_up() {
    LazyLock::force(&FALLBACK_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_is_argon2id_with_owasp_params_and_verifies() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse".into(), Some(h.clone())).await.unwrap());
        assert!(!verify_password("wrong horse!".into(), Some(h)).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        assert!(
            !verify_password("not-a-real-password-fallback".into(), None)
                .await
                .unwrap()
        );
    }

    #[test]
    fn password_length_is_8_to_128() {
        assert!(check_password_rules("password", "1234567").is_err());
        assert!(check_password_rules("password", "12345678").is_ok());
        assert!(check_password_rules("password", &"x".repeat(128)).is_ok());
        assert!(check_password_rules("password", &"x".repeat(129)).is_err());
    }

    #[test]
    fn all_whitespace_passwords_are_refused_but_passphrases_are_fine() {
        for blank in [" ".repeat(8), "\t".repeat(9), " \u{A0} \u{3000}    ".to_owned()] {
            match check_password_rules("password", &blank) {
                Err(Error::Invalid { field, .. }) => assert_eq!(field, "password"),
                other => panic!("{blank:?} gave {other:?}"),
            }
        }
        assert!(check_password_rules("password", "correct horse battery").is_ok());
        assert!(check_password_rules("password", "  spaced  ").is_ok());
    }
}
