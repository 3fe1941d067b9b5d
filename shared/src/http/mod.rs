//! The HTTP API, written once: `ticketd` serves every endpoint, each Lambda
//! binary serves one.

mod auth;
pub mod client_ip;
mod endpoints;
pub mod error;
pub mod extract;
mod tickets;

pub use endpoints::Endpoint;

use crate::service::Service;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use tower_http::LatencyUnit;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

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
