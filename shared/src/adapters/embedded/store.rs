//! The [`Store`] port on SQLite; rows map to domain values in `rows.rs`.

use super::db::Db;
use super::mail_store::insert_message;
use super::rows::{
    ADMIN_COLS, MESSAGE_COLS, ORG_COLS, TICKET_COLS, TICKET_COLUMNS, admin_from_row, message_from_row, org_from_row,
    parse, ticket_from_row, ticket_params, ticket_placeholders, ts,
};
use crate::auth::SecretHash;
use crate::domain::inbound::{InboundReceipt, StoredInbound};
use crate::domain::rules;
use crate::domain::{
    Admin, AdminId, AdminLoad, ClaimedMail, Delivery, Domain, Email, Mail, Message, Org, OrgId, PageRequest,
    ResponseId, SigninWindow, ThrottleKey, Ticket, TicketFilter, TicketId, TicketPage, Timestamp,
};
use crate::error::StoreError;
use crate::ports::{Store, StoreResult};
use async_trait::async_trait;
use rusqlite::types::Value;
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
fn write_ticket(tx: &Transaction, before: &Ticket, after: &Ticket) -> Result<(), StoreError> {
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

    async fn org_by_secret(&self, secret: &SecretHash) -> StoreResult<Option<Org>> {
        let secret = secret.0.clone();
        self.db
            .read(move |c| {
                Ok(c.query_row(
                    &format!("SELECT {ORG_COLS} FROM orgs WHERE secret_hash = ?1"),
                    [secret],
                    org_from_row,
                )
                .optional()?)
            })
            .await
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
                    "INSERT INTO admins (id, org_id, first_name, last_name, email, password_hash, available, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        a.id.to_string(),
                        a.org_id.to_string(),
                        a.first_name,
                        a.last_name,
                        a.email.as_str(),
                        hash,
                        a.available,
                        a.created_at.millis()
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
                     WHERE email = ?1 AND (?2 IS NULL OR org_id = ?2) LIMIT ?3"
                ))?;
                let rows = stmt
                    .query_map(params![email, org, limit], |r| Ok((admin_from_row(r)?, r.get(7)?)))?
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

    async fn create_ticket(&self, ticket: &Ticket) -> StoreResult<Ticket> {
        let mut ticket = ticket.clone();
        self.db
            .write(move |tx| {
                let loads = {
                    let mut stmt = tx.prepare_cached(
                        "SELECT id, available, open_tickets, last_assigned_at FROM admins WHERE org_id = ?1",
                    )?;
                    stmt.query_map([ticket.org_id.to_string()], |r| {
                        Ok(AdminLoad {
                            admin_id: parse(r.get(0)?, 0)?,
                            available: r.get(1)?,
                            open_tickets: r.get(2)?,
                            last_assigned_at: r.get::<_, Option<i64>>(3)?.map(ts),
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?
                };
                ticket.admin_id = rules::choose_assignee(&loads);
                tx.prepare_cached(&format!(
                    "INSERT INTO tickets ({TICKET_COLS}) VALUES ({})",
                    ticket_placeholders()
                ))?
                .execute(rusqlite::params_from_iter(ticket_params(&ticket)))?;
                apply_load_changes(tx, None, &ticket)?;
                if let Some(admin) = ticket.admin_id {
                    tx.execute(
                        "UPDATE admins SET last_assigned_at = ?1 WHERE id = ?2",
                        params![ticket.created_at.millis(), admin.to_string()],
                    )?;
                }
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

    async fn update_ticket(&self, before: &Ticket, after: &Ticket) -> StoreResult<()> {
        let (before, after) = (before.clone(), after.clone());
        self.db.write(move |tx| write_ticket(tx, &before, &after)).await
    }

    async fn add_message(
        &self,
        before: &Ticket,
        after: &Ticket,
        message: &Message,
        mail: Option<&Mail>,
    ) -> StoreResult<()> {
        let (before, after, m, mail) = (before.clone(), after.clone(), message.clone(), mail.cloned());
        self.db
            .write(move |tx| {
                write_ticket(tx, &before, &after)?;
                insert_message(tx, &m, mail.as_ref())
            })
            .await
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

    async fn signin_failures(
        &self,
        key: &ThrottleKey,
        now: Timestamp,
        window: Duration,
    ) -> StoreResult<Option<SigninWindow>> {
        let (key, cutoff) = (key.storage_key(), now.millis() - window_ms(window));
        self.db
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT failures, window_start FROM signin_throttle WHERE key = ?1 AND window_start > ?2",
                    params![key, cutoff],
                    |r| {
                        Ok(SigninWindow {
                            failures: r.get(0)?,
                            started_at: ts(r.get(1)?),
                        })
                    },
                )
                .optional()?)
            })
            .await
    }

    async fn record_signin_failure(&self, key: &ThrottleKey, now: Timestamp, window: Duration) -> StoreResult<()> {
        let (key, now, cutoff) = (key.storage_key(), now.millis(), now.millis() - window_ms(window));
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO signin_throttle (key, window_start, failures) VALUES (?1, ?2, 1)
                     ON CONFLICT (key) DO UPDATE SET
                       failures = CASE WHEN window_start > ?3 THEN failures + 1 ELSE 1 END,
                       window_start = CASE WHEN window_start > ?3 THEN window_start ELSE ?2 END",
                    params![key, now, cutoff],
                )?;
                // Forget windows long over, so the table stays small.
                tx.execute(
                    "DELETE FROM signin_throttle WHERE window_start <= ?1 AND key != ?2",
                    params![cutoff, key],
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

impl SqliteStore {
    /// Inserts tickets as they are, in one transaction: for imports and
    /// benchmarks. Assignment and admin counters are left untouched.
    pub async fn bulk_import_tickets(&self, tickets: Vec<Ticket>) -> StoreResult<()> {
        self.db
            .write(move |tx| {
                let mut stmt = tx.prepare_cached(&format!(
                    "INSERT INTO tickets ({TICKET_COLS}) VALUES ({})",
                    ticket_placeholders()
                ))?;
                for t in &tickets {
                    stmt.execute(rusqlite::params_from_iter(ticket_params(t)))?;
                }
                Ok(())
            })
            .await
    }
}

/// The list SQL for a filter; each combination matches one `tickets_by_*` index.
pub(super) fn list_query(org: OrgId, filter: &TicketFilter, page: PageRequest) -> (String, Vec<Value>) {
    let mut sql = format!("SELECT {TICKET_COLS} FROM tickets WHERE org_id = ?");
    let mut values: Vec<Value> = vec![org.to_string().into()];
    if let Some(admin) = filter.admin_id {
        sql.push_str(" AND admin_id = ?");
        values.push(admin.to_string().into());
    }
    if let Some(customer) = &filter.customer {
        sql.push_str(" AND added_by = ?");
        values.push(customer.as_str().to_owned().into());
    }
    if let Some(status) = filter.status {
        sql.push_str(" AND status = ?");
        values.push(status.as_str().to_owned().into());
    }
    if let Some(after) = page.after {
        sql.push_str(" AND (created_at, id) < (?, ?)");
        values.push(after.created_at.millis().into());
        values.push(after.id.to_string().into());
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
    values.push(i64::try_from(page.limit + 1).unwrap_or(i64::MAX).into());
    (sql, values)
}
