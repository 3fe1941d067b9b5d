//! The endpoints of the contract: method, path and Lambda function of each,
//! and the handler (in its area's module) that serves it.

use super::{api_keys, auth, conversation, extract, history, people, tickets, webhooks};
use crate::service::Service;
use axum::body::Body;
use axum::http::{Method, Request};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, delete, get, post};

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
    // Credentials (issue 10).
    CreateApiKey,
    ListApiKeys,
    RevokeApiKey,
    RotateOrgSecret,
    // Issue 9, history and people.
    TicketEvents,
    ListAdmins,
    SetAvailability,
    SetRole,
    // Webhooks (issue 10).
    CreateWebhook,
    ListWebhooks,
    DeleteWebhook,
    RotateWebhookSecret,
    WebhookDeliveries,
    RedeliverWebhook,
}

impl Endpoint {
    pub const ALL: [Endpoint; 25] = [
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
        Endpoint::CreateApiKey,
        Endpoint::ListApiKeys,
        Endpoint::RevokeApiKey,
        Endpoint::RotateOrgSecret,
        Endpoint::TicketEvents,
        Endpoint::ListAdmins,
        Endpoint::SetAvailability,
        Endpoint::SetRole,
        Endpoint::CreateWebhook,
        Endpoint::ListWebhooks,
        Endpoint::DeleteWebhook,
        Endpoint::RotateWebhookSecret,
        Endpoint::WebhookDeliveries,
        Endpoint::RedeliverWebhook,
    ];

    pub fn method(self) -> Method {
        match self {
            Endpoint::GetTicket
            | Endpoint::ListTickets
            | Endpoint::ListApiKeys
            | Endpoint::TicketEvents
            | Endpoint::ListAdmins
            | Endpoint::ListWebhooks
            | Endpoint::WebhookDeliveries => Method::GET,
            Endpoint::RevokeApiKey | Endpoint::DeleteWebhook => Method::DELETE,
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
            Endpoint::CreateApiKey | Endpoint::ListApiKeys => "/api-keys",
            Endpoint::RevokeApiKey => "/api-keys/{id}",
            Endpoint::RotateOrgSecret => "/auth/org/secret/rotate",
            Endpoint::TicketEvents => "/tickets/{id}/events",
            Endpoint::ListAdmins => "/admins",
            Endpoint::SetAvailability => "/admins/{id}/availability",
            Endpoint::SetRole => "/admins/{id}/role",
            Endpoint::CreateWebhook | Endpoint::ListWebhooks => "/webhooks",
            Endpoint::DeleteWebhook => "/webhooks/{id}",
            Endpoint::RotateWebhookSecret => "/webhooks/{id}/rotate_secret",
            Endpoint::WebhookDeliveries => "/webhooks/{id}/deliveries",
            Endpoint::RedeliverWebhook => "/webhooks/{id}/deliveries/{deliveryId}/redeliver",
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
            Endpoint::CreateApiKey => "create-api-key",
            Endpoint::ListApiKeys => "list-api-keys",
            Endpoint::RevokeApiKey => "revoke-api-key",
            Endpoint::RotateOrgSecret => "rotate-org-secret",
            Endpoint::TicketEvents => "ticket-events",
            Endpoint::ListAdmins => "list-admins",
            Endpoint::SetAvailability => "set-availability",
            Endpoint::SetRole => "set-admin-role",
            Endpoint::CreateWebhook => "create-webhook",
            Endpoint::ListWebhooks => "list-webhooks",
            Endpoint::DeleteWebhook => "delete-webhook",
            Endpoint::RotateWebhookSecret => "rotate-webhook-secret",
            Endpoint::WebhookDeliveries => "webhook-deliveries",
            Endpoint::RedeliverWebhook => "redeliver-webhook",
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
            | Endpoint::AddNote
            | Endpoint::CreateApiKey
            | Endpoint::ListApiKeys
            | Endpoint::RevokeApiKey
            | Endpoint::RotateOrgSecret
            | Endpoint::TicketEvents
            | Endpoint::ListAdmins
            | Endpoint::SetAvailability
            | Endpoint::SetRole
            | Endpoint::CreateWebhook
            | Endpoint::ListWebhooks
            | Endpoint::DeleteWebhook
            | Endpoint::RotateWebhookSecret
            | Endpoint::WebhookDeliveries
            | Endpoint::RedeliverWebhook => true,
        }
    }

    /// Whether the endpoint's answer holds a credential shown once (an org
    /// secret, an API key, a JWT): an idempotent replay of it cannot repeat
    /// the answer, since credentials are never kept.
    pub fn issues_credentials(self) -> bool {
        matches!(
            self,
            Endpoint::OrgSignup
                | Endpoint::AdminSignin
                | Endpoint::CreateApiKey
                | Endpoint::RotateOrgSecret
                | Endpoint::CreateWebhook
                | Endpoint::RotateWebhookSecret
        )
    }

    /// The query parameters the endpoint takes; any other is a 400 naming it.
    pub fn query_params(self) -> &'static [&'static str] {
        match self {
            Endpoint::ListTickets => &["adminEmail", "status", "customerEmail", "limit", "cursor"],
            Endpoint::TicketEvents | Endpoint::ListAdmins => &["limit", "cursor"],
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
            Endpoint::CreateApiKey => post(api_keys::create_api_key),
            Endpoint::ListApiKeys => get(api_keys::list_api_keys),
            Endpoint::RevokeApiKey => delete(api_keys::revoke_api_key),
            Endpoint::RotateOrgSecret => post(api_keys::rotate_org_secret),
            Endpoint::TicketEvents => get(history::ticket_events),
            Endpoint::ListAdmins => get(people::list_admins),
            Endpoint::SetAvailability => post(people::set_availability),
            Endpoint::SetRole => post(people::set_role),
            Endpoint::CreateWebhook => post(webhooks::create_webhook),
            Endpoint::ListWebhooks => get(webhooks::list_webhooks),
            Endpoint::DeleteWebhook => delete(webhooks::delete_webhook),
            Endpoint::RotateWebhookSecret => post(webhooks::rotate_webhook_secret),
            Endpoint::WebhookDeliveries => get(webhooks::list_deliveries),
            Endpoint::RedeliverWebhook => post(webhooks::redeliver),
        }
    }
}
