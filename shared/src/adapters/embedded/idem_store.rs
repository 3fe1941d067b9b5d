//! The idempotency half of the [`Store`](crate::ports::Store) port on
//! SQLite: one row per key, begun, finished or forgotten in one write each.

use super::store::SqliteStore;
use crate::domain::{IdempotencyBegin, IdempotencyKey, IdempotencyRecord, KeptReply, Timestamp};
use crate::error::StoreError;
use rusqlite::{OptionalExtension, params};

/// Expired rows deleted per begin: bounded work per request, and more than
/// requests ever add, so the table stays at a day's worth.
const PURGE_BATCH: i64 = 100;

type Row = (String, String, Option<i64>, Option<String>, Option<String>, i64);

impl SqliteStore {
    pub(super) async fn begin_idempotent_row(
        &self,
        record: &IdempotencyRecord,
        now: Timestamp,
    ) -> Result<IdempotencyBegin, StoreError> {
        let record = record.clone();
        self.db
            .write(move |tx| {
                let now = now.millis();
                tx.execute(
                    "DELETE FROM idempotency WHERE rowid IN
                         (SELECT rowid FROM idempotency WHERE expires_at < ?1 LIMIT ?2)",
                    params![now, PURGE_BATCH],
                )?;
                let (scope, key) = (&record.key.scope, &record.key.key);
                tx.execute(
                    "DELETE FROM idempotency WHERE scope = ?1 AND key = ?2 AND expires_at < ?3",
                    params![scope, key, now],
                )?;
                let found: Option<Row> = tx
                    .query_row(
                        "SELECT fingerprint, state, status, body, location, lease_until FROM idempotency
                         WHERE scope = ?1 AND key = ?2",
                        params![scope, key],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                    )
                    .optional()?;
                let take = |tx: &rusqlite::Transaction| -> Result<IdempotencyBegin, StoreError> {
                    tx.execute(
                        "INSERT INTO idempotency (scope, key, fingerprint, state, lease_until, expires_at)
                         VALUES (?1, ?2, ?3, 'running', ?4, ?5)
                         ON CONFLICT (scope, key) DO UPDATE SET lease_until = excluded.lease_until",
                        params![
                            scope,
                            key,
                            record.fingerprint,
                            record.lease_until.millis(),
                            record.expires_at.millis()
                        ],
                    )?;
                    Ok(IdempotencyBegin::Started)
                };
                match found {
                    None => take(tx),
                    Some((fingerprint, ..)) if fingerprint != record.fingerprint => Ok(IdempotencyBegin::Mismatch),
                    Some((_, state, _, _, _, lease)) if state == "running" => {
                        if lease < now {
                            take(tx)
                        } else {
                            Ok(IdempotencyBegin::InProgress)
                        }
                    }
                    Some((_, _, status, body, location, _)) => Ok(IdempotencyBegin::Done(KeptReply {
                        status: status.and_then(|s| u16::try_from(s).ok()).unwrap_or(200),
                        body,
                        location,
                    })),
                }
            })
            .await
    }

    pub(super) async fn finish_idempotent_row(
        &self,
        key: &IdempotencyKey,
        reply: &KeptReply,
    ) -> Result<(), StoreError> {
        let (key, reply) = (key.clone(), reply.clone());
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE idempotency SET state = 'done', status = ?3, body = ?4, location = ?5
                     WHERE scope = ?1 AND key = ?2",
                    params![key.scope, key.key, reply.status, reply.body, reply.location],
                )?;
                Ok(())
            })
            .await
    }

    pub(super) async fn abandon_idempotent_row(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM idempotency WHERE scope = ?1 AND key = ?2 AND state = 'running'",
                    params![key.scope, key.key],
                )?;
                Ok(())
            })
            .await
    }
}
