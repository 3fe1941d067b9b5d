//! `POST /inbound/email`: a self-hoster's MTA pipes each message for the
//! inbound domain here (`Content-Type: message/rfc822`, the raw message as
//! the body), authenticated by `X-Inbound-Token`. A 2xx means the message is
//! stored and will not be lost (nor applied twice if sent again); any other
//! status means it was not taken: the MTA should keep it and retry.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{MethodRouter, post};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use ticketing::Error;
use ticketing::domain::inbound::MAX_RAW_MESSAGE;
use ticketing::http::extract::NoQuery;
use ticketing::service::{InboundSource, Service};

pub const TOKEN_HEADER: &str = "x-inbound-token";

/// The route's handler, bound to the token. The body is taken unread: the
/// token and the declared size are checked first, so a stranger costs no
/// body read (its own limit: mail is larger than the API's JSON).
pub fn route(token: Arc<str>) -> MethodRouter<Service> {
    post(move |state, headers, q, body| receive(token.clone(), state, headers, q, body))
}

async fn receive(
    token: Arc<str>,
    State(service): State<Service>,
    headers: HeaderMap,
    _: NoQuery,
    body: Body,
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
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_RAW_MESSAGE as u64) {
        return Err(Error::PayloadTooLarge(MAX_RAW_MESSAGE));
    }
    // Past the body read timeout the read fails and the request is answered 408.
    let raw = axum::body::to_bytes(body, MAX_RAW_MESSAGE).await.map_err(|e| {
        let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            Error::PayloadTooLarge(MAX_RAW_MESSAGE)
        } else {
            Error::invalid("body", "could not be read")
        }
    })?;
    if raw.is_empty() {
        return Err(Error::invalid("body", "must be the raw message"));
    }
    let outcome = service.receive_inbound(&raw, InboundSource::default()).await?;
    Ok((StatusCode::OK, Json(serde_json::json!({ "outcome": outcome.name() }))))
}
