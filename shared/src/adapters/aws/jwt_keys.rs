//! The JWT key ring in one Secrets Manager secret (`KeyRing`'s JSON): read
//! by the functions that sign or verify tokens, rotated by an operator
//! (`ticketd rotate-jwt-key --secret-arn`, or `scripts/rotate-jwt-key`).
//!
//! One JSON secret rather than Secrets Manager's AWSCURRENT/AWSPREVIOUS
//! versions: one `GetSecretValue` per read instead of two, the same format
//! as ticketd's key file, and short kids in every token header (a version
//! id is a 36-character UUID). Each rotation is still a new secret version,
//! so Secrets Manager keeps the history.

use super::sdk::LazyClient;
use crate::auth::{KeyRing, SigningKey, keyring::INITIAL_KID};
use crate::ports::KeySource;
use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use std::time::Duration;

/// How long a warm function signs with the keys it read before reading
/// them again: after a rotation, tokens carry the new kid within 5 minutes
/// (verifiers learn it sooner, on its first token). 12 reads an hour per
/// warm function.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(5 * 60);

#[derive(Clone)]
pub struct SecretsManagerKeys {
    /// Built on the first read (the first JWT use), not at init.
    client: LazyClient<aws_sdk_secretsmanager::Client>,
    secret_id: String,
}

impl SecretsManagerKeys {
    pub fn new(client: impl Into<LazyClient<aws_sdk_secretsmanager::Client>>, secret_id: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            secret_id: secret_id.into(),
        }
    }

    /// The ring after one rotation, written as the secret's new version
    /// (AWSCURRENT). Rotate from one place at a time: two rotations racing
    /// would each retire a different key.
    pub async fn rotate(&self) -> anyhow::Result<KeyRing> {
        let rotated = self.load().await?.rotated();
        self.client
            .put_secret_value()
            .secret_id(&self.secret_id)
            .secret_string(rotated.to_json())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("PutSecretValue {}: {}", self.secret_id, DisplayErrorContext(&e)))?;
        Ok(rotated)
    }

    /// Creates the secret with a generated key (kid [`INITIAL_KID`], as
    /// template.yaml's generated secret) unless it exists.
    pub async fn create_if_missing(&self) -> anyhow::Result<()> {
        let ring = KeyRing::single(SigningKey::generate(INITIAL_KID).expect("a generated key passes the rules"));
        self.create(&ring).await
    }

    /// Creates the secret holding `ring`; an existing secret is kept as it is.
    pub async fn create(&self, ring: &KeyRing) -> anyhow::Result<()> {
        super::secret_text::create_if_missing(
            &self.client,
            &self.secret_id,
            "Ticketing JWT signing keys (current and previous)",
            ring.to_json(),
        )
        .await
    }
}

#[async_trait]
impl KeySource for SecretsManagerKeys {
    async fn load(&self) -> anyhow::Result<KeyRing> {
        let text = super::secret_text::read(&self.client, &self.secret_id).await?;
        KeyRing::from_json(&text).with_context(|| format!("secret {}", self.secret_id))
    }

    fn max_age(&self) -> Duration {
        KEYS_MAX_AGE
    }
}
