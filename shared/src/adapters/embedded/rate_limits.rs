//! Rate-limit counters on SQLite: one row per key and fixed window, taken in
//! one write transaction (the single writer serializes takers); rows of
//! ended windows are swept with raw inbound mail past its retention.

use super::Db;
use crate::domain::Timestamp;
use crate::domain::limits::{Slot, window_of};
use crate::error::StoreError;
use crate::ports::{RateLimiter, StoreResult};
use async_trait::async_trait;
use rusqlite::params;
use std::sync::Arc;
use std::time::Duration;

pub struct SqliteLimits {
    db: Arc<Db>,
}

impl SqliteLimits {
    pub fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait]
impl RateLimiter for SqliteLimits {
    async fn take(&self, key: &str, now: Timestamp, window: Duration, limit: u32) -> StoreResult<Slot> {
        let (start, end) = window_of(now, window);
        let key = key.to_owned();
        self.db
            .write(move |tx| {
                // Counts up only below the limit: a refused take changes nothing.
                let taken = tx.execute(
                    "INSERT INTO rate_limits (key, window_start, count, expires_at)
                     SELECT ?1, ?2, 1, ?3 WHERE ?4 > 0
                     ON CONFLICT(key, window_start) DO UPDATE SET count = count + 1 WHERE count < ?4",
                    params![key, start.millis(), end.millis(), i64::from(limit)],
                )?;
                Ok(if taken == 1 {
                    Slot::Taken
                } else {
                    Slot::RetryAfter(now.until(end))
                })
            })
            .await
    }
}

/// Deletes the counters of windows ended before `now` and empties raw
/// inbound messages received before `raw_before` (their outcome row stays);
/// at most `batch` of each. Returns how many raw messages were purged.
pub async fn sweep_expired(
    db: &Arc<Db>,
    now: Timestamp,
    raw_before: Timestamp,
    batch: usize,
) -> Result<usize, StoreError> {
    let batch = i64::try_from(batch).unwrap_or(i64::MAX);
    db.write(move |tx| {
        tx.execute(
            "DELETE FROM rate_limits WHERE rowid IN
                 (SELECT rowid FROM rate_limits WHERE expires_at <= ?1 LIMIT ?2)",
            params![now.millis(), batch],
        )?;
        Ok(tx.execute(
            "UPDATE inbound_mail SET raw = X'', raw_kept = 0 WHERE key IN
                 (SELECT key FROM inbound_mail WHERE raw_kept = 1 AND received_at < ?1 LIMIT ?2)",
            params![raw_before.millis(), batch],
        )?)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inbound::InboundReceipt;

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_takes_never_exceed_the_limit_and_windows_restart() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Arc::new(SqliteLimits::new(Db::open(&dir.path().join("t.db")).unwrap()));
        let now = Timestamp::from_millis(90_000);
        let takes = (0..20).map(|_| {
            let limits = limits.clone();
            tokio::spawn(async move { limits.take("k", now, MINUTE, 5).await.unwrap() })
        });
        let got = futures_util::future::join_all(takes).await;
        let taken = got.iter().filter(|s| *s.as_ref().unwrap() == Slot::Taken).count();
        assert_eq!(taken, 5);
        assert!(
            got.iter()
                .any(|s| *s.as_ref().unwrap() == Slot::RetryAfter(Duration::from_secs(30)))
        );
        assert_eq!(
            limits.take("other", now, MINUTE, 5).await.unwrap(),
            Slot::Taken,
            "per key"
        );
        let next = Timestamp::from_millis(120_000);
        assert_eq!(
            limits.take("k", next, MINUTE, 5).await.unwrap(),
            Slot::Taken,
            "a new window"
        );
        assert!(
            matches!(limits.take("k", now, MINUTE, 0).await.unwrap(), Slot::RetryAfter(_)),
            "0 forbids"
        );
    }

    #[tokio::test]
    async fn the_sweep_purges_old_raw_mail_and_ended_windows_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let store = crate::adapters::embedded::SqliteStore::new(db.clone());
        let limits = SqliteLimits::new(db.clone());
        let day = 86_400_000;
        for (key, at) in [("old", 1_000), ("new", 40 * day)] {
            let receipt = InboundReceipt {
                key: key.into(),
                received_at: Timestamp::from_millis(at),
                source: None,
                expires_at: Timestamp::from_millis(at),
            };
            crate::ports::Store::save_inbound(&store, &receipt, b"raw bytes")
                .await
                .unwrap();
            crate::ports::Store::finish_inbound(&store, key, "applied", None, Timestamp::from_millis(at))
                .await
                .unwrap();
        }
        limits
            .take("ended", Timestamp::from_millis(0), MINUTE, 1)
            .await
            .unwrap();
        limits
            .take("live", Timestamp::from_millis(41 * day), MINUTE, 1)
            .await
            .unwrap();
        let now = Timestamp::from_millis(41 * day);
        let purged = sweep_expired(&db, now, Timestamp::from_millis(11 * day), 100)
            .await
            .unwrap();
        assert_eq!(purged, 1);
        let rows: Vec<(String, usize, Option<String>)> = db
            .read(|c| {
                let mut stmt = c.prepare("SELECT key, length(raw), outcome FROM inbound_mail ORDER BY key")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
            .unwrap();
        assert_eq!(
            rows,
            [
                ("new".into(), 9, Some("applied".into())),
                ("old".into(), 0, Some("applied".into()))
            ],
            "the old raw is gone, its outcome stays"
        );
        let left: Vec<String> = db
            .read(|c| {
                let mut stmt = c.prepare("SELECT key FROM rate_limits")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
            .unwrap();
        assert_eq!(left, ["live"]);
    }
}
