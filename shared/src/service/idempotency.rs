//! Idempotent requests: who a key belongs to, and the begin / finish /
//! forget steps over the store. The HTTP layer (`http::idempotency`) wraps
//! every POST in them.

use super::Service;
use crate::auth::SecretHash;
use crate::domain::{ClientId, IdempotencyBegin, IdempotencyKey, IdempotencyRecord, KeptReply};
use crate::error::{Error, Result};
use std::time::Duration;

/// How long a key is remembered.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

/// How long a running request holds its key: longer than any function's
/// Timeout (29 s at most) and any ticketd request, so only a request that
/// died lets go of it.
pub const IDEMPOTENCY_LEASE: Duration = Duration::from_secs(60);

/// The longest key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// A client's key as sent: 1 to 255 printable ASCII characters.
pub fn idempotency_key(raw: &[u8]) -> Result<String> {
    let ok = !raw.is_empty() && raw.len() <= MAX_IDEMPOTENCY_KEY && raw.iter().all(|b| (0x20..=0x7e).contains(b));
    match std::str::from_utf8(raw) {
        Ok(key) if ok => Ok(key.to_owned()),
        _ => Err(Error::invalid(
            "Idempotency-Key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"),
        )),
    }
}

/// The credential a request came with, as sent.
pub enum Presented<'a> {
    Jwt(&'a str),
    Secret(std::borrow::Cow<'a, str>),
    /// None, on a route that needs none (org signup): the client's address.
    Client(ClientId),
    /// None.
    None,
}

impl Service {
    /// Whose key it is: the admin a valid JWT names, the org secret or API
    /// key presented (by id), or the client's address on a route that needs
    /// no credential. `None` without a valid credential: the request then
    /// runs without idempotency, and its handler answers 401 (so no record
    /// is ever written for, or shared between, unauthenticated callers).
    pub async fn idempotency_scope(&self, presented: Presented<'_>) -> Result<Option<String>> {
        Ok(match presented {
            Presented::None => None,
            Presented::Client(client) => Some(format!("client:{client}")),
            Presented::Jwt(token) => match self.authenticate_admin(token).await {
                Ok(claims) => Some(format!("admin:{}", claims.sub)),
                Err(Error::Unauthorized(_)) => None,
                Err(e) => return Err(e),
            },
            Presented::Secret(secret) => self
                .ports
                .store
                .credential(&SecretHash::of(&secret))
                .await?
                .map(|c| match c.key {
                    Some(k) => format!("key:{}", k.id),
                    None => format!("org:{}", c.org.id),
                }),
        })
    }

    pub async fn begin_idempotent(&self, key: &IdempotencyKey, fingerprint: String) -> Result<IdempotencyBegin> {
        let now = self.now();
        let record = IdempotencyRecord {
            key: key.clone(),
            fingerprint,
            lease_until: now.plus(IDEMPOTENCY_LEASE),
            expires_at: now.plus(IDEMPOTENCY_TTL),
        };
        Ok(self.ports.store.begin_idempotent(&record, now).await?)
    }

    pub async fn finish_idempotent(&self, key: &IdempotencyKey, reply: &KeptReply) -> Result<()> {
        Ok(self.ports.store.finish_idempotent(key, reply).await?)
    }

    pub async fn abandon_idempotent(&self, key: &IdempotencyKey) -> Result<()> {
        Ok(self.ports.store.abandon_idempotent(key).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_printable_ascii() {
        assert!(idempotency_key(b"0f8c3a5e-retry-1").is_ok());
        assert!(idempotency_key(&[b'a'; 255]).is_ok());
        for bad in [
            &b""[..],
            &[b'a'; 256][..],
            b"tab\there",
            b"new\nline",
            "caf\u{e9}".as_bytes(),
        ] {
            assert!(idempotency_key(bad).is_err(), "{bad:?}");
        }
    }
}
