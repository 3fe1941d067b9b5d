//! SES's reports on sent mail (delivery, bounce, complaint), as the
//! configuration set's event destination publishes them to SNS and SNS puts
//! them into SQS (raw, or wrapped in the SNS envelope): parsed, matched to the
//! response by the message's tags, and recorded. The `mail-events` Lambda gets
//! the messages from its SQS event source; `ticketd --backend aws` polls.

use super::ses::{TAG_RESPONSE, TAG_TICKET};
use crate::domain::{MailEvent, MailEventKind, ResponseId, TicketId, Timestamp};
use crate::service::Service;
use serde_json::Value;

/// What one queue message holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailNotice {
    /// A report on one of our mails.
    Event(MailEvent),
    /// Nothing to record (another event type, a subscription confirmation,
    /// a mail without our tags); deleting it loses nothing.
    Ignored(String),
}

#[derive(Debug, thiserror::Error)]
#[error("not an SES notification: {0}")]
pub struct MalformedNotice(String);

/// Reads a queue message's body: an SES notification, raw or in an SNS envelope.
pub fn parse_mail_event(body: &str) -> Result<MailNotice, MalformedNotice> {
    let outer: Value = serde_json::from_str(body).map_err(|e| MalformedNotice(format!("not JSON ({e})")))?;
    let note = match outer["Type"].as_str() {
        Some("Notification") => {
            let inner = outer["Message"]
                .as_str()
                .ok_or_else(|| MalformedNotice("SNS envelope without a Message".into()))?;
            serde_json::from_str(inner).map_err(|e| MalformedNotice(format!("SNS Message is not JSON ({e})")))?
        }
        Some(other) => return Ok(MailNotice::Ignored(format!("SNS {}", plain(other)))),
        None => outer,
    };
    // Event publishing says eventType; identity notifications say notificationType.
    let kind = note["eventType"]
        .as_str()
        .or_else(|| note["notificationType"].as_str())
        .ok_or_else(|| MalformedNotice("no eventType".into()))?;
    let (kind, detail) = match kind {
        "Delivery" => (MailEventKind::Delivered, &note["delivery"]),
        "Bounce" => {
            let b = &note["bounce"];
            let reason = format!(
                "{}: {}",
                plain(b["bounceType"].as_str().unwrap_or("Undetermined")),
                plain(b["bounceSubType"].as_str().unwrap_or("Undetermined"))
            );
            (MailEventKind::Bounced { reason }, b)
        }
        "Complaint" => (MailEventKind::Complained, &note["complaint"]),
        other => return Ok(MailNotice::Ignored(format!("event {}", plain(other)))),
    };
    let mail = &note["mail"];
    let message_id = mail["messageId"]
        .as_str()
        .ok_or_else(|| MalformedNotice("no mail.messageId".into()))?;
    let tag = |name: &str| mail["tags"][name][0].as_str().map(str::to_owned);
    let ids = tag(TAG_TICKET)
        .and_then(|t| t.parse::<TicketId>().ok())
        .zip(tag(TAG_RESPONSE).and_then(|r| r.parse::<ResponseId>().ok()));
    let Some((ticket_id, response_id)) = ids else {
        return Ok(MailNotice::Ignored("no ticket and response tags".into()));
    };
    let at = detail["timestamp"]
        .as_str()
        .or_else(|| mail["timestamp"].as_str())
        .and_then(Timestamp::parse_rfc3339)
        .unwrap_or_else(Timestamp::now);
    Ok(MailNotice::Event(MailEvent {
        ticket_id,
        response_id,
        message_id: plain(message_id),
        kind,
        at,
    }))
}

/// A provider string as we keep and show it: letters, digits, `-`, `_`, `.`,
/// `@`, at most 100 of them. SES's values are all of this form; anything
/// else (a forged message) loses the rest.
fn plain(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.@".contains(*c))
        .take(100)
        .collect()
}

/// Records what one queue message reports. `Ok(true)` if it was an event
/// for one of our mails (recorded, or already recorded), `Ok(false)` if
/// there was nothing to record; an error leaves the message in the queue
/// for a retry (and, after the redrive count, the dead-letter queue).
pub async fn handle_mail_message(service: &Service, body: &str) -> anyhow::Result<bool> {
    match parse_mail_event(body)? {
        MailNotice::Event(event) => {
            service.apply_mail_event(event).await?;
            Ok(true)
        }
        MailNotice::Ignored(why) => {
            tracing::info!(why, "mail notice ignored");
            Ok(false)
        }
    }
}

/// Receives and records what is in the mail-events queue now (a few batches
/// at most, so a flood cannot starve the caller's loop); returns how many
/// events were recorded. Messages that fail stay for their redrive.
pub async fn poll_mail_events(service: &Service, sqs: &aws_sdk_sqs::Client, queue_url: &str) -> anyhow::Result<usize> {
    const BATCHES: usize = 10;
    let mut recorded = 0;
    for _ in 0..BATCHES {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("ReceiveMessage: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            match handle_mail_message(service, m.body().unwrap_or_default()).await {
                Ok(event) => {
                    recorded += usize::from(event);
                    if let Some(handle) = m.receipt_handle() {
                        sqs.delete_message()
                            .queue_url(queue_url)
                            .receipt_handle(handle)
                            .send()
                            .await
                            .map_err(|e| {
                                anyhow::anyhow!("DeleteMessage: {}", aws_sdk_sqs::error::DisplayErrorContext(&e))
                            })?;
                    }
                }
                Err(e) => {
                    tracing::warn!(message = m.message_id().unwrap_or_default(), error = %e, "mail event not recorded; left for retry")
                }
            }
        }
    }
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounce(ticket: &str, response: &str) -> String {
        serde_json::json!({
            "eventType": "Bounce",
            "bounce": {"bounceType": "Permanent", "bounceSubType": "NoEmail", "timestamp": "2026-01-02T03:04:05.678Z"},
            "mail": {"messageId": "0100-abc", "timestamp": "2026-01-02T03:04:00.000Z",
                     "tags": {"ticket": [ticket], "response": [response]}}
        })
        .to_string()
    }

    #[test]
    fn a_raw_and_an_enveloped_bounce_read_alike() {
        let (t, r) = (TicketId::new(), ResponseId::new());
        let raw = bounce(&t.to_string(), &r.to_string());
        let enveloped = serde_json::json!({"Type": "Notification", "Message": raw}).to_string();
        for body in [&raw, &enveloped] {
            let MailNotice::Event(e) = parse_mail_event(body).unwrap() else {
                panic!("an event")
            };
            assert_eq!((e.ticket_id, e.response_id), (t, r));
            assert_eq!(e.message_id, "0100-abc");
            assert_eq!(
                e.kind,
                MailEventKind::Bounced {
                    reason: "Permanent: NoEmail".into()
                }
            );
            assert_eq!(e.at, Timestamp::parse_rfc3339("2026-01-02T03:04:05.678Z").unwrap());
        }
    }

    #[test]
    fn other_events_untagged_mail_and_garbage_are_told_apart() {
        let untagged = bounce("x", "y");
        assert!(matches!(parse_mail_event(&untagged), Ok(MailNotice::Ignored(_))));
        let open = serde_json::json!({"eventType": "Open", "mail": {"messageId": "m"}}).to_string();
        assert!(matches!(parse_mail_event(&open), Ok(MailNotice::Ignored(_))));
        assert!(parse_mail_event("not json").is_err());
        assert!(parse_mail_event("{}").is_err());
    }

    #[test]
    fn provider_strings_are_kept_plain() {
        assert_eq!(plain("Permanent\r\nX-Evil: 1<script>"), "PermanentX-Evil1script");
        assert_eq!(plain(&"a".repeat(500)).len(), 100);
    }
}
