//! The JWT keys the service signs and verifies with: fixed, or read from a
//! key source and cached, re-read when stale or when a token names a kid
//! not loaded yet (at most once per [`MIN_RELOAD_INTERVAL`]).

use super::CursorCodec;
use crate::auth::{self, Claims, JwtKeys, KeyRing, KeySet, Rejected, SigningKey, keyring::FIXED_KID};
use crate::domain::{AdminId, OrgId, Timestamp};
use crate::error::{Error, Result};
use crate::ports::KeySource;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The least time between two reads caused by unknown kids, and between
/// retries of a read that failed: a stream of forged kids costs the key
/// store one read per 10 s per process (on AWS, 0.05 USD per 10 000 reads),
/// while a key rotated in elsewhere is learnt within 10 s of first use.
pub const MIN_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// How a process gets its keys.
#[derive(Clone, Default)]
pub enum KeyConfig {
    /// A function that serves no JWT route: one that gets there answers 500.
    #[default]
    None,
    /// One fixed seed of an ES256 signing key (kid [`FIXED_KID`]); must pass
    /// [`auth::check_jwt_secret`].
    Fixed(String),
    /// Read from a key file or a secret store, and cached.
    Source(Arc<dyn KeySource>),
}

impl std::fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyConfig::None => "KeyConfig::None",
            KeyConfig::Fixed(_) => "KeyConfig::Fixed(..)",
            KeyConfig::Source(_) => "KeyConfig::Source(..)",
        })
    }
}

/// Token and cursor signers of one version of the keys.
pub struct Loaded {
    pub jwt: JwtKeys,
    pub cursors: CursorCodec,
    keys: KeySet,
}

impl Loaded {
    fn new(keys: KeySet) -> Arc<Self> {
        Arc::new(Self {
            jwt: JwtKeys::new(&keys, auth::DEFAULT_TOKEN_LIFETIME),
            cursors: CursorCodec::new(&keys.verify_keys()),
            keys,
        })
    }

    /// A token for `admin` of `org`; an internal error where no signing key
    /// is held (only admin-signin and ticketd hold one).
    pub fn issue(&self, admin: AdminId, org: OrgId, now: Timestamp) -> Result<(String, Timestamp)> {
        self.jwt
            .issue(admin, org, now)
            .map_err(|e| Error::internal(anyhow::Error::from(e)))
    }
}

#[derive(Clone)]
pub struct Keys(Option<Arc<Inner>>);

struct Inner {
    source: Option<Arc<dyn KeySource>>,
    state: RwLock<State>,
    /// One read at a time: a burst of requests on a cold process reads once.
    reading: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    loaded: Option<Arc<Loaded>>,
    /// Good until then; `None`: never stale (a fixed key).
    fresh_until: Option<Instant>,
    last_read: Option<Instant>,
    /// The last read a token's unknown kid caused.
    last_unknown_kid_read: Option<Instant>,
}

/// With no keys at all, a failed read is retried by the next request at
/// most this often: requests queued behind a failed read fail fast.
const FIRST_READ_RETRY: Duration = Duration::from_secs(1);

const UNAUTHORIZED: Error = Error::Unauthorized("invalid or expired token");

impl Keys {
    pub fn new(config: &KeyConfig) -> std::result::Result<Self, auth::WeakSecret> {
        let inner = |source, loaded: Option<Arc<Loaded>>| {
            Self(Some(Arc::new(Inner {
                source,
                state: RwLock::new(State {
                    loaded,
                    ..State::default()
                }),
                reading: Default::default(),
            })))
        };
        Ok(match config {
            KeyConfig::None => Self(None),
            KeyConfig::Fixed(secret) => {
                auth::check_jwt_secret(secret)?;
                let key = SigningKey::new(FIXED_KID, secret.clone()).map_err(|_| auth::WeakSecret)?;
                inner(None, Some(Loaded::new(KeySet::Signing(KeyRing::single(key)))))
            }
            KeyConfig::Source(source) => inner(Some(source.clone()), None),
        })
    }

    /// The keys, read first if never read or stale. Without keys, or when the
    /// first read fails, an internal error (a 500 that shows nothing).
    pub async fn get(&self) -> Result<Arc<Loaded>> {
        let inner = self.inner()?;
        if let Some(loaded) = inner.fresh(Instant::now()) {
            return Ok(loaded);
        }
        inner.read(None).await
    }

    /// The claims of a token signed with a key of the ring; a token whose kid
    /// is not loaded yet makes one (rate-limited) read of the keys first.
    pub async fn verify(&self, token: &str) -> Result<Claims> {
        let inner = self.inner()?;
        // Every authenticated request comes here: with fresh keys, verify
        // under the read lock (no Arc clone, no clock read for a fixed key).
        let verified = inner.with_fresh(|loaded| loaded.jwt.verify(token));
        let verified = match verified {
            Some(verified) => verified,
            None => inner.read(None).await?.jwt.verify(token),
        };
        match verified {
            Ok(claims) => Ok(claims),
            Err(Rejected::UnknownKid) => {
                if inner.source.is_none() || !inner.may_read_for_unknown_kid(Instant::now()) {
                    return Err(UNAUTHORIZED);
                }
                let reread = inner.read(Some(Instant::now())).await?;
                reread.jwt.verify(token).map_err(|_| UNAUTHORIZED)
            }
            Err(Rejected::Invalid) => Err(UNAUTHORIZED),
        }
    }

    fn inner(&self) -> Result<&Inner> {
        self.0.as_deref().ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "this function has no JWT keys (template.yaml gives them only to JWT routes)"
            ))
        })
    }
}

impl Inner {
    fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh(&self, now: Instant) -> Option<Arc<Loaded>> {
        let s = self.state();
        let fresh = s.fresh_until.is_none_or(|until| now < until);
        s.loaded.clone().filter(|_| fresh)
    }

    /// `f` of the loaded keys if they are fresh, under the read lock; the
    /// clock is read only for keys that can go stale.
    fn with_fresh<T>(&self, f: impl FnOnce(&Loaded) -> T) -> Option<T> {
        let s = self.state();
        let fresh = s.fresh_until.is_none_or(|until| Instant::now() < until);
        s.loaded.as_deref().filter(|_| fresh).map(f)
    }

    fn may_read_for_unknown_kid(&self, now: Instant) -> bool {
        self.state()
            .last_unknown_kid_read
            .is_none_or(|at| now.duration_since(at) >= MIN_RELOAD_INTERVAL)
    }

    /// Reads the source (once for all callers waiting meanwhile). A failed
    /// read keeps serving the keys already loaded, and is retried after
    /// [`MIN_RELOAD_INTERVAL`]; with none loaded it is an internal error.
    /// `unknown_kid`: when a token with a kid not loaded asked for the read.
    async fn read(&self, unknown_kid: Option<Instant>) -> Result<Arc<Loaded>> {
        let Some(source) = &self.source else {
            return self
                .state()
                .loaded
                .clone()
                .ok_or_else(|| Error::internal(anyhow::anyhow!("no keys")));
        };
        let _one_reader = self.reading.lock().await;
        let now = Instant::now();
        let loaded = self.state().loaded.clone();
        if let Some(asked) = unknown_kid {
            // Another caller read after this one asked (so that read is as
            // new as ours would be), or one read for an unknown kid lately.
            let s = self.state();
            let read_since = s.last_read.is_some_and(|at| at >= asked);
            let too_soon = s.last_unknown_kid_read.is_some_and(|at| now - at < MIN_RELOAD_INTERVAL);
            drop(s);
            if read_since || too_soon {
                return loaded.ok_or_else(|| Error::internal(anyhow::anyhow!("no JWT keys read yet")));
            }
        } else if let Some(fresh) = self.fresh(now) {
            return Ok(fresh);
        } else if loaded.is_none() && self.state().last_read.is_some_and(|at| now - at < FIRST_READ_RETRY) {
            return Err(Error::internal(anyhow::anyhow!(
                "the JWT keys could not be read; retrying soon"
            )));
        }
        let started = Instant::now();
        let result = source.load().await;
        let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
        s.last_read = Some(Instant::now());
        if unknown_kid.is_some() {
            s.last_unknown_kid_read = s.last_read;
        }
        match result {
            Ok(keys) => {
                let kids: Vec<_> = keys.verify_keys().keys().map(|k| k.kid.clone()).collect();
                let signs = matches!(keys, KeySet::Signing(_));
                let took_us = started.elapsed().as_micros();
                // Unchanged keys keep their loaded form (and the tokens it verified).
                let loaded = match s.loaded.clone() {
                    Some(old) if old.keys == keys => {
                        tracing::debug!(?kids, took_us, "JWT keys read again");
                        old
                    }
                    _ => {
                        // Once per change at info: ticketd re-reads its file every second in use.
                        tracing::info!(
                            ?kids,
                            signs,
                            took_us,
                            unknown_kid = unknown_kid.is_some(),
                            "JWT keys read"
                        );
                        Loaded::new(keys)
                    }
                };
                s.loaded = Some(loaded.clone());
                s.fresh_until = Some(Instant::now() + source.max_age());
                Ok(loaded)
            }
            Err(e) => match s.loaded.clone() {
                Some(old) => {
                    tracing::warn!(error = %e, "JWT keys could not be read again; using the ones read before");
                    s.fresh_until = Some(Instant::now() + MIN_RELOAD_INTERVAL);
                    Ok(old)
                }
                None => Err(Error::internal(e.context("reading the JWT keys"))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A key store in memory, counting reads; `fail` makes reads fail. A
    /// verifying view of it (`verify_only`) yields the ring's verify keys.
    struct Stored {
        ring: Arc<Mutex<KeyRing>>,
        verify_only: bool,
        reads: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
        max_age: Duration,
    }

    #[async_trait::async_trait]
    impl KeySource for Stored {
        async fn load(&self) -> anyhow::Result<KeySet> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            // A read takes a while, as over the network.
            tokio::time::sleep(Duration::from_millis(10)).await;
            anyhow::ensure!(!self.fail.load(Ordering::SeqCst), "store unreachable");
            let ring = self.ring.lock().unwrap().clone();
            Ok(match self.verify_only {
                true => KeySet::Verifying(ring.verify_keys()),
                false => KeySet::Signing(ring),
            })
        }
        fn max_age(&self) -> Duration {
            self.max_age
        }
    }

    fn stored(max_age: Duration) -> Arc<Stored> {
        Arc::new(Stored {
            ring: Arc::new(Mutex::new(KeyRing::single(SigningKey::generate("1").unwrap()))),
            verify_only: false,
            reads: AtomicUsize::new(0),
            fail: Default::default(),
            max_age,
        })
    }

    /// The verify keys of `s`'s ring, as a function that only verifies reads them.
    fn verifying(s: &Stored) -> Arc<Stored> {
        Arc::new(Stored {
            ring: s.ring.clone(),
            verify_only: true,
            reads: AtomicUsize::new(0),
            fail: Default::default(),
            max_age: s.max_age,
        })
    }

    fn rotate(s: &Stored) {
        let mut ring = s.ring.lock().unwrap();
        *ring = ring.rotated();
    }

    async fn token(keys: &Keys) -> String {
        keys.get()
            .await
            .unwrap()
            .issue(AdminId::new(), OrgId::new(), Timestamp::now())
            .unwrap()
            .0
    }

    fn internal(r: Result<impl Sized>) -> bool {
        matches!(r, Err(Error::Internal(_)))
    }

    #[tokio::test]
    async fn without_keys_a_jwt_route_is_an_internal_error_not_a_panic() {
        let keys = Keys::new(&KeyConfig::None).unwrap();
        assert!(internal(keys.get().await));
        assert!(internal(keys.verify("a.b.c").await));
    }

    #[tokio::test]
    async fn a_fixed_key_must_be_strong_and_is_never_read_again() {
        assert!(Keys::new(&KeyConfig::Fixed("short".into())).is_err());
        let keys = Keys::new(&KeyConfig::Fixed("f".repeat(40))).unwrap();
        assert_eq!(keys.get().await.unwrap().jwt.kid(), Some(FIXED_KID));
        let t = token(&keys).await;
        assert!(keys.verify(&t).await.is_ok());
    }

    #[tokio::test]
    async fn a_verifying_source_verifies_and_cannot_sign() {
        let s = stored(Duration::from_secs(3600));
        let (signer, verifier) = (
            Keys::new(&KeyConfig::Source(s.clone())).unwrap(),
            Keys::new(&KeyConfig::Source(verifying(&s))).unwrap(),
        );
        let t = token(&signer).await;
        assert!(verifier.verify(&t).await.is_ok());
        let loaded = verifier.get().await.unwrap();
        assert!(internal(loaded.issue(AdminId::new(), OrgId::new(), Timestamp::now())));
    }

    #[tokio::test]
    async fn keys_are_read_once_and_a_burst_of_first_requests_reads_once() {
        let s = stored(Duration::from_secs(3600));
        let keys = Keys::new(&KeyConfig::Source(s.clone())).unwrap();
        let burst: Vec<_> = (0..20)
            .map(|_| {
                let keys = keys.clone();
                tokio::spawn(async move { keys.get().await.is_ok() })
            })
            .collect();
        for task in burst {
            assert!(task.await.unwrap());
        }
        assert_eq!(s.reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_rotated_in_kid_is_learnt_from_its_first_token_at_most_once_per_interval() {
        let s = stored(Duration::from_secs(3600));
        let v = verifying(&s);
        let (signer, verifier) = (
            Keys::new(&KeyConfig::Source(s.clone())).unwrap(),
            Keys::new(&KeyConfig::Source(v.clone())).unwrap(),
        );
        let old = token(&signer).await;
        assert!(verifier.verify(&old).await.is_ok());
        rotate(&s);
        // A new signer (a cold function) signs with the new key; the warm verifier reads once.
        let fresh = Keys::new(&KeyConfig::Source(s.clone())).unwrap();
        let new = token(&fresh).await;
        let reads = v.reads.load(Ordering::SeqCst);
        assert!(verifier.verify(&new).await.is_ok());
        assert!(verifier.verify(&old).await.is_ok(), "the previous key still verifies");
        assert_eq!(v.reads.load(Ordering::SeqCst), reads + 1);
        // Two more rotations: the next unknown kid within the interval reads nothing.
        rotate(&s);
        rotate(&s);
        let newest = token(&Keys::new(&KeyConfig::Source(s.clone())).unwrap()).await;
        let reads = v.reads.load(Ordering::SeqCst);
        assert!(matches!(verifier.verify(&newest).await, Err(Error::Unauthorized(_))));
        assert_eq!(v.reads.load(Ordering::SeqCst), reads, "rate-limited");
    }

    #[tokio::test]
    async fn stale_keys_are_read_again_and_a_failed_read_keeps_the_old_ones() {
        let s = stored(Duration::from_millis(50));
        let keys = Keys::new(&KeyConfig::Source(s.clone())).unwrap();
        let first_kid = keys.get().await.unwrap().jwt.kid().unwrap().to_owned();
        rotate(&s);
        tokio::time::sleep(Duration::from_millis(60)).await;
        let second_kid = keys.get().await.unwrap().jwt.kid().unwrap().to_owned();
        assert_ne!(second_kid, first_kid, "a stale ring is read again");
        s.fail.store(true, Ordering::SeqCst);
        rotate(&s);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(keys.get().await.unwrap().jwt.kid(), Some(second_kid.as_str()), "kept");
        let reads = s.reads.load(Ordering::SeqCst);
        keys.get().await.unwrap();
        assert_eq!(s.reads.load(Ordering::SeqCst), reads, "retried only after the interval");
    }

    #[tokio::test]
    async fn a_first_read_that_fails_is_an_internal_error_and_is_retried() {
        let s = stored(Duration::from_secs(3600));
        s.fail.store(true, Ordering::SeqCst);
        let keys = Keys::new(&KeyConfig::Source(s.clone())).unwrap();
        assert!(internal(keys.get().await));
        assert!(internal(keys.get().await), "fails fast within a second");
        assert_eq!(s.reads.load(Ordering::SeqCst), 1);
        s.fail.store(false, Ordering::SeqCst);
        tokio::time::sleep(FIRST_READ_RETRY).await;
        assert!(keys.get().await.is_ok());
    }
}
