//! Admin passwords: Argon2id with OWASP parameters, off the async runtime,
//! a bounded number at a time.
//!
//! Each hash or verify fills 19 MiB and takes ~50 ms of CPU, and anyone may
//! ask for one (sign-in needs no credential). [`Hasher`] runs at most
//! `max_concurrent` of them in the process; a request that waits longer than
//! `wait` for its turn is answered [`Error::Busy`] (503 with `Retry-After`).
//! The Argon2 memory is a pool of `max_concurrent` buffers, reused: whatever
//! the load, password work holds at most `max_concurrent × 19 MiB`.

use crate::error::Error;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 128;

/// OWASP: 19 MiB, 2 iterations, 1 lane.
const M_COST_KIB: u32 = 19 * 1024;

fn params() -> Params {
    Params::new(M_COST_KIB, 2, 1, None).expect("static Argon2 parameters are valid")
}

/// Verified in place of a real hash when the email is unknown, so that an
/// unknown email costs as much as a wrong password and timing reveals nothing.
static FALLBACK_HASH: LazyLock<String> =
    LazyLock::new(|| hash_with(&mut new_buffer(), "not-a-real-password-fallback").expect("hashing a constant works"));

/// Password checks started in this process (verifies, the fallback's
/// included): what tests count to see how many guesses reached Argon2.
static VERIFIES: AtomicU64 = AtomicU64::new(0);

/// How many password verifies this process has started.
pub fn verifies_started() -> u64 {
    VERIFIES.load(Ordering::Relaxed)
}

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

/// Argon2's working memory for one hash at our parameters.
fn new_buffer() -> Vec<Block> {
    vec![Block::default(); params().block_count()]
}

fn hash_with(memory: &mut [Block], password: &str) -> Result<String, Error> {
    let fail = |e: &dyn std::fmt::Display| Error::internal(anyhow::anyhow!("argon2 hash: {e}"));
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| fail(&e))?;
    let params = params();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, memory)
        .map_err(|e| fail(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| fail(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` gives `hash` (a PHC string), computed in `memory` (or
/// in a buffer of its own if the hash's parameters need more).
fn verify_with(memory: &mut [Block], password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Some(Ok(version)), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        parsed.version.map(Version::try_from),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let mut own;
    let memory = if params.block_count() <= memory.len() {
        memory
    } else {
        own = vec![Block::default(); params.block_count()];
        &mut own[..]
    };
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
        .is_ok()
        // Output's equality is constant-time.
        && Output::new(&out).is_ok_and(|o| o == expected)
}

/// How many password hashes or verifies run at once, and how long a request
/// waits for its turn before it is answered 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimit {
    pub max_concurrent: usize,
    pub wait: Duration,
}

impl Default for HashLimit {
    /// One per CPU (at least 2): Argon2 is CPU-bound, so more at once only
    /// adds memory and latency.
    fn default() -> Self {
        Self {
            max_concurrent: std::thread::available_parallelism().map_or(2, |n| n.get()).max(2),
            wait: Duration::from_secs(2),
        }
    }
}

/// Runs password hashes and verifies within a [`HashLimit`]; clones share it.
#[derive(Clone)]
pub struct Hasher {
    turns: Arc<Semaphore>,
    /// Argon2 memory, one buffer per turn, made on first use and kept.
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
    wait: Duration,
}

impl Hasher {
    pub fn new(limit: HashLimit) -> Self {
        Self {
            turns: Arc::new(Semaphore::new(limit.max_concurrent.max(1))),
            buffers: Arc::default(),
            wait: limit.wait,
        }
    }

    /// Runs `f` with an Argon2 buffer on the blocking pool, once a turn is free.
    async fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut [Block]) -> T + Send + 'static) -> Result<T, Error> {
        let turn = tokio::time::timeout(self.wait, self.turns.clone().acquire_owned())
            .await
            .map_err(|_| {
                tracing::warn!("password check refused: every password-hashing turn is taken");
                Error::Busy(Duration::from_secs(1))
            })?
            .map_err(Error::internal)?;
        let buffers = self.buffers.clone();
        tokio::task::spawn_blocking(move || {
            let taken = buffers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut buffer = taken.unwrap_or_else(new_buffer);
            let result = f(&mut buffer);
            buffers.lock().unwrap_or_else(|p| p.into_inner()).push(buffer);
            drop(turn);
            result
        })
        .await
        .map_err(Error::internal)
    }

    pub async fn hash_password(&self, password: String) -> Result<String, Error> {
        self.run(move |memory| hash_with(memory, &password)).await?
    }

    /// Verifies against `hash`, or against the fallback hash when there is
    /// none (and then always fails).
    pub async fn verify_password(&self, password: String, hash: Option<String>) -> Result<bool, Error> {
        VERIFIES.fetch_add(1, Ordering::Relaxed);
        self.run(move |memory| match hash {
            Some(h) => verify_with(memory, &password, &h),
            None => {
                verify_with(memory, &password, &FALLBACK_HASH);
                false
            }
        })
        .await
    }
}

/// Computes the fallback hash now, so the first unknown-email sign-in is not slower.
pub fn warm_up() {
    LazyLock::force(&FALLBACK_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    fn hasher(max_concurrent: usize) -> Hasher {
        Hasher::new(HashLimit {
            max_concurrent,
            wait: Duration::from_secs(5),
        })
    }

    #[tokio::test]
    async fn hash_is_argon2id_with_owasp_params_and_verifies() {
        let h = hasher(2);
        let hash = h.hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(
            h.verify_password("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!h.verify_password("wrong horse!".into(), Some(hash)).await.unwrap());
        assert!(
            !h.verify_password("x".repeat(12), Some("not a hash".into()))
                .await
                .unwrap()
        );
    }

    /// Hashes made before the buffer pool (the argon2 crate's own API) still
    /// verify, and the crate verifies ours: the stored format is unchanged.
    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crates_own_format() {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        let theirs = argon2
            .hash_password(b"old password", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        let h = hasher(1);
        assert!(
            h.verify_password("old password".into(), Some(theirs.clone()))
                .await
                .unwrap()
        );
        assert!(!h.verify_password("old passwore".into(), Some(theirs)).await.unwrap());
        let ours = h.hash_password("new password".into()).await.unwrap();
        assert!(
            argon2
                .verify_password(b"new password", &PasswordHash::new(&ours).unwrap())
                .is_ok()
        );
        // A hash with other (smaller) parameters verifies too.
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"small", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        assert!(h.verify_password("small".into(), Some(small)).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        assert!(
            !hasher(1)
                .verify_password("not-a-real-password-fallback".into(), None)
                .await
                .unwrap()
        );
    }

    /// With every turn taken, a verify waits `wait` and is then refused
    /// (503 Busy); buffers never outnumber turns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verifies_beyond_the_limit_wait_then_are_refused() {
        let h = Hasher::new(HashLimit {
            max_concurrent: 2,
            wait: Duration::from_millis(1),
        });
        let hash = hasher(1).hash_password("some password".into()).await.unwrap();
        let runs = (0..16).map(|_| h.verify_password("some password".into(), Some(hash.clone())));
        let results = futures_util::future::join_all(runs).await;
        let ok = results.iter().filter(|r| matches!(r, Ok(true))).count();
        let busy = results.iter().filter(|r| matches!(r, Err(Error::Busy(_)))).count();
        assert_eq!(ok + busy, 16, "{results:?}");
        assert!((2..16).contains(&ok), "{ok} ran");
        assert!(h.buffers.lock().unwrap().len() <= 2);
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
