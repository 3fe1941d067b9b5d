//! The reply key (inbound email's address tokens) in its own Secrets Manager
//! secret, a plain string. Its own secret, not a field of the JWT secret: the
//! JWT secret is rewritten by every rotation and read by every JWT function,
//! while the reply key never rotates and only `respond` (which renders reply
//! addresses) and `inbound-email` (which checks them) may read it.

use super::errors::is_code;
use super::sdk::LazyClient;
use crate::auth::ReplyKey;
use crate::ports::ReplyKeySource;
use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

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
        match self
            .client
            .create_secret()
            .name(&self.secret_id)
            .description("Ticketing reply-address key (never rotated: old reply addresses must verify)")
            .secret_string(ReplyKey::generate_text())
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!(secret = %self.secret_id, "created reply key secret");
                Ok(())
            }
            Err(e) if is_code(&e, "ResourceExistsException") => Ok(()),
            Err(e) => anyhow::bail!("CreateSecret {}: {}", self.secret_id, DisplayErrorContext(&e)),
        }
    }
}

#[async_trait]
impl ReplyKeySource for SecretsManagerReplyKey {
    async fn load(&self) -> anyhow::Result<ReplyKey> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("GetSecretValue {}: {}", self.secret_id, DisplayErrorContext(&e)))?;
        let text = out
            .secret_string()
            .with_context(|| format!("secret {} holds no string", self.secret_id))?;
        ReplyKey::from_text(text).with_context(|| format!("secret {}", self.secret_id))
    }
}
