//! How a ticket's history, the unassigned-ticket index, the assignment
//! backlog and the admin list map onto the table.
//!
//! | item | pk | sk | holds |
//! |---|---|---|---|
//! | event | `TICKET#<ticket>` | `EVENT#<event>` | the event as JSON (`event`); v7 ids sort by time, and `EVENT#` sorts before `RESPONSE#` and `TICKET`, so the ticket+responses Query starts past them |
//! | backlog mark | `ASSIGN_BACKLOG` | `ORG#<org>` | an org whose waiting tickets the sweep assigns |
//!
//! The sparse GSI `unassigned` (`g_unassigned` = org id, sort `gsk`, keys
//! only) holds only OPEN tickets with no assignee, oldest first.

use super::{Item, Malformed, admin_from, get_s, key, opt_n, s, ticket_partition};
use crate::domain::{AdminSummary, EventId, OrgId, Status, Ticket, TicketEvent, TicketId};

pub const EVENT_PREFIX: &str = "EVENT#";
/// The ticket partition's sort keys from here on are its responses and the
/// ticket itself, never its events.
pub const AFTER_EVENTS: &str = "RESPONSE#";

pub const UNASSIGNED_INDEX: &str = "unassigned";
pub const UNASSIGNED_PK: &str = "g_unassigned";

pub const BACKLOG_PARTITION: &str = "ASSIGN_BACKLOG";

pub fn event_key(ticket: TicketId, id: EventId) -> Item {
    key(ticket_partition(ticket), &format!("{EVENT_PREFIX}{id}"))
}

pub fn event_item(e: &TicketEvent) -> Result<Item, Malformed> {
    let mut item = event_key(e.ticket_id, e.id);
    let body = serde_json::to_string(e).map_err(|err| Malformed(format!("event: {err}")))?;
    item.insert("event".into(), s(body));
    Ok(item)
}

pub fn event_from(item: &Item) -> Result<TicketEvent, Malformed> {
    serde_json::from_str(get_s(item, "event")?).map_err(|e| Malformed(format!("event: {e}")))
}

/// The unassigned index's key on a ticket item, while it is OPEN with no assignee.
pub fn unassigned_key(t: &Ticket) -> Option<(&'static str, String)> {
    (t.status == Status::Open && t.admin_id.is_none()).then(|| (UNASSIGNED_PK, t.org_id.to_string()))
}

pub fn backlog_key(org: OrgId) -> Item {
    key(BACKLOG_PARTITION.to_owned(), &format!("ORG#{org}"))
}

pub fn backlog_org_from(item: &Item) -> Result<OrgId, Malformed> {
    get_s(item, super::SK)?
        .strip_prefix("ORG#")
        .and_then(|o| o.parse().ok())
        .ok_or_else(|| Malformed("bad backlog sk".into()))
}

/// An admin item (in its org's partition) as the admin list shows it.
pub fn summary_from(item: &Item) -> Result<AdminSummary, Malformed> {
    Ok(AdminSummary {
        admin: admin_from(item)?,
        open_tickets: opt_n(item, "openTickets").unwrap_or(0),
    })
}

/// The ticket id a key-only index entry names.
pub fn ticket_id_from_keys(item: &Item) -> Result<TicketId, Malformed> {
    get_s(item, super::PK)?
        .strip_prefix("TICKET#")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| Malformed("bad ticket pk".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Actor, AdminId, Cause, Change, Email, Timestamp};

    #[test]
    fn events_sort_before_responses_and_the_ticket_and_read_back() {
        let ticket = TicketId::new();
        let e = Cause::new(Actor::System, Timestamp::from_millis(5)).event(ticket, Change::Created);
        let item = event_item(&e).unwrap();
        let sk = get_s(&item, super::super::SK).unwrap();
        assert!(sk < AFTER_EVENTS && AFTER_EVENTS < super::super::TICKET_SK, "{sk}");
        assert_eq!(event_from(&item).unwrap(), e);
    }

    #[test]
    fn only_open_unassigned_tickets_are_in_the_unassigned_index() {
        let now = Timestamp::from_millis(1);
        let mut t = Ticket {
            id: TicketId::new(),
            org_id: OrgId::new(),
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
        assert!(super::super::ticket_item(&t).contains_key(UNASSIGNED_PK));
        t.admin_id = Some(AdminId::new());
        assert!(!super::super::ticket_item(&t).contains_key(UNASSIGNED_PK));
        t.admin_id = None;
        t.status = Status::Closed;
        assert!(!super::super::ticket_item(&t).contains_key(UNASSIGNED_PK));
    }
}
