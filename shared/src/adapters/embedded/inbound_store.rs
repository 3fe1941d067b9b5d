//! Inbound mail on SQLite: each message stored (raw, for audit) under its
//! dedupe key before it is read, then its outcome; and the counts the
//! dashboard shows.

use super::Db;
use super::store::SqliteStore;
use crate::domain::inbound::{InboundReceipt, StoredInbound};
use crate::domain::{TicketId, Timestamp};
use crate::error::StoreError;
use rusqlite::params;
use serde::Serialize;
use std::sync::Arc;

impl SqliteStore {
    pub(super) async fn save_inbound_row(
        &self,
        receipt: &InboundReceipt,
        raw: &[u8],
    ) -> Result<StoredInbound, StoreError> {
        let (receipt, raw) = (receipt.clone(), raw.to_vec());
        self.db
            .write(move |tx| {
                // A keyed insert that leaves an existing row alone: the first
                // delivery's time and outcome stand.
                let inserted = tx.execute(
                    "INSERT INTO inbound_mail (key, received_at, raw) VALUES (?1, ?2, ?3)
                     ON CONFLICT(key) DO NOTHING",
                    params![receipt.key, receipt.received_at.millis(), raw],
                )?;
                let (received_at, outcome) = tx.query_row(
                    "SELECT received_at, outcome FROM inbound_mail WHERE key = ?1",
                    [&receipt.key],
                    |r| Ok((Timestamp::from_millis(r.get(0)?), r.get::<_, Option<String>>(1)?)),
                )?;
                Ok(StoredInbound {
                    first: inserted == 1,
                    received_at,
                    outcome,
                })
            })
            .await
    }

    pub(super) async fn finish_inbound_row(
        &self,
        key: &str,
        outcome: &str,
        ticket: Option<TicketId>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let (key, outcome) = (key.to_owned(), outcome.to_owned());
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE inbound_mail SET outcome = ?1, ticket_id = ?2, finished_at = ?3 WHERE key = ?4",
                    params![outcome, ticket.map(|t| t.to_string()), at.millis(), key],
                )?;
                Ok(())
            })
            .await
    }
}

/// How many inbound messages ended each way (`applied`, `dropped:bounce`,
/// ...; `handling` for those not finished), for the dashboard.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InboundCount {
    pub outcome: String,
    pub count: i64,
}

pub async fn inbound_counts(db: &Arc<Db>) -> anyhow::Result<Vec<InboundCount>> {
    Ok(db
        .read(|c| {
            let mut stmt = c.prepare_cached(
                // Messages only: a reply's claim (`reply:` key) is not one.
                "SELECT coalesce(outcome, 'handling'), count(*) FROM inbound_mail
                 WHERE key NOT LIKE 'reply:%' GROUP BY 1 ORDER BY 1",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(InboundCount {
                    outcome: r.get(0)?,
                    count: r.get(1)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await?)
}
