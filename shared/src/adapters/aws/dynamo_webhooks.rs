//! The [`WebhookStore`] port on DynamoDB: endpoints in their org's
//! partition, deliveries in their endpoint's, each change one conditional
//! write; due deliveries, pending notices and messages the stream did not
//! fan out from the sparse `by_due` index.

use super::dynamo::{DynamoStore, malformed};
use super::errors::Classify;
use super::items::webhooks::{self as w, DUE_DELIVERIES, DUE_NOTICES, DUE_OUTBOX_SHARDS};
use super::items::{self, DUE_INDEX, DUE_PK, DUE_SK, Item, n, s};
use crate::domain::webhooks::{ClaimedDelivery, Health, StoredWebhook, Webhook, WebhookDelivery, WebhookMessage};
use crate::domain::{OrgId, Timestamp, WebhookId};
use crate::error::StoreError;
use crate::ports::{StoreResult, WebhookStore};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// Pages [`DynamoWebhooks::due_deliveries_skipping`] reads at most.
pub const SKIPPING_PAGES: usize = 5;

/// The webhook half of the table, over the store's client.
pub struct DynamoWebhooks(pub(super) Arc<DynamoStore>);

/// A conditional write that did not apply is an answer, not an error.
fn applied<T>(r: StoreResult<T>) -> StoreResult<bool> {
    match r {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

impl DynamoWebhooks {
    /// An UpdateItem of the endpoint's item (its table and key set).
    fn update_webhook(
        &self,
        org: OrgId,
        id: WebhookId,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.0
            .client
            .update_item()
            .table_name(&self.0.table)
            .set_key(Some(w::webhook_key(org, id)))
    }

    /// Every item of `pk` whose sort key starts with `prefix`, in key order.
    async fn query_prefix(
        &self,
        pk: String,
        prefix: &str,
        forward: bool,
        limit: Option<usize>,
    ) -> StoreResult<Vec<Item>> {
        let d = &self.0;
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = d
                .client
                .query()
                .table_name(&d.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":prefix", s(prefix))
                .scan_index_forward(forward)
                .consistent_read(true)
                .set_limit(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .classify()?;
            found.extend(out.items().iter().cloned());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() && limit.is_none_or(|l| found.len() < l) => start = Some(k),
                _ => return Ok(found),
            }
        }
    }

    /// Up to `limit` keys of `by_due`'s `partition` due by `now`, earliest first.
    async fn due(&self, partition: &str, upper: String, limit: usize) -> StoreResult<Vec<Item>> {
        let d = &self.0;
        let out = d
            .client
            .query()
            .table_name(&d.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("#p = :p AND #s <= :upper")
            .expression_attribute_names("#p", DUE_PK)
            .expression_attribute_names("#s", DUE_SK)
            .expression_attribute_values(":p", s(partition))
            .expression_attribute_values(":upper", s(upper))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .classify()?;
        Ok(out.items().to_vec())
    }

    /// Up to `limit` due deliveries, earliest first, leaving out those of the
    /// endpoints in `skip_hooks` and the deliveries in `skip_deliveries`
    /// (`"{webhook} {id}"`), reading on past them: at most
    /// [`SKIPPING_PAGES`] pages, so a huge backlog of skipped endpoints
    /// bounds the cost (what lies past it waits for a later tick).
    pub async fn due_deliveries_skipping(
        &self,
        now: Timestamp,
        limit: usize,
        skip_hooks: &[WebhookId],
        skip_deliveries: &[String],
    ) -> StoreResult<Vec<(WebhookId, String)>> {
        let d = &self.0;
        let upper = items::due_upper_bound(now);
        let mut kept = Vec::new();
        let mut start = None;
        for _ in 0..SKIPPING_PAGES {
            let out = d
                .client
                .query()
                .table_name(&d.table)
                .index_name(DUE_INDEX)
                .key_condition_expression("#p = :p AND #s <= :upper")
                .expression_attribute_names("#p", DUE_PK)
                .expression_attribute_names("#s", DUE_SK)
                .expression_attribute_values(":p", s(DUE_DELIVERIES))
                .expression_attribute_values(":upper", s(upper.clone()))
                .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .classify()?;
            for item in out.items() {
                let (hook, id) = w::due_delivery_from(item).map_err(malformed)?;
                let under_way = skip_deliveries
                    .iter()
                    .any(|k| k.strip_prefix(&format!("{hook} ")) == Some(&id));
                if !skip_hooks.contains(&hook) && !under_way {
                    kept.push((hook, id));
                }
            }
            start = out.last_evaluated_key;
            if kept.len() >= limit || start.is_none() {
                break;
            }
        }
        kept.truncate(limit);
        Ok(kept)
    }

    /// Outbox messages of events at or before `before` whose mark is still
    /// set (not fanned out), oldest first, at most `limit`. A mark on an item
    /// whose message does not parse is removed (logged): it would otherwise
    /// come back in every sweep.
    pub async fn unfanned_messages(&self, before: Timestamp, limit: usize) -> StoreResult<Vec<WebhookMessage>> {
        let upper = items::due_upper_bound(before);
        // Every shard's oldest, then the oldest of those.
        let mut marked = Vec::new();
        for shard in 0..DUE_OUTBOX_SHARDS {
            marked.extend(self.due(&w::outbox_partition(shard), upper.clone(), limit).await?);
        }
        marked.sort_by(|a, b| items::opt_s(a, DUE_SK).cmp(&items::opt_s(b, DUE_SK)));
        marked.truncate(limit);
        let mut messages = Vec::new();
        for item in marked {
            match w::message_from(&item) {
                Some(m) => messages.push(m),
                None => {
                    tracing::error!(sk = ?item.get(items::SK), "outbox mark on an item without a readable message; removed");
                    self.clear_outbox_mark(items::key_of(&item)).await?;
                }
            }
        }
        Ok(messages)
    }

    /// Removes the outbox mark of `message`'s event item: it is fanned out.
    pub async fn fanned_out(&self, message: &WebhookMessage) -> StoreResult<()> {
        self.clear_outbox_mark(w::outbox_key(message).map_err(malformed)?).await
    }

    /// A no-op (a failed condition, not an error) if the mark is gone already.
    async fn clear_outbox_mark(&self, key: Item) -> StoreResult<()> {
        self.remove_due_keys(key, "attribute_exists(#gp)").await
    }

    /// Takes the item at `key` out of `by_due` (a notice or an outbox mark
    /// done) if `condition` holds; one that does not is no error.
    async fn remove_due_keys(&self, key: Item, condition: &str) -> StoreResult<()> {
        applied(
            self.0
                .client
                .update_item()
                .table_name(&self.0.table)
                .set_key(Some(key))
                .update_expression("REMOVE #gp, #gs")
                .condition_expression(condition)
                .expression_attribute_names("#gp", DUE_PK)
                .expression_attribute_names("#gs", DUE_SK)
                .send()
                .await
                .classify(),
        )?;
        Ok(())
    }

    /// Sets a delivery's state fields (and `by_due` keys while pending) under `condition`.
    async fn write_state(
        &self,
        d: &WebhookDelivery,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
    ) -> StoreResult<bool> {
        let state = w::delivery_state(d).map_err(malformed)?;
        let mut sets = Vec::new();
        let mut update = self
            .0
            .client
            .update_item()
            .table_name(&self.0.table)
            .set_key(Some(w::delivery_key(d.webhook_id, &d.id)));
        for (i, (name, value)) in state.into_iter().enumerate() {
            sets.push(format!("#a{i} = :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), value);
        }
        let mut removes = vec!["#lease"];
        if d.state != crate::domain::webhooks::DeliveryState::Pending {
            removes.extend(["#next", "#gp", "#gs"]);
            update = update
                .expression_attribute_names("#next", "nextAttemptAt")
                .expression_attribute_names("#gp", DUE_PK)
                .expression_attribute_names("#gs", DUE_SK);
        }
        update = update.expression_attribute_names("#lease", "lease");
        for (k, v) in values {
            update = update.expression_attribute_values(k, v);
        }
        for (k, v) in names {
            update = update.expression_attribute_names(*k, *v);
        }
        applied(
            update
                .update_expression(format!("SET {} REMOVE {}", sets.join(", "), removes.join(", ")))
                .condition_expression(condition)
                .send()
                .await
                .classify(),
        )
    }
}

#[async_trait]
impl WebhookStore for DynamoWebhooks {
    async fn create_webhook(&self, hook: &StoredWebhook) -> StoreResult<()> {
        self.0.put_all_new(vec![w::webhook_item(hook)]).await
    }

    async fn webhooks(&self, org: OrgId) -> StoreResult<Vec<StoredWebhook>> {
        let found = self
            .query_prefix(items::org_partition(org), w::WEBHOOK_PREFIX, true, None)
            .await?;
        let mut hooks = found
            .iter()
            .map(|i| w::webhook_from(i).map_err(malformed))
            .collect::<StoreResult<Vec<_>>>()?;
        hooks.sort_by_key(|h| (h.webhook.created_at, h.webhook.id));
        Ok(hooks)
    }

    async fn webhook(&self, org: OrgId, id: WebhookId) -> StoreResult<Option<StoredWebhook>> {
        self.0
            .get(w::webhook_key(org, id))
            .await?
            .map(|i| w::webhook_from(&i).map_err(malformed))
            .transpose()
    }

    async fn delete_webhook(&self, org: OrgId, id: WebhookId) -> StoreResult<bool> {
        applied(
            self.0
                .client
                .delete_item()
                .table_name(&self.0.table)
                .set_key(Some(w::webhook_key(org, id)))
                .condition_expression("attribute_exists(pk)")
                .send()
                .await
                .classify(),
        )
    }

    async fn set_webhook_secret(&self, org: OrgId, id: WebhookId, secret: &str) -> StoreResult<bool> {
        applied(
            self.update_webhook(org, id)
                .update_expression("SET secret = :s")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":s", s(secret))
                .send()
                .await
                .classify(),
        )
    }

    async fn set_webhook_health(&self, org: OrgId, id: WebhookId, health: Health) -> StoreResult<bool> {
        let update = self.update_webhook(org, id);
        let update = match health {
            Health::Ok => update
                .update_expression("REMOVE failingSince")
                .condition_expression("attribute_exists(pk)"),
            Health::Failed(at) => update
                .update_expression("SET failingSince = :at")
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(failingSince)")
                .expression_attribute_values(":at", n(at.millis())),
            Health::Disable(reason, at) => update
                .update_expression("SET disabledAt = :at, disabledReason = :r, #gp = :notice, #gs = :due")
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(disabledAt)")
                .expression_attribute_names("#gp", DUE_PK)
                .expression_attribute_names("#gs", DUE_SK)
                .expression_attribute_values(":at", n(at.millis()))
                .expression_attribute_values(":r", s(reason.as_str()))
                .expression_attribute_values(":notice", s(DUE_NOTICES))
                .expression_attribute_values(":due", s(items::due_sort_key(at, id))),
        };
        let done = applied(update.send().await.classify())?;
        Ok(done && matches!(health, Health::Disable(..)))
    }

    async fn pending_webhook_notices(&self, limit: usize) -> StoreResult<Vec<Webhook>> {
        let keys = self.due(DUE_NOTICES, "~".into(), limit).await?;
        keys.iter()
            .map(|i| w::webhook_from(i).map(|h| h.webhook).map_err(malformed))
            .collect()
    }

    async fn clear_webhook_notice(&self, org: OrgId, id: WebhookId) -> StoreResult<()> {
        self.remove_due_keys(w::webhook_key(org, id), "attribute_exists(pk)")
            .await
    }

    async fn create_deliveries(&self, deliveries: &[WebhookDelivery]) -> StoreResult<Vec<WebhookDelivery>> {
        // One conditional put each, all at once (one call's time in the
        // reconcile budget): a repeat of a fan-out finds them made.
        let puts = deliveries.iter().map(|d| async move {
            let item = w::delivery_item(d).map_err(malformed)?;
            let put = self
                .0
                .client
                .put_item()
                .table_name(&self.0.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .classify();
            Ok::<_, StoreError>(applied(put)?.then(|| d.clone()))
        });
        let mut created = Vec::new();
        for made in futures_util::future::join_all(puts).await {
            created.extend(made?);
        }
        Ok(created)
    }

    async fn delivery(&self, webhook: WebhookId, id: &str) -> StoreResult<Option<WebhookDelivery>> {
        self.0
            .get(w::delivery_key(webhook, id))
            .await?
            .map(|i| w::delivery_from(&i).map_err(malformed))
            .transpose()
    }

    async fn deliveries(&self, webhook: WebhookId, limit: usize) -> StoreResult<Vec<WebhookDelivery>> {
        // Message ids are v7 UUIDs: the sort key order is creation order.
        let found = self
            .query_prefix(w::delivery_partition(webhook), w::DELIVERY_PREFIX, false, Some(limit))
            .await?;
        found
            .iter()
            .take(limit)
            .map(|i| w::delivery_from(i).map_err(malformed))
            .collect()
    }

    async fn claim_delivery(
        &self,
        webhook: WebhookId,
        id: &str,
        now: Timestamp,
        lease: Duration,
    ) -> StoreResult<Option<ClaimedDelivery>> {
        let token = uuid::Uuid::new_v4().to_string();
        let until = now.plus(lease);
        let out = self
            .0
            .client
            .update_item()
            .table_name(&self.0.table)
            .set_key(Some(w::delivery_key(webhook, id)))
            .update_expression("SET nextAttemptAt = :until, #lease = :lease, #gs = :due")
            .expression_attribute_names("#lease", "lease")
            .condition_expression("#st = :pending AND nextAttemptAt <= :now")
            .expression_attribute_names("#st", "state")
            .expression_attribute_names("#gs", DUE_SK)
            .expression_attribute_values(":until", n(until.millis()))
            .expression_attribute_values(":lease", s(&token))
            .expression_attribute_values(":due", s(w::due_sort_key(until, webhook, id)))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":now", n(now.millis()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .classify();
        match out {
            Ok(o) => {
                let item = o.attributes.unwrap_or_default();
                Ok(Some(ClaimedDelivery {
                    delivery: w::delivery_from(&item).map_err(malformed)?,
                    lease: token,
                }))
            }
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn record_delivery(&self, claim: &ClaimedDelivery, after: &WebhookDelivery) -> StoreResult<bool> {
        self.write_state(after, "#lease = :held", &[], vec![(":held", s(&claim.lease))])
            .await
    }

    async fn redeliver(&self, after: &WebhookDelivery) -> StoreResult<bool> {
        self.write_state(
            after,
            "attribute_exists(pk) AND #st <> :pending",
            &[("#st", "state")],
            vec![(":pending", s("pending"))],
        )
        .await
    }

    async fn due_deliveries(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<(WebhookId, String)>> {
        let upper = items::due_upper_bound(now);
        let keys = self.due(DUE_DELIVERIES, upper, limit).await?;
        keys.iter()
            .map(|i| w::due_delivery_from(i).map_err(malformed))
            .collect()
    }
}
