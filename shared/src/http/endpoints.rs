//! The endpoints of the contract: method, path and Lambda function of each,
//! and the handler (in its area's module) that serves it.

use super::{auth, conversation, extract, tickets};
use crate::service::Service;
use axum::body::Body;
use axum::http::{Method, Request};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get, post};

/// The endpoints of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    OrgSignup,
    AdminSignup,
    AdminSignin,
    CreateTicket,
    ChangeStatus,
    Respond,
    GetTicket,
    ListTickets,
    UpdateTicket,
    // The conversation (issue 9).
    AddReply,
    AddNote,
}

impl Endpoint {
    pub const ALL: [Endpoint; 11] = [
        Endpoint::OrgSignup,
        Endpoint::AdminSignup,
        Endpoint::AdminSignin,
        Endpoint::CreateTicket,
        Endpoint::ChangeStatus,
        Endpoint::Respond,
        Endpoint::GetTicket,
        Endpoint::ListTickets,
        Endpoint::UpdateTicket,
        Endpoint::AddReply,
        Endpoint::AddNote,
    ];

    pub fn method(self) -> Method {
        match self {
            Endpoint::GetTicket | Endpoint::ListTickets => Method::GET,
            _ => Method::POST,
        }
    }

    /// The path in axum syntax (`{id}`), which is also API Gateway's.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::OrgSignup => "/auth/org/signup",
            Endpoint::AdminSignup => "/auth/admin/signup",
            Endpoint::AdminSignin => "/auth/admin/signin",
            Endpoint::CreateTicket | Endpoint::ListTickets => "/tickets",
            Endpoint::ChangeStatus => "/tickets/{id}/change_status",
            Endpoint::Respond => "/tickets/{id}/respond",
            Endpoint::GetTicket | Endpoint::UpdateTicket => "/tickets/{id}",
            Endpoint::AddReply => "/tickets/{id}/replies",
            Endpoint::AddNote => "/tickets/{id}/notes",
        }
    }

    /// The Lambda function (and binary) serving this endpoint.
    pub fn function_name(self) -> &'static str {
        match self {
            Endpoint::OrgSignup => "org-signup",
            Endpoint::AdminSignup => "admin-signup",
            Endpoint::AdminSignin => "admin-signin",
            Endpoint::CreateTicket => "create-ticket",
            Endpoint::ChangeStatus => "change-status",
            Endpoint::Respond => "respond",
            Endpoint::GetTicket => "get-ticket",
            Endpoint::ListTickets => "list-tickets",
            Endpoint::UpdateTicket => "update-ticket",
            Endpoint::AddReply => "add-reply",
            Endpoint::AddNote => "add-note",
        }
    }

    /// Whether the endpoint signs or verifies admin JWTs: only these
    /// functions get the JWT keys (template.yaml; checked by its test).
    pub fn uses_jwt(self) -> bool {
        match self {
            Endpoint::OrgSignup | Endpoint::AdminSignup | Endpoint::CreateTicket | Endpoint::AddReply => false,
            Endpoint::AdminSignin
            | Endpoint::ChangeStatus
            | Endpoint::Respond
            | Endpoint::GetTicket
            | Endpoint::ListTickets
            | Endpoint::UpdateTicket
            | Endpoint::AddNote => true,
        }
    }

    /// The query parameters the endpoint takes; any other is a 400 naming it.
    pub fn query_params(self) -> &'static [&'static str] {
        match self {
            Endpoint::ListTickets => &["adminEmail", "status", "customerEmail", "limit", "cursor"],
            _ => &[],
        }
    }

    /// The handler, behind the check of its query parameters: one check for
    /// every endpoint, before authentication and the body are looked at.
    pub(super) fn handler(self) -> MethodRouter<Service> {
        let allowed = self.query_params();
        self.bare_handler()
            .route_layer(middleware::from_fn(move |req: Request<Body>, next: Next| async move {
                match extract::check_query(req.uri(), allowed) {
                    Ok(()) => next.run(req).await,
                    Err(e) => e.into_response(),
                }
            }))
    }

    fn bare_handler(self) -> MethodRouter<Service> {
        match self {
            Endpoint::OrgSignup => post(auth::org_signup),
            Endpoint::AdminSignup => post(auth::admin_signup),
            Endpoint::AdminSignin => post(auth::admin_signin),
            Endpoint::CreateTicket => post(tickets::create_ticket),
            Endpoint::ChangeStatus => post(tickets::change_status),
            Endpoint::Respond => post(tickets::respond),
            Endpoint::GetTicket => get(tickets::get_ticket),
            Endpoint::ListTickets => get(tickets::list_tickets),
            Endpoint::UpdateTicket => post(tickets::update_ticket),
            Endpoint::AddReply => post(conversation::add_reply),
            Endpoint::AddNote => post(conversation::add_note),
        }
    }
}
