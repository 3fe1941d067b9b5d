//! The `inbound-email` function's work: SES's receipt rule stored the message
//! in S3 (bucket and key prefix from the environment) and invoked the
//! function with the receipt; each message is read from S3 and handed to
//! [`Service::receive_inbound`] with SES's verdicts (spam, virus, and SPF,
//! DKIM and DMARC for the sender check) and envelope recipients.

use crate::domain::inbound::{MAX_RAW_MESSAGE, SenderAuth, SesVerdicts};
use crate::service::{InboundOutcome, InboundSource, Service};
use anyhow::Context;
use serde::Deserialize;

/// The bucket SES writes inbound mail to.
pub const ENV_INBOUND_BUCKET: &str = "TICKETING_INBOUND_BUCKET";
/// The key prefix of SES's S3 action (`inbound/`): the object is `<prefix><messageId>`.
pub const ENV_INBOUND_PREFIX: &str = "TICKETING_INBOUND_PREFIX";

/// SES's receipt event (the Lambda action), as much of it as we read.
#[derive(Debug, Clone, Deserialize)]
pub struct SesReceiptEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<SesRecord>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SesRecord {
    pub ses: SesPayload,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SesPayload {
    pub mail: SesMail,
    pub receipt: SesReceipt,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SesMail {
    /// SES's id of the message: the S3 object's name under the prefix.
    pub message_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SesReceipt {
    #[serde(default)]
    pub recipients: Vec<String>,
    pub spam_verdict: Option<SesVerdict>,
    pub virus_verdict: Option<SesVerdict>,
    /// SPF of the envelope sender's domain.
    pub spf_verdict: Option<SesVerdict>,
    /// DKIM: PASS if a signature verified.
    pub dkim_verdict: Option<SesVerdict>,
    /// DMARC for the `From` domain: GRAY where it publishes no policy.
    pub dmarc_verdict: Option<SesVerdict>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SesVerdict {
    pub status: String,
}

/// Where SES stores inbound mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundBucket {
    pub bucket: String,
    pub prefix: String,
}

impl InboundBucket {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok()).with_context(|| format!("{ENV_INBOUND_BUCKET} is not set"))
    }

    /// The bucket when its variable is set (inbound-email, and the sweeper
    /// that re-applies what inbound-email failed on); `None` otherwise.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let bucket = get(ENV_INBOUND_BUCKET).filter(|b| !b.trim().is_empty())?;
        Some(Self {
            bucket,
            prefix: get(ENV_INBOUND_PREFIX).unwrap_or_default(),
        })
    }
}

/// Handles every message of a receipt event. An error (S3 or the store
/// unreachable) fails the invocation, which Lambda retries: nothing is
/// applied twice, since the message is keyed by its Message-ID.
pub async fn handle_ses_event(
    service: &Service,
    s3: &aws_sdk_s3::Client,
    bucket: &InboundBucket,
    event: SesReceiptEvent,
) -> anyhow::Result<Vec<InboundOutcome>> {
    let mut outcomes = Vec::with_capacity(event.records.len());
    for record in event.records {
        let key = format!("{}{}", bucket.prefix, record.ses.mail.message_id);
        let object = s3
            .get_object()
            .bucket(&bucket.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "GetObject s3://{}/{key}: {}",
                    bucket.bucket,
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;
        if object.content_length().is_some_and(|n| n > MAX_RAW_MESSAGE as i64) {
            tracing::warn!(
                key,
                size = object.content_length(),
                "inbound message too large: not read"
            );
            outcomes.push(InboundOutcome::Rejected(crate::service::Rejection::Unreadable));
            continue;
        }
        let raw = object
            .body
            .collect()
            .await
            .context("reading the inbound message")?
            .into_bytes();
        let receipt = record.ses.receipt;
        let status = |v: Option<SesVerdict>| v.map(|v| v.status.trim().to_ascii_lowercase());
        let source = InboundSource {
            stored_at: Some(format!("s3://{}/{key}", bucket.bucket)),
            auth: Some(SenderAuth {
                spf: status(receipt.spf_verdict),
                dkim: status(receipt.dkim_verdict),
                dmarc: status(receipt.dmarc_verdict),
            }),
            verdicts: SesVerdicts {
                spam: receipt.spam_verdict.map(|v| v.status),
                virus: receipt.virus_verdict.map(|v| v.status),
            },
            recipients: receipt.recipients,
        };
        outcomes.push(service.receive_inbound(&raw, source).await?);
    }
    Ok(outcomes)
}
