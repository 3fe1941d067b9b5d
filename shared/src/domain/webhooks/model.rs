//! Webhooks, the entities: an org's endpoints, the messages a ticket write
//! commits for them (the outbox), and each endpoint's delivery of a message
//! with its attempts and the retry rule.

use super::{RETRY_AFTER, WebhookEventType, is_public};
use crate::domain::events::{Change, TicketEvent};
use crate::domain::ids::{EventId, OrgId, TicketId, WebhookId};
use crate::domain::model::Ticket;
use crate::domain::time::Timestamp;
use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

/// An org may register this many endpoints: a list is one small read and a
/// fan-out one write per endpoint.
pub const MAX_WEBHOOKS: usize = 10;
/// The longest URL accepted.
pub const MAX_URL: usize = 2048;
/// Attempts kept on a delivery (the newest): redeliveries could grow it without end.
pub const MAX_ATTEMPTS_KEPT: usize = 30;
/// An endpoint failing this long without one success is disabled.
pub const FAILING_LIMIT: Duration = Duration::from_secs(24 * 3600);
/// How long a sender holds a claimed delivery: the request timeout and slack.
pub const DELIVERY_LEASE: Duration = Duration::from_secs(30);
/// How long a delivery (and its attempts) is kept after it was made: long
/// past its last retry (27 h), long enough to look back on. Then DynamoDB's
/// TTL, or ticketd's dispatcher, removes it.
pub const DELIVERY_RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// An endpoint's URL: absolute, `https` (or `http` where private addresses
/// are allowed, for local development), with a host, no credentials, no
/// fragment, and (when it names an address) a public address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(raw: &str, allow_private: bool) -> Result<Self, Error> {
        let bad = |m: &str| Error::invalid("url", m);
        if raw.len() > MAX_URL {
            return Err(bad("must be at most 2048 characters"));
        }
        let url = url::Url::parse(raw).map_err(|_| bad("must be an absolute https URL"))?;
        match url.scheme() {
            "https" => {}
            "http" if allow_private => {}
            _ => return Err(bad("must be an https URL")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not hold credentials (put them in your endpoint's own check)"));
        }
        if url.fragment().is_some() {
            return Err(bad("must not have a fragment"));
        }
        let Some(host) = url.host() else {
            return Err(bad("must name a host"));
        };
        let ip = match host {
            url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            url::Host::Domain(_) => None,
        };
        if let Some(ip) = ip
            && !allow_private
            && !is_public(ip)
        {
            return Err(bad(
                "must not point at a loopback, private, link-local or reserved address",
            ));
        }
        Ok(Self(url.to_string()))
    }

    /// A URL read back from storage (checked when it was stored).
    pub fn from_trusted(url: String) -> Self {
        Self(url)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host and port to resolve: what the delivery-time check resolves.
    pub fn host_port(&self) -> Option<(String, u16)> {
        let url = url::Url::parse(&self.0).ok()?;
        Some((url.host_str()?.to_owned(), url.port_or_known_default()?))
    }
}

/// Why an endpoint stopped receiving deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DisabledReason {
    /// It answered 410 Gone.
    Gone,
    /// It failed every attempt for [`FAILING_LIMIT`].
    Failing,
}

impl DisabledReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisabledReason::Gone => "gone",
            DisabledReason::Failing => "failing",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [DisabledReason::Gone, DisabledReason::Failing]
            .into_iter()
            .find(|r| r.as_str() == raw)
    }
}

/// An endpoint as the API shows it. Its signing secret is kept beside it,
/// never in it: only the sender reads the secret ([`StoredWebhook`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: WebhookId,
    #[serde(skip)]
    pub org_id: OrgId,
    pub url: WebhookUrl,
    pub events: Vec<WebhookEventType>,
    pub created_at: Timestamp,
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<DisabledReason>,
    /// Since when every attempt has failed (cleared by a success).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Timestamp>,
}

impl Webhook {
    pub fn wants(&self, kind: WebhookEventType) -> bool {
        self.enabled && self.events.contains(&kind)
    }
}

/// An endpoint with its signing secret (`whsec_...`), as storage holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredWebhook {
    pub webhook: Webhook,
    pub secret: String,
}

impl std::fmt::Debug for StoredWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredWebhook")
            .field("webhook", &self.webhook)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Serialize for WebhookEventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One message of the outbox: what a ticket write tells the org's endpoints.
/// Committed with the write (on the history event it comes from), then fanned
/// out to the endpoints subscribed to its type when they are read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    /// `msg_<event id>`: the `webhook-id` header, the same on every attempt.
    pub id: String,
    pub org_id: OrgId,
    pub ticket_id: TicketId,
    #[serde(with = "event_type_str")]
    pub kind: WebhookEventType,
    /// The JSON body, fixed at commit time so every attempt signs the same bytes.
    pub body: String,
}

mod event_type_str {
    use super::WebhookEventType;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &WebhookEventType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<WebhookEventType, D::Error> {
        let raw = String::deserialize(d)?;
        WebhookEventType::parse("type", &raw).map_err(serde::de::Error::custom)
    }
}

/// The message id of an event's webhook message.
pub fn message_id(event: EventId) -> String {
    format!("msg_{event}")
}

/// Whether `raw` is a message id we make (`msg_` and a canonical UUID).
pub fn is_message_id(raw: &str) -> bool {
    raw.strip_prefix("msg_").is_some_and(|id| id.parse::<EventId>().is_ok())
}

/// The webhook type an event is, if any: assignment to nobody, auto-close
/// bookkeeping, notes and delivery changes are not told.
pub fn event_type(change: &Change) -> Option<WebhookEventType> {
    Some(match change {
        Change::Created => WebhookEventType::TicketCreated,
        Change::Assigned { to: Some(_), .. } => WebhookEventType::TicketAssigned,
        Change::FieldsUpdated { .. } => WebhookEventType::TicketUpdated,
        Change::StatusChanged { .. } => WebhookEventType::TicketStatusChanged,
        Change::Responded { .. } => WebhookEventType::TicketResponded,
        Change::AutoCloseFired => WebhookEventType::TicketAutoClosed,
        Change::Replied { .. } => WebhookEventType::TicketReplied,
        _ => return None,
    })
}

/// The messages of a write that stored `after` with `events`, each keyed by
/// the event it rides on: `{"id", "type", "createdAt", "orgId", "data":
/// {"ticket": ...}}`, the ticket as the admin API shows it (its `version`
/// orders the messages), plus `messageId` for a response or reply.
pub fn messages(after: &Ticket, events: &[TicketEvent]) -> Vec<(EventId, WebhookMessage)> {
    events
        .iter()
        .filter_map(|e| {
            let kind = event_type(&e.change)?;
            let id = message_id(e.id);
            let mut data = serde_json::json!({ "ticket": after });
            if let Change::Responded { message_id } | Change::Replied { message_id, .. } = &e.change {
                data["messageId"] = serde_json::json!(message_id);
            }
            let body = serde_json::json!({
                "id": id,
                "type": kind.as_str(),
                "createdAt": e.at,
                "orgId": after.org_id,
                "data": data,
            });
            Some((
                e.id,
                WebhookMessage {
                    id,
                    org_id: after.org_id,
                    ticket_id: after.id,
                    kind,
                    body: body.to_string(),
                },
            ))
        })
        .collect()
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DeliveryState {
    /// Waiting for its next attempt (`nextAttemptAt`).
    Pending,
    /// An attempt got a 2xx.
    Succeeded,
    /// Every attempt failed, the endpoint answered 410, or it was disabled.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [DeliveryState::Pending, DeliveryState::Succeeded, DeliveryState::Failed]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// One try at delivering: when, the endpoint's status code (none if no
/// answer came), how long it took, and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }

    pub fn gone(&self) -> bool {
        self.status_code == Some(410)
    }
}

/// One endpoint's delivery of one message; its id is the message's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    /// The message id (`msg_...`), unique within the endpoint.
    pub id: String,
    pub webhook_id: WebhookId,
    #[serde(skip)]
    pub org_id: OrgId,
    pub ticket_id: TicketId,
    #[serde(rename = "type", with = "event_type_str")]
    pub kind: WebhookEventType,
    pub created_at: Timestamp,
    pub state: DeliveryState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Timestamp>,
    /// Oldest first, the newest [`MAX_ATTEMPTS_KEPT`].
    pub attempts: Vec<Attempt>,
    /// Failed attempts since the delivery (or its redelivery) began: picks
    /// the next wait from [`RETRY_AFTER`].
    #[serde(skip)]
    pub retries: u32,
    #[serde(skip)]
    pub body: String,
}

impl WebhookDelivery {
    /// A new delivery of `message` to `webhook`, due at once.
    pub fn new(message: &WebhookMessage, webhook: WebhookId, now: Timestamp) -> Self {
        Self {
            id: message.id.clone(),
            webhook_id: webhook,
            org_id: message.org_id,
            ticket_id: message.ticket_id,
            kind: message.kind,
            created_at: now,
            state: DeliveryState::Pending,
            next_attempt_at: Some(now),
            attempts: vec![],
            retries: 0,
            body: message.body.clone(),
        }
    }

    /// The delivery after `attempt`: succeeded on a 2xx; failed on a 410 or
    /// when the retries are spent; else pending again after the next wait of
    /// [`RETRY_AFTER`] stretched by `jitter` (0.0 to 1.0 of 20%), so
    /// endpoints that failed together are not retried together.
    pub fn after(&self, attempt: Attempt, jitter: f64) -> Self {
        let mut next = self.clone();
        let at = attempt.at;
        let outcome = if attempt.succeeded() {
            (DeliveryState::Succeeded, None)
        } else if attempt.gone() {
            (DeliveryState::Failed, None)
        } else {
            match RETRY_AFTER.get(self.retries as usize) {
                Some(wait) => {
                    next.retries = self.retries + 1;
                    let stretched = wait.mul_f64(1.0 + 0.2 * jitter.clamp(0.0, 1.0));
                    (DeliveryState::Pending, Some(at.plus(stretched)))
                }
                None => (DeliveryState::Failed, None),
            }
        };
        (next.state, next.next_attempt_at) = outcome;
        next.attempts.push(attempt);
        if next.attempts.len() > MAX_ATTEMPTS_KEPT {
            let extra = next.attempts.len() - MAX_ATTEMPTS_KEPT;
            next.attempts.drain(..extra);
        }
        next
    }

    /// The delivery made due at once with a fresh retry budget (a redelivery).
    pub fn redelivered(&self, now: Timestamp) -> Self {
        Self {
            state: DeliveryState::Pending,
            next_attempt_at: Some(now),
            retries: 0,
            ..self.clone()
        }
    }
}

/// A delivery taken by one sender for one attempt, until `lease` expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub delivery: WebhookDelivery,
    /// Unique per claim: recording the attempt requires it still be current.
    pub lease: String,
}

/// What an attempt did to its endpoint's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// A success: the endpoint is not failing (any `failing_since` cleared).
    Ok,
    /// A failure at this time: failing since then unless it already was.
    Failed(Timestamp),
    /// Disable it, for this reason, now.
    Disable(DisabledReason, Timestamp),
}

impl Health {
    /// The health change `attempt` makes to `webhook`, `None` if none: a 410
    /// disables; a failure [`FAILING_LIMIT`] after the first of an unbroken
    /// run of failures disables.
    pub fn of(webhook: &Webhook, attempt: &Attempt) -> Option<Health> {
        if attempt.succeeded() {
            return webhook.failing_since.map(|_| Health::Ok);
        }
        if attempt.gone() {
            return Some(Health::Disable(DisabledReason::Gone, attempt.at));
        }
        match webhook.failing_since {
            Some(since) if since.until(attempt.at) >= FAILING_LIMIT => {
                Some(Health::Disable(DisabledReason::Failing, attempt.at))
            }
            Some(_) => None,
            None => Some(Health::Failed(attempt.at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::{Actor, Cause};
    use crate::domain::{Email, Status};

    #[test]
    fn urls_must_be_https_to_a_public_host() {
        for ok in [
            "https://example.com/hook",
            "https://93.184.216.34:8443/x?y=1",
            "https://[2606:4700::1]/h",
        ] {
            assert!(WebhookUrl::parse(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/hook",
            "ftp://example.com",
            "example.com/hook",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "https://127.0.0.1/hook",
            "https://10.0.0.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://[fd00::1]/hook",
            "https://0x7f000001/hook",
            "",
        ] {
            assert!(WebhookUrl::parse(bad, false).is_err(), "{bad}");
        }
        assert!(WebhookUrl::parse("http://127.0.0.1:9/hook", true).is_ok());
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        assert!(WebhookUrl::parse(&long, false).is_err());
    }

    fn ticket() -> Ticket {
        Ticket {
            id: TicketId::new(),
            org_id: OrgId::new(),
            title: "t".into(),
            description: "d".into(),
            added_by: Email::from_trusted("c@x.io".into()),
            admin_id: Some(crate::domain::AdminId::new()),
            status: Status::Open,
            created_at: Timestamp::from_millis(1),
            updated_at: Timestamp::from_millis(1),
            responded_at: None,
            closed_at: None,
            auto_close_at: None,
            version: 1,
            follow_up_of: None,
        }
    }

    #[test]
    fn a_creation_tells_created_and_assigned_with_the_ticket() {
        let t = ticket();
        let events = Cause::new(Actor::System, Timestamp::from_millis(1)).events(None, &t);
        let msgs = messages(&t, &events);
        let kinds: Vec<_> = msgs.iter().map(|(_, m)| m.kind).collect();
        assert_eq!(
            kinds,
            [WebhookEventType::TicketCreated, WebhookEventType::TicketAssigned]
        );
        let body: serde_json::Value = serde_json::from_str(&msgs[0].1.body).unwrap();
        assert_eq!(body["type"], "ticket.created");
        assert_eq!(body["id"], msgs[0].1.id);
        assert_eq!(body["orgId"], t.org_id.to_string());
        assert_eq!(body["data"]["ticket"]["version"], 1);
        assert_eq!(body["data"]["ticket"]["id"], t.id.to_string());
        assert!(is_message_id(&msgs[0].1.id));
        assert!(!is_message_id("msg_x") && !is_message_id(&t.id.to_string()));
    }

    #[test]
    fn retries_follow_the_schedule_then_give_up() {
        let msg = WebhookMessage {
            id: message_id(EventId::new()),
            org_id: OrgId::new(),
            ticket_id: TicketId::new(),
            kind: WebhookEventType::TicketCreated,
            body: "{}".into(),
        };
        let now = Timestamp::from_millis(0);
        let fail = |at: Timestamp, code: Option<u16>| Attempt {
            at,
            status_code: code,
            latency_ms: 1,
            error: None,
        };
        let mut d = WebhookDelivery::new(&msg, WebhookId::new(), now);
        let first = d.after(fail(now, Some(500)), 0.0);
        assert_eq!(first.next_attempt_at, Some(now.plus(RETRY_AFTER[0])));
        let jittered = d.after(fail(now, None), 1.0);
        assert_eq!(jittered.next_attempt_at, Some(now.plus(RETRY_AFTER[0].mul_f64(1.2))));
        for _ in 0..RETRY_AFTER.len() {
            d = d.after(fail(now, Some(503)), 0.5);
            assert_eq!(d.state, DeliveryState::Pending);
        }
        d = d.after(fail(now, Some(503)), 0.5);
        assert_eq!((d.state, d.next_attempt_at), (DeliveryState::Failed, None));
        assert_eq!(d.attempts.len(), RETRY_AFTER.len() + 1);
        let again = d.redelivered(now).after(fail(now, Some(204)), 0.0);
        assert_eq!(again.state, DeliveryState::Succeeded);
        let gone = WebhookDelivery::new(&msg, WebhookId::new(), now).after(fail(now, Some(410)), 0.0);
        assert_eq!(gone.state, DeliveryState::Failed);
    }

    #[test]
    fn an_endpoint_failing_a_day_or_gone_is_disabled() {
        let day = Timestamp::from_millis(0).plus(FAILING_LIMIT);
        let mut hook = Webhook {
            id: WebhookId::new(),
            org_id: OrgId::new(),
            url: WebhookUrl::from_trusted("https://example.com".into()),
            events: vec![WebhookEventType::TicketCreated],
            created_at: Timestamp::from_millis(0),
            enabled: true,
            disabled_at: None,
            disabled_reason: None,
            failing_since: None,
        };
        let attempt = |at, code| Attempt {
            at,
            status_code: code,
            latency_ms: 1,
            error: None,
        };
        let t0 = Timestamp::from_millis(0);
        assert_eq!(Health::of(&hook, &attempt(t0, Some(200))), None);
        assert_eq!(Health::of(&hook, &attempt(t0, Some(500))), Some(Health::Failed(t0)));
        assert_eq!(
            Health::of(&hook, &attempt(t0, Some(410))),
            Some(Health::Disable(DisabledReason::Gone, t0))
        );
        hook.failing_since = Some(t0);
        assert_eq!(
            Health::of(&hook, &attempt(t0.plus(Duration::from_secs(60)), None)),
            None
        );
        assert_eq!(
            Health::of(&hook, &attempt(day, None)),
            Some(Health::Disable(DisabledReason::Failing, day))
        );
        assert_eq!(Health::of(&hook, &attempt(day, Some(201))), Some(Health::Ok));
    }
}
