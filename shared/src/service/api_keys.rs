//! API keys and the org secret's rotation: admins issue scoped keys to their
//! client products and revoke them one by one; a key is accepted wherever the
//! org secret is, within its scopes.

use super::Service;
use crate::auth::{Claims, SecretHash, generate_api_key, generate_secret};
use crate::domain::{ApiKey, ApiKeyId, Credential, MAX_NAME, Org, Scope};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An org may hold this many keys at once: enough for a key per product and
/// environment, few enough that a list is one small read.
pub const MAX_API_KEYS: usize = 50;

/// Longer than any secret or key we issue; anything longer is not hashed at all.
const MAX_SECRET_LEN: usize = 256;

/// How often one process records a key's `lastUsedAt`: a write per use would
/// double the cost of every request made with a key.
const LAST_USED_EVERY: Duration = Duration::from_secs(60);

/// When this process last recorded each key's use.
#[derive(Clone, Default)]
pub(super) struct KeyUse(Arc<Mutex<HashMap<ApiKeyId, Instant>>>);

impl KeyUse {
    /// Whether the use of `key` now should be recorded.
    fn due(&self, key: ApiKeyId) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match seen.get(&key) {
            Some(at) if now.duration_since(*at) < LAST_USED_EVERY => false,
            _ => {
                // Bounded: forget everything rather than grow without end.
                if seen.len() >= 10_000 {
                    seen.clear();
                }
                seen.insert(key, now);
                true
            }
        }
    }
}

/// A new API key with the key itself, shown this once.
pub struct IssuedKey {
    pub key: ApiKey,
    pub secret: String,
}

impl Service {
    /// The org holding `secret` (its own secret or one of its API keys)
    /// if that credential allows `scope`: 401 for an unknown secret, 403
    /// (`insufficient_scope`) for a key without the scope.
    pub async fn authenticate_org(&self, secret: Option<&str>, scope: Scope) -> Result<Org> {
        Ok(self.authenticate_credential(secret, scope).await?.org)
    }

    /// [`Self::authenticate_org`], saying which credential it was.
    pub async fn authenticate_credential(&self, secret: Option<&str>, scope: Scope) -> Result<Credential> {
        let secret = secret.filter(|s| !s.is_empty()).ok_or(Error::Unauthorized(
            "an org secret or API key is required (header X-Api-Key, or body field `secret`)",
        ))?;
        if secret.len() > MAX_SECRET_LEN {
            return Err(Error::Unauthorized("invalid org secret or API key"));
        }
        let credential = self
            .ports
            .store
            .credential(&SecretHash::of(secret))
            .await?
            .ok_or(Error::Unauthorized("invalid org secret or API key"))?;
        if let Some(key) = &credential.key {
            if !key.scopes.contains(&scope) {
                return Err(Error::InsufficientScope(scope));
            }
            if self.key_use.due(key.id) {
                let store = self.ports.store.clone();
                let (org_id, now, key) = (credential.org.id, self.now(), key.clone());
                // Off the request path; a lost write only leaves lastUsedAt older.
                tokio::spawn(async move {
                    if let Err(e) = store.touch_api_key(org_id, key.id, now).await {
                        tracing::warn!(key = %key.id, error = ?e, "could not record an API key's use");
                    }
                });
            }
        }
        Ok(credential)
    }

    pub async fn create_api_key(&self, claims: &Claims, name: String, scopes: Vec<Scope>) -> Result<IssuedKey> {
        if self.ports.store.api_keys(claims.org).await?.len() >= MAX_API_KEYS {
            return Err(Error::Conflict(format!(
                "an org holds at most {MAX_API_KEYS} API keys; revoke one first"
            )));
        }
        let (secret, prefix) = generate_api_key();
        let key = ApiKey {
            id: ApiKeyId::new(),
            org_id: claims.org,
            name,
            prefix,
            scopes,
            created_at: self.now(),
            last_used_at: None,
        };
        self.ports.store.create_api_key(&key, &SecretHash::of(&secret)).await?;
        tracing::info!(org = %claims.org, key = %key.id, by = %claims.sub, "API key created");
        Ok(IssuedKey { key, secret })
    }

    /// The org's keys, oldest first.
    pub async fn api_keys(&self, claims: &Claims) -> Result<Vec<ApiKey>> {
        Ok(self.ports.store.api_keys(claims.org).await?)
    }

    /// Revokes the key at once: the next request with it is a 401.
    pub async fn revoke_api_key(&self, claims: &Claims, id: ApiKeyId) -> Result<()> {
        if !self.ports.store.revoke_api_key(claims.org, id).await? {
            return Err(Error::NotFound("API key"));
        }
        tracing::info!(org = %claims.org, key = %id, by = %claims.sub, "API key revoked");
        Ok(())
    }

    /// A new org secret, returned this once; the old one stops working at once.
    pub async fn rotate_org_secret(&self, claims: &Claims) -> Result<String> {
        let secret = generate_secret();
        self.ports
            .store
            .rotate_org_secret(claims.org, &SecretHash::of(&secret))
            .await?;
        tracing::info!(org = %claims.org, by = %claims.sub, "org secret rotated");
        Ok(secret)
    }
}

/// An API key's name: one line, 1 to [`MAX_NAME`] characters.
pub fn key_name(raw: &str) -> Result<String> {
    crate::domain::line("name", raw, MAX_NAME)
}
