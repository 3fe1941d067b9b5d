//! The two Secrets Manager calls both key secrets (JWT keys, reply key)
//! make: create a text secret unless it exists, and read its text. Errors
//! name the secret, never its value.

use super::errors::is_code;
use anyhow::Context;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

/// Creates `id` holding `text`; an existing secret is kept as it is.
pub(super) async fn create_if_missing(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
    description: &str,
    text: String,
) -> anyhow::Result<()> {
    match client
        .create_secret()
        .name(id)
        .description(description)
        .secret_string(text)
        .send()
        .await
    {
        Ok(_) => {
            tracing::info!(secret = %id, "created secret");
            Ok(())
        }
        Err(e) if is_code(&e, "ResourceExistsException") => Ok(()),
        Err(e) => anyhow::bail!("CreateSecret {id}: {}", DisplayErrorContext(&e)),
    }
}

/// The text `id` holds now.
pub(super) async fn read(client: &aws_sdk_secretsmanager::Client, id: &str) -> anyhow::Result<String> {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("GetSecretValue {id}: {}", DisplayErrorContext(&e)))?;
    out.secret_string()
        .map(str::to_owned)
        .with_context(|| format!("secret {id} holds no string"))
}
