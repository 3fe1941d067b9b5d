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
