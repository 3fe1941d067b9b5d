//! The mail half of the [`Store`](crate::ports::Store) port on DynamoDB: the
//! outgoing mail on its response item, claimed and recorded by conditional
//! `UpdateItem`s, and found due through the sparse index `mail_due`.

use super::dynamo::{DynamoStore, malformed};
use super::errors::Classify;
use super::items::{self, MailWrite};
use crate::domain::{ClaimedMail, Delivery, ResponseId, TicketId, Timestamp};
use crate::error::StoreError;
use crate::ports::StoreResult;
use aws_sdk_dynamodb::types::ReturnValue;
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
        Ok(self
            .update_response(ticket, response, w, ReturnValue::None)
            .await?
            .is_some())
    }

    pub(super) async fn record_mail_event_item(
        &self,
        ticket: TicketId,
        response: ResponseId,
        delivery: &Delivery,
    ) -> StoreResult<bool> {
        let w = items::record_event(delivery);
        Ok(self
            .update_response(ticket, response, w, ReturnValue::None)
            .await?
            .is_some())
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
