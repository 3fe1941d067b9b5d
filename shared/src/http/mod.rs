//! The HTTP API, written once: `ticketd` serves every endpoint, each Lambda
//! binary serves one.

pub mod client_ip;
pub mod error;
pub mod extract;
mod handlers;

use crate::service::Service;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get, post};
use tower_http::LatencyUnit;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

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
}

impl Endpoint {
    pub const ALL: [Endpoint; 9] = [
        Endpoint::OrgSignup,
        Endpoint::AdminSignup,
        Endpoint::AdminSignin,
        Endpoint::CreateTicket,
        Endpoint::ChangeStatus,
        Endpoint::Respond,
        Endpoint::GetTicket,
        Endpoint::ListTickets,
        Endpoint::UpdateTicket,
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
        }
    }

    fn handler(self) -> MethodRouter<Service> {
        match self {
            Endpoint::OrgSignup => post(handlers::org_signup),
            Endpoint::AdminSignup => post(handlers::admin_signup),
            Endpoint::AdminSignin => post(handlers::admin_signin),
            Endpoint::CreateTicket => post(handlers::create_ticket),
            Endpoint::ChangeStatus => post(handlers::change_status),
            Endpoint::Respond => post(handlers::respond),
            Endpoint::GetTicket => get(handlers::get_ticket),
            Endpoint::ListTickets => get(handlers::list_tickets),
            Endpoint::UpdateTicket => post(handlers::update_ticket),
        }
    }
}

/// The API routes for `endpoints`, without state or middleware; see [`finish`].
pub fn routes(endpoints: &[Endpoint]) -> Router<Service> {
    endpoints
        .iter()
        .fold(Router::new(), |router, e| router.route(e.path(), e.handler()))
}

/// A ready router serving `endpoints`.
pub fn router(service: Service, endpoints: &[Endpoint]) -> Router {
    finish(routes(endpoints), service)
}

/// Adds what every deployment shares: JSON 404/405, the body limit, request
/// ids and request tracing.
pub fn finish(routes: Router<Service>, service: Service) -> Router {
    routes
        .fallback(|| async { error::routing_error(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async { error::routing_error(StatusCode::METHOD_NOT_ALLOWED) })
        .with_state(service)
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    // The path only: query strings may carry customer emails.
                    tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
                })
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(LatencyUnit::Micros),
                ),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            crate::Error::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
}
