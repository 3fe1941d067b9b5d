//! One log line per request: its id, method, route template (never the raw
//! path or query, which may hold customer emails), status, latency in ms, and
//! the org it acted for once a credential named one. Nothing from bodies or
//! headers besides the request id, so no secret, token, hash or mail text.

use crate::domain::OrgId;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::cell::Cell;
use std::time::Instant;
use tracing::Instrument;

tokio::task_local! {
    static REQUEST_ORG: Cell<Option<OrgId>>;
}

/// Notes the org the current request acts for, for its log line (a no-op
/// outside a request).
pub fn note_org(org: OrgId) {
    let _ = REQUEST_ORG.try_with(|slot| slot.set(Some(org)));
}

/// The route of an unmatched request (404, 405).
pub const UNMATCHED: &str = "-";

/// Logs the request once it is answered; everything the service logs while
/// handling it carries the request id (span `request`). Per request: one
/// clock read at each end, and no allocation but the id's copy (the route
/// template is shared, the method a constant).
pub async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    // Set (or checked plain) by the request-id layers outside this one.
    let id = req.headers().get("x-request-id").cloned();
    let id = id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or(UNMATCHED);
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    let span = tracing::info_span!("request", request_id = %id);
    let (response, org) = REQUEST_ORG
        .scope(Cell::new(None), async {
            let response = next.run(req).instrument(span).await;
            (response, REQUEST_ORG.with(Cell::get))
        })
        .await;
    let status = response.status().as_u16();
    // Microsecond resolution, in ms.
    let latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    let org = org.map(tracing::field::display);
    if status >= 500 {
        tracing::error!(request_id = %id, %method, %route, status, latency_ms, org, "request");
    } else {
        tracing::info!(request_id = %id, %method, %route, status, latency_ms, org, "request");
    }
    response
}
