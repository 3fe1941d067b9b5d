//! The mail half of the [`Store`](crate::ports::Store) port on DynamoDB: the
//! outgoing mail on its response item, claimed and recorded by conditional
//! `UpdateItem`s, and found due through the sparse index `mail_due`.

use super::dynamo::{DynamoStore, malformed};
use super::errors::Classify;
use super::items::{self, MailWrite};
use crate::domain::events::delivery_changed;
use crate::domain::{ClaimedMail, Delivery, ResponseId, TicketId, Timestamp};
use crate::error::StoreError;
use crate::ports::StoreResult;
use aws_sdk_dynamodb::types::{ReturnValue, TransactWriteItem, Update};
use std::time::Duration;

impl DynamoStore {
    /// Applies `w` to the response item; `Ok(None)` when its condition failed.
    async fn update_response(
        &self,
        ticket: TicketId,
        response: ResponseId,
        w: MailWrite,
        returning: ReturnValue,
    ) -> StoreResult<Option<items::Item>> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::response_key(ticket, response)))
            .update_expression(w.update)
            .condition_expression(w.condition)
            .set_expression_attribute_values(Some(w.values))
            .return_values(returning)
            .send()
            .await
            .classify();
        match out {
            Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Applies `w` to the response item together with the `deliveryChanged`
    /// event of its move `from` a state, in one transaction; false when its
    /// condition failed.
    async fn update_response_with_event(
        &self,
        ticket: TicketId,
        response: ResponseId,
        w: MailWrite,
        from: &str,
        delivery: &Delivery,
    ) -> StoreResult<bool> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(items::response_key(ticket, response)))
            .update_expression(w.update)
            .condition_expression(w.condition)
            .set_expression_attribute_values(Some(w.values))
            .build()
            .expect("complete update");
        let mut writes = vec![TransactWriteItem::builder().update(update).build()];
        writes.extend(self.event_puts(&[delivery_changed(ticket, response, from, delivery)])?);
        match self.transact(writes).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn claim_mail_item(
        &self,
        ticket: TicketId,
        response: ResponseId,
        now: Timestamp,
        lease: Duration,
    ) -> StoreResult<Option<ClaimedMail>> {
        let token = uuid::Uuid::new_v4().to_string();
        let w = items::claim(now, now.plus(lease), &token);
        let Some(item) = self.update_response(ticket, response, w, ReturnValue::AllNew).await? else {
            return Ok(None);
        };
        items::claimed_from(&item, ticket, response, &token)
            .map(Some)
            .map_err(malformed)
    }

    pub(super) async fn record_attempt_item(
        &self,
        ticket: TicketId,
        response: ResponseId,
        lease: &str,
        outcome: &Delivery,
    ) -> StoreResult<bool> {
        let w = items::record_attempt(lease, outcome);
        if matches!(outcome, Delivery::Pending { .. }) {
            // A retry: still pending, nothing for the history.
            return Ok(self
                .update_response(ticket, response, w, ReturnValue::None)
                .await?
                .is_some());
        }
        self.update_response_with_event(ticket, response, w, "pending", outcome)
            .await
    }

    pub(super) async fn record_mail_event_item(
        &self,
        ticket: TicketId,
        response: ResponseId,
        delivery: &Delivery,
    ) -> StoreResult<bool> {
        // The event names the state it moved from: read it, then write only
        // if it is still that state. If it changed in between (a send or
        // another report), the report fails and its queue delivers it again.
        let Some(item) = self.get(items::response_key(ticket, response)).await? else {
            return Ok(false);
        };
        let from = items::delivery_from(&item).state();
        if Delivery::rank(from) >= Delivery::rank(delivery.state()) {
            return Ok(false);
        }
        let mut w = items::record_event(delivery);
        w.condition.push_str(" AND deliveryState = :from");
        w.values.insert(":from".into(), items::s(from));
        if self
            .update_response_with_event(ticket, response, w, from, delivery)
            .await?
        {
            return Ok(true);
        }
        Err(StoreError::Unavailable(anyhow::anyhow!(
            "the delivery changed while a provider event was recorded; retry it"
        )))
    }

    /// One Query on the sparse index, earliest due first.
    pub(super) async fn due_mail_items(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<(TicketId, ResponseId)>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(items::MAIL_DUE_INDEX)
            .key_condition_expression(format!(
                "{} = :due AND {} <= :now",
                items::MAIL_DUE_PK,
                items::MAIL_DUE_SK
            ))
            .expression_attribute_values(":due", items::s(items::MAIL_DUE))
            .expression_attribute_values(":now", items::n(now.millis()))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .classify()?;
        out.items()
            .iter()
            .map(|i| items::ids_from_keys(i).map_err(malformed))
            .collect()
    }
}
