//! The JWT keys in two Secrets Manager secrets, so that IAM can keep the
//! signing key to the one function that signs:
//!
//! - the signing secret (`KeyRing`'s JSON: ES256 key seeds, current and
//!   previous), read only by admin-signin (and ticketd on AWS);
//! - the verify-keys secret (`VerifyKeys`' JSON: public keys and list-cursor
//!   keys), read by every JWT function. Whoever holds the ring publishes it
//!   there: on each read of the ring, if the ring's current key is missing
//!   (a fresh stack, whose verify secret starts empty, or a ring rotated by
//!   `scripts/rotate-jwt-key`), before signing any token with it.
//!
//! One JSON secret each rather than Secrets Manager's AWSCURRENT/AWSPREVIOUS
//! versions: one `GetSecretValue` per read instead of two, the same format
//! as ticketd's key file, and short kids in every token header. Each
//! rotation is still a new secret version, so Secrets Manager keeps the history.

use super::sdk::LazyClient;
use crate::auth::{KeyRing, KeySet, SigningKey, VerifyKeys, keyring::INITIAL_KID};
use crate::ports::KeySource;
use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use std::time::Duration;

/// How long a warm function uses the keys it read before reading them
/// again: after a rotation, tokens carry the new kid within 5 minutes
/// (verifiers learn it sooner, on its first token). 12 reads an hour per
/// warm function.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// What the verify-keys secret holds before anything signed (template.yaml's
/// `SecretString` for it is the same).
pub const NO_VERIFY_KEYS: &str = r#"{"alg":"ES256","keys":[]}"#;

type Client = LazyClient<aws_sdk_secretsmanager::Client>;

/// The verify keys: what every JWT function but admin-signin reads.
#[derive(Clone)]
pub struct SecretsManagerVerifyKeys {
    /// Built on the first read (the first JWT use), not at init.
    client: Client,
    secret_id: String,
}

impl SecretsManagerVerifyKeys {
    pub fn new(client: impl Into<Client>, secret_id: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            secret_id: secret_id.into(),
        }
    }

    pub async fn read(&self) -> anyhow::Result<VerifyKeys> {
        let text = super::secret_text::read(&self.client, &self.secret_id).await?;
        VerifyKeys::from_json(&text).with_context(|| format!("secret {}", self.secret_id))
    }

    async fn write(&self, keys: &VerifyKeys) -> anyhow::Result<()> {
        put(&self.client, &self.secret_id, keys.to_json()).await
    }

    /// Creates the secret holding `keys`; an existing secret is kept as it is.
    pub async fn create(&self, keys: &VerifyKeys) -> anyhow::Result<()> {
        super::secret_text::create_if_missing(
            &self.client,
            &self.secret_id,
            "Ticketing JWT verify keys (public keys and list-cursor keys; nothing that signs)",
            keys.to_json(),
        )
        .await
    }
}

#[async_trait]
impl KeySource for SecretsManagerVerifyKeys {
    async fn load(&self) -> anyhow::Result<KeySet> {
        Ok(KeySet::Verifying(self.read().await?))
    }

    fn max_age(&self) -> Duration {
        KEYS_MAX_AGE
    }
}

/// The signing ring, and the verify-keys secret it publishes to.
#[derive(Clone)]
pub struct SecretsManagerKeys {
    client: Client,
    secret_id: String,
    verify: Option<SecretsManagerVerifyKeys>,
}

impl SecretsManagerKeys {
    /// `verify_secret_id`: where the ring's verify keys are published (none:
    /// a process that signs and verifies alone).
    pub fn new(client: impl Into<Client>, secret_id: impl Into<String>, verify_secret_id: Option<String>) -> Self {
        let client = client.into();
        Self {
            verify: verify_secret_id.map(|id| SecretsManagerVerifyKeys::new(client.clone(), id)),
            client,
            secret_id: secret_id.into(),
        }
    }

    pub async fn read(&self) -> anyhow::Result<KeyRing> {
        let text = super::secret_text::read(&self.client, &self.secret_id).await?;
        KeyRing::from_json(&text).with_context(|| format!("secret {}", self.secret_id))
    }

    /// Makes the verify-keys secret serve `ring` unless it does: only when
    /// the ring's current key is missing there, so a process holding an
    /// older ring (read just before a rotation) never takes a newer key away.
    async fn publish(&self, ring: &KeyRing) -> anyhow::Result<()> {
        let Some(verify) = &self.verify else { return Ok(()) };
        // A verify secret that does not parse (damaged by hand) is replaced too.
        if verify.read().await.is_ok_and(|keys| keys.serve(ring)) {
            return Ok(());
        }
        verify.write(&ring.verify_keys()).await?;
        tracing::info!(kid = %ring.current.kid, secret = %verify.secret_id, "published the JWT verify keys");
        Ok(())
    }

    /// The ring after one rotation, written as the secrets' new versions
    /// (AWSCURRENT): the verify keys first, so verifiers can hold the new
    /// key before any token carries it. Rotate from one place at a time:
    /// two rotations racing would each retire a different key.
    pub async fn rotate(&self) -> anyhow::Result<KeyRing> {
        let rotated = self.read().await?.rotated();
        if let Some(verify) = &self.verify {
            verify.write(&rotated.verify_keys()).await?;
        }
        put(&self.client, &self.secret_id, rotated.to_json()).await?;
        Ok(rotated)
    }

    /// Creates the signing secret with a generated key (kid [`INITIAL_KID`],
    /// as template.yaml's generated secret) and the verify secret empty
    /// (published on first read, as on a fresh stack), unless they exist.
    pub async fn create_if_missing(&self) -> anyhow::Result<()> {
        let ring = KeyRing::single(SigningKey::generate(INITIAL_KID).expect("a generated key passes the rules"));
        self.create_ring(&ring).await?;
        if let Some(verify) = &self.verify {
            verify.create(&VerifyKeys::default()).await?;
        }
        Ok(())
    }

    /// Creates both secrets holding `ring` and its verify keys; an existing
    /// secret is kept as it is.
    pub async fn create(&self, ring: &KeyRing) -> anyhow::Result<()> {
        self.create_ring(ring).await?;
        if let Some(verify) = &self.verify {
            verify.create(&ring.verify_keys()).await?;
        }
        Ok(())
    }

    async fn create_ring(&self, ring: &KeyRing) -> anyhow::Result<()> {
        super::secret_text::create_if_missing(
            &self.client,
            &self.secret_id,
            "Ticketing JWT signing keys (ES256 seeds, current and previous)",
            ring.to_json(),
        )
        .await
    }
}

#[async_trait]
impl KeySource for SecretsManagerKeys {
    async fn load(&self) -> anyhow::Result<KeySet> {
        let ring = self.read().await?;
        // A token this process signs must verify everywhere: no ring without its publication.
        self.publish(&ring).await.context("publishing the JWT verify keys")?;
        Ok(KeySet::Signing(ring))
    }

    fn max_age(&self) -> Duration {
        KEYS_MAX_AGE
    }
}

async fn put(client: &Client, id: &str, text: String) -> anyhow::Result<()> {
    client
        .put_secret_value()
        .secret_id(id)
        .secret_string(text)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("PutSecretValue {id}: {}", DisplayErrorContext(&e)))?;
    Ok(())
}
