//! The [`Mailer`] port as an outbox table: every mail is kept and shown on the
//! dashboard instead of leaving the machine.

use super::db::Db;
use crate::domain::{Mail, Timestamp};
use crate::ports::{Clock, MailError, Mailer};
use async_trait::async_trait;
use rusqlite::params;
use serde::Serialize;
use std::sync::Arc;

pub struct OutboxMailer {
    db: Arc<Db>,
    clock: Arc<dyn Clock>,
}

impl OutboxMailer {
    pub fn new(db: Arc<Db>, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: &Mail) -> Result<String, MailError> {
        let id = format!("outbox-{}", uuid::Uuid::now_v7());
        let (m, message_id, now) = (mail.clone(), id.clone(), self.clock.now().millis());
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO outbox (id, to_addr, from_addr, subject, body, ticket_id, created_at, reply_to, message_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        message_id,
                        m.to.as_str(),
                        m.from,
                        m.subject,
                        m.text,
                        m.ticket_id.to_string(),
                        now,
                        m.reply_to,
                        m.message_id
                    ],
                )?;
                Ok(())
            })
            .await
            .map_err(|e| MailError(format!("outbox write failed: {e}")))?;
        tracing::info!(message_id = %id, to = %mail.to, subject = ?mail.subject, "mail written to outbox");
        Ok(id)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MailView {
    pub id: String,
    pub to: String,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub ticket_id: String,
    pub created_at: Timestamp,
    /// The `Reply-To` the mail carried (`null` without inbound email).
    pub reply_to: Option<String>,
    /// Its Message-ID header (ours), when it had one.
    pub message_id: Option<String>,
}

pub async fn recent_mail(db: &Arc<Db>, limit: usize) -> anyhow::Result<Vec<MailView>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(db
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, to_addr, from_addr, subject, body, ticket_id, created_at, reply_to, message_id
                 FROM outbox ORDER BY created_at DESC, id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit], |r| {
                Ok(MailView {
                    id: r.get(0)?,
                    to: r.get(1)?,
                    from: r.get(2)?,
                    subject: r.get(3)?,
                    text: r.get(4)?,
                    ticket_id: r.get(5)?,
                    created_at: Timestamp::from_millis(r.get(6)?),
                    reply_to: r.get(7)?,
                    message_id: r.get(8)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await?)
}
