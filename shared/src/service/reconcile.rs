//! Auto-close reconciled from the data: whatever step of a request failed, a
//! RESPONDED ticket ends up with its schedule, or closed by the sweeper soon
//! after it fell due. The request path still schedules eagerly; correctness
//! does not depend on it.

use super::{CloseOutcome, Service};
use crate::domain::{TicketId, rules};
use crate::error::{Error, Result};
use serde::Serialize;
use tokio::time::Instant;

/// How many due tickets one sweep reads per Query. A sweep keeps reading while
/// pages come back full, up to `MAX_SWEEP_PAGES`, so a backlog (after an
/// outage) drains over a few runs instead of one run outliving its timeout.
const SWEEP_PAGE: usize = 50;
const MAX_SWEEP_PAGES: usize = 4;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Overdue RESPONDED tickets closed by this sweep.
    pub closed: usize,
    /// Due tickets that had moved on (the index lags the table).
    pub skipped: usize,
    /// Due tickets the sweep could not close this time (retried next sweep).
    pub failed: usize,
    /// Due response mails attempted (the sweeper's mail retries).
    pub mail_attempted: usize,
    /// Unassigned OPEN tickets assigned, left by availability changes.
    pub assigned: usize,
    /// Due webhook deliveries attempted (AWS: the sweeper's webhook retries).
    pub webhooks_attempted: usize,
    /// Admins of disabled webhooks notified (one per disabled endpoint).
    pub webhook_notices: usize,
    /// AWS: outbox messages the table stream never fanned out, fanned out
    /// by the sweep instead.
    pub missed_messages: usize,
}

impl Service {
    /// Makes the scheduler match the ticket as stored now: its close job
    /// upserted while it is RESPONDED, cancelled otherwise (or when it is gone).
    /// Reads the ticket afresh, so a late or repeated call cannot restore a
    /// stale schedule. Idempotent.
    pub async fn reconcile_auto_close(&self, id: TicketId) -> Result<()> {
        let desired = self
            .ports
            .store
            .ticket(id)
            .await?
            .as_ref()
            .and_then(rules::desired_close_job);
        match desired {
            Some(job) => self.ports.scheduler.schedule_close(&job).await,
            None => self.ports.scheduler.cancel_close(id).await,
        }
        .map_err(|e| Error::Unavailable(e.context("scheduler")))?;
        Ok(())
    }

    /// The safety net, run every reconcile interval: closes RESPONDED tickets
    /// whose `autoCloseAt` has passed, whether or not their schedule fired,
    /// then assigns the waiting tickets an availability change left over.
    /// Starts no close after `deadline`, so a backlog never outlives the
    /// sweeper's timeout; the rest waits for the next sweep.
    pub async fn sweep(&self, deadline: Instant) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        for _ in 0..MAX_SWEEP_PAGES {
            let due = self.ports.store.due_auto_closes(self.now(), SWEEP_PAGE).await?;
            let full = due.len() == SWEEP_PAGE;
            let mut progressed = false;
            for ticket in &due {
                if Instant::now() >= deadline {
                    return Ok(report);
                }
                let Some(job) = rules::desired_close_job(ticket) else {
                    report.skipped += 1;
                    continue;
                };
                match self.run_close_job(&job).await {
                    Ok(CloseOutcome::Closed) => {
                        report.closed += 1;
                        progressed = true;
                    }
                    Ok(CloseOutcome::Skipped(_)) => report.skipped += 1,
                    Err(e) => {
                        tracing::warn!(ticket = %job.ticket_id, error = %e, "sweep could not close a due ticket");
                        report.failed += 1;
                    }
                }
            }
            // A full page where nothing closed is the lagging index showing the
            // same tickets again: stop rather than spin.
            if !full || !progressed {
                break;
            }
        }
        for org in self.ports.store.assignment_backlog(super::people::BACKLOG_ORGS).await? {
            if Instant::now() >= deadline {
                return Ok(report);
            }
            match self.assign_waiting(org, deadline).await {
                Ok(n) => report.assigned += n,
                Err(e) => tracing::warn!(org = %org, error = %e, "sweep could not assign waiting tickets"),
            }
        }
        if report != SweepReport::default() {
            tracing::info!(
                closed = report.closed,
                skipped = report.skipped,
                failed = report.failed,
                assigned = report.assigned,
                "swept due auto-closes and waiting tickets"
            );
        }
        Ok(report)
    }
}
