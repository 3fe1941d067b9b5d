//! A ticket's history: what changed, when and by whom, derived from each write
//! so every write path records its events the same way.

use super::ids::{AdminId, EventId, ResponseId, TicketId};
use super::mail::Delivery;
use super::model::{Status, Ticket};
use super::time::Timestamp;
use super::values::Email;
use serde::{Deserialize, Serialize};

/// One entry of a ticket's history, as `GET /tickets/{id}/events` shows it.
/// Ids are v7 UUIDs made as the write is prepared, so they sort by time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketEvent {
    pub id: EventId,
    /// The ticket's org is its tenancy: events are only read through their ticket.
    pub ticket_id: TicketId,
    pub at: Timestamp,
    pub actor: Actor,
    #[serde(flatten)]
    pub change: Change,
}

/// Who made a change. The history is admin-only, so admin ids may show; a
/// customer is named by the address the ticket already holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Actor {
    Admin {
        admin_id: AdminId,
    },
    Customer {
        email: Email,
    },
    /// The auto-close job (or the sweeper running it).
    AutoClose,
    /// The service itself: assignment, mail delivery.
    System,
}

/// What happened. `type` on the wire, the variant's fields beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Change {
    Created,
    /// `from` set: reassigned; `to` none: unassigned.
    Assigned {
        from: Option<AdminId>,
        to: Option<AdminId>,
    },
    StatusChanged {
        from: Status,
        to: Status,
    },
    /// The names of the changed fields as the API spells them; never their values.
    FieldsUpdated {
        fields: Vec<String>,
    },
    Responded {
        message_id: ResponseId,
    },
    Replied {
        message_id: ResponseId,
        /// An emailed reply: how its sender was authenticated (`dmarc`,
        /// `spf`, `dkim`, or `unauthenticated` where that is allowed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sender_auth: Option<String>,
    },
    /// A reply kept on the ticket without the effect a limit refused it
    /// (`reason`: the limit, e.g. `reopens_per_ticket`): it did not reopen
    /// the ticket (or open a follow-up); an admin decides.
    ReplyHeld {
        message_id: ResponseId,
        reason: String,
    },
    NoteAdded {
        message_id: ResponseId,
    },
    /// `dueAt`: when the auto-close will run (the event's `at` is when it was scheduled).
    AutoCloseScheduled {
        due_at: Timestamp,
    },
    AutoCloseCancelled,
    AutoCloseFired,
    /// Delivery state names (`Delivery::state`).
    DeliveryChanged {
        message_id: ResponseId,
        from: String,
        to: String,
    },
    InboundRejected {
        reason: String,
    },
    FollowUpCreated {
        ticket_id: TicketId,
    },
    FollowUpOf {
        ticket_id: TicketId,
    },
}

/// Who makes a write, when, and what it does that the ticket's fields do not
/// show (a response, a fired auto-close). Stores take it with every ticket
/// write and turn it into events with [`Cause::events`] once they know the
/// ticket they write (creation and assignment choose the assignee inside the
/// store's transaction), so the events commit with the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub actor: Actor,
    pub at: Timestamp,
    pub explicit: Vec<Change>,
}

impl Cause {
    pub fn new(actor: Actor, at: Timestamp) -> Self {
        Self {
            actor,
            at,
            explicit: vec![],
        }
    }

    pub fn with(mut self, change: Change) -> Self {
        self.explicit.push(change);
        self
    }

    /// The events of writing `after` over `before` (`None`: a new ticket):
    /// created, the explicit changes, then what the fields show changed.
    pub fn events(&self, before: Option<&Ticket>, after: &Ticket) -> Vec<TicketEvent> {
        let mut changes = Vec::new();
        if before.is_none() {
            changes.push(Change::Created);
        }
        changes.extend(self.explicit.iter().cloned());
        changes.extend(derived(before, after, &self.explicit));
        changes.into_iter().map(|change| self.event(after.id, change)).collect()
    }

    /// One event of this cause on a ticket.
    pub fn event(&self, ticket_id: TicketId, change: Change) -> TicketEvent {
        TicketEvent {
            id: EventId::new(),
            ticket_id,
            at: self.at,
            actor: self.actor.clone(),
            change,
        }
    }
}

/// The `deliveryChanged` event (by `system`) of a response's mail moving
/// `from` one state to `delivery`'s, at the time the delivery names.
pub fn delivery_changed(ticket: TicketId, response: ResponseId, from: &str, delivery: &Delivery) -> TicketEvent {
    let at = delivery.parts().at.unwrap_or_else(Timestamp::now);
    Cause::new(Actor::System, at).event(
        ticket,
        Change::DeliveryChanged {
            message_id: response,
            from: from.to_owned(),
            to: delivery.state().to_owned(),
        },
    )
}

/// The changes a write's before and after tickets show.
fn derived(before: Option<&Ticket>, after: &Ticket, explicit: &[Change]) -> Vec<Change> {
    let mut out = Vec::new();
    let (status, admin, auto_close) = match before {
        Some(b) => (Some(b.status), b.admin_id, b.auto_close_at),
        None => (None, None, None),
    };
    if let Some(from) = status
        && from != after.status
    {
        out.push(Change::StatusChanged { from, to: after.status });
    }
    if admin != after.admin_id {
        out.push(Change::Assigned {
            from: admin,
            to: after.admin_id,
        });
    }
    if let Some(b) = before {
        let fields: Vec<String> = [
            ("title", b.title != after.title),
            ("description", b.description != after.description),
        ]
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| name.to_owned())
        .collect();
        if !fields.is_empty() {
            out.push(Change::FieldsUpdated { fields });
        }
    }
    match (auto_close, after.auto_close_at) {
        (_, Some(due_at)) if auto_close != Some(due_at) => out.push(Change::AutoCloseScheduled { due_at }),
        // A fired auto-close is not a cancelled one.
        (Some(_), None) if !explicit.contains(&Change::AutoCloseFired) => out.push(Change::AutoCloseCancelled),
        _ => {}
    }
    out
}

/// A ticket's status and assignee as its history tells them, replaying
/// `events` oldest first: what the history-completeness test checks against
/// the ticket itself.
pub fn replay(events: &[TicketEvent]) -> (Option<Status>, Option<AdminId>) {
    let mut status = None;
    let mut admin = None;
    for e in events {
        match &e.change {
            Change::Created => status = Some(Status::Open),
            Change::StatusChanged { to, .. } => status = Some(*to),
            Change::Assigned { to, .. } => admin = *to,
            _ => {}
        }
    }
    (status, admin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrgId;
    use crate::domain::rules;
    use std::time::Duration;

    const DELAY: Duration = Duration::from_secs(60);

    fn ticket() -> Ticket {
        let t0 = Timestamp::from_millis(1_000);
        Ticket {
            id: TicketId::new(),
            org_id: OrgId::new(),
            title: "Printer".into(),
            description: "jammed".into(),
            added_by: Email::from_trusted("carla@customer.example".into()),
            admin_id: Some(AdminId::new()),
            status: Status::Open,
            created_at: t0,
            updated_at: t0,
            responded_at: None,
            closed_at: None,
            auto_close_at: None,
            version: 1,
            follow_up_of: None,
        }
    }

    fn changes(events: &[TicketEvent]) -> Vec<Change> {
        events.iter().map(|e| e.change.clone()).collect()
    }

    #[test]
    fn a_new_ticket_is_created_then_assigned() {
        let t = ticket();
        let cause = Cause::new(Actor::System, t.created_at);
        assert_eq!(
            changes(&cause.events(None, &t)),
            vec![
                Change::Created,
                Change::Assigned {
                    from: None,
                    to: t.admin_id
                }
            ]
        );
    }

    #[test]
    fn a_response_records_itself_the_status_and_the_schedule() {
        let before = ticket();
        let mut after = before.clone();
        let at = Timestamp::from_millis(5_000);
        rules::record_response(&mut after, at, DELAY);
        let rid = ResponseId::new();
        let admin = Actor::Admin {
            admin_id: before.admin_id.unwrap(),
        };
        let events = Cause::new(admin.clone(), at)
            .with(Change::Responded { message_id: rid })
            .events(Some(&before), &after);
        assert_eq!(
            changes(&events),
            vec![
                Change::Responded { message_id: rid },
                Change::StatusChanged {
                    from: Status::Open,
                    to: Status::Responded
                },
                Change::AutoCloseScheduled { due_at: at.plus(DELAY) },
            ]
        );
        assert!(
            events
                .iter()
                .all(|e| e.actor == admin && e.at == at && e.ticket_id == before.id)
        );
        assert!(events.windows(2).all(|w| w[0].id < w[1].id), "ids sort in order");
    }

    #[test]
    fn reassigning_editing_and_reopening_are_each_recorded() {
        let mut before = ticket();
        rules::record_response(&mut before, Timestamp::from_millis(2_000), DELAY);
        let mut after = before.clone();
        let other = AdminId::new();
        after.admin_id = Some(other);
        after.title = "Printer on fire".into();
        rules::set_status(&mut after, Status::Open, Timestamp::from_millis(3_000), DELAY);
        let events = Cause::new(Actor::System, Timestamp::from_millis(3_000)).events(Some(&before), &after);
        assert_eq!(
            changes(&events),
            vec![
                Change::StatusChanged {
                    from: Status::Responded,
                    to: Status::Open
                },
                Change::Assigned {
                    from: before.admin_id,
                    to: Some(other)
                },
                Change::FieldsUpdated {
                    fields: vec!["title".into()]
                },
                Change::AutoCloseCancelled,
            ]
        );
    }

    #[test]
    fn a_fired_auto_close_is_not_also_cancelled() {
        let mut before = ticket();
        rules::record_response(&mut before, Timestamp::from_millis(2_000), DELAY);
        let mut after = before.clone();
        rules::set_status(&mut after, Status::Closed, Timestamp::from_millis(70_000), DELAY);
        let events = Cause::new(Actor::AutoClose, Timestamp::from_millis(70_000))
            .with(Change::AutoCloseFired)
            .events(Some(&before), &after);
        assert_eq!(
            changes(&events),
            vec![
                Change::AutoCloseFired,
                Change::StatusChanged {
                    from: Status::Responded,
                    to: Status::Closed
                },
            ]
        );
    }

    #[test]
    fn replaying_gives_the_latest_status_and_assignee() {
        let t = ticket();
        let mut events = Cause::new(Actor::System, t.created_at).events(None, &t);
        let mut after = t.clone();
        after.admin_id = None;
        after.status = Status::Closed;
        events.extend(Cause::new(Actor::System, t.created_at).events(Some(&t), &after));
        assert_eq!(replay(&events), (Some(Status::Closed), None));
    }

    #[test]
    fn events_serialize_as_the_api_shows_them_and_read_back() {
        let t = ticket();
        let admin_id = AdminId::new();
        let e = Cause::new(Actor::Admin { admin_id }, Timestamp::from_millis(0)).event(
            t.id,
            Change::Assigned {
                from: None,
                to: Some(admin_id),
            },
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], "assigned");
        assert_eq!(
            json["actor"],
            serde_json::json!({"kind": "admin", "adminId": admin_id.to_string()})
        );
        assert_eq!(json["to"], admin_id.to_string());
        assert_eq!(json["at"], "1970-01-01T00:00:00.000Z");
        assert_eq!(json["ticketId"], t.id.to_string());
        assert_eq!(serde_json::from_value::<TicketEvent>(json).unwrap(), e);
        let fired = Cause::new(Actor::AutoClose, Timestamp::from_millis(0)).event(t.id, Change::AutoCloseFired);
        let json = serde_json::to_value(&fired).unwrap();
        assert_eq!(
            (json["type"].as_str(), json["actor"]["kind"].as_str()),
            (Some("autoCloseFired"), Some("autoClose"))
        );
        assert_eq!(serde_json::from_value::<TicketEvent>(json).unwrap(), fired);
        let due_at = Timestamp::from_millis(60_000);
        let scheduled =
            Cause::new(Actor::System, Timestamp::from_millis(0)).event(t.id, Change::AutoCloseScheduled { due_at });
        let json = serde_json::to_value(&scheduled).unwrap();
        assert_eq!(
            (json["at"].as_str(), json["dueAt"].as_str()),
            (Some("1970-01-01T00:00:00.000Z"), Some("1970-01-01T00:01:00.000Z"))
        );
        assert_eq!(serde_json::from_value::<TicketEvent>(json).unwrap(), scheduled);
    }
}
