//! The history and people half of the [`Store`](crate::ports::Store) port on
//! DynamoDB: event items written in each ticket write's transaction, the
//! history Query, the sparse `unassigned` index and the backlog marks,
//! availability and the admin list.

use super::dynamo::{DynamoStore, malformed};
use super::errors::Classify;
use super::items::{self, Item, s};
use crate::domain::webhooks::{self, WebhookMessage};
use crate::domain::{Admin, AdminId, AdminRole, AdminSummary, EventId, OrgId, Ticket, TicketEvent, TicketId};
use crate::ports::StoreResult;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use std::collections::HashMap;

impl DynamoStore {
    /// Puts of new event items, as transaction parts.
    pub(super) fn event_puts(&self, events: &[TicketEvent]) -> StoreResult<Vec<TransactWriteItem>> {
        self.puts_of(events, Default::default())
    }

    /// The event puts of a write of `after`: the events that are webhook
    /// messages carry them (the outbox; the table stream takes them on).
    pub(super) fn ticket_event_puts(
        &self,
        events: &[TicketEvent],
        after: &Ticket,
    ) -> StoreResult<Vec<TransactWriteItem>> {
        let messages: HashMap<EventId, WebhookMessage> = webhooks::messages(after, events).into_iter().collect();
        self.puts_of(events, messages)
    }

    fn puts_of(
        &self,
        events: &[TicketEvent],
        messages: HashMap<EventId, WebhookMessage>,
    ) -> StoreResult<Vec<TransactWriteItem>> {
        events
            .iter()
            .map(|e| {
                let mut item = items::event_item(e).map_err(malformed)?;
                if let Some(m) = messages.get(&e.id) {
                    item.extend(items::webhooks::outbox_attrs(m, e.at).map_err(malformed)?);
                }
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .expect("complete put");
                Ok(TransactWriteItem::builder().put(put).build())
            })
            .collect()
    }

    pub(super) async fn add_event_items(&self, events: &[TicketEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.transact(self.event_puts(events)?).await
    }

    /// One Query of the ticket's partition, `EVENT#` items only, oldest first.
    pub(super) async fn event_items(
        &self,
        ticket: TicketId,
        after: Option<EventId>,
        limit: usize,
    ) -> StoreResult<Vec<TicketEvent>> {
        let start = after.map(|a| items::event_key(ticket, a));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :event)")
            .expression_attribute_values(":pk", s(items::ticket_partition(ticket)))
            .expression_attribute_values(":event", s(items::EVENT_PREFIX))
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .consistent_read(true)
            .send()
            .await
            .classify()?;
        out.items()
            .iter()
            .map(|i| items::event_from(i).map_err(malformed))
            .collect()
    }

    /// One Query of the sparse `unassigned` index, oldest first.
    pub(super) async fn unassigned_items(&self, org: OrgId, limit: usize) -> StoreResult<Vec<TicketId>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(items::UNASSIGNED_INDEX)
            .key_condition_expression(format!("{} = :org", items::UNASSIGNED_PK))
            .expression_attribute_values(":org", s(org.to_string()))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .classify()?;
        out.items()
            .iter()
            .map(|i| items::ticket_id_from_keys(i).map_err(malformed))
            .collect()
    }

    pub(super) async fn backlog_items(&self, limit: usize) -> StoreResult<Vec<OrgId>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(items::BACKLOG_PARTITION))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .classify()?;
        out.items()
            .iter()
            .map(|i| items::backlog_org_from(i).map_err(malformed))
            .collect()
    }

    pub(super) async fn set_backlog_item(&self, org: OrgId, pending: bool) -> StoreResult<()> {
        let key = items::backlog_key(org);
        if pending {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(key))
                .send()
                .await
                .classify()?;
        } else {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .send()
                .await
                .classify()?;
        }
        Ok(())
    }

    /// Availability lives on the admin item (assignment reads it) and on the
    /// credentials item (sign-in reads it): both change in one transaction.
    pub(super) async fn set_available_items(
        &self,
        org: OrgId,
        id: AdminId,
        available: bool,
    ) -> StoreResult<Option<Admin>> {
        let Some(mut admin) = self.admin_item(org, id).await? else {
            return Ok(None);
        };
        let update = |key: Item| {
            let u = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression("SET available = :a")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":a", AttributeValue::Bool(available))
                .build()
                .expect("complete update");
            TransactWriteItem::builder().update(u).build()
        };
        self.transact(vec![
            update(items::admin_key(org, id)),
            update(items::credentials_key(&admin.email, org)),
        ])
        .await?;
        admin.available = available;
        Ok(Some(admin))
    }

    /// The role on both of the admin's items (org partition, credentials) at once.
    pub(super) async fn set_role_items(&self, org: OrgId, id: AdminId, role: AdminRole) -> StoreResult<Option<Admin>> {
        let Some(mut admin) = self.admin_item(org, id).await? else {
            return Ok(None);
        };
        let update = |key: Item| {
            let u = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression("SET #role = :r")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#role", "role")
                .expression_attribute_values(":r", AttributeValue::S(role.as_str().to_owned()))
                .build()
                .expect("complete update");
            TransactWriteItem::builder().update(u).build()
        };
        self.transact(vec![
            update(items::admin_key(org, id)),
            update(items::credentials_key(&admin.email, org)),
        ])
        .await?;
        admin.role = role;
        Ok(Some(admin))
    }

    async fn admin_item(&self, org: OrgId, id: AdminId) -> StoreResult<Option<Admin>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(items::admin_key(org, id)))
            .consistent_read(true)
            .send()
            .await
            .classify()?;
        out.item.map(|i| items::admin_from(&i).map_err(malformed)).transpose()
    }

    /// One Query of the org's partition, admin items only, in id order.
    pub(super) async fn admin_summaries(
        &self,
        org: OrgId,
        after: Option<AdminId>,
        limit: usize,
    ) -> StoreResult<Vec<AdminSummary>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :admin)")
            .expression_attribute_values(":pk", s(items::org_partition(org)))
            .expression_attribute_values(":admin", s(items::ADMIN_PREFIX))
            .set_exclusive_start_key(after.map(|a| items::admin_key(org, a)))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .consistent_read(true)
            .send()
            .await
            .classify()?;
        out.items()
            .iter()
            .map(|i| items::summary_from(i).map_err(malformed))
            .collect()
    }
}
