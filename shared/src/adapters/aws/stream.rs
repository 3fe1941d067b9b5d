//! The table's change stream as the reconciler reads it: each record becomes
//! the one [`Change`] it means for side effects, and [`apply`] carries it out.
//! The same code serves the `reconcile` Lambda (stream event source) and
//! `ticketd --backend aws` (which polls the stream itself, see `reconciler`).

use super::dynamo_webhooks::DynamoWebhooks;
use super::items::{self, Item};
use super::webhook_queue::WebhookQueue;
use crate::domain::webhooks::WebhookMessage;
use crate::domain::{CloseJob, ResponseId, TicketId, rules};
use crate::error::Result;
use crate::service::Service;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Deserialize;
use std::collections::HashMap;
use tokio::time::Instant;

/// What an item change asks of the side effects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The ticket's desired close job changed (it entered, left or re-entered
    /// RESPONDED): make the schedule match the ticket.
    AutoClose(TicketId),
    /// A response was stored: send its email.
    Mail(TicketId, ResponseId),
    /// A ticket write committed a webhook message (on its history event):
    /// fan it out to the subscribed endpoints.
    Webhook(Box<WebhookMessage>),
}

/// One stream record, in the SDK's attribute types whichever reader got it.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub event_name: String,
    pub sequence_number: String,
    pub keys: Item,
    pub old_image: Item,
    pub new_image: Item,
}

impl Record {
    /// The change this record means, if any. A ticket edit that leaves its
    /// close job as it was (title, assignee...) means none: no scheduler call.
    pub fn change(&self) -> Option<Change> {
        let pk = items::get_s(&self.keys, items::PK).ok()?;
        let sk = items::get_s(&self.keys, items::SK).ok()?;
        let ticket: TicketId = pk.strip_prefix("TICKET#")?.parse().ok()?;
        if sk == items::TICKET_SK {
            let job = |image: &Item| -> Option<CloseJob> {
                items::ticket_from(image)
                    .ok()
                    .as_ref()
                    .and_then(rules::desired_close_job)
            };
            // A malformed image reads as "no job", which at worst costs one
            // idempotent reconcile.
            return (job(&self.old_image) != job(&self.new_image)).then_some(Change::AutoClose(ticket));
        }
        // A history event needs nothing done unless it carries a webhook message.
        if sk.starts_with(items::EVENT_PREFIX) {
            return (self.event_name == "INSERT")
                .then(|| items::webhooks::message_from(&self.new_image))
                .flatten()
                .map(|m| Change::Webhook(Box::new(m)));
        }
        let response: ResponseId = sk.strip_prefix("RESPONSE#")?.parse().ok()?;
        (self.event_name == "INSERT").then_some(Change::Mail(ticket, response))
    }
}

/// Where a change's effects go besides the service: the table, whose outbox
/// mark a fan-out clears, and the webhook-sender function's queue (none in
/// ticketd and in retries of failed batches: the sweep sends what is due).
#[derive(Clone, Copy)]
pub struct Effects<'a> {
    pub webhooks: &'a DynamoWebhooks,
    pub queue: Option<&'a WebhookQueue>,
}

impl<'a> Effects<'a> {
    pub fn new(aws: &'a super::AwsAdapters, queue: Option<&'a WebhookQueue>) -> Self {
        Self {
            webhooks: &aws.webhooks,
            queue,
        }
    }
}

/// Carries out one change. Idempotent: each reads the stored state afresh,
/// and a fan-out creates no delivery twice. New deliveries go to the queue
/// when there is one; otherwise, or if the send fails, they wait in the
/// table, due, for the next sweep. Once they exist, the message's outbox
/// mark goes, so the sweep of messages the stream missed skips it.
pub async fn apply(service: &Service, effects: Effects<'_>, change: &Change) -> Result<()> {
    match change {
        Change::AutoClose(ticket) => service.reconcile_auto_close(*ticket).await,
        Change::Mail(ticket, response) => service.deliver_mail(*ticket, *response).await,
        Change::Webhook(message) => {
            let created = service.fan_out_webhook(message).await?;
            if let Some(queue) = effects.queue
                && let Err(e) = queue.send_now(&created).await
            {
                tracing::warn!(error = %format!("{e:#}"), "deliveries not queued; the sweep sends them");
            }
            Ok(effects.webhooks.fanned_out(message).await?)
        }
    }
}

/// Applies `records` in order; returns the index of the first record that
/// failed (Lambda retries a stream batch from that record on), or `None`.
/// With a `deadline`, a record not started by then counts as failed.
pub async fn apply_records(
    service: &Service,
    effects: Effects<'_>,
    records: &[Record],
    deadline: Option<Instant>,
) -> Option<usize> {
    for (i, record) in records.iter().enumerate() {
        let Some(change) = record.change() else { continue };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Some(i);
        }
        // Boxed: the change futures nest deep enough to overflow rustc's
        // layout depth in a binary that also holds the Lambda runtime.
        if let Err(e) = Box::pin(apply(service, effects, &change)).await {
            tracing::warn!(change = ?change, sequence = %record.sequence_number, error = %e, "stream change failed");
            return Some(i);
        }
    }
    None
}

// ---- the Lambda event (DynamoDB JSON) ----

/// The `reconcile` function's input: a batch of stream records.
#[derive(Debug, Deserialize)]
pub struct StreamEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<EventRecord>,
}

#[derive(Debug, Deserialize)]
pub struct EventRecord {
    #[serde(rename = "eventName", default)]
    pub event_name: String,
    pub dynamodb: EventChange,
}

#[derive(Debug, Deserialize)]
pub struct EventChange {
    #[serde(rename = "SequenceNumber", default)]
    pub sequence_number: String,
    #[serde(rename = "Keys", default)]
    pub keys: HashMap<String, serde_json::Value>,
    #[serde(rename = "OldImage", default)]
    pub old_image: HashMap<String, serde_json::Value>,
    #[serde(rename = "NewImage", default)]
    pub new_image: HashMap<String, serde_json::Value>,
}

impl From<&EventRecord> for Record {
    fn from(r: &EventRecord) -> Self {
        Record {
            event_name: r.event_name.clone(),
            sequence_number: r.dynamodb.sequence_number.clone(),
            keys: item_from_json(&r.dynamodb.keys),
            old_image: item_from_json(&r.dynamodb.old_image),
            new_image: item_from_json(&r.dynamodb.new_image),
        }
    }
}

/// DynamoDB JSON (`{"S": "..."}`, `{"N": "1"}`...) as SDK attributes. Binary
/// and set values are not in our items and are dropped.
fn item_from_json(map: &HashMap<String, serde_json::Value>) -> Item {
    map.iter()
        .filter_map(|(k, v)| Some((k.clone(), value_from_json(v)?)))
        .collect()
}

fn value_from_json(v: &serde_json::Value) -> Option<AttributeValue> {
    let (kind, inner) = v.as_object()?.iter().next()?;
    Some(match (kind.as_str(), inner) {
        ("S", serde_json::Value::String(s)) => AttributeValue::S(s.clone()),
        ("N", serde_json::Value::String(n)) => AttributeValue::N(n.clone()),
        ("BOOL", serde_json::Value::Bool(b)) => AttributeValue::Bool(*b),
        ("NULL", _) => AttributeValue::Null(true),
        ("M", serde_json::Value::Object(m)) => AttributeValue::M(
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), value_from_json(v)?)))
                .collect(),
        ),
        ("L", serde_json::Value::Array(l)) => AttributeValue::L(l.iter().filter_map(value_from_json).collect()),
        _ => return None,
    })
}

// ---- the Streams API (ticketd, and the sweeper replaying a failed batch) ----

/// A Streams API error, named by its operation, with the SDK's detail.
pub(super) fn streams_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    op: &str,
    e: aws_sdk_dynamodbstreams::error::SdkError<E, R>,
) -> anyhow::Error {
    anyhow::anyhow!("{op}: {}", aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e))
}

/// An iterator on `shard` of `kind`, at `sequence` for the kinds that take one.
pub(super) async fn shard_iterator(
    streams: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    shard: &str,
    kind: aws_sdk_dynamodbstreams::types::ShardIteratorType,
    sequence: Option<&str>,
) -> anyhow::Result<Option<String>> {
    Ok(streams
        .get_shard_iterator()
        .stream_arn(stream_arn)
        .shard_id(shard)
        .shard_iterator_type(kind)
        .set_sequence_number(sequence.map(str::to_owned))
        .send()
        .await
        .map_err(|e| streams_error("GetShardIterator", e))?
        .shard_iterator)
}

impl From<&aws_sdk_dynamodbstreams::types::Record> for Record {
    fn from(r: &aws_sdk_dynamodbstreams::types::Record) -> Self {
        let change = r.dynamodb();
        let image = |m: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
            m.map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), value_from_streams(v)?)))
                    .collect()
            })
            .unwrap_or_default()
        };
        Record {
            event_name: r.event_name().map(|e| e.as_str().to_owned()).unwrap_or_default(),
            sequence_number: change.and_then(|c| c.sequence_number()).unwrap_or_default().to_owned(),
            keys: image(change.and_then(|c| c.keys.as_ref())),
            old_image: image(change.and_then(|c| c.old_image.as_ref())),
            new_image: image(change.and_then(|c| c.new_image.as_ref())),
        }
    }
}

fn value_from_streams(v: &aws_sdk_dynamodbstreams::types::AttributeValue) -> Option<AttributeValue> {
    use aws_sdk_dynamodbstreams::types::AttributeValue as V;
    Some(match v {
        V::S(s) => AttributeValue::S(s.clone()),
        V::N(n) => AttributeValue::N(n.clone()),
        V::Bool(b) => AttributeValue::Bool(*b),
        V::Null(b) => AttributeValue::Null(*b),
        V::M(m) => AttributeValue::M(
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), value_from_streams(v)?)))
                .collect(),
        ),
        V::L(l) => AttributeValue::L(l.iter().filter_map(value_from_streams).collect()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Email, OrgId, Status, Ticket, Timestamp};

    fn ticket(status: Status, responded: Option<i64>) -> Ticket {
        Ticket {
            id: TicketId::new(),
            org_id: OrgId::new(),
            title: "t".into(),
            description: "d".into(),
            added_by: Email::parse("addedBy", "c@x.io").unwrap(),
            admin_id: None,
            status,
            created_at: Timestamp::from_millis(1),
            updated_at: Timestamp::from_millis(1),
            responded_at: responded.map(Timestamp::from_millis),
            closed_at: None,
            auto_close_at: responded.map(|r| Timestamp::from_millis(r + 1000)),
            version: 1,
            follow_up_of: None,
        }
    }

    fn record(name: &str, old: Option<&Ticket>, new: Option<&Ticket>) -> Record {
        let t = new.or(old).unwrap();
        Record {
            event_name: name.into(),
            sequence_number: "1".into(),
            keys: items::ticket_key(t.id),
            old_image: old.map(items::ticket_item).unwrap_or_default(),
            new_image: new.map(items::ticket_item).unwrap_or_default(),
        }
    }

    #[test]
    fn only_changes_to_the_close_job_need_the_scheduler() {
        let open = ticket(Status::Open, None);
        let responded = Ticket {
            status: Status::Responded,
            responded_at: Some(Timestamp::from_millis(5)),
            auto_close_at: Some(Timestamp::from_millis(1005)),
            ..open.clone()
        };
        let again = Ticket {
            responded_at: Some(Timestamp::from_millis(9)),
            auto_close_at: Some(Timestamp::from_millis(1009)),
            ..responded.clone()
        };
        let renamed = Ticket {
            title: "new".into(),
            ..responded.clone()
        };
        let id = open.id;
        assert_eq!(record("INSERT", None, Some(&open)).change(), None);
        assert_eq!(
            record("MODIFY", Some(&open), Some(&responded)).change(),
            Some(Change::AutoClose(id))
        );
        assert_eq!(
            record("MODIFY", Some(&responded), Some(&again)).change(),
            Some(Change::AutoClose(id))
        );
        assert_eq!(record("MODIFY", Some(&responded), Some(&renamed)).change(), None);
        assert_eq!(
            record("MODIFY", Some(&again), Some(&open)).change(),
            Some(Change::AutoClose(id))
        );
        assert_eq!(
            record("REMOVE", Some(&again), None).change(),
            Some(Change::AutoClose(id))
        );
    }

    #[test]
    fn a_new_response_means_its_mail() {
        let (t, r) = (TicketId::new(), ResponseId::new());
        let rec = Record {
            event_name: "INSERT".into(),
            keys: items::response_key(t, r),
            ..Default::default()
        };
        assert_eq!(rec.change(), Some(Change::Mail(t, r)));
        let modified = Record {
            event_name: "MODIFY".into(),
            ..rec
        };
        assert_eq!(modified.change(), None, "delivery updates send nothing");
    }

    #[test]
    fn a_history_event_item_means_nothing() {
        let t = TicketId::new();
        let event = crate::domain::Cause::new(crate::domain::Actor::System, Timestamp::from_millis(1))
            .event(t, crate::domain::Change::Created);
        let rec = Record {
            event_name: "INSERT".into(),
            keys: items::event_key(t, event.id),
            new_image: items::event_item(&event).unwrap(),
            ..Default::default()
        };
        assert_eq!(rec.change(), None, "events schedule and send nothing");
        let t = ticket(Status::Open, None);
        let events =
            crate::domain::Cause::new(crate::domain::Actor::System, Timestamp::from_millis(1)).events(None, &t);
        let (event_id, message) = crate::domain::webhooks::messages(&t, &events).remove(0);
        let event = events.iter().find(|e| e.id == event_id).unwrap();
        let mut image = items::event_item(event).unwrap();
        image.insert(
            items::webhooks::MESSAGE_ATTR.into(),
            items::webhooks::message_attr(&message).unwrap(),
        );
        let rec = Record {
            event_name: "INSERT".into(),
            keys: items::event_key(t.id, event.id),
            new_image: image,
            ..Default::default()
        };
        assert_eq!(
            rec.change(),
            Some(Change::Webhook(Box::new(message))),
            "a webhook message is fanned out"
        );
    }

    #[test]
    fn the_lambda_event_reads_as_the_streams_api_does() {
        let t = ticket(Status::Responded, Some(5));
        let json = serde_json::json!({"Records": [{
            "eventName": "MODIFY",
            "dynamodb": {
                "SequenceNumber": "42",
                "Keys": {"pk": {"S": format!("TICKET#{}", t.id)}, "sk": {"S": "TICKET"}},
                "NewImage": {
                    "ticketId": {"S": t.id.to_string()}, "orgId": {"S": t.org_id.to_string()},
                    "title": {"S": "t"}, "description": {"S": "d"}, "addedBy": {"S": "c@x.io"},
                    "status": {"S": "RESPONDED"}, "createdAt": {"N": "1"}, "updatedAt": {"N": "1"},
                    "respondedAt": {"N": "5"}, "autoCloseAt": {"N": "1005"}, "version": {"N": "1"},
                    "flags": {"M": {"a": {"BOOL": true}, "b": {"L": [{"NULL": true}]}}}
                }
            }
        }]});
        let event: StreamEvent = serde_json::from_value(json).unwrap();
        let record = Record::from(&event.records[0]);
        assert_eq!(record.sequence_number, "42");
        assert_eq!(items::ticket_from(&record.new_image).unwrap(), t);
        assert_eq!(record.change(), Some(Change::AutoClose(t.id)));
    }
}
