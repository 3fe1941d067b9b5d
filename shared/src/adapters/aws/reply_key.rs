//! The reply key (inbound email's address tokens) in its own Secrets Manager
//! secret, a plain string. Its own secret, not a field of the JWT secret: the
//! JWT secret is rewritten by every rotation and read by every JWT function,
//! while the reply key never rotates and only `respond` (which renders reply
//! addresses) and `inbound-email` (which checks them) may read it.

use super::sdk::LazyClient;
use crate::auth::ReplyKey;
use crate::ports::ReplyKeySource;
use anyhow::Context;
use async_trait::async_trait;

#[derive(Clone)]
pub struct SecretsManagerReplyKey {
    client: LazyClient<aws_sdk_secretsmanager::Client>,
    secret_id: String,
}

impl SecretsManagerReplyKey {
    pub fn new(client: impl Into<LazyClient<aws_sdk_secretsmanager::Client>>, secret_id: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            secret_id: secret_id.into(),
        }
    }

    /// Creates the secret with a generated key unless it exists (local runs;
    /// template.yaml generates the deployed one).
    pub async fn create_if_missing(&self) -> anyhow::Result<()> {
        super::secret_text::create_if_missing(
            &self.client,
            &self.secret_id,
            "Ticketing reply-address key (never rotated: old reply addresses must verify)",
            ReplyKey::generate_text(),
        )
        .await
    }
}

#[async_trait]
impl ReplyKeySource for SecretsManagerReplyKey {
    async fn load(&self) -> anyhow::Result<ReplyKey> {
        let text = super::secret_text::read(&self.client, &self.secret_id).await?;
        ReplyKey::from_text(&text).with_context(|| format!("secret {}", self.secret_id))
    }
}
