//! The [`Scheduler`] port on a persistent jobs table, and the runner task that
//! executes due jobs and sends due response mail. Both survive restarts; what
//! fell due while the process was down runs at the next start.

use super::db::Db;
use crate::domain::{CloseJob, TicketId, Timestamp};
use crate::ports::{Clock, Scheduler};
use crate::service::{CloseOutcome, Service};
use async_trait::async_trait;
use rusqlite::params;
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often a failed job is retried before it is marked failed.
const MAX_ATTEMPTS: i64 = 5;
/// The runner wakes at least this often, so a clock change cannot strand a job.
const MAX_SLEEP: Duration = Duration::from_secs(30);
const BATCH: usize = 100;
/// How often raw inbound mail past its retention and ended rate-limit windows are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

pub struct LocalScheduler {
    db: Arc<Db>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
}

impl LocalScheduler {
    pub fn new(db: Arc<Db>, clock: Arc<dyn Clock>, wake: Arc<Notify>) -> Self {
        Self { db, clock, wake }
    }
}

#[async_trait]
impl Scheduler for LocalScheduler {
    async fn schedule_close(&self, job: &CloseJob) -> anyhow::Result<()> {
        let (job, now) = (*job, self.clock.now().millis());
        self.db
            .write(move |tx| {
                // Upsert by ticket: the newer schedule replaces the pending one.
                tx.execute(
                    "UPDATE close_jobs SET state = 'cancelled', finished_at = ?1, outcome = 'replaced by a newer schedule'
                     WHERE ticket_id = ?2 AND state = 'pending'",
                    params![now, job.ticket_id.to_string()],
                )?;
                tx.execute(
                    "INSERT INTO close_jobs (ticket_id, responded_at, due_at, state, created_at)
                     VALUES (?1, ?2, ?3, 'pending', ?4)",
                    params![job.ticket_id.to_string(), job.responded_at.millis(), job.due_at.millis(), now],
                )?;
                Ok(())
            })
            .await?;
        self.wake.notify_one();
        Ok(())
    }

    async fn cancel_close(&self, ticket: TicketId) -> anyhow::Result<()> {
        let now = self.clock.now().millis();
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE close_jobs SET state = 'cancelled', finished_at = ?1, outcome = 'ticket left RESPONDED'
                     WHERE ticket_id = ?2 AND state = 'pending'",
                    params![now, ticket.to_string()],
                )?;
                Ok(())
            })
            .await?;
        Ok(())
    }
}

/// A close job as the dashboard shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub id: i64,
    pub ticket_id: String,
    pub responded_at: Timestamp,
    pub due_at: Timestamp,
    pub state: String,
    pub attempts: i64,
    pub outcome: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

pub async fn recent_jobs(db: &Arc<Db>, limit: usize) -> anyhow::Result<Vec<JobView>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(db
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, ticket_id, responded_at, due_at, state, attempts, outcome, created_at, finished_at
                 FROM close_jobs ORDER BY created_at DESC, id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit], |r| {
                Ok(JobView {
                    id: r.get(0)?,
                    ticket_id: r.get(1)?,
                    responded_at: Timestamp::from_millis(r.get(2)?),
                    due_at: Timestamp::from_millis(r.get(3)?),
                    state: r.get(4)?,
                    attempts: r.get(5)?,
                    outcome: r.get(6)?,
                    created_at: Timestamp::from_millis(r.get(7)?),
                    finished_at: r.get::<_, Option<i64>>(8)?.map(Timestamp::from_millis),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await?)
}

/// Runs due close jobs and sends due mail until `shutdown` resolves.
pub struct JobRunner {
    pub(super) db: Arc<Db>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) wake: Arc<Notify>,
}

impl JobRunner {
    pub async fn run(self, service: Service, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut swept: Option<Timestamp> = None;
        loop {
            let now = self.clock.now();
            if swept.is_none_or(|at| now.millis() - at.millis() >= SWEEP_EVERY.as_millis() as i64) {
                self.sweep(&service, now).await;
                swept = Some(now);
            }
            let wait = match self.run_due(&service).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::error!(error = ?e, "close-job runner failed; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("close-job runner stopped");
    }

    /// Purges raw inbound mail past its retention (the outcome row and the
    /// reply it became stay) and rate-limit counters of ended windows.
    async fn sweep(&self, service: &Service, now: Timestamp) {
        let before = Timestamp::from_millis(
            now.millis() - i64::try_from(service.config().limits.inbound_retention.as_millis()).unwrap_or(i64::MAX),
        );
        loop {
            match super::sweep_expired(&self.db, now, before, BATCH).await {
                Ok(n) if n == BATCH => continue,
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(purged = n, "raw inbound mail past its retention purged");
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = ?e, "inbound mail retention sweep failed; retrying later");
                    break;
                }
            }
        }
    }

    /// Runs every due job and sends every due mail; returns how long until
    /// the next of either.
    async fn run_due(&self, service: &Service) -> anyhow::Result<Duration> {
        // Mail first and apart: a store error there must not hold up closes.
        loop {
            match service.send_due_mail(BATCH).await {
                Ok(n) if n == BATCH => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = ?e, "due mail not sent; retrying");
                    break;
                }
            }
        }
        loop {
            let now = self.clock.now();
            let due = self.due_jobs(now).await?;
            for (id, job) in &due {
                let result = service.run_close_job(job).await;
                self.finish(*id, result).await?;
            }
            if due.len() < BATCH {
                break;
            }
        }
        let now = self.clock.now();
        let next: Option<i64> = self
            .db
            .read(|c| {
                // Both from partial indexes: each min is one index lookup.
                Ok(c.query_row(
                    "SELECT min(t) FROM (
                         SELECT min(due_at) AS t FROM close_jobs WHERE state = 'pending'
                         UNION ALL
                         SELECT min(mail_next_at) FROM responses WHERE delivery_state = 'pending')",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await?;
        Ok(next.map_or(MAX_SLEEP, |t| now.until(Timestamp::from_millis(t)).min(MAX_SLEEP)))
    }

    async fn due_jobs(&self, now: Timestamp) -> anyhow::Result<Vec<(i64, CloseJob)>> {
        Ok(self
            .db
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT id, ticket_id, responded_at, due_at FROM close_jobs
                     WHERE state = 'pending' AND due_at <= ?1 ORDER BY due_at LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![now.millis(), BATCH as i64], |r| {
                    let ticket: String = r.get(1)?;
                    Ok((r.get::<_, i64>(0)?, ticket, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
                })?;
                let mut jobs = Vec::new();
                for row in rows {
                    let (id, ticket, responded_at, due_at) = row?;
                    // An unparsable id cannot come from us; close it out rather than loop on it.
                    let ticket_id = ticket.parse().unwrap_or(TicketId(uuid::Uuid::nil()));
                    jobs.push((
                        id,
                        CloseJob {
                            ticket_id,
                            responded_at: Timestamp::from_millis(responded_at),
                            due_at: Timestamp::from_millis(due_at),
                        },
                    ));
                }
                Ok(jobs)
            })
            .await?)
    }

    async fn finish(&self, id: i64, result: crate::Result<CloseOutcome>) -> anyhow::Result<()> {
        let now = self.clock.now().millis();
        let (outcome, failed) = match &result {
            Ok(outcome) => (outcome.to_string(), false),
            Err(e) => {
                tracing::warn!(job = id, error = ?e, "close job failed");
                (format!("error: {e}"), true)
            }
        };
        self.db
            .write(move |tx| {
                if failed {
                    // Retry with backoff; give up after MAX_ATTEMPTS.
                    tx.execute(
                        "UPDATE close_jobs SET attempts = attempts + 1, outcome = ?1,
                            state = CASE WHEN attempts + 1 >= ?2 THEN 'failed' ELSE 'pending' END,
                            due_at = ?3 + 1000 * (1 << attempts),
                            finished_at = CASE WHEN attempts + 1 >= ?2 THEN ?3 END
                         WHERE id = ?4 AND state = 'pending'",
                        params![outcome, MAX_ATTEMPTS, now, id],
                    )?;
                } else {
                    tx.execute(
                        "UPDATE close_jobs SET state = 'done', attempts = attempts + 1, outcome = ?1, finished_at = ?2
                         WHERE id = ?3 AND state = 'pending'",
                        params![outcome, now, id],
                    )?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }
}
