//! The typed inputs and outputs of the use cases. Handlers build commands from
//! wire input (naming the offending field on failure); by the time a command
//! reaches the service every value in it is valid.

use crate::domain::{AdminId, Domain, Email, Org, OrgId, Status, Ticket};

/// A new org and its secret, which is never shown again.
pub struct OrgSignup {
    pub org: Org,
    pub secret: String,
}

pub struct NewOrg {
    pub name: String,
    pub domain: Domain,
}

/// An admin to sign up; `password` already meets the password rules.
pub struct NewAdmin {
    pub first_name: String,
    pub last_name: String,
    pub email: Email,
    pub password: String,
    pub available: bool,
}

/// A sign-in: the seed's email and password, plus the org's domain when the
/// email and password fit accounts in several orgs.
pub struct Signin {
    /// `None` when the input is not an email at all: the same 401 as an unknown one.
    pub email: Option<Email>,
    pub password: String,
    pub org_domain: Option<Domain>,
}

pub struct NewTicket {
    pub title: String,
    pub description: String,
    /// The customer filing the ticket.
    pub added_by: Email,
}

/// A change to a ticket; at least one field is set.
#[derive(Debug, Default)]
pub struct TicketPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    /// `Some(None)` unassigns.
    pub admin_id: Option<Option<AdminId>>,
    pub status: Option<Status>,
    pub org_id: Option<OrgId>,
}

impl TicketPatch {
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.admin_id.is_none()
            && self.status.is_none()
            && self.org_id.is_none()
    }
}

#[derive(Debug)]
pub struct ListQuery {
    pub admin: Option<Email>,
    pub status: Option<Status>,
    pub customer: Option<Email>,
    /// 1..=MAX_PAGE.
    pub limit: usize,
    /// The opaque cursor of the previous page, as the client got it.
    pub cursor: Option<String>,
}

pub struct ListResult {
    pub tickets: Vec<Ticket>,
    pub next_cursor: Option<String>,
}
