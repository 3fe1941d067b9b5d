//! The auto-close: scheduling and cancelling it as tickets move, and the close
//! job itself, which is safe to run twice, late, or for a ticket that moved on.

use super::Service;
use crate::domain::rules::{self, AutoClose};
use crate::domain::{Actor, Cause, Change, CloseJob, Status};
use crate::error::{Error, Result, StoreError};
use std::fmt;

/// What a close job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOutcome {
    Closed,
    /// The ticket moved on (reopened, responded again, closed by hand, gone).
    Skipped(&'static str),
}

/// The one rendering, shown on the dashboard and returned by the close function.
impl fmt::Display for CloseOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseOutcome::Closed => f.write_str("closed"),
            CloseOutcome::Skipped(why) => write!(f, "skipped: {why}"),
        }
    }
}

impl Service {
    /// Closes the ticket only if it is still the RESPONDED ticket the job was
    /// scheduled for. Safe to run twice or late.
    pub async fn run_close_job(&self, job: &CloseJob) -> Result<CloseOutcome> {
        // A version conflict means the ticket changed under us: look again.
        for _ in 0..3 {
            let Some(before) = self.ports.store.ticket(job.ticket_id).await? else {
                return Ok(CloseOutcome::Skipped("ticket not found"));
            };
            if !rules::close_job_applies(&before, job) {
                return Ok(CloseOutcome::Skipped("ticket moved on since the job was scheduled"));
            }
            let mut after = before.clone();
            let now = self.now();
            rules::set_status(&mut after, Status::Closed, now, self.config.auto_close_after);
            after.version = before.version + 1;
            let cause = Cause::new(Actor::AutoClose, now).with(Change::AutoCloseFired);
            match self.ports.store.update_ticket(&before, &after, &cause).await {
                Ok(()) => {
                    tracing::info!(ticket = %job.ticket_id, "ticket auto-closed");
                    return Ok(CloseOutcome::Closed);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict("ticket kept changing during auto-close".into()))
    }

    /// Tells the scheduler what a committed change did to the auto-close, at
    /// once. Best effort: the reconciler (table stream) and the sweeper bring
    /// the schedule in line with the stored ticket if this fails.
    pub(super) async fn apply_auto_close(&self, effect: AutoClose) {
        match effect {
            AutoClose::Unchanged => {}
            AutoClose::Schedule(job) => {
                if let Err(e) = self.ports.scheduler.schedule_close(&job).await {
                    tracing::warn!(ticket = %job.ticket_id, error = ?e, "could not schedule auto-close now; the reconciler will");
                }
            }
            AutoClose::Cancel(ticket) => {
                // Harmless if it fails: a stale job re-checks the ticket and finds it moved on.
                if let Err(e) = self.ports.scheduler.cancel_close(ticket).await {
                    tracing::warn!(ticket = %ticket, error = ?e, "could not cancel auto-close");
                }
            }
        }
    }
}
