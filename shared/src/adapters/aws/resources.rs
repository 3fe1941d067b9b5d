//! Creates the table, schedule group, JWT key secret, queues, SES
//! configuration set and mail-events queue when they are missing (and asks SES
//! to verify the sender): what `ticketd --backend aws --create-aws-resources`
//! and the tests do against a fresh moto. In a real account, template.yaml does this.

use super::errors::is_code;
use super::items::{
    DUE_INDEX, DUE_PK, DUE_SK, GSK, LIST_INDEXES, MAIL_DUE_INDEX, MAIL_DUE_PK, MAIL_DUE_SK, PK, SK, UNASSIGNED_INDEX,
    UNASSIGNED_PK,
};
use super::settings::local_mail_events_queue;
use super::{AwsAdapters, AwsSettings};
use anyhow::Context;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType,
};
use aws_sdk_ses::types::ConfigurationSet;

pub async fn create_missing_resources(aws: &AwsAdapters, settings: &AwsSettings) -> anyhow::Result<()> {
    create_table(&aws.dynamo, &settings.table).await?;
    match aws
        .schedules
        .get_schedule_group()
        .name(&settings.schedule_group)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if is_code(&e, "ResourceNotFoundException") => {
            aws.schedules
                .create_schedule_group()
                .name(&settings.schedule_group)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("CreateScheduleGroup: {}", DisplayErrorContext(&e)))?;
            tracing::info!(group = %settings.schedule_group, "created schedule group");
        }
        Err(e) => anyhow::bail!("GetScheduleGroup: {}", DisplayErrorContext(&e)),
    }
    for arn in [&settings.failure_queue_arn, &settings.dead_letter_arn] {
        // CreateQueue with the same name and no attributes is idempotent.
        let name = super::failures::queue_name(arn);
        aws.sqs()
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("CreateQueue {name}: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
    }
    match (&settings.jwt_signing_secret_arn, &settings.jwt_secret_arn) {
        (Some(signing), verify) => {
            super::SecretsManagerKeys::new(aws.secrets().clone(), signing.clone(), verify.clone())
                .create_if_missing()
                .await?
        }
        (None, Some(verify)) => {
            super::SecretsManagerVerifyKeys::new(aws.secrets().clone(), verify.clone())
                .create(&Default::default())
                .await?
        }
        (None, None) => {}
    }
    if let (Some(secret), Some(_)) = (&settings.reply_key_secret_arn, &settings.inbound_domain) {
        super::SecretsManagerReplyKey::new(aws.secrets().clone(), secret.clone())
            .create_if_missing()
            .await?;
    }
    create_mail_resources(aws, settings).await?;
    let sender = sender_address(&settings.mail_from);
    let attrs = aws
        .ses
        .get_identity_verification_attributes()
        .identities(sender)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("GetIdentityVerificationAttributes: {}", DisplayErrorContext(&e)))?;
    let verified = attrs
        .verification_attributes()
        .get(sender)
        .is_some_and(|a| a.verification_status().as_str() == "Success");
    if !verified {
        aws.ses
            .verify_email_identity()
            .email_address(sender)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("VerifyEmailIdentity: {}", DisplayErrorContext(&e)))?;
        tracing::warn!(
            sender,
            "asked SES to verify the sender; mail fails until the address is confirmed"
        );
    }
    Ok(())
}

/// The configuration set mail is sent with, and the queue its events arrive
/// in. moto stores the set (and never publishes events: the tests put SES's
/// notifications into the queue themselves, as SNS would).
async fn create_mail_resources(aws: &AwsAdapters, settings: &AwsSettings) -> anyhow::Result<()> {
    let set = ConfigurationSet::builder()
        .name(&settings.configuration_set)
        .build()
        .context("configuration set")?;
    match aws.ses.create_configuration_set().configuration_set(set).send().await {
        Ok(_) => tracing::info!(set = %settings.configuration_set, "created SES configuration set"),
        Err(e) if is_code(&e, "ConfigurationSetAlreadyExists") => {}
        Err(e) => anyhow::bail!("CreateConfigurationSet: {}", DisplayErrorContext(&e)),
    }
    if settings.mail_events_queue_url.is_none() {
        aws.sqs()
            .create_queue()
            .queue_name(local_mail_events_queue(&settings.table))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("CreateQueue: {}", DisplayErrorContext(&e)))?;
    }
    Ok(())
}

/// Where `ticketd` polls for mail events: the configured queue, else the
/// local one made for the table, if it exists.
pub async fn mail_events_queue_url(aws: &AwsAdapters, settings: &AwsSettings) -> Option<String> {
    if let Some(url) = &settings.mail_events_queue_url {
        return Some(url.clone());
    }
    let name = local_mail_events_queue(&settings.table);
    aws.sqs()
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .ok()
        .and_then(|o| o.queue_url)
}

/// `support@x.io` from `Support <support@x.io>`.
pub fn sender_address(from: &str) -> &str {
    match (from.find('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => from[a + 1..b].trim(),
        _ => from.trim(),
    }
}

async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<()> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => return Ok(()),
        Err(e) if is_code(&e, "ResourceNotFoundException") => {}
        Err(e) => anyhow::bail!("DescribeTable {table}: {}", DisplayErrorContext(&e)),
    }
    let string_attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("complete attribute")
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("complete key")
    };
    let mut create = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_attr(PK))
        .attribute_definitions(string_attr(SK))
        .attribute_definitions(string_attr(GSK))
        .key_schema(key(PK, KeyType::Hash))
        .key_schema(key(SK, KeyType::Range));
    // Pending mail by due time: sparse (only pending responses carry the key), keys only.
    create = create
        .attribute_definitions(string_attr(MAIL_DUE_PK))
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(MAIL_DUE_SK)
                .attribute_type(ScalarAttributeType::N)
                .build()
                .context("attribute")?,
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(MAIL_DUE_INDEX)
                .key_schema(key(MAIL_DUE_PK, KeyType::Hash))
                .key_schema(key(MAIL_DUE_SK, KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
                .build()
                .context("index definition")?,
        );
    // OPEN tickets waiting for an assignee, per org, oldest first: sparse, keys only.
    create = create
        .attribute_definitions(string_attr(UNASSIGNED_PK))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(UNASSIGNED_INDEX)
                .key_schema(key(UNASSIGNED_PK, KeyType::Hash))
                .key_schema(key(GSK, KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
                .build()
                .context("index definition")?,
        );
    for index in LIST_INDEXES {
        create = create
            .attribute_definitions(string_attr(index.pk_attr))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index.name)
                    .key_schema(key(index.pk_attr, KeyType::Hash))
                    .key_schema(key(GSK, KeyType::Range))
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()
                    .context("index definition")?,
            );
    }
    // The sparse due index (RESPONDED tickets only) and the stream the
    // reconciler reads, as template.yaml declares them.
    create = create
        .attribute_definitions(string_attr(DUE_PK))
        .attribute_definitions(string_attr(DUE_SK))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(DUE_INDEX)
                .key_schema(key(DUE_PK, KeyType::Hash))
                .key_schema(key(DUE_SK, KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .context("index definition")?,
        )
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .context("stream specification")?,
        );
    match create.send().await {
        Ok(_) => {}
        // Created meanwhile by someone else: fine.
        Err(e) if is_code(&e, "ResourceInUseException") => {}
        Err(e) => anyhow::bail!("CreateTable {table}: {}", DisplayErrorContext(&e)),
    }
    for _ in 0..120 {
        let out = client.describe_table().table_name(table).send().await;
        if out
            .ok()
            .and_then(|o| o.table)
            .and_then(|t| t.table_status)
            .is_some_and(|s| s.as_str() == "ACTIVE")
        {
            tracing::info!(table, "created table");
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    anyhow::bail!("table {table} did not become ACTIVE")
}

#[cfg(test)]
mod tests {
    #[test]
    fn sender_address_strips_the_display_name() {
        assert_eq!(super::sender_address("Support <support@x.io>"), "support@x.io");
        assert_eq!(super::sender_address("support@x.io"), "support@x.io");
    }
}
