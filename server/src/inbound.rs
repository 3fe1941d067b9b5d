//! `POST /inbound/email`: a self-hoster's MTA pipes each message for the
//! inbound domain here (`Content-Type: message/rfc822`, the raw message as
//! the body), authenticated by `X-Inbound-Token`. A 2xx means the message is
//! stored and will not be lost (nor applied twice if sent again); any other
//! status means it was not taken: the MTA should keep it and retry.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{MethodRouter, post};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use ticketing::Error;
use ticketing::domain::inbound::MAX_RAW_MESSAGE;
use ticketing::http::extract::NoQuery;
use ticketing::service::{InboundSource, Service};

pub const TOKEN_HEADER: &str = "x-inbound-token";

/// The route's handler, bound to the token; its own body limit (mail is
/// larger than the API's JSON).
pub fn route(token: Arc<str>) -> MethodRouter<Service> {
    post(move |state, headers, q, body| receive(token.clone(), state, headers, q, body))
        .layer(DefaultBodyLimit::max(MAX_RAW_MESSAGE))
}

async fn receive(
    token: Arc<str>,
    State(service): State<Service>,
    headers: HeaderMap,
    _: NoQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), Error> {
    let given = headers.get(TOKEN_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if !bool::from(given.ct_eq(token.as_bytes())) {
        return Err(Error::Unauthorized("X-Inbound-Token required"));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("message/rfc822") {
        return Err(Error::invalid(
            "Content-Type",
            "must be message/rfc822 (the raw message)",
        ));
    }
    let raw = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge(MAX_RAW_MESSAGE),
        _ => Error::invalid("body", "could not be read"),
    })?;
    if raw.is_empty() {
        return Err(Error::invalid("body", "must be the raw message"));
    }
    let outcome = service.receive_inbound(&raw, InboundSource::default()).await?;
    Ok((StatusCode::OK, Json(serde_json::json!({ "outcome": outcome.name() }))))
}
