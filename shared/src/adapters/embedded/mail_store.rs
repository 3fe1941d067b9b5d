//! The mail half of the [`Store`](crate::ports::Store) port on SQLite: the
//! outgoing mail kept on its response row, claimed, recorded, and found due
//! through the partial index `responses_mail_due`.

use super::history_store::insert_events;
use super::rows::parse;
use super::store::SqliteStore;
use crate::domain::events::delivery_changed as delivery_event;
use crate::domain::{Author, ClaimedMail, Delivery, Email, Mail, Message, ResponseId, TicketId, Timestamp};
use crate::error::StoreError;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Transaction, params};
use std::time::Duration;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Inserts `m` with its pending `mail`, if any (inside add_message's transaction).
pub(super) fn insert_message(tx: &Transaction, m: &Message, mail: Option<&Mail>) -> Result<(), StoreError> {
    let p = m.delivery.as_ref().map(Delivery::parts);
    let (admin, customer) = match &m.author {
        Author::Admin { admin_id } => (Some(admin_id.to_string()), None),
        Author::Customer { email } => (None, Some(email.as_str())),
    };
    tx.execute(
        "INSERT INTO responses (id, ticket_id, kind, admin_id, author_email, message, created_at, delivery_state,
             delivery_message_id, delivery_reason, delivery_at, mail_next_at, mail_to, mail_from, mail_subject,
             mail_body, mail_reply_to, mail_message_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
        params![
            m.id.to_string(),
            m.ticket_id.to_string(),
            m.kind.as_str(),
            admin,
            customer,
            m.message,
            m.created_at.millis(),
            p.as_ref().map(|p| p.state),
            p.as_ref().and_then(|p| p.message_id.clone()),
            p.as_ref().and_then(|p| p.reason.clone()),
            p.as_ref().and_then(|p| p.at).map(Timestamp::millis),
            p.as_ref().and_then(|p| p.next_attempt_at).map(Timestamp::millis),
            mail.map(|m| m.to.as_str()),
            mail.map(|m| m.from.as_str()),
            mail.map(|m| m.subject.as_str()),
            mail.map(|m| m.text.as_str()),
            mail.and_then(|m| m.reply_to.as_deref()),
            mail.and_then(|m| m.message_id.as_deref()),
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
                         RETURNING mail_to, mail_from, mail_subject, mail_body, mail_attempts, mail_reply_to, mail_message_id",
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
                                    reply_to: r.get(5)?,
                                    message_id: r.get(6)?,
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
        let event = (p.state != "pending").then(|| delivery_event(ticket, response, "pending", outcome));
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
                if changed == 1 {
                    insert_events(tx, event.as_slice())?;
                }
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
        let delivery = delivery.clone();
        self.db
            .write(move |tx| {
                let from: Option<String> = tx
                    .query_row(
                        "SELECT delivery_state FROM responses WHERE id = ?1 AND ticket_id = ?2",
                        params![response.to_string(), ticket.to_string()],
                        |r| r.get(0),
                    )
                    .optional()?;
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
                if changed == 1
                    && let Some(from) = from
                {
                    insert_events(tx, &[delivery_event(ticket, response, &from, &delivery)])?;
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::Db;
    use crate::auth::SecretHash;
    use crate::domain::{Actor, Admin, AdminId, Cause, Domain, Org, OrgId, Response, Status, Ticket};
    use crate::ports::Store;
    use std::sync::Arc;

    const LEASE: Duration = Duration::from_secs(60);

    /// A store holding one ticket with one response whose mail is pending, due at `now`.
    async fn one_pending_mail(now: Timestamp) -> (tempfile::TempDir, Arc<SqliteStore>, TicketId, ResponseId) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::new(Db::open(&dir.path().join("t.db")).unwrap()));
        let org = Org {
            id: OrgId::new(),
            name: "Acme".into(),
            domain: Domain::from_trusted("acme.example".into()),
            created_at: now,
        };
        store.create_org(&org, &SecretHash::of("s")).await.unwrap();
        let admin = Admin {
            id: AdminId::new(),
            org_id: org.id,
            first_name: "Ana".into(),
            last_name: "A".into(),
            email: Email::from_trusted("ana@acme.example".into()),
            available: true,
            created_at: now,
            role: crate::domain::AdminRole::Full,
        };
        store.create_admin(&admin, "hash").await.unwrap();
        let before = store
            .create_ticket(
                &Ticket {
                    id: crate::domain::TicketId::new(),
                    org_id: org.id,
                    title: "t".into(),
                    description: "d".into(),
                    added_by: Email::from_trusted("carla@customer.example".into()),
                    admin_id: None,
                    status: Status::Open,
                    created_at: now,
                    updated_at: now,
                    responded_at: None,
                    closed_at: None,
                    auto_close_at: None,
                    version: 1,
                    follow_up_of: None,
                },
                &Cause::new(Actor::System, now),
            )
            .await
            .unwrap();
        let mut after = before.clone();
        after.version += 1;
        let response = Response {
            id: ResponseId::new(),
            ticket_id: before.id,
            admin_id: admin.id,
            message: "hello".into(),
            created_at: now,
            delivery: Delivery::new_pending(now),
        };
        let mail = Mail {
            to: before.added_by.clone(),
            from: "support@acme.example".into(),
            subject: "Re: t".into(),
            text: "hello".into(),
            ticket_id: before.id,
            response_id: response.id,
            reply_to: None,
            message_id: None,
        };
        store
            .add_message(
                &before,
                &after,
                &Message::from(response.clone()),
                Some(&mail),
                &Cause::new(Actor::System, now),
            )
            .await
            .unwrap();
        (dir, store, before.id, response.id)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_claims_take_a_pending_mail_once() {
        let now = Timestamp::now();
        let (_dir, store, t, r) = one_pending_mail(now).await;
        let claims: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.claim_mail(t, r, now, LEASE).await.unwrap() })
            })
            .collect();
        let mut won = Vec::new();
        for c in claims {
            won.extend(c.await.unwrap());
        }
        assert_eq!(won.len(), 1, "one sender holds the mail");
        assert_eq!(won[0].attempt, 1);
        assert_eq!(won[0].mail.text, "hello");
        assert!(
            store.due_mail(now, 10).await.unwrap().is_empty(),
            "claimed: due only when the lease ends"
        );
        assert_eq!(store.due_mail(now.plus(LEASE), 10).await.unwrap(), vec![(t, r)]);
    }

    #[tokio::test]
    async fn a_retry_needs_the_current_lease_and_events_only_move_forward() {
        let now = Timestamp::now();
        let (_dir, store, t, r) = one_pending_mail(now).await;
        let first = store.claim_mail(t, r, now, LEASE).await.unwrap().unwrap();
        let retry = Delivery::Pending {
            attempts: 1,
            next_attempt_at: now.plus(Duration::from_secs(30)),
            last_error: Some("down".into()),
        };
        assert!(!store.record_attempt(t, r, "another lease", &retry).await.unwrap());
        assert!(store.record_attempt(t, r, &first.lease, &retry).await.unwrap());
        assert!(
            store.claim_mail(t, r, now, LEASE).await.unwrap().is_none(),
            "not due yet"
        );
        let later = now.plus(Duration::from_secs(30));
        assert_eq!(store.due_mail(later, 10).await.unwrap(), vec![(t, r)]);
        let second = store.claim_mail(t, r, later, LEASE).await.unwrap().unwrap();
        assert_eq!(second.attempt, 2);
        // A sender whose lease ran out still records the send: it happened.
        let sent = Delivery::Sent {
            message_id: "m-1".into(),
            at: later,
        };
        assert!(store.record_attempt(t, r, &first.lease, &sent).await.unwrap());
        assert!(
            !store.record_attempt(t, r, &second.lease, &retry).await.unwrap(),
            "sent is final for senders"
        );
        assert!(store.due_mail(later.plus(LEASE), 10).await.unwrap().is_empty());

        let delivered = Delivery::Delivered {
            message_id: "m-1".into(),
            at: later,
        };
        let bounced = Delivery::Bounced {
            message_id: "m-1".into(),
            reason: "Permanent: General".into(),
            at: later,
        };
        assert!(store.record_mail_event(t, r, &delivered).await.unwrap());
        assert!(!store.record_mail_event(t, r, &delivered).await.unwrap(), "a repeat");
        assert!(store.record_mail_event(t, r, &bounced).await.unwrap());
        assert!(
            !store.record_mail_event(t, r, &delivered).await.unwrap(),
            "never backwards"
        );
        let (_, messages) = store.ticket_with_messages(t).await.unwrap().unwrap();
        assert_eq!(messages[0].delivery, Some(bounced));
    }

    /// The due-mail read is a search of the partial index: no scan, no sort.
    #[test]
    fn due_mail_is_served_by_the_partial_index() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let conn = rusqlite::Connection::open(db.path()).unwrap();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {DUE_MAIL_SQL}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map(params![0, 10], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let plan = plan.join(" | ");
        assert!(plan.contains("USING INDEX responses_mail_due"), "{plan}");
        assert!(!plan.contains("SCAN") && !plan.contains("TEMP B-TREE"), "{plan}");
    }
}
