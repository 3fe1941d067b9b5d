//! How webhooks map onto the table.
//!
//! | item | pk | sk | holds |
//! |---|---|---|---|
//! | endpoint | `ORG#<org>` | `WEBHOOK#<id>` | url, events, `secret`, `createdAt`, `disabledAt`/`disabledReason`, `failingSince`; `g_due` = `WHNOTICE` while its admins are not told it was disabled |
//! | delivery | `WEBHOOK#<id>` | `DELIVERY#<message id>` | type, ticket, `body`, `createdAt`, `state`, `nextAttemptAt`, `retries`, `attempts` (JSON), `lease`; `g_due` = `WEBHOOK` while pending; `expiresAt` (TTL, 30 days) |
//! | outbox message | on the event item (`TICKET#<ticket>` / `EVENT#<event>`) | | `webhook`: the message (JSON), committed with the ticket write; the table stream carries it to the fan-out; `g_due` = `WHOUTBOX#<0-7>` until it is fanned out |
//!
//! Pending deliveries, pending notices and messages not yet fanned out share
//! the sparse `by_due` index with due auto-closes, each under its own
//! partition value.

use super::{DUE_PK, DUE_SK, Item, Malformed, get_n, get_s, key, n, opt_n, opt_s, org_partition, parse, s};
use crate::domain::WebhookId;
use crate::domain::webhooks::{
    Attempt, DELIVERY_RETENTION, DeliveryState, DisabledReason, StoredWebhook, Webhook, WebhookDelivery,
    WebhookEventType, WebhookMessage, WebhookUrl,
};
use crate::domain::{OrgId, Timestamp};

pub const WEBHOOK_PREFIX: &str = "WEBHOOK#";
pub const DELIVERY_PREFIX: &str = "DELIVERY#";
/// `by_due`'s partition of pending deliveries, and of pending notices.
pub const DUE_DELIVERIES: &str = "WEBHOOK";
pub const DUE_NOTICES: &str = "WHNOTICE";
/// `by_due`'s partitions of outbox messages not fanned out yet
/// (`WHOUTBOX#0` to `#7`, by message id), each by the time of its event: the
/// stream's fan-out removes the mark, and the sweep fans out those it missed
/// (a stream outage past its 24 h retention). Every ticket write marks one
/// or more messages and the fan-out unmarks them, so one partition key,
/// which takes 1,000 writes/s, would cap ticket writes near 300/s; eight
/// spread them, for eight small Queries per sweep.
pub const DUE_OUTBOX: &str = "WHOUTBOX";
pub const DUE_OUTBOX_SHARDS: u32 = 8;

/// The `by_due` partition of shard `n` of the outbox marks.
pub fn outbox_partition(n: u32) -> String {
    format!("{DUE_OUTBOX}#{n}")
}

/// A message's shard: a hash of its id.
fn outbox_shard(message_id: &str) -> u32 {
    message_id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % DUE_OUTBOX_SHARDS
}
/// On an event item: its webhook message.
pub const MESSAGE_ATTR: &str = "webhook";

pub fn webhook_key(org: OrgId, id: WebhookId) -> Item {
    key(org_partition(org), &format!("{WEBHOOK_PREFIX}{id}"))
}

pub fn delivery_partition(hook: WebhookId) -> String {
    format!("{WEBHOOK_PREFIX}{hook}")
}

pub fn delivery_key(hook: WebhookId, id: &str) -> Item {
    key(delivery_partition(hook), &format!("{DELIVERY_PREFIX}{id}"))
}

/// `by_due`'s sort key of a pending delivery: due time, endpoint, message.
pub fn due_sort_key(at: Timestamp, hook: WebhookId, id: &str) -> String {
    super::due_sort_key(at, format_args!("{hook}#{id}"))
}

pub fn webhook_item(h: &StoredWebhook) -> Item {
    let w = &h.webhook;
    let mut item = webhook_key(w.org_id, w.id);
    item.insert("webhookId".into(), s(w.id.to_string()));
    item.insert("orgId".into(), s(w.org_id.to_string()));
    item.insert("url".into(), s(w.url.as_str()));
    item.insert(
        "events".into(),
        s(w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(",")),
    );
    item.insert("secret".into(), s(&h.secret));
    item.insert("createdAt".into(), n(w.created_at.millis()));
    item
}

pub fn webhook_from(item: &Item) -> Result<StoredWebhook, Malformed> {
    let disabled_at = opt_n(item, "disabledAt").map(Timestamp::from_millis);
    Ok(StoredWebhook {
        webhook: Webhook {
            id: parse(item, "webhookId")?,
            org_id: parse(item, "orgId")?,
            url: WebhookUrl::from_trusted(get_s(item, "url")?.to_owned()),
            events: get_s(item, "events")?
                .split(',')
                .filter_map(|e| WebhookEventType::parse("events", e).ok())
                .collect(),
            created_at: Timestamp::from_millis(get_n(item, "createdAt")?),
            enabled: disabled_at.is_none(),
            disabled_at,
            disabled_reason: opt_s(item, "disabledReason").and_then(DisabledReason::parse),
            failing_since: opt_n(item, "failingSince").map(Timestamp::from_millis),
        },
        secret: get_s(item, "secret")?.to_owned(),
    })
}

/// The delivery's item; pending ones carry their `by_due` keys. TTL
/// (`expiresAt`, seconds) removes it [`DELIVERY_RETENTION`] after it was made.
pub fn delivery_item(d: &WebhookDelivery) -> Result<Item, Malformed> {
    let mut item = delivery_key(d.webhook_id, &d.id);
    item.insert("deliveryId".into(), s(&d.id));
    item.insert("webhookId".into(), s(d.webhook_id.to_string()));
    item.insert("orgId".into(), s(d.org_id.to_string()));
    item.insert("ticketId".into(), s(d.ticket_id.to_string()));
    item.insert("type".into(), s(d.kind.as_str()));
    item.insert("body".into(), s(&d.body));
    item.insert("createdAt".into(), n(d.created_at.millis()));
    item.insert(
        "expiresAt".into(),
        n(d.created_at.plus(DELIVERY_RETENTION).millis() / 1000),
    );
    item.extend(delivery_state(d)?);
    Ok(item)
}

/// The fields an attempt changes: state, retries, attempts, and the due keys.
pub fn delivery_state(d: &WebhookDelivery) -> Result<Item, Malformed> {
    let mut item = Item::new();
    item.insert("state".into(), s(d.state.as_str()));
    item.insert("retries".into(), n(i64::from(d.retries)));
    let attempts = serde_json::to_string(&d.attempts).map_err(|e| Malformed(format!("attempts: {e}")))?;
    item.insert("attempts".into(), s(attempts));
    if let (DeliveryState::Pending, Some(at)) = (d.state, d.next_attempt_at) {
        item.insert("nextAttemptAt".into(), n(at.millis()));
        item.insert(DUE_PK.into(), s(DUE_DELIVERIES));
        item.insert(DUE_SK.into(), s(due_sort_key(at, d.webhook_id, &d.id)));
    }
    Ok(item)
}

pub fn delivery_from(item: &Item) -> Result<WebhookDelivery, Malformed> {
    let state = get_s(item, "state")?;
    Ok(WebhookDelivery {
        id: get_s(item, "deliveryId")?.to_owned(),
        webhook_id: parse(item, "webhookId")?,
        org_id: parse(item, "orgId")?,
        ticket_id: parse(item, "ticketId")?,
        kind: WebhookEventType::parse("type", get_s(item, "type")?).map_err(|e| Malformed(e.to_string()))?,
        created_at: Timestamp::from_millis(get_n(item, "createdAt")?),
        state: DeliveryState::parse(state).ok_or_else(|| Malformed(format!("bad state {state}")))?,
        next_attempt_at: opt_n(item, "nextAttemptAt").map(Timestamp::from_millis),
        retries: u32::try_from(opt_n(item, "retries").unwrap_or(0)).unwrap_or(0),
        attempts: serde_json::from_str::<Vec<Attempt>>(get_s(item, "attempts")?)
            .map_err(|e| Malformed(format!("attempts: {e}")))?,
        body: get_s(item, "body")?.to_owned(),
    })
}

/// The endpoint and message a `by_due` delivery key names.
pub fn due_delivery_from(item: &Item) -> Result<(WebhookId, String), Malformed> {
    let hook = get_s(item, super::PK)?
        .strip_prefix(WEBHOOK_PREFIX)
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| Malformed("bad delivery pk".into()))?;
    let id = get_s(item, super::SK)?
        .strip_prefix(DELIVERY_PREFIX)
        .ok_or_else(|| Malformed("bad delivery sk".into()))?;
    Ok((hook, id.to_owned()))
}

pub fn message_attr(m: &WebhookMessage) -> Result<aws_sdk_dynamodb::types::AttributeValue, Malformed> {
    serde_json::to_string(m)
        .map(s)
        .map_err(|e| Malformed(format!("webhook message: {e}")))
}

/// The attributes an event item carries with its message: the message and
/// its outbox mark (`by_due` keys, by the event's time).
pub fn outbox_attrs(m: &WebhookMessage, at: Timestamp) -> Result<Item, Malformed> {
    let mut item = Item::new();
    item.insert(MESSAGE_ATTR.into(), message_attr(m)?);
    item.insert(DUE_PK.into(), s(outbox_partition(outbox_shard(&m.id))));
    item.insert(DUE_SK.into(), s(super::due_sort_key(at, &m.id)));
    Ok(item)
}

/// The key of the event item that carries message `m`.
pub fn outbox_key(m: &WebhookMessage) -> Result<Item, Malformed> {
    let event =
        m.id.strip_prefix("msg_")
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| Malformed(format!("bad message id {}", m.id)))?;
    Ok(super::event_key(m.ticket_id, event))
}

/// The webhook message an event item carries, if any.
pub fn message_from(item: &Item) -> Option<WebhookMessage> {
    serde_json::from_str(opt_s(item, MESSAGE_ATTR)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EventId;
    use crate::domain::webhooks::message_id;

    /// Marks spread over every shard (the sweep reads them all, and the
    /// fan-out clears a mark by the item's key, whatever its shard).
    #[test]
    fn outbox_marks_spread_over_every_shard() {
        let mut counts = [0usize; DUE_OUTBOX_SHARDS as usize];
        for _ in 0..800 {
            counts[outbox_shard(&message_id(EventId::new())) as usize] += 1;
        }
        assert!(counts.iter().all(|&n| n > 50), "{counts:?}");
    }
}
