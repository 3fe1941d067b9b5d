//! The mail half of the [`Store`](crate::ports::Store) port on SQLite: the
//! outgoing mail kept on its response row, claimed, recorded, and found due
//! through the partial index `responses_mail_due`.

use super::rows::parse;
use super::store::SqliteStore;
use crate::domain::{ClaimedMail, Delivery, Email, Mail, Response, ResponseId, TicketId, Timestamp};
use crate::error::StoreError;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Transaction, params};
use std::time::Duration;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Inserts `r` with its pending `mail` (inside add_response's transaction).
pub(super) fn insert_response(tx: &Transaction, r: &Response, mail: &Mail) -> Result<(), StoreError> {
    let p = r.delivery.parts();
    tx.execute(
        "INSERT INTO responses (id, ticket_id, admin_id, message, created_at, delivery_state, delivery_message_id,
             delivery_reason, delivery_at, mail_next_at, mail_to, mail_from, mail_subject, mail_body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            r.id.to_string(),
            r.ticket_id.to_string(),
            r.admin_id.to_string(),
            r.message,
            r.created_at.millis(),
            p.state,
            p.message_id,
            p.reason,
            p.at.map(Timestamp::millis),
            p.next_attempt_at.map(Timestamp::millis),
            mail.to.as_str(),
            mail.from,
            mail.subject,
            mail.text,
        ],
    )?;
    Ok(())
}

impl SqliteStore {
    pub(super) async fn claim_mail_row(
        &self,
        ticket: TicketId,
        response: ResponseId,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<ClaimedMail>, StoreError> {
        let token = uuid::Uuid::new_v4().to_string();
        self.db
            .write(move |tx| {
                let claimed = tx
                    .query_row(
                        "UPDATE responses
                         SET mail_attempts = mail_attempts + 1, mail_next_at = ?1, mail_lease = ?2
                         WHERE id = ?3 AND ticket_id = ?4 AND delivery_state = 'pending' AND mail_next_at <= ?5
                           AND mail_to IS NOT NULL
                         RETURNING mail_to, mail_from, mail_subject, mail_body, mail_attempts",
                        params![
                            now.millis() + millis(lease),
                            token,
                            response.to_string(),
                            ticket.to_string(),
                            now.millis()
                        ],
                        |r| {
                            Ok(ClaimedMail {
                                mail: Mail {
                                    to: Email::from_trusted(r.get(0)?),
                                    from: r.get(1)?,
                                    subject: r.get(2)?,
                                    text: r.get(3)?,
                                    ticket_id: ticket,
                                    response_id: response,
                                },
                                attempt: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
                                lease: token.clone(),
                            })
                        },
                    )
                    .optional()?;
                Ok(claimed)
            })
            .await
    }

    pub(super) async fn record_attempt_row(
        &self,
        ticket: TicketId,
        response: ResponseId,
        lease: &str,
        outcome: &Delivery,
    ) -> Result<bool, StoreError> {
        let (p, lease) = (outcome.parts(), lease.to_owned());
        let sent = matches!(outcome, Delivery::Sent { .. });
        self.db
            .write(move |tx| {
                let changed = tx.execute(
                    "UPDATE responses
                     SET delivery_state = ?1, delivery_message_id = ?2, delivery_reason = ?3, delivery_at = ?4,
                         mail_next_at = ?5, mail_lease = NULL
                     WHERE id = ?6 AND ticket_id = ?7 AND delivery_state = 'pending' AND (?8 OR mail_lease = ?9)",
                    params![
                        p.state,
                        p.message_id,
                        p.reason,
                        p.at.map(Timestamp::millis),
                        p.next_attempt_at.map(Timestamp::millis),
                        response.to_string(),
                        ticket.to_string(),
                        sent,
                        lease
                    ],
                )?;
                Ok(changed == 1)
            })
            .await
    }

    pub(super) async fn record_mail_event_row(
        &self,
        ticket: TicketId,
        response: ResponseId,
        delivery: &Delivery,
    ) -> Result<bool, StoreError> {
        let p = delivery.parts();
        let below = Delivery::states_below(p.state);
        self.db
            .write(move |tx| {
                let marks = vec!["?"; below.len()].join(", ");
                let mut values: Vec<Value> = vec![
                    p.state.to_owned().into(),
                    p.message_id.into(),
                    p.reason.into(),
                    p.at.map(Timestamp::millis).into(),
                    response.to_string().into(),
                    ticket.to_string().into(),
                ];
                values.extend(below.into_iter().map(|s| Value::from(s.to_owned())));
                let changed = tx.execute(
                    &format!(
                        "UPDATE responses
                         SET delivery_state = ?, delivery_message_id = ?, delivery_reason = ?, delivery_at = ?,
                             mail_next_at = NULL, mail_lease = NULL
                         WHERE id = ? AND ticket_id = ? AND delivery_state IN ({marks})"
                    ),
                    rusqlite::params_from_iter(values),
                )?;
                Ok(changed == 1)
            })
            .await
    }

    pub(super) async fn due_mail_rows(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<(TicketId, ResponseId)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(DUE_MAIL_SQL)?;
                let rows = stmt.query_map(params![now.millis(), limit], |r| {
                    Ok((parse(r.get(0)?, 0)?, parse(r.get(1)?, 1)?))
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }
}

/// Served by the partial index of pending mail, in due order: no scan, no sort.
pub(super) const DUE_MAIL_SQL: &str = "SELECT ticket_id, id FROM responses
     WHERE delivery_state = 'pending' AND mail_next_at <= ?1 ORDER BY mail_next_at LIMIT ?2";
