//! Ticket lists on SQLite: the SQL of each filter combination (one
//! `tickets_by_*` index each), plus the bulk import benchmarks use.

use super::rows::{TICKET_COLS, ticket_params, ticket_placeholders};
use super::store::SqliteStore;
use crate::domain::{OrgId, PageRequest, Ticket, TicketFilter};
use crate::ports::StoreResult;
use rusqlite::types::Value;

impl SqliteStore {
    /// Inserts tickets as they are, in one transaction: for imports and
    /// benchmarks. Assignment and admin counters are left untouched.
    pub async fn bulk_import_tickets(&self, tickets: Vec<Ticket>) -> StoreResult<()> {
        self.db
            .write(move |tx| {
                let mut stmt = tx.prepare_cached(&format!(
                    "INSERT INTO tickets ({TICKET_COLS}) VALUES ({})",
                    ticket_placeholders()
                ))?;
                for t in &tickets {
                    stmt.execute(rusqlite::params_from_iter(ticket_params(t)))?;
                }
                Ok(())
            })
            .await
    }
}

/// The list SQL for a filter; each combination matches one `tickets_by_*` index.
pub(super) fn list_query(org: OrgId, filter: &TicketFilter, page: PageRequest) -> (String, Vec<Value>) {
    let mut sql = format!("SELECT {TICKET_COLS} FROM tickets WHERE org_id = ?");
    let mut values: Vec<Value> = vec![org.to_string().into()];
    if let Some(admin) = filter.admin_id {
        sql.push_str(" AND admin_id = ?");
        values.push(admin.to_string().into());
    }
    if let Some(customer) = &filter.customer {
        sql.push_str(" AND added_by = ?");
        values.push(customer.as_str().to_owned().into());
    }
    if let Some(status) = filter.status {
        sql.push_str(" AND status = ?");
        values.push(status.as_str().to_owned().into());
    }
    if let Some(after) = page.after {
        sql.push_str(" AND (created_at, id) < (?, ?)");
        values.push(after.created_at.millis().into());
        values.push(after.id.to_string().into());
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
    values.push(i64::try_from(page.limit + 1).unwrap_or(i64::MAX).into());
    (sql, values)
}
