//! What failed after Lambda's and Scheduler's own retries, taken back up by
//! the sweeper: close invocations (close-ticket's async on-failure
//! destination, or Scheduler's dead-letter queue), SES receipts inbound-email
//! could not apply (its async on-failure destination: the raw mail is read
//! again from S3) and stream batches the reconciler gave up on (its
//! on-failure destination holds only the batch's position, so the records
//! are read again from the stream).

use super::AwsAdapters;
use super::inbound_mail::{InboundBucket, SesReceiptEvent};
use super::scheduler::CloseEvent;
use super::stream::{self, Record};
use crate::service::Service;
use anyhow::Context;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use serde::Deserialize;
use tokio::time::Instant;

/// One failure message, by what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Run the close job again.
    Close(CloseEvent),
    /// Apply the mail of an SES receipt event again (inbound-email's
    /// original event, as Lambda's on-failure record carries it).
    Inbound(serde_json::Value),
    /// Re-apply the stream records from `start` to `end` of `shard`.
    StreamBatch {
        stream_arn: String,
        shard_id: String,
        start: String,
        end: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchInfo {
    stream_arn: String,
    shard_id: String,
    start_sequence_number: String,
    end_sequence_number: String,
}

#[derive(Deserialize)]
struct Envelope {
    /// Lambda's async on-failure record: the original event.
    #[serde(rename = "requestPayload")]
    request_payload: Option<serde_json::Value>,
    /// Lambda's stream on-failure record: where the batch was.
    #[serde(rename = "DDBStreamBatchInfo")]
    batch: Option<BatchInfo>,
}

impl Failure {
    /// Reads a queue message body: an on-failure record, or (Scheduler's
    /// dead-letter queue) the schedule's input itself.
    pub fn parse(body: &str) -> Option<Self> {
        if let Ok(event) = serde_json::from_str::<CloseEvent>(body) {
            return Some(Failure::Close(event));
        }
        let envelope: Envelope = serde_json::from_str(body).ok()?;
        if let Some(b) = envelope.batch {
            return Some(Failure::StreamBatch {
                stream_arn: b.stream_arn,
                shard_id: b.shard_id,
                start: b.start_sequence_number,
                end: b.end_sequence_number,
            });
        }
        let payload = envelope.request_payload?;
        if let Ok(event) = serde_json::from_value::<CloseEvent>(payload.clone()) {
            return Some(Failure::Close(event));
        }
        let receipt = serde_json::from_value::<SesReceiptEvent>(payload.clone()).ok()?;
        (!receipt.records.is_empty()).then_some(Failure::Inbound(payload))
    }

    /// The on-failure record Lambda writes when an async invocation (of the
    /// close function, or of inbound-email) kept failing: the test harness
    /// plays Lambda with it.
    pub fn async_invoke_record(event: &impl serde::Serialize, error: &str) -> String {
        serde_json::json!({
            "version": "1.0",
            "requestContext": { "condition": "RetriesExhausted", "approximateInvokeCount": 3 },
            "requestPayload": event,
            "responseContext": { "statusCode": 200, "functionError": "Unhandled" },
            "responsePayload": { "errorMessage": error },
        })
        .to_string()
    }
}

/// Sequence numbers are decimal strings of varying length: compare as numbers.
fn seq_le(a: &str, b: &str) -> bool {
    (a.len(), a) <= (b.len(), b)
}

/// What a retry needs besides the service and the clients.
#[derive(Debug, Clone, Copy, Default)]
pub struct Redrive<'a> {
    /// Where SES stored inbound mail; `None` where inbound email is off (an
    /// inbound failure is then kept, for an operator: its alarm fires).
    pub inbound: Option<&'a InboundBucket>,
}

/// Takes one failure up again. Ok means it is done with (or can never be
/// done: logged), so its message may go.
pub async fn retry(
    service: &Service,
    aws: &AwsAdapters,
    redrive: Redrive<'_>,
    failure: &Failure,
    deadline: Instant,
) -> anyhow::Result<()> {
    match failure {
        Failure::Close(event) => {
            let outcome = super::handle_close_event(service, *event).await?;
            tracing::info!(ticket = %event.ticket_id, %outcome, "failed close retried");
            Ok(())
        }
        Failure::Inbound(payload) => {
            let bucket = redrive.inbound.context(
                "an inbound mail to re-apply, but no inbound bucket is configured (TICKETING_INBOUND_BUCKET)",
            )?;
            let event: SesReceiptEvent = serde_json::from_value(payload.clone()).context("the SES receipt event")?;
            // Each message is keyed by its Message-ID: one applied before the
            // failure is a duplicate now, not a second reply.
            match super::inbound_mail::handle_ses_event(service, aws.s3(), bucket, event).await {
                Ok(outcomes) => {
                    let names: Vec<String> = outcomes.iter().map(|o| o.name()).collect();
                    tracing::info!(outcomes = ?names, "failed inbound mail re-applied");
                    Ok(())
                }
                Err(e) if format!("{e:#}").contains("NoSuchKey") => {
                    // Past the bucket's lifecycle: nothing left to apply.
                    tracing::error!(error = %format!("{e:#}"), "failed inbound mail no longer stored; dropped");
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        Failure::StreamBatch {
            stream_arn,
            shard_id,
            start,
            end,
        } => {
            let records = match read_range(aws.streams(), stream_arn, shard_id, start, end).await {
                Ok(r) => r,
                Err(e) if is_trimmed(&e) => {
                    // Past the stream's 24 h retention: the sweeper still closes
                    // due tickets and retries pending mail from the table.
                    tracing::error!(shard = %shard_id, %start, %end, "failed stream batch no longer readable; the sweeps cover it");
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            match stream::apply_records(service, stream::Effects::new(aws, None), &records, Some(deadline)).await {
                None => Ok(()),
                Some(i) => anyhow::bail!("stream record {} still fails", records[i].sequence_number),
            }
        }
    }
}

fn is_trimmed(e: &anyhow::Error) -> bool {
    format!("{e:#}").contains("TrimmedDataAccess")
}

async fn read_range(
    streams: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    shard_id: &str,
    start: &str,
    end: &str,
) -> anyhow::Result<Vec<Record>> {
    let mut iterator = stream::shard_iterator(
        streams,
        stream_arn,
        shard_id,
        ShardIteratorType::AtSequenceNumber,
        Some(start),
    )
    .await?;
    let mut out = Vec::new();
    // A batch is at most 10,000 records; 100 pages of up to 1,000 cover it.
    for _ in 0..100 {
        let Some(it) = iterator.take() else { break };
        let page = streams
            .get_records()
            .shard_iterator(it)
            .send()
            .await
            .map_err(|e| stream::streams_error("GetRecords", e))?;
        if page.records().is_empty() {
            break;
        }
        for r in page.records() {
            let record = Record::from(r);
            if !seq_le(&record.sequence_number, end) {
                return Ok(out);
            }
            out.push(record);
        }
        iterator = page.next_shard_iterator;
    }
    Ok(out)
}

/// What one drain of a queue did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    pub retried: usize,
    /// Still failing: left in the queue, seen again after its visibility timeout.
    pub kept: usize,
}

/// Receives messages from the queue `url` until it is empty or `deadline`
/// passes, and retries each; a message goes only once its failure is taken
/// care of. Nothing new starts after the deadline.
pub async fn drain(
    service: &Service,
    aws: &AwsAdapters,
    redrive: Redrive<'_>,
    url: &str,
    deadline: Instant,
) -> anyhow::Result<Drained> {
    let mut drained = Drained::default();
    while Instant::now() < deadline {
        let out = aws
            .sqs()
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            // Long enough for a retry to finish; a failed one comes back after it.
            .visibility_timeout(60)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("ReceiveMessage: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
        let messages = out.messages();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let body = m.body().unwrap_or_default();
            let done = match Failure::parse(body) {
                // Past the deadline the message is left for the next sweep.
                Some(_) if Instant::now() >= deadline => false,
                Some(failure) => match retry(service, aws, redrive, &failure, deadline).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(failure = ?failure, error = %format!("{e:#}"), "failure retry failed; kept");
                        false
                    }
                },
                None => {
                    // Not ours to understand: leave it for an operator (the
                    // queue's alarm is already firing).
                    tracing::error!(message_id = ?m.message_id(), "unrecognised failure message kept");
                    false
                }
            };
            if done {
                if let Some(handle) = m.receipt_handle() {
                    aws.sqs()
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .context("DeleteMessage")?;
                }
                drained.retried += 1;
            } else {
                drained.kept += 1;
            }
        }
    }
    Ok(drained)
}

/// The queue name in an SQS ARN (`arn:aws:sqs:<region>:<account>:<name>`).
pub fn queue_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// The queue URL for an SQS ARN, in this account.
pub async fn queue_url(sqs: &aws_sdk_sqs::Client, arn: &str) -> anyhow::Result<String> {
    let name = queue_name(arn);
    sqs.get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("GetQueueUrl {name}: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?
        .queue_url
        .context("GetQueueUrl returned no URL")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{TicketId, Timestamp};

    #[test]
    fn reads_each_kind_of_failure_message() {
        let event = CloseEvent {
            ticket_id: TicketId::new(),
            responded_at: Timestamp::from_millis(7),
        };
        let dlq = serde_json::to_string(&event).unwrap();
        assert_eq!(Failure::parse(&dlq), Some(Failure::Close(event)));
        let on_failure = Failure::async_invoke_record(&event, "store unavailable");
        assert_eq!(Failure::parse(&on_failure), Some(Failure::Close(event)));
        let batch = serde_json::json!({
            "requestContext": {"condition": "RetryAttemptsExhausted"},
            "DDBStreamBatchInfo": {
                "shardId": "shardId-1", "startSequenceNumber": "100", "endSequenceNumber": "1000",
                "batchSize": 3, "streamArn": "arn:aws:dynamodb:r:1:table/t/stream/x"
            }
        });
        assert_eq!(
            Failure::parse(&batch.to_string()),
            Some(Failure::StreamBatch {
                stream_arn: "arn:aws:dynamodb:r:1:table/t/stream/x".into(),
                shard_id: "shardId-1".into(),
                start: "100".into(),
                end: "1000".into(),
            })
        );
        let receipt = serde_json::json!({"Records": [{"ses": {
            "mail": {"messageId": "m1"},
            "receipt": {"recipients": ["reply+x@in.example"]}
        }}]});
        assert_eq!(
            Failure::parse(&Failure::async_invoke_record(&receipt, "store unavailable")),
            Some(Failure::Inbound(receipt))
        );
        assert_eq!(
            Failure::parse(&Failure::async_invoke_record(&serde_json::json!({"Records": []}), "x")),
            None,
            "a receipt with no mail is not ours"
        );
        assert_eq!(Failure::parse("{\"something\": \"else\"}"), None);
        assert_eq!(Failure::parse("not json"), None);
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(seq_le("99", "100"));
        assert!(seq_le("100", "100"));
        assert!(!seq_le("101", "100"));
    }
}
