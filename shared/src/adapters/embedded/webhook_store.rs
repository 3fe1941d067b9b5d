//! The [`WebhookStore`] port on SQLite, and the outbox the ticket writes fill
//! (`insert_messages`, inside their transactions) that the dispatcher
//! (`webhook_dispatch`) fans out.

use super::db::Db;
use super::rows::{parse, ts};
use crate::domain::webhooks::{
    Attempt, ClaimedDelivery, DeliveryState, DisabledReason, Health, StoredWebhook, Webhook, WebhookDelivery,
    WebhookEventType, WebhookMessage, WebhookUrl, messages,
};
use crate::domain::{EventId, OrgId, Ticket, TicketEvent, Timestamp, WebhookId};
use crate::error::StoreError;
use crate::ports::{StoreResult, WebhookStore};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, Transaction, params};
use std::sync::Arc;
use std::time::Duration;

/// Inserts the webhook messages of a write of `after` with `events` (inside its transaction).
pub(super) fn insert_messages(tx: &Transaction, after: &Ticket, events: &[TicketEvent]) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached("INSERT INTO webhook_outbox (event_id, message) VALUES (?1, ?2)")?;
    for (event, message) in messages(after, events) {
        stmt.execute(params![event.to_string(), json(&message)?])?;
    }
    Ok(())
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(e.into()))
}

const HOOK_COLS: &str = "id, org_id, url, events, secret, created_at, disabled_at, disabled_reason, failing_since";

fn hook_from_row(r: &Row) -> rusqlite::Result<StoredWebhook> {
    let events: String = r.get(3)?;
    let disabled_at: Option<i64> = r.get(6)?;
    Ok(StoredWebhook {
        webhook: Webhook {
            id: parse(r.get(0)?, 0)?,
            org_id: parse(r.get(1)?, 1)?,
            url: WebhookUrl::from_trusted(r.get(2)?),
            events: events
                .split(',')
                .filter_map(|e| WebhookEventType::parse("events", e).ok())
                .collect(),
            created_at: ts(r.get(5)?),
            enabled: disabled_at.is_none(),
            disabled_at: disabled_at.map(ts),
            disabled_reason: r
                .get::<_, Option<String>>(7)?
                .as_deref()
                .and_then(DisabledReason::parse),
            failing_since: r.get::<_, Option<i64>>(8)?.map(ts),
        },
        secret: r.get(4)?,
    })
}

const DELIVERY_COLS: &str =
    "webhook_id, id, org_id, ticket_id, type, body, created_at, state, next_attempt_at, retries, attempts";

fn delivery_from_row(r: &Row) -> rusqlite::Result<WebhookDelivery> {
    let bad = |i: usize, e: String| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into());
    let kind: String = r.get(4)?;
    let state: String = r.get(7)?;
    let attempts: String = r.get(10)?;
    Ok(WebhookDelivery {
        webhook_id: parse(r.get(0)?, 0)?,
        id: r.get(1)?,
        org_id: parse(r.get(2)?, 2)?,
        ticket_id: parse(r.get(3)?, 3)?,
        kind: WebhookEventType::parse("type", &kind).map_err(|e| bad(4, e.to_string()))?,
        body: r.get(5)?,
        created_at: ts(r.get(6)?),
        state: DeliveryState::parse(&state).ok_or_else(|| bad(7, state.clone()))?,
        next_attempt_at: r.get::<_, Option<i64>>(8)?.map(ts),
        retries: u32::try_from(r.get::<_, i64>(9)?).unwrap_or(0),
        attempts: serde_json::from_str::<Vec<Attempt>>(&attempts).map_err(|e| bad(10, e.to_string()))?,
    })
}

fn events_str(events: &[WebhookEventType]) -> String {
    events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(",")
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub struct SqliteWebhooks {
    db: Arc<Db>,
}

impl SqliteWebhooks {
    pub fn new(db: Arc<Db>) -> Self {
        Self { db }
    }

    /// Up to `limit` outbox messages, oldest first.
    pub(super) async fn outbox(&self, limit_: usize) -> StoreResult<Vec<(EventId, WebhookMessage)>> {
        self.db
            .read(move |c| {
                let mut stmt =
                    c.prepare_cached("SELECT event_id, message FROM webhook_outbox ORDER BY event_id LIMIT ?1")?;
                let rows = stmt
                    .query_map([limit(limit_)], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(id, m)| {
                        let id = id
                            .parse()
                            .map_err(|_| StoreError::Internal(anyhow::anyhow!("bad outbox id")))?;
                        let m = serde_json::from_str(&m).map_err(|e| StoreError::Internal(e.into()))?;
                        Ok((id, m))
                    })
                    .collect()
            })
            .await
    }

    /// Removes fanned-out messages, all in one transaction.
    pub(super) async fn remove_from_outbox(&self, events: Vec<EventId>) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.db
            .write(move |tx| {
                let mut stmt = tx.prepare_cached("DELETE FROM webhook_outbox WHERE event_id = ?1")?;
                for e in events {
                    stmt.execute([e.to_string()])?;
                }
                Ok(())
            })
            .await
    }
}

impl SqliteWebhooks {
    /// Up to `limit` due deliveries (endpoint, org, id), earliest due first,
    /// leaving out those of the endpoints and orgs in `skip_hooks` and
    /// `skip_orgs` (at their in-flight caps) and the deliveries in
    /// `skip_deliveries` (`"{webhook} {id}"`: already under way), so the
    /// backlog of a few cannot fill the page and hide everyone else's.
    pub(super) async fn due_for_dispatch(
        &self,
        now: Timestamp,
        limit_: usize,
        skip_hooks: &[WebhookId],
        skip_orgs: &[OrgId],
        skip_deliveries: &[String],
    ) -> StoreResult<Vec<(WebhookId, OrgId, String)>> {
        let list = |items: Vec<String>| json(&items);
        let hooks = list(skip_hooks.iter().map(ToString::to_string).collect())?;
        let orgs = list(skip_orgs.iter().map(ToString::to_string).collect())?;
        let deliveries = list(skip_deliveries.to_vec())?;
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT webhook_id, org_id, id FROM webhook_deliveries INDEXED BY webhook_deliveries_due
                     WHERE state = 'pending' AND next_attempt_at <= ?1
                       AND webhook_id NOT IN (SELECT value FROM json_each(?2))
                       AND org_id NOT IN (SELECT value FROM json_each(?3))
                       AND webhook_id || ' ' || id NOT IN (SELECT value FROM json_each(?4))
                     ORDER BY next_attempt_at LIMIT ?5",
                )?;
                Ok(stmt
                    .query_map(params![now.millis(), hooks, orgs, deliveries, limit(limit_)], |r| {
                        Ok((parse(r.get(0)?, 0)?, parse(r.get(1)?, 1)?, r.get::<_, String>(2)?))
                    })?
                    .collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    /// Removes up to `limit` finished (not pending) deliveries made before
    /// `before`; how many it removed.
    pub(super) async fn purge_deliveries(&self, before: Timestamp, limit_: usize) -> StoreResult<usize> {
        self.db
            .write(move |tx| {
                Ok(tx.execute(
                    "DELETE FROM webhook_deliveries WHERE rowid IN (SELECT rowid FROM webhook_deliveries \
                     WHERE created_at < ?1 AND state != 'pending' LIMIT ?2)",
                    params![before.millis(), limit(limit_)],
                )?)
            })
            .await
    }
}

#[async_trait]
impl WebhookStore for SqliteWebhooks {
    async fn create_webhook(&self, hook: &StoredWebhook) -> StoreResult<()> {
        let h = hook.clone();
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO webhooks (id, org_id, url, events, secret, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        h.webhook.id.to_string(),
                        h.webhook.org_id.to_string(),
                        h.webhook.url.as_str(),
                        events_str(&h.webhook.events),
                        h.secret,
                        h.webhook.created_at.millis()
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn webhooks(&self, org: OrgId) -> StoreResult<Vec<StoredWebhook>> {
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {HOOK_COLS} FROM webhooks WHERE org_id = ?1 ORDER BY created_at, id"
                ))?;
                Ok(stmt
                    .query_map([org.to_string()], hook_from_row)?
                    .collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn webhook(&self, org: OrgId, id: WebhookId) -> StoreResult<Option<StoredWebhook>> {
        self.db
            .read(move |c| {
                Ok(c.prepare_cached(&format!(
                    "SELECT {HOOK_COLS} FROM webhooks WHERE id = ?1 AND org_id = ?2"
                ))?
                .query_row([id.to_string(), org.to_string()], hook_from_row)
                .optional()?)
            })
            .await
    }

    async fn delete_webhook(&self, org: OrgId, id: WebhookId) -> StoreResult<bool> {
        self.db
            .write(move |tx| {
                let n = tx.execute(
                    "DELETE FROM webhooks WHERE id = ?1 AND org_id = ?2",
                    [id.to_string(), org.to_string()],
                )?;
                // Its deliveries go with it (DynamoDB's expire by TTL instead).
                if n == 1 {
                    tx.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?1", [id.to_string()])?;
                }
                Ok(n == 1)
            })
            .await
    }

    async fn set_webhook_secret(&self, org: OrgId, id: WebhookId, secret: &str) -> StoreResult<bool> {
        let secret = secret.to_owned();
        self.db
            .write(move |tx| {
                let n = tx.execute(
                    "UPDATE webhooks SET secret = ?1 WHERE id = ?2 AND org_id = ?3",
                    params![secret, id.to_string(), org.to_string()],
                )?;
                Ok(n == 1)
            })
            .await
    }

    async fn set_webhook_health(&self, org: OrgId, id: WebhookId, health: Health) -> StoreResult<bool> {
        let (id, org) = (id.to_string(), org.to_string());
        self.db
            .write(move |tx| {
                let n = match health {
                    Health::Ok => tx.execute(
                        "UPDATE webhooks SET failing_since = NULL WHERE id = ?1 AND org_id = ?2",
                        [&id, &org],
                    )?,
                    Health::Failed(at) => tx.execute(
                        "UPDATE webhooks SET failing_since = ?1 WHERE id = ?2 AND org_id = ?3 AND failing_since IS NULL",
                        params![at.millis(), id, org],
                    )?,
                    Health::Disable(reason, at) => tx.execute(
                        "UPDATE webhooks SET disabled_at = ?1, disabled_reason = ?2, notice_pending = 1
                         WHERE id = ?3 AND org_id = ?4 AND disabled_at IS NULL",
                        params![at.millis(), reason.as_str(), id, org],
                    )?,
                };
                Ok(n == 1 && matches!(health, Health::Disable(..)))
            })
            .await
    }

    async fn pending_webhook_notices(&self, limit_: usize) -> StoreResult<Vec<Webhook>> {
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {HOOK_COLS} FROM webhooks INDEXED BY webhooks_notice_pending
                     WHERE notice_pending = 1 ORDER BY disabled_at LIMIT ?1"
                ))?;
                Ok(stmt
                    .query_map([limit(limit_)], |r| hook_from_row(r).map(|h| h.webhook))?
                    .collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn clear_webhook_notice(&self, org: OrgId, id: WebhookId) -> StoreResult<()> {
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE webhooks SET notice_pending = 0 WHERE id = ?1 AND org_id = ?2",
                    [id.to_string(), org.to_string()],
                )?;
                Ok(())
            })
            .await
    }

    async fn create_deliveries(&self, deliveries: &[WebhookDelivery]) -> StoreResult<Vec<WebhookDelivery>> {
        let deliveries = deliveries.to_vec();
        self.db
            .write(move |tx| {
                let mut created = Vec::new();
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO webhook_deliveries
                       (webhook_id, id, org_id, ticket_id, type, body, created_at, state, next_attempt_at, retries, attempts)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT (webhook_id, id) DO NOTHING",
                )?;
                for d in deliveries {
                    let n = stmt.execute(params![
                        d.webhook_id.to_string(),
                        d.id,
                        d.org_id.to_string(),
                        d.ticket_id.to_string(),
                        d.kind.as_str(),
                        d.body,
                        d.created_at.millis(),
                        d.state.as_str(),
                        d.next_attempt_at.map(Timestamp::millis),
                        d.retries,
                        json(&d.attempts)?
                    ])?;
                    if n == 1 {
                        created.push(d);
                    }
                }
                Ok(created)
            })
            .await
    }

    async fn delivery(&self, webhook: WebhookId, id: &str) -> StoreResult<Option<WebhookDelivery>> {
        let id = id.to_owned();
        self.db
            .read(move |c| {
                Ok(c.prepare_cached(&format!(
                    "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE webhook_id = ?1 AND id = ?2"
                ))?
                .query_row([webhook.to_string(), id], delivery_from_row)
                .optional()?)
            })
            .await
    }

    async fn deliveries(&self, webhook: WebhookId, limit_: usize) -> StoreResult<Vec<WebhookDelivery>> {
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE webhook_id = ?1
                     ORDER BY created_at DESC, id DESC LIMIT ?2"
                ))?;
                Ok(stmt
                    .query_map(params![webhook.to_string(), limit(limit_)], delivery_from_row)?
                    .collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn claim_delivery(
        &self,
        webhook: WebhookId,
        id: &str,
        now: Timestamp,
        lease: Duration,
    ) -> StoreResult<Option<ClaimedDelivery>> {
        let (id, token) = (id.to_owned(), uuid::Uuid::new_v4().to_string());
        self.db
            .write(move |tx| {
                let claimed = tx
                    .query_row(
                        &format!(
                            "UPDATE webhook_deliveries SET next_attempt_at = ?1, lease = ?2
                             WHERE webhook_id = ?3 AND id = ?4 AND state = 'pending' AND next_attempt_at <= ?5
                             RETURNING {DELIVERY_COLS}"
                        ),
                        params![
                            now.millis() + millis(lease),
                            token,
                            webhook.to_string(),
                            id,
                            now.millis()
                        ],
                        delivery_from_row,
                    )
                    .optional()?;
                Ok(claimed.map(|delivery| ClaimedDelivery {
                    delivery,
                    lease: token.clone(),
                }))
            })
            .await
    }

    async fn record_delivery(&self, claim: &ClaimedDelivery, after: &WebhookDelivery) -> StoreResult<bool> {
        let (lease, d) = (claim.lease.clone(), after.clone());
        self.db
            .write(move |tx| {
                let n = tx.execute(
                    "UPDATE webhook_deliveries
                     SET state = ?1, next_attempt_at = ?2, retries = ?3, attempts = ?4, lease = NULL
                     WHERE webhook_id = ?5 AND id = ?6 AND lease = ?7",
                    params![
                        d.state.as_str(),
                        d.next_attempt_at.map(Timestamp::millis),
                        d.retries,
                        json(&d.attempts)?,
                        d.webhook_id.to_string(),
                        d.id,
                        lease
                    ],
                )?;
                Ok(n == 1)
            })
            .await
    }

    async fn redeliver(&self, after: &WebhookDelivery) -> StoreResult<bool> {
        let d = after.clone();
        self.db
            .write(move |tx| {
                let n = tx.execute(
                    "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?1, retries = 0, lease = NULL
                     WHERE webhook_id = ?2 AND id = ?3 AND state <> 'pending'",
                    params![d.next_attempt_at.map(Timestamp::millis), d.webhook_id.to_string(), d.id],
                )?;
                Ok(n == 1)
            })
            .await
    }

    async fn due_deliveries(&self, now: Timestamp, limit_: usize) -> StoreResult<Vec<(WebhookId, String)>> {
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT webhook_id, id FROM webhook_deliveries INDEXED BY webhook_deliveries_due
                     WHERE state = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at LIMIT ?2",
                )?;
                Ok(stmt
                    .query_map(params![now.millis(), limit(limit_)], |r| {
                        Ok((parse(r.get(0)?, 0)?, r.get::<_, String>(1)?))
                    })?
                    .collect::<rusqlite::Result<_>>()?)
            })
            .await
    }
}
