//! The history and people half of the [`Store`](crate::ports::Store) port on
//! SQLite: ticket events (written inside each ticket write's transaction),
//! the unassigned-ticket index and backlog, availability and the admin list.

use super::rows::{ADMIN_COLS, admin_from_row, parse, ts};
use super::store::{SqliteStore, write_ticket};
use super::webhook_store::insert_messages;
use crate::domain::{
    Admin, AdminId, AdminLoad, AdminRole, AdminSummary, Cause, EventId, OrgId, Ticket, TicketEvent, TicketId, rules,
};
use crate::error::StoreError;
use rusqlite::{OptionalExtension, Transaction, params};

/// Inserts `events` (inside the caller's transaction).
pub(super) fn insert_events(tx: &Transaction, events: &[TicketEvent]) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached("INSERT INTO ticket_events (id, ticket_id, body) VALUES (?1, ?2, ?3)")?;
    for e in events {
        let body = serde_json::to_string(e).map_err(|e| StoreError::Internal(e.into()))?;
        stmt.execute(params![e.id.to_string(), e.ticket_id.to_string(), body])?;
    }
    Ok(())
}

/// Every admin of `org` with its assignment counters (inside a write transaction).
pub(super) fn admin_loads(tx: &Transaction, org: OrgId) -> rusqlite::Result<Vec<AdminLoad>> {
    let mut stmt =
        tx.prepare_cached("SELECT id, available, open_tickets, last_assigned_at FROM admins WHERE org_id = ?1")?;
    stmt.query_map([org.to_string()], |r| {
        Ok(AdminLoad {
            admin_id: parse(r.get(0)?, 0)?,
            available: r.get(1)?,
            open_tickets: r.get(2)?,
            last_assigned_at: r.get::<_, Option<i64>>(3)?.map(ts),
        })
    })?
    .collect()
}

/// Stamps the chosen assignee's `last_assigned_at` (the rule's tie-breaker).
pub(super) fn stamp_assigned(tx: &Transaction, admin: AdminId, at: i64) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE admins SET last_assigned_at = ?1 WHERE id = ?2",
        params![at, admin.to_string()],
    )?;
    Ok(())
}

/// Served by `ticket_events_by_ticket`: a range read, no sort.
pub(super) const EVENTS_SQL: &str = "SELECT body FROM ticket_events
     WHERE ticket_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
/// Served by the partial index `tickets_unassigned`, named: without
/// statistics the planner would pick `tickets_by_admin_status`, also sort-free
/// but holding every ticket rather than only the waiting ones.
pub(super) const UNASSIGNED_SQL: &str = "SELECT id FROM tickets INDEXED BY tickets_unassigned
     WHERE org_id = ?1 AND status = 'OPEN' AND admin_id IS NULL ORDER BY created_at, id LIMIT ?2";
/// Served by `admins_by_org_id`.
pub(super) const ADMINS_SQL: &str = "SELECT {ADMIN_COLS}, open_tickets FROM admins
     WHERE org_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl SqliteStore {
    pub(super) async fn assign_row(&self, before: &Ticket, cause: &Cause) -> Result<Option<Ticket>, StoreError> {
        let (before, cause) = (before.clone(), cause.clone());
        self.db
            .write(move |tx| {
                let Some(admin) = rules::choose_assignee(&admin_loads(tx, before.org_id)?) else {
                    return Ok(None);
                };
                let mut after = before.clone();
                after.admin_id = Some(admin);
                after.updated_at = cause.at;
                after.version = before.version + 1;
                write_ticket(tx, &before, &after)?;
                stamp_assigned(tx, admin, cause.at.millis())?;
                let events = cause.events(Some(&before), &after);
                insert_events(tx, &events)?;
                insert_messages(tx, &after, &events)?;
                Ok(Some(after))
            })
            .await
    }

    pub(super) async fn unassigned_rows(&self, org: OrgId, n: usize) -> Result<Vec<TicketId>, StoreError> {
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(UNASSIGNED_SQL)?;
                let rows = stmt.query_map(params![org.to_string(), limit(n)], |r| parse(r.get(0)?, 0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    pub(super) async fn backlog_rows(&self, n: usize) -> Result<Vec<OrgId>, StoreError> {
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached("SELECT org_id FROM assignment_backlog LIMIT ?1")?;
                let rows = stmt.query_map([limit(n)], |r| parse(r.get(0)?, 0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    pub(super) async fn set_backlog_row(&self, org: OrgId, pending: bool) -> Result<(), StoreError> {
        self.db
            .write(move |tx| {
                let sql = if pending {
                    "INSERT OR IGNORE INTO assignment_backlog (org_id) VALUES (?1)"
                } else {
                    "DELETE FROM assignment_backlog WHERE org_id = ?1"
                };
                tx.execute(sql, [org.to_string()])?;
                Ok(())
            })
            .await
    }

    pub(super) async fn set_available_row(
        &self,
        org: OrgId,
        id: AdminId,
        available: bool,
    ) -> Result<Option<Admin>, StoreError> {
        self.db
            .write(move |tx| {
                Ok(tx
                    .query_row(
                        &format!(
                            "UPDATE admins SET available = ?1 WHERE id = ?2 AND org_id = ?3 RETURNING {ADMIN_COLS}"
                        ),
                        params![available, id.to_string(), org.to_string()],
                        admin_from_row,
                    )
                    .optional()?)
            })
            .await
    }

    pub(super) async fn set_role_row(
        &self,
        org: OrgId,
        id: AdminId,
        role: AdminRole,
    ) -> Result<Option<Admin>, StoreError> {
        self.db
            .write(move |tx| {
                Ok(tx
                    .query_row(
                        &format!("UPDATE admins SET role = ?1 WHERE id = ?2 AND org_id = ?3 RETURNING {ADMIN_COLS}"),
                        params![role.as_str(), id.to_string(), org.to_string()],
                        admin_from_row,
                    )
                    .optional()?)
            })
            .await
    }

    pub(super) async fn admin_rows(
        &self,
        org: OrgId,
        after: Option<AdminId>,
        n: usize,
    ) -> Result<Vec<AdminSummary>, StoreError> {
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(&ADMINS_SQL.replace("{ADMIN_COLS}", ADMIN_COLS))?;
                let rows = stmt.query_map(params![org.to_string(), after, limit(n)], |r| {
                    Ok(AdminSummary {
                        admin: admin_from_row(r)?,
                        open_tickets: r.get(8)?,
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    pub(super) async fn add_event_rows(&self, events: &[TicketEvent]) -> Result<(), StoreError> {
        let events = events.to_vec();
        self.db.write(move |tx| insert_events(tx, &events)).await
    }

    pub(super) async fn event_rows(
        &self,
        ticket: TicketId,
        after: Option<EventId>,
        n: usize,
    ) -> Result<Vec<TicketEvent>, StoreError> {
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(EVENTS_SQL)?;
                let bodies = stmt
                    .query_map(params![ticket.to_string(), after, limit(n)], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                bodies
                    .iter()
                    .map(|b| serde_json::from_str(b).map_err(|e| StoreError::Internal(e.into())))
                    .collect()
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::Db;
    use crate::auth::SecretHash;
    use crate::domain::{Actor, Domain, Email, Org, Status, Timestamp};
    use crate::ports::Store;

    /// A write that loses its version check records no event: the events
    /// commit with the change or not at all.
    #[tokio::test]
    async fn a_conflicting_write_records_no_events() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(Db::open(&dir.path().join("t.db")).unwrap());
        let now = Timestamp::from_millis(1_000);
        let org = Org {
            id: OrgId::new(),
            name: "Acme".into(),
            domain: Domain::from_trusted("acme.example".into()),
            created_at: now,
        };
        store.create_org(&org, &SecretHash::of("s")).await.unwrap();
        let customer = Actor::Customer {
            email: Email::from_trusted("c@x.io".into()),
        };
        let draft = Ticket {
            id: TicketId::new(),
            org_id: org.id,
            title: "t".into(),
            description: "d".into(),
            added_by: Email::from_trusted("c@x.io".into()),
            admin_id: None,
            status: Status::Open,
            created_at: now,
            updated_at: now,
            responded_at: None,
            closed_at: None,
            auto_close_at: None,
            version: 1,
            follow_up_of: None,
        };
        let t = store.create_ticket(&draft, &Cause::new(customer, now)).await.unwrap();
        assert_eq!(
            store.ticket_events(t.id, None, 10).await.unwrap().len(),
            1,
            "created, unassigned"
        );
        let mut closed = t.clone();
        closed.status = Status::Closed;
        closed.version = 2;
        let cause = Cause::new(Actor::System, now);
        store.update_ticket(&t, &closed, &cause).await.unwrap();
        let mut stale = closed.clone();
        stale.title = "late".into();
        assert!(matches!(
            store.update_ticket(&t, &stale, &cause).await,
            Err(StoreError::Conflict(_))
        ));
        let events = store.ticket_events(t.id, None, 10).await.unwrap();
        assert_eq!(events.len(), 2, "{events:?}");
        let after_first = store.ticket_events(t.id, Some(events[0].id), 10).await.unwrap();
        assert_eq!(after_first, events[1..]);
    }

    /// Each new read is a search of its index: no scan, no sort.
    #[test]
    fn history_unassigned_and_admin_reads_are_served_by_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let conn = rusqlite::Connection::open(db.path()).unwrap();
        for (sql, index) in [
            (EVENTS_SQL.to_owned(), "ticket_events_by_ticket"),
            (UNASSIGNED_SQL.to_owned(), "tickets_unassigned"),
            (ADMINS_SQL.replace("{ADMIN_COLS}", ADMIN_COLS), "admins_by_org_id"),
        ] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let n = stmt.parameter_count();
            let values: Vec<rusqlite::types::Value> = (0..n).map(|_| rusqlite::types::Value::Integer(1)).collect();
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(values), |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let plan = plan.join(" | ");
            assert!(
                plan.contains(&format!("USING INDEX {index}"))
                    || plan.contains(&format!("USING COVERING INDEX {index}")),
                "{plan}"
            );
            assert!(!plan.contains("SCAN") && !plan.contains("TEMP B-TREE"), "{plan}");
        }
    }
}
