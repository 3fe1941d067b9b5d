//! The org's admins: the admin list, availability, and handing unassigned
//! OPEN tickets to an admin who becomes available (oldest first, by the usual
//! rule): a bounded batch in the request, the rest by the sweep.

use super::Service;
use crate::auth::Claims;
use crate::domain::limits::Limit;
use crate::domain::{Actor, Admin, AdminId, AdminSummary, Cause, OrgId, Status};
use crate::error::{Error, Result, StoreError};
use std::time::Duration;
use tokio::time::Instant;

/// Tickets one availability request (or one sweep, per org) assigns at most:
/// each is a read and a transaction, so 25 keep the request within a couple
/// of hundred milliseconds on DynamoDB; a larger backlog is the sweep's.
pub const ASSIGN_BATCH: usize = 25;

/// How long an availability request keeps starting assignments; the batch
/// under way when it ends is left to the sweep (the org is marked first).
/// Keeps the request's worst case (budgets.rs) within its function's timeout
/// when DynamoDB is slow; at ~10 ms an assignment, a batch takes ~0.3 s.
pub const ASSIGN_WINDOW: Duration = Duration::from_secs(2);

/// Backlog orgs one sweep visits at most.
pub(super) const BACKLOG_ORGS: usize = 10;

/// One page of the org's admins.
pub struct AdminPage {
    pub admins: Vec<AdminSummary>,
    pub next_cursor: Option<String>,
}

impl Service {
    pub async fn list_admins(&self, claims: &Claims, limit: usize, cursor: Option<&str>) -> Result<AdminPage> {
        let keys = self.config.keys.get().await?;
        let after = cursor
            .map(|c| keys.cursors.decode_id(claims.org, "admins", c))
            .transpose()?
            .map(AdminId);
        let mut admins = self.ports.store.list_admins(claims.org, after, limit + 1).await?;
        let more = admins.len() > limit;
        admins.truncate(limit);
        let next_cursor = match admins.last() {
            Some(last) if more => Some(keys.cursors.encode_id(claims.org, "admins", last.admin.id.0)),
            _ => None,
        };
        Ok(AdminPage { admins, next_cursor })
    }

    /// Sets an admin of the caller's org (any admin may) available or not;
    /// another org's admin is 404; past the admin's availability limit, 429. Becoming available assigns up to
    /// [`ASSIGN_BATCH`] waiting tickets now; the org is marked for the sweep
    /// first, so a failure part-way leaves the rest to it, never stranded.
    pub async fn set_availability(&self, claims: &Claims, id: AdminId, available: bool) -> Result<Admin> {
        self.take_slot(Limit::AvailabilityPerAdmin, &format!("{}:{id}", claims.org))
            .await?;
        let store = &self.ports.store;
        let admin = store
            .set_admin_available(claims.org, id, available)
            .await?
            .ok_or(Error::NotFound("admin"))?;
        tracing::info!(org = %claims.org, admin = %id, available, by = %claims.sub, "admin availability set");
        if available {
            store.set_assignment_backlog(claims.org, true).await?;
            let assigned = self.assign_waiting(claims.org, Instant::now() + ASSIGN_WINDOW).await?;
            tracing::info!(org = %claims.org, assigned, "waiting tickets assigned");
        }
        Ok(admin)
    }

    /// Assigns up to [`ASSIGN_BATCH`] of the org's unassigned OPEN tickets,
    /// oldest first, each by `system`, starting none after `deadline`, and
    /// clears the org's backlog mark when none are left (or no admin is
    /// available to take them). Returns how many were assigned.
    pub(super) async fn assign_waiting(&self, org: OrgId, deadline: Instant) -> Result<usize> {
        let store = &self.ports.store;
        let waiting = store.unassigned_tickets(org, ASSIGN_BATCH + 1).await?;
        let mut more = waiting.len() > ASSIGN_BATCH;
        let mut assigned = 0;
        for id in waiting.iter().take(ASSIGN_BATCH) {
            if Instant::now() >= deadline {
                more = true;
                break;
            }
            // The index may lag the table (DynamoDB): assign what is stored now.
            let Some(ticket) = store.ticket(*id).await? else {
                continue;
            };
            if ticket.status != Status::Open || ticket.admin_id.is_some() {
                continue;
            }
            match store
                .assign_ticket(&ticket, &Cause::new(Actor::System, self.now()))
                .await
            {
                Ok(Some(_)) => assigned += 1,
                // Nobody available: the next availability change starts again.
                Ok(None) => {
                    more = false;
                    break;
                }
                // Changed meanwhile (assigned or edited): the next pass sees it.
                Err(StoreError::Conflict(_)) => more = true,
                Err(e) => return Err(e.into()),
            }
        }
        if !more {
            store.set_assignment_backlog(org, false).await?;
        }
        Ok(assigned)
    }
}
