//! The [`Store`] port on SQLite; rows map to domain values in `rows.rs`.

use super::db::Db;
use super::history_store::{admin_loads, insert_events, stamp_assigned};
use super::lists::list_query;
use super::mail_store::insert_message;
use super::rows::{
    ADMIN_COLS, MESSAGE_COLS, TICKET_COLS, TICKET_COLUMNS, admin_from_row, message_from_row, parse, ticket_from_row,
    ticket_params, ticket_placeholders, ts,
};
use super::webhook_store::insert_messages;
use crate::auth::SecretHash;
use crate::domain::inbound::{InboundReceipt, StoredInbound};
use crate::domain::rules;
use crate::domain::{
    Admin, AdminId, AdminRole, AdminSummary, ApiKey, ApiKeyId, Cause, ClaimedMail, Credential, Delivery, Domain, Email,
    EventId, IdempotencyBegin, IdempotencyKey, IdempotencyRecord, KeptReply, Mail, Message, Org, OrgId, PageRequest,
    ResponseId, SigninSlot, SigninWindow, ThrottleKey, Ticket, TicketEvent, TicketFilter, TicketId, TicketPage,
    Timestamp,
};
use crate::error::StoreError;
use crate::ports::{Store, StoreResult};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, Transaction, params};
use std::sync::Arc;
use std::time::Duration;

pub struct SqliteStore {
    pub(super) db: Arc<Db>,
}

impl SqliteStore {
    pub fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

fn window_ms(window: Duration) -> i64 {
    i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 2)
}

fn apply_load_changes(tx: &Transaction, before: Option<&Ticket>, after: &Ticket) -> rusqlite::Result<()> {
    for (admin, delta) in rules::load_changes(before, after) {
        tx.execute(
            "UPDATE admins SET open_tickets = open_tickets + ?1 WHERE id = ?2",
            params![delta, admin.to_string()],
        )?;
    }
    Ok(())
}

/// The version-checked ticket write shared by updates, responses and the close job.
pub(super) fn write_ticket(tx: &Transaction, before: &Ticket, after: &Ticket) -> Result<(), StoreError> {
    let set: Vec<String> = TICKET_COLS
        .split(", ")
        .enumerate()
        .skip(1)
        .map(|(i, col)| format!("{col} = ?{}", i + 1))
        .collect();
    let sql = format!(
        "UPDATE tickets SET {} WHERE id = ?1 AND version = ?{}",
        set.join(", "),
        TICKET_COLUMNS + 1
    );
    let mut values = ticket_params(after).to_vec();
    values.push(before.version.into());
    let changed = tx.execute(&sql, rusqlite::params_from_iter(values))?;
    if changed == 0 {
        return Err(StoreError::Conflict("ticket version changed".into()));
    }
    apply_load_changes(tx, Some(before), after)?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_org(&self, org: &Org, secret: &SecretHash) -> StoreResult<()> {
        let (org, secret) = (org.clone(), secret.0.clone());
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO orgs (id, name, domain, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        org.id.to_string(),
                        org.name,
                        org.domain.as_str(),
                        secret,
                        org.created_at.millis()
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn credential(&self, secret: &SecretHash) -> StoreResult<Option<Credential>> {
        self.credential_row(secret).await
    }

    async fn create_api_key(&self, key: &ApiKey, secret: &SecretHash) -> StoreResult<()> {
        self.create_api_key_row(key, secret).await
    }

    async fn api_keys(&self, org: OrgId) -> StoreResult<Vec<ApiKey>> {
        self.api_key_rows(org).await
    }

    async fn revoke_api_key(&self, org: OrgId, id: ApiKeyId) -> StoreResult<bool> {
        self.revoke_api_key_row(org, id).await
    }

    async fn touch_api_key(&self, org: OrgId, id: ApiKeyId, at: Timestamp) -> StoreResult<()> {
        self.touch_api_key_row(org, id, at).await
    }

    async fn rotate_org_secret(&self, org: OrgId, secret: &SecretHash) -> StoreResult<()> {
        self.rotate_org_secret_row(org, secret).await
    }

    async fn begin_idempotent(&self, record: &IdempotencyRecord, now: Timestamp) -> StoreResult<IdempotencyBegin> {
        self.begin_idempotent_row(record, now).await
    }

    async fn finish_idempotent(&self, key: &IdempotencyKey, reply: &KeptReply) -> StoreResult<()> {
        self.finish_idempotent_row(key, reply).await
    }

    async fn abandon_idempotent(&self, key: &IdempotencyKey) -> StoreResult<()> {
        self.abandon_idempotent_row(key).await
    }

    async fn org_id_by_domain(&self, domain: &Domain) -> StoreResult<Option<OrgId>> {
        let domain = domain.as_str().to_owned();
        self.db
            .read(move |c| {
                Ok(c.query_row("SELECT id FROM orgs WHERE domain = ?1", [domain], |r| {
                    parse(r.get(0)?, 0)
                })
                .optional()?)
            })
            .await
    }

    async fn create_admin(&self, admin: &Admin, password_hash: &str) -> StoreResult<()> {
        let (a, hash) = (admin.clone(), password_hash.to_owned());
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO admins (id, org_id, first_name, last_name, email, password_hash, available, created_at, role)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        a.id.to_string(),
                        a.org_id.to_string(),
                        a.first_name,
                        a.last_name,
                        a.email.as_str(),
                        hash,
                        a.available,
                        a.created_at.millis(),
                        a.role.as_str()
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn admin_credentials(
        &self,
        email: &Email,
        org: Option<OrgId>,
        limit: usize,
    ) -> StoreResult<Vec<(Admin, String)>> {
        let email = email.as_str().to_owned();
        let org = org.map(|o| o.to_string());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {ADMIN_COLS}, password_hash FROM admins
                     WHERE email = ?1 AND (?2 IS NULL OR org_id = ?2) ORDER BY org_id LIMIT ?3"
                ))?;
                let rows = stmt
                    .query_map(params![email, org, limit], |r| Ok((admin_from_row(r)?, r.get(8)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await
    }

    async fn admin(&self, org: OrgId, id: AdminId) -> StoreResult<Option<Admin>> {
        self.db
            .read(move |c| {
                Ok(c.query_row(
                    &format!("SELECT {ADMIN_COLS} FROM admins WHERE id = ?1 AND org_id = ?2"),
                    [id.to_string(), org.to_string()],
                    admin_from_row,
                )
                .optional()?)
            })
            .await
    }

    async fn admin_by_email(&self, org: OrgId, email: &Email) -> StoreResult<Option<Admin>> {
        let email = email.as_str().to_owned();
        self.db
            .read(move |c| {
                Ok(c.query_row(
                    &format!("SELECT {ADMIN_COLS} FROM admins WHERE org_id = ?1 AND email = ?2"),
                    [org.to_string(), email],
                    admin_from_row,
                )
                .optional()?)
            })
            .await
    }

    async fn create_ticket(&self, ticket: &Ticket, cause: &Cause) -> StoreResult<Ticket> {
        let (mut ticket, cause) = (ticket.clone(), cause.clone());
        self.db
            .write(move |tx| {
                ticket.admin_id = rules::choose_assignee(&admin_loads(tx, ticket.org_id)?);
                tx.prepare_cached(&format!(
                    "INSERT INTO tickets ({TICKET_COLS}) VALUES ({})",
                    ticket_placeholders()
                ))?
                .execute(rusqlite::params_from_iter(ticket_params(&ticket)))?;
                apply_load_changes(tx, None, &ticket)?;
                if let Some(admin) = ticket.admin_id {
                    stamp_assigned(tx, admin, ticket.created_at.millis())?;
                }
                let events = cause.events(None, &ticket);
                insert_events(tx, &events)?;
                insert_messages(tx, &ticket, &events)?;
                Ok(ticket)
            })
            .await
    }

    async fn ticket(&self, id: TicketId) -> StoreResult<Option<Ticket>> {
        self.db
            .read(move |c| {
                Ok(
                    c.prepare_cached(&format!("SELECT {TICKET_COLS} FROM tickets WHERE id = ?1"))?
                        .query_row([id.to_string()], ticket_from_row)
                        .optional()?,
                )
            })
            .await
    }

    async fn update_ticket(&self, before: &Ticket, after: &Ticket, cause: &Cause) -> StoreResult<()> {
        let (before, after, cause) = (before.clone(), after.clone(), cause.clone());
        self.db
            .write(move |tx| {
                write_ticket(tx, &before, &after)?;
                let events = cause.events(Some(&before), &after);
                insert_events(tx, &events)?;
                insert_messages(tx, &after, &events)
            })
            .await
    }

    async fn add_message(
        &self,
        before: &Ticket,
        after: &Ticket,
        message: &Message,
        mail: Option<&Mail>,
        cause: &Cause,
    ) -> StoreResult<()> {
        let (before, after, m, mail, cause) = (
            before.clone(),
            after.clone(),
            message.clone(),
            mail.cloned(),
            cause.clone(),
        );
        self.db
            .write(move |tx| {
                write_ticket(tx, &before, &after)?;
                insert_message(tx, &m, mail.as_ref())?;
                let events = cause.events(Some(&before), &after);
                insert_events(tx, &events)?;
                insert_messages(tx, &after, &events)
            })
            .await
    }

    async fn assign_ticket(&self, before: &Ticket, cause: &Cause) -> StoreResult<Option<Ticket>> {
        self.assign_row(before, cause).await
    }

    async fn unassigned_tickets(&self, org: OrgId, limit: usize) -> StoreResult<Vec<TicketId>> {
        self.unassigned_rows(org, limit).await
    }

    async fn assignment_backlog(&self, limit: usize) -> StoreResult<Vec<OrgId>> {
        self.backlog_rows(limit).await
    }

    async fn set_assignment_backlog(&self, org: OrgId, pending: bool) -> StoreResult<()> {
        self.set_backlog_row(org, pending).await
    }

    async fn set_admin_available(&self, org: OrgId, id: AdminId, available: bool) -> StoreResult<Option<Admin>> {
        self.set_available_row(org, id, available).await
    }

    async fn set_admin_role(&self, org: OrgId, id: AdminId, role: AdminRole) -> StoreResult<Option<Admin>> {
        self.set_role_row(org, id, role).await
    }

    async fn list_admins(&self, org: OrgId, after: Option<AdminId>, limit: usize) -> StoreResult<Vec<AdminSummary>> {
        self.admin_rows(org, after, limit).await
    }

    async fn add_events(&self, events: &[TicketEvent]) -> StoreResult<()> {
        self.add_event_rows(events).await
    }

    async fn ticket_events(
        &self,
        ticket: TicketId,
        after: Option<EventId>,
        limit: usize,
    ) -> StoreResult<Vec<TicketEvent>> {
        self.event_rows(ticket, after, limit).await
    }

    async fn claim_mail(
        &self,
        ticket: TicketId,
        response: ResponseId,
        now: Timestamp,
        lease: Duration,
    ) -> StoreResult<Option<ClaimedMail>> {
        self.claim_mail_row(ticket, response, now, lease).await
    }

    async fn record_attempt(
        &self,
        ticket: TicketId,
        response: ResponseId,
        lease: &str,
        outcome: &Delivery,
    ) -> StoreResult<bool> {
        self.record_attempt_row(ticket, response, lease, outcome).await
    }

    async fn record_mail_event(
        &self,
        ticket: TicketId,
        response: ResponseId,
        delivery: &Delivery,
    ) -> StoreResult<bool> {
        self.record_mail_event_row(ticket, response, delivery).await
    }

    async fn due_mail(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<(TicketId, ResponseId)>> {
        self.due_mail_rows(now, limit).await
    }

    async fn ticket_with_messages(&self, id: TicketId) -> StoreResult<Option<(Ticket, Vec<Message>)>> {
        self.db
            .read(move |c| {
                let Some(ticket) = c
                    .prepare_cached(&format!("SELECT {TICKET_COLS} FROM tickets WHERE id = ?1"))?
                    .query_row([id.to_string()], ticket_from_row)
                    .optional()?
                else {
                    return Ok(None);
                };
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {MESSAGE_COLS} FROM responses WHERE ticket_id = ?1 ORDER BY created_at, id"
                ))?;
                let messages = stmt
                    .query_map([id.to_string()], message_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(Some((ticket, messages)))
            })
            .await
    }

    async fn reserve_signin_attempt(
        &self,
        key: &ThrottleKey,
        now: Timestamp,
        window: Duration,
        max: u32,
    ) -> StoreResult<SigninSlot> {
        let (key, now, cutoff) = (key.storage_key(), now.millis(), now.millis() - window_ms(window));
        // One immediate transaction on the one writer: the count and the
        // check cannot interleave with another attempt's.
        self.db
            .write(move |tx| {
                let open = tx
                    .query_row(
                        "SELECT failures, window_start FROM signin_throttle WHERE key = ?1 AND window_start > ?2",
                        params![key, cutoff],
                        |r| {
                            Ok(SigninWindow {
                                failures: r.get(0)?,
                                started_at: ts(r.get(1)?),
                            })
                        },
                    )
                    .optional()?;
                Ok(match open {
                    Some(w) if w.failures >= max => SigninSlot::Refused(w),
                    Some(w) => {
                        tx.execute(
                            "UPDATE signin_throttle SET failures = failures + 1 WHERE key = ?1",
                            [&key],
                        )?;
                        SigninSlot::Taken(SigninWindow {
                            failures: w.failures + 1,
                            ..w
                        })
                    }
                    None => {
                        tx.execute(
                            "INSERT INTO signin_throttle (key, window_start, failures) VALUES (?1, ?2, 1)
                             ON CONFLICT (key) DO UPDATE SET failures = 1, window_start = ?2",
                            params![key, now],
                        )?;
                        // Forget windows long over, so the table stays small.
                        tx.execute(
                            "DELETE FROM signin_throttle WHERE window_start <= ?1 AND key != ?2",
                            params![cutoff, key],
                        )?;
                        SigninSlot::Taken(SigninWindow {
                            failures: 1,
                            started_at: ts(now),
                        })
                    }
                })
            })
            .await
    }

    async fn release_signin_attempt(&self, key: &ThrottleKey, started_at: Timestamp) -> StoreResult<()> {
        let (key, started_at) = (key.storage_key(), started_at.millis());
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE signin_throttle SET failures = failures - 1
                     WHERE key = ?1 AND window_start = ?2 AND failures > 0",
                    params![key, started_at],
                )?;
                Ok(())
            })
            .await
    }

    async fn clear_signin_failures(&self, key: &ThrottleKey) -> StoreResult<()> {
        let key = key.storage_key();
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM signin_throttle WHERE key = ?1", [key])?;
                Ok(())
            })
            .await
    }

    async fn save_inbound(&self, receipt: &InboundReceipt, raw: &[u8]) -> StoreResult<StoredInbound> {
        self.save_inbound_row(receipt, raw).await
    }

    async fn finish_inbound(
        &self,
        key: &str,
        outcome: &str,
        ticket: Option<TicketId>,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.finish_inbound_row(key, outcome, ticket, at).await
    }

    async fn due_auto_closes(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Ticket>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .read(move |c| {
                // Served by the partial index `tickets_due` (schema_6).
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {TICKET_COLS} FROM tickets
                     WHERE status = 'RESPONDED' AND auto_close_at IS NOT NULL AND auto_close_at <= ?1
                     ORDER BY auto_close_at, id LIMIT ?2"
                ))?;
                let tickets = stmt
                    .query_map(rusqlite::params![now.millis(), limit], ticket_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(tickets)
            })
            .await
    }

    async fn list_tickets(&self, org: OrgId, filter: &TicketFilter, page: PageRequest) -> StoreResult<TicketPage> {
        let (sql, values) = list_query(org, filter, page);
        let limit = page.limit;
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(&sql)?;
                let tickets = stmt
                    .query_map(rusqlite::params_from_iter(values), ticket_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(TicketPage::from_overfetched(tickets, limit))
            })
            .await
    }
}
