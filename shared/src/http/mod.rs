//! The HTTP API, written once: `ticketd` serves every endpoint, each Lambda
//! binary serves one.

mod api_keys;
mod auth;
pub mod client_ip;
mod conversation;
mod endpoints;
pub mod error;
pub mod extract;
mod history;
mod idempotency;
mod people;
pub mod request_log;
mod tickets;
mod webhooks;

pub use endpoints::Endpoint;

use crate::service::Service;
use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::IntoResponse;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

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
/// ids and one log line per request (`request_log`).
pub fn finish(routes: Router<Service>, service: Service) -> Router {
    routes
        .fallback(|| async { error::routing_error(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async { error::routing_error(StatusCode::METHOD_NOT_ALLOWED) })
        // Per route, inside the log layer: a replay is logged as answered.
        .route_layer(axum::middleware::from_fn_with_state(
            service.clone(),
            idempotency::guard,
        ))
        .with_state(service)
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        // Inside the log layer, so a panic is logged as the 500 it becomes.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            crate::Error::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        // Per route (Router::layer), so it sees the matched route template.
        .layer(axum::middleware::from_fn(request_log::log_request))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(tower::util::MapRequestLayer::new(drop_unplain_request_id))
}

/// The longest client `X-Request-Id` kept (a UUID is 36 characters).
pub const MAX_REQUEST_ID: usize = 64;

/// Whether a client's request id is kept: short, and only `[A-Za-z0-9._-]`, so
/// it is safe to echo in a header and to write in a log line as it is.
pub fn is_plain_request_id(value: &HeaderValue) -> bool {
    let b = value.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_REQUEST_ID
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// Removes a client request id that is not plain (or sent twice), so that a
/// fresh UUID takes its place.
fn drop_unplain_request_id(mut req: Request<Body>) -> Request<Body> {
    let values = req.headers().get_all("x-request-id");
    let mut iter = values.iter();
    let keep = matches!((iter.next(), iter.next()), (Some(v), None) if is_plain_request_id(v));
    if !keep {
        req.headers_mut().remove("x-request-id");
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        for ok in [
            "abc",
            "0190f5c3-8a4e-7c12-9b3d-5e6f7a8b9c0d",
            "a.b_c-D9",
            &"x".repeat(64),
        ] {
            assert!(is_plain_request_id(&HeaderValue::from_str(ok).unwrap()), "{ok}");
        }
        for bad in ["", "a b", "a\tb", "a;b", "a\"b", "id=1", &"x".repeat(65)] {
            assert!(!is_plain_request_id(&HeaderValue::from_str(bad).unwrap()), "{bad:?}");
        }
        assert!(!is_plain_request_id(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()));
    }

    #[test]
    fn an_unplain_or_repeated_request_id_is_dropped() {
        let with = |ids: &[&str]| {
            let mut req = Request::new(Body::empty());
            for id in ids {
                req.headers_mut()
                    .append("x-request-id", HeaderValue::from_str(id).unwrap());
            }
            drop_unplain_request_id(req).headers().get("x-request-id").cloned()
        };
        assert_eq!(with(&["abc-1"]), Some(HeaderValue::from_static("abc-1")));
        assert_eq!(with(&["a b"]), None);
        assert_eq!(with(&["abc", "def"]), None);
        assert_eq!(with(&[]), None);
    }
}
