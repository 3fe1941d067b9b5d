//! The JWT keys the service signs and verifies with: fixed, or read from a
//! key source and cached, re-read when stale or when a token names a kid
//! not loaded yet (at most once per [`MIN_RELOAD_INTERVAL`]).

use super::CursorCodec;
use crate::auth::{self, Claims, JwtKeys, KeyRing, Rejected, SigningKey, keyring::LEGACY_KID};
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
    /// One fixed secret (kid [`LEGACY_KID`]); must pass [`auth::check_jwt_secret`].
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

/// Token and cursor signers of one version of the key ring.
pub struct Loaded {
    pub jwt: JwtKeys,
    pub cursors: CursorCodec,
}

impl Loaded {
    fn new(ring: &KeyRing) -> Arc<Self> {
        Arc::new(Self {
            jwt: JwtKeys::new(ring, auth::DEFAULT_TOKEN_LIFETIME),
            cursors: CursorCodec::new(ring),
        })
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
                let key = SigningKey::new(LEGACY_KID, secret.clone()).map_err(|_| auth::WeakSecret)?;
                inner(None, Some(Loaded::new(&KeyRing::single(key))))
            }
            KeyConfig::Source(source) => inner(Some(source.clone()), None),
        })
    }

    /// The keys, read first if never read or stale. Without keys, or when the
    /// first read fails, an internal error (a 500 that shows nothing).
    pub async fn get(&self) -> Result<Arc<Loaded>> {
        let inner = self.0.as_ref().ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "this function has no JWT keys (template.yaml gives them only to JWT routes)"
            ))
        })?;
        if let Some(loaded) = inner.fresh(Instant::now()) {
            return Ok(loaded);
        }
        inner.read(false).await
    }

    /// The claims of a token signed with a key of the ring; a token whose kid
    /// is not loaded yet makes one (rate-limited) read of the keys first.
    pub async fn verify(&self, token: &str) -> Result<Claims> {
        let loaded = self.get().await?;
        match loaded.jwt.verify(token) {
            Ok(claims) => Ok(claims),
            Err(Rejected::UnknownKid) => {
                let inner = self.0.as_ref().expect("get succeeded, so there are keys");
                if inner.source.is_none() || !inner.may_read(Instant::now()) {
                    return Err(UNAUTHORIZED);
                }
                let reread = inner.read(true).await?;
                reread.jwt.verify(token).map_err(|_| UNAUTHORIZED)
            }
            Err(Rejected::Invalid) => Err(UNAUTHORIZED),
        }
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

    fn may_read(&self, now: Instant) -> bool {
        self.state()
            .last_read
            .is_none_or(|at| now.duration_since(at) >= MIN_RELOAD_INTERVAL)
    }

    /// Reads the source (once for all callers waiting meanwhile). A failed
    /// read keeps serving the keys already loaded, and is retried after
    /// [`MIN_RELOAD_INTERVAL`]; with none loaded it is an internal error.
    async fn read(&self, unknown_kid: bool) -> Result<Arc<Loaded>> {
        let Some(source) = &self.source else {
            return self.state().loaded.clone().ok_or_else(|| Error::internal(anyhow::anyhow!("no keys")));
        };
        let _one_reader = self.reading.lock().await;
        let now = Instant::now();
        let loaded = self.state().loaded.clone();
        if unknown_kid {
            // Another caller may have read while this one waited.
            if !self.may_read(now) {
                return loaded.ok_or_else(|| Error::internal(anyhow::anyhow!("no JWT keys read yet")));
            }
        } else if let Some(fresh) = self.fresh(now) {
            return Ok(fresh);
        } else if loaded.is_none() && self.state().last_read.is_some_and(|at| now - at < FIRST_READ_RETRY) {
            return Err(Error::internal(anyhow::anyhow!("the JWT keys could not be read; retrying soon")));
        }
        let started = Instant::now();
        let result = source.load().await;
        let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
        s.last_read = Some(Instant::now());
        match result {
            Ok(ring) => {
                tracing::info!(
                    kid = %ring.current.kid,
                    previous = ring.previous.as_ref().map(|k| k.kid.as_str()),
                    took_ms = started.elapsed().as_millis() as u64,
                    unknown_kid,
                    "JWT keys read"
                );
                let loaded = Loaded::new(&ring);
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
