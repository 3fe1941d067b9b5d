//! The [`Store`] port on one DynamoDB table. Every call is a `GetItem`, a
//! `Query` or a (transactional) write; nothing scans.

use super::budgets::{self, CallLimits};
use super::errors::Classify;
use super::items::{self, Item, s};
use super::sdk::DEFAULT_CALL_TIMEOUT;
use crate::auth::SecretHash;
use crate::domain::inbound::{InboundReceipt, StoredInbound};
use crate::domain::rules;
use crate::domain::{
    Admin, AdminId, AdminLoad, AdminRole, AdminSummary, ApiKey, ApiKeyId, Cause, ClaimedMail, Credential, Delivery,
    Domain, Email, EventId, IdempotencyBegin, IdempotencyKey, IdempotencyRecord, KeptReply, Mail, Message, Org, OrgId,
    PageRequest, ResponseId, SigninSlot, ThrottleKey, Ticket, TicketEvent, TicketFilter, TicketId, TicketPage,
    Timestamp,
};
use crate::error::StoreError;
use crate::ports::{Store, StoreResult};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use std::time::Duration;

pub struct DynamoStore {
    pub(super) client: Client,
    pub(super) table: String,
    /// Creates for one org take turns within this process, so a burst does not
    /// become a herd of conflicting transactions; across processes (Lambda
    /// instances) the conditional counter update keeps assignment right.
    pub(super) assign_turns: Vec<tokio::sync::Mutex<()>>,
    /// How long a create keeps retrying when other creates keep taking the
    /// chosen admin's counter first (a burst on one org); then it is a 503.
    /// Derived from the client's own call timeout (see `budgets`).
    pub(super) assign_window: Duration,
}

pub(super) const ASSIGN_STRIPES: usize = 64;

pub(super) fn malformed(e: items::Malformed) -> StoreError {
    StoreError::Internal(e.into())
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let operation = client
            .config()
            .timeout_config()
            .and_then(|t| t.operation_timeout())
            .unwrap_or(DEFAULT_CALL_TIMEOUT);
        Self {
            client,
            table: table.into(),
            assign_turns: (0..ASSIGN_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            assign_window: budgets::assign_window(&CallLimits::for_operation(operation)),
        }
    }

    pub(super) fn put(&self, item: Item, condition: &str) -> Put {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .expect("table, item and condition are set")
    }

    /// One transaction, with a fresh idempotency token: when an attempt commits
    /// but its answer is lost (timeout), the SDK's retry carries the same token
    /// and DynamoDB answers it with the first outcome (for 10 minutes) instead
    /// of failing its conditions against the items that attempt wrote: a false
    /// 409 on an org signup that succeeded.
    pub(super) async fn transact(&self, writes: Vec<TransactWriteItem>) -> StoreResult<()> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .send()
            .await
            .classify()?;
        Ok(())
    }

    /// Puts every item only if its key is new, all or none.
    pub(super) async fn put_all_new(&self, items: Vec<Item>) -> StoreResult<()> {
        let writes = items
            .into_iter()
            .map(|item| {
                TransactWriteItem::builder()
                    .put(self.put(item, "attribute_not_exists(pk)"))
                    .build()
            })
            .collect();
        self.transact(writes).await?;
        Ok(())
    }

    pub(super) async fn get(&self, key: Item) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .classify()?;
        Ok(out.item)
    }

    /// The version-checked ticket write, with the assignee counters it moves,
    /// plus any `extra` writes, all in one transaction (or one conditional put
    /// when nothing else changes).
    async fn write_ticket(&self, before: &Ticket, after: &Ticket, extra: Vec<TransactWriteItem>) -> StoreResult<()> {
        let guard = items::ticket_guard(before);
        let changes = rules::load_changes(Some(before), after);
        if changes.is_empty() && extra.is_empty() {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(items::ticket_item(after)))
                .condition_expression(guard.condition)
                .set_expression_attribute_names(Some(guard.names))
                .set_expression_attribute_values(Some(guard.values))
                .send()
                .await
                .classify()?;
            return Ok(());
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(items::ticket_item(after)))
            .condition_expression(guard.condition)
            .set_expression_attribute_names(Some(guard.names))
            .set_expression_attribute_values(Some(guard.values))
            .build()
            .expect("complete put");
        let mut writes = vec![TransactWriteItem::builder().put(put).build()];
        writes.extend(
            changes
                .into_iter()
                .map(|(admin, delta)| self.counter_update(after.org_id, admin, delta, None)),
        );
        writes.extend(extra);
        self.transact(writes).await?;
        Ok(())
    }

    /// [`items::counter_update`] on one admin, as a transaction part.
    pub(super) fn counter_update(
        &self,
        org: OrgId,
        admin: AdminId,
        delta: i64,
        assigned: Option<(Timestamp, i64)>,
    ) -> TransactWriteItem {
        let change = items::counter_update(delta, assigned);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(items::admin_key(org, admin)))
            .update_expression(change.update)
            .condition_expression(change.condition)
            .set_expression_attribute_values(Some(change.values))
            .build()
            .expect("complete update");
        TransactWriteItem::builder().update(update).build()
    }

    /// Every admin of `org` with its assignment counters, read consistently.
    pub(super) async fn admin_loads(&self, org: OrgId) -> StoreResult<Vec<AdminLoad>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :admin)")
            .expression_attribute_values(":pk", s(items::org_partition(org)))
            .expression_attribute_values(":admin", s(items::ADMIN_PREFIX))
            .consistent_read(true)
            .send()
            .await
            .classify()?;
        out.items()
            .iter()
            .map(items::load_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(malformed)
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn create_org(&self, org: &Org, secret: &SecretHash) -> StoreResult<()> {
        let fields = items::org_fields(org);
        let with = |mut key: Item| {
            key.extend(fields.clone());
            key
        };
        let mut org_item = with(items::org_key(org.id));
        // Names the secret's item, so that a rotation can delete it.
        org_item.insert(items::keys::ORG_SECRET_HASH.into(), items::s(&secret.0));
        self.put_all_new(vec![
            org_item,
            items::domain_marker_item(org),
            with(items::secret_key(&secret.0)),
        ])
        .await
    }

    async fn credential(&self, secret: &SecretHash) -> StoreResult<Option<Credential>> {
        self.credential_item(secret).await
    }

    async fn create_api_key(&self, key: &ApiKey, secret: &SecretHash) -> StoreResult<()> {
        self.create_api_key_items(key, secret).await
    }

    async fn api_keys(&self, org: OrgId) -> StoreResult<Vec<ApiKey>> {
        self.api_key_items(org).await
    }

    async fn revoke_api_key(&self, org: OrgId, id: ApiKeyId) -> StoreResult<bool> {
        self.revoke_api_key_items(org, id).await
    }

    async fn touch_api_key(&self, org: OrgId, id: ApiKeyId, at: Timestamp) -> StoreResult<()> {
        self.touch_api_key_item(org, id, at).await
    }

    async fn rotate_org_secret(&self, org: OrgId, secret: &SecretHash) -> StoreResult<()> {
        self.rotate_org_secret_items(org, secret).await
    }

    async fn begin_idempotent(&self, record: &IdempotencyRecord, now: Timestamp) -> StoreResult<IdempotencyBegin> {
        self.begin_idempotent_item(record, now).await
    }

    async fn finish_idempotent(&self, key: &IdempotencyKey, reply: &KeptReply) -> StoreResult<()> {
        self.finish_idempotent_item(key, reply).await
    }

    async fn abandon_idempotent(&self, key: &IdempotencyKey) -> StoreResult<()> {
        self.abandon_idempotent_item(key).await
    }

    async fn org_id_by_domain(&self, domain: &Domain) -> StoreResult<Option<OrgId>> {
        self.get(items::domain_key(domain))
            .await?
            .map(|i| items::org_id_from(&i).map_err(malformed))
            .transpose()
    }

    async fn create_admin(&self, admin: &Admin, password_hash: &str) -> StoreResult<()> {
        self.put_all_new(vec![
            items::credentials_item(admin, password_hash),
            items::admin_item(admin),
        ])
        .await
    }

    async fn admin_credentials(
        &self,
        email: &Email,
        org: Option<OrgId>,
        limit: usize,
    ) -> StoreResult<Vec<(Admin, String)>> {
        let found = match org {
            Some(org) => self
                .get(items::credentials_key(email, org))
                .await?
                .into_iter()
                .collect(),
            None => self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(items::email_partition(email)))
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .consistent_read(true)
                .send()
                .await
                .classify()?
                .items
                .unwrap_or_default(),
        };
        found
            .iter()
            .take(limit)
            .map(|i| items::credentials_from(i).map_err(malformed))
            .collect()
    }

    async fn admin(&self, org: OrgId, id: AdminId) -> StoreResult<Option<Admin>> {
        self.get(items::admin_key(org, id))
            .await?
            .map(|i| items::admin_from(&i).map_err(malformed))
            .transpose()
    }

    async fn admin_by_email(&self, org: OrgId, email: &Email) -> StoreResult<Option<Admin>> {
        self.get(items::credentials_key(email, org))
            .await?
            .map(|i| items::admin_from(&i).map_err(malformed))
            .transpose()
    }

    async fn create_ticket(&self, ticket: &Ticket, cause: &Cause) -> StoreResult<Ticket> {
        self.create_ticket_item(ticket, cause).await
    }

    async fn ticket(&self, id: TicketId) -> StoreResult<Option<Ticket>> {
        self.get(items::ticket_key(id))
            .await?
            .map(|i| items::ticket_from(&i).map_err(malformed))
            .transpose()
    }

    async fn update_ticket(&self, before: &Ticket, after: &Ticket, cause: &Cause) -> StoreResult<()> {
        let events = self.ticket_event_puts(&cause.events(Some(before), after), after)?;
        self.write_ticket(before, after, events).await
    }

    async fn add_message(
        &self,
        before: &Ticket,
        after: &Ticket,
        message: &Message,
        mail: Option<&Mail>,
        cause: &Cause,
    ) -> StoreResult<()> {
        let put = self.put(items::message_item(message, mail), "attribute_not_exists(pk)");
        let mut extra = vec![TransactWriteItem::builder().put(put).build()];
        extra.extend(self.ticket_event_puts(&cause.events(Some(before), after), after)?);
        self.write_ticket(before, after, extra).await
    }

    async fn assign_ticket(&self, before: &Ticket, cause: &Cause) -> StoreResult<Option<Ticket>> {
        self.assign_item(before, cause).await
    }

    async fn unassigned_tickets(&self, org: OrgId, limit: usize) -> StoreResult<Vec<TicketId>> {
        self.unassigned_items(org, limit).await
    }

    async fn assignment_backlog(&self, limit: usize) -> StoreResult<Vec<OrgId>> {
        self.backlog_items(limit).await
    }

    async fn set_assignment_backlog(&self, org: OrgId, pending: bool) -> StoreResult<()> {
        self.set_backlog_item(org, pending).await
    }

    async fn set_admin_available(&self, org: OrgId, id: AdminId, available: bool) -> StoreResult<Option<Admin>> {
        self.set_available_items(org, id, available).await
    }

    async fn set_admin_role(&self, org: OrgId, id: AdminId, role: AdminRole) -> StoreResult<Option<Admin>> {
        self.set_role_items(org, id, role).await
    }

    async fn list_admins(&self, org: OrgId, after: Option<AdminId>, limit: usize) -> StoreResult<Vec<AdminSummary>> {
        self.admin_summaries(org, after, limit).await
    }

    async fn add_events(&self, events: &[TicketEvent]) -> StoreResult<()> {
        self.add_event_items(events).await
    }

    async fn ticket_events(
        &self,
        ticket: TicketId,
        after: Option<EventId>,
        limit: usize,
    ) -> StoreResult<Vec<TicketEvent>> {
        self.event_items(ticket, after, limit).await
    }

    async fn claim_mail(
        &self,
        ticket: TicketId,
        response: ResponseId,
        now: Timestamp,
        lease: Duration,
    ) -> StoreResult<Option<ClaimedMail>> {
        self.claim_mail_item(ticket, response, now, lease).await
    }

    async fn record_attempt(
        &self,
        ticket: TicketId,
        response: ResponseId,
        lease: &str,
        outcome: &Delivery,
    ) -> StoreResult<bool> {
        self.record_attempt_item(ticket, response, lease, outcome).await
    }

    async fn record_mail_event(
        &self,
        ticket: TicketId,
        response: ResponseId,
        delivery: &Delivery,
    ) -> StoreResult<bool> {
        self.record_mail_event_item(ticket, response, delivery).await
    }

    async fn due_mail(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<(TicketId, ResponseId)>> {
        self.due_mail_items(now, limit).await
    }

    /// One Query on the ticket's partition returns the ticket and its
    /// messages; the key condition starts past the ticket's events.
    async fn ticket_with_messages(&self, id: TicketId) -> StoreResult<Option<(Ticket, Vec<Message>)>> {
        let mut ticket = None;
        let mut messages = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk >= :past_events")
                .expression_attribute_values(":pk", s(items::ticket_partition(id)))
                .expression_attribute_values(":past_events", s(items::AFTER_EVENTS))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .classify()?;
            for item in out.items() {
                match items::get_s(item, items::SK).map_err(malformed)? {
                    items::TICKET_SK => ticket = Some(items::ticket_from(item).map_err(malformed)?),
                    _ => messages.push(items::message_from(item).map_err(malformed)?),
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(ticket.map(|t| (t, messages)))
    }

    async fn reserve_signin_attempt(
        &self,
        key: &ThrottleKey,
        now: Timestamp,
        window: Duration,
        max: u32,
    ) -> StoreResult<SigninSlot> {
        self.reserve_signin_item(key, now, window, max).await
    }

    async fn release_signin_attempt(&self, key: &ThrottleKey, started_at: Timestamp) -> StoreResult<()> {
        self.release_signin_item(key, started_at).await
    }

    async fn clear_signin_failures(&self, key: &ThrottleKey) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(items::throttle_key(key)))
            .send()
            .await
            .classify()?;
        Ok(())
    }

    async fn save_inbound(&self, receipt: &InboundReceipt, raw: &[u8]) -> StoreResult<StoredInbound> {
        self.save_inbound_item(receipt, raw).await
    }

    async fn finish_inbound(
        &self,
        key: &str,
        outcome: &str,
        ticket: Option<TicketId>,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.finish_inbound_item(key, outcome, ticket, at).await
    }

    async fn due_auto_closes(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Ticket>> {
        self.due_tickets(now, limit).await
    }

    async fn list_tickets(&self, org: OrgId, filter: &TicketFilter, page: PageRequest) -> StoreResult<TicketPage> {
        Ok(self.list_tickets_measured(org, filter, page).await?.0)
    }
}
