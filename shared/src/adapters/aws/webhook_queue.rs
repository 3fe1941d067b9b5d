//! The webhook-sender function's queue: one message per delivery attempt to
//! make. The reconcile function queues each new delivery at once; the sender
//! queues a failed delivery's retry with the wait as its delay when SQS can
//! hold it that long (15 minutes), so the first retries come on time; longer
//! waits, and anything a failed send left behind, the sweeper finds due in
//! the table. A message is only a nudge: the delivery's claim in the table
//! makes a duplicate attempt-free.

use super::LazyClient;
use crate::domain::WebhookId;
use crate::domain::webhooks::{DeliveryState, WebhookDelivery};
use crate::service::Service;
use anyhow::Context;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest delay SQS gives a message.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// One queued attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Job {
    pub webhook_id: WebhookId,
    pub delivery_id: String,
}

#[derive(Clone)]
pub struct WebhookQueue {
    sqs: LazyClient<aws_sdk_sqs::Client>,
    url: String,
}

impl WebhookQueue {
    pub fn new(sqs: LazyClient<aws_sdk_sqs::Client>, url: String) -> Self {
        Self { sqs, url }
    }

    /// Queues an attempt at each of `deliveries`, due now.
    pub async fn send_now(&self, deliveries: &[WebhookDelivery]) -> anyhow::Result<()> {
        let jobs: Vec<(Job, Duration)> = deliveries.iter().map(|d| (job(d), Duration::ZERO)).collect();
        self.send(&jobs).await
    }

    /// Batches of 10 (SQS's limit); an entry SQS refused fails the call.
    async fn send(&self, jobs: &[(Job, Duration)]) -> anyhow::Result<()> {
        for batch in jobs.chunks(10) {
            let entries = batch
                .iter()
                .enumerate()
                .map(|(i, (job, delay))| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(serde_json::to_string(job).expect("a job serializes"))
                        .delay_seconds(i32::try_from(delay.as_secs().min(MAX_DELAY.as_secs())).unwrap_or(900))
                        .build()
                        .context("batch entry")
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("SendMessageBatch: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
            if !out.failed().is_empty() {
                anyhow::bail!("SQS refused {} of {} queued attempts", out.failed().len(), batch.len());
            }
        }
        Ok(())
    }

    /// The sender's work for one message: one attempt, then the retry queued
    /// if it is due within [`MAX_DELAY`]. An error leaves the message to SQS
    /// (redelivered after its visibility timeout, then dead-lettered); the
    /// delivery itself stays due in the table for the sweep.
    pub async fn handle(&self, service: &Service, body: &str) -> anyhow::Result<()> {
        let job: Job = serde_json::from_str(body).context("not a webhook job")?;
        let Some(after) = service.deliver_webhook(job.webhook_id, &job.delivery_id).await? else {
            return Ok(());
        };
        if let (DeliveryState::Pending, Some(next)) = (after.state, after.next_attempt_at) {
            let wait = crate::domain::Timestamp::now().until(next);
            if wait <= MAX_DELAY {
                // Rounded up: arriving a moment early would find it not yet due.
                let wait = Duration::from_secs(wait.as_secs() + 1);
                self.send(&[(job, wait)]).await?;
            }
        }
        Ok(())
    }
}

fn job(d: &WebhookDelivery) -> Job {
    Job {
        webhook_id: d.webhook_id,
        delivery_id: d.id.clone(),
    }
}
