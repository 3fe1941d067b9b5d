//! The entities. Serialized as the HTTP API shows them (camelCase).

use super::ids::{AdminId, OrgId, ResponseId, TicketId};
use super::mail::Delivery;
use super::time::Timestamp;
use super::values::{Domain, Email};
use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Open,
    Responded,
    Closed,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Open, Status::Responded, Status::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "OPEN",
            Status::Responded => "RESPONDED",
            Status::Closed => "CLOSED",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        raw.parse()
            .map_err(|_| Error::invalid(field, "must be one of OPEN, RESPONDED, CLOSED"))
    }
}

impl FromStr for Status {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or(())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub domain: Domain,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Admin {
    pub id: AdminId,
    pub org_id: OrgId,
    pub first_name: String,
    pub last_name: String,
    pub email: Email,
    /// Only available admins are given new tickets.
    pub available: bool,
    pub created_at: Timestamp,
    pub role: AdminRole,
}

/// What an admin may do. A `full` admin does everything; a `limited` one
/// works tickets and people but cannot touch the org's credentials (API
/// keys, the org secret), webhooks or roles. An admin signed up with an
/// `admins:create` API key starts limited, so such a key cannot make
/// itself a full admin; one signed up with the org secret starts full. A
/// full admin grants `full`. Admins stored before roles existed are full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AdminRole {
    Full,
    Limited,
}

impl AdminRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Full => "full",
            AdminRole::Limited => "limited",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, crate::error::Error> {
        match raw {
            "full" => Ok(AdminRole::Full),
            "limited" => Ok(AdminRole::Limited),
            _ => Err(crate::error::Error::invalid(field, "must be full or limited")),
        }
    }

    /// As stored: absent (an admin from before roles) is full; anything
    /// unreadable grants the least.
    pub fn from_stored(stored: Option<&str>) -> Self {
        match stored {
            None | Some("full") => AdminRole::Full,
            Some(_) => AdminRole::Limited,
        }
    }
}

/// An admin as `GET /admins` lists it: never a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminSummary {
    #[serde(flatten)]
    pub admin: Admin,
    /// Tickets assigned to the admin that are not CLOSED.
    pub open_tickets: i64,
}

/// An admin's share of the work, as assignment sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminLoad {
    pub admin_id: AdminId,
    pub available: bool,
    /// Tickets assigned to the admin that are not CLOSED.
    pub open_tickets: i64,
    pub last_assigned_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub id: TicketId,
    pub org_id: OrgId,
    pub title: String,
    pub description: String,
    /// The customer who filed the ticket; responses are emailed here.
    pub added_by: Email,
    pub admin_id: Option<AdminId>,
    pub status: Status,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub responded_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    /// When the pending auto-close will run; set only while RESPONDED.
    pub auto_close_at: Option<Timestamp>,
    /// Bumped on every write; a write based on an older version is a conflict.
    pub version: i64,
    /// The CLOSED ticket a customer's late reply followed up on, if this
    /// ticket was opened that way.
    pub follow_up_of: Option<TicketId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub id: ResponseId,
    pub ticket_id: TicketId,
    pub admin_id: AdminId,
    pub message: String,
    pub created_at: Timestamp,
    pub delivery: Delivery,
}

/// What a message on a ticket is: an admin's response (emailed to the
/// customer), the customer's reply (its assignee is emailed), or an internal
/// note (never emailed, never shown to the customer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MessageKind {
    Response,
    Reply,
    Note,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Response => "response",
            MessageKind::Reply => "reply",
            MessageKind::Note => "note",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [MessageKind::Response, MessageKind::Reply, MessageKind::Note]
            .into_iter()
            .find(|k| k.as_str() == raw)
    }

    /// Whether the customer sees messages of this kind.
    pub fn is_public(self) -> bool {
        self != MessageKind::Note
    }
}

/// Who wrote a message: an admin of the org, or the ticket's customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Author {
    #[serde(rename_all = "camelCase")]
    Admin {
        admin_id: AdminId,
    },
    Customer {
        email: Email,
    },
}

/// One message of a ticket's conversation, as the admin view shows it.
/// `delivery` is the email it caused: to the customer for a response, to
/// the assignee for a reply (none when the ticket had no assignee), never
/// for a note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: ResponseId,
    pub ticket_id: TicketId,
    pub kind: MessageKind,
    pub author: Author,
    pub message: String,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
}

impl Message {
    /// The message as the `responses` list shows it, if it is a response.
    pub fn as_response(&self) -> Option<Response> {
        match (&self.kind, &self.author, &self.delivery) {
            (MessageKind::Response, Author::Admin { admin_id }, Some(delivery)) => Some(Response {
                id: self.id,
                ticket_id: self.ticket_id,
                admin_id: *admin_id,
                message: self.message.clone(),
                created_at: self.created_at,
                delivery: delivery.clone(),
            }),
            _ => None,
        }
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Self {
        Message {
            id: r.id,
            ticket_id: r.ticket_id,
            kind: MessageKind::Response,
            author: Author::Admin { admin_id: r.admin_id },
            message: r.message,
            created_at: r.created_at,
            delivery: Some(r.delivery),
        }
    }
}

/// A pending auto-close: close `ticket_id` at `due_at` if it is still the
/// RESPONDED ticket of `responded_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseJob {
    pub ticket_id: TicketId,
    pub responded_at: Timestamp,
    pub due_at: Timestamp,
}

/// List filters; each combination is served by an index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    pub admin_id: Option<AdminId>,
    pub status: Option<Status>,
    pub customer: Option<Email>,
}

/// Position after the last ticket of a page (lists are newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagePosition {
    pub created_at: Timestamp,
    pub id: TicketId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub after: Option<PagePosition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketPage {
    pub tickets: Vec<Ticket>,
    /// Set when more tickets may follow.
    pub next: Option<PagePosition>,
}

impl TicketPage {
    /// A page from up to `limit + 1` tickets read in order: the extra one only
    /// says that another page exists.
    pub fn from_overfetched(mut tickets: Vec<Ticket>, limit: usize) -> Self {
        let more = tickets.len() > limit;
        tickets.truncate(limit);
        let next = if more {
            tickets.last().map(|t| PagePosition {
                created_at: t.created_at,
                id: t.id,
            })
        } else {
            None
        };
        Self { tickets, next }
    }
}

/// Failed sign-ins counted against one [`super::ThrottleKey`] within the current throttle window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigninWindow {
    pub failures: u32,
    pub started_at: Timestamp,
}

/// What a sign-in attempt got when it asked its throttle window for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigninSlot {
    /// Counted: the window as it is now, this attempt included.
    Taken(SigninWindow),
    /// The window already held its limit; nothing was counted.
    Refused(SigninWindow),
}
