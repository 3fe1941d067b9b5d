//! `Idempotency-Key` on every POST: the first request with a key runs and
//! its answer is kept for 24 hours (5xx answers are not: the client may
//! retry); a replay of the same request gets that answer again with
//! `Idempotent-Replayed: true` and repeats no side effect; the same key for
//! another request is a 422, and while the first still runs a 409.
//!
//! Keys belong to the credential a request presents. A request without a
//! valid one runs without idempotency (its handler answers 401; nothing is
//! kept, so nothing is shared between callers), except org signup, which
//! needs none: its keys belong to the client's address. Sign-in ignores the
//! header: replaying its answer would tell whoever re-sent a key whether the
//! first attempt's password was right, past the sign-in throttle.

use super::Endpoint;
use super::client_ip::Client;
use super::extract::BODY_LIMIT;
use crate::domain::{ClientId, IdempotencyBegin, IdempotencyKey, KeptReply};
use crate::error::{Error, Result};
use crate::service::{Presented, Service, idempotency_key};
use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

const HEADER: &str = "idempotency-key";

/// The middleware (a route layer of every router, `http::finish`).
pub async fn guard(State(service): State<Service>, Client(client): Client, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.headers().contains_key(HEADER) {
        return next.run(req).await;
    }
    let endpoint = req.extensions().get::<MatchedPath>().and_then(|p| {
        Endpoint::ALL
            .into_iter()
            .find(|e| e.method() == Method::POST && e.path() == p.as_str())
    });
    if endpoint == Some(Endpoint::AdminSignin) {
        return next.run(req).await;
    }
    match idempotent(service, client, endpoint, req, next).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn idempotent(
    service: Service,
    client: ClientId,
    endpoint: Option<Endpoint>,
    req: Request,
    next: Next,
) -> Result<Response> {
    let mut values = req.headers().get_all(HEADER).iter();
    let (Some(raw), None) = (values.next(), values.next()) else {
        return Err(Error::invalid("Idempotency-Key", "must be sent once"));
    };
    let client_key = idempotency_key(raw.as_bytes())?;
    let keeps_body = endpoint.is_none_or(|e| !e.issues_credentials());
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| Error::PayloadTooLarge(BODY_LIMIT))?;
    let presented = match presented(&parts.headers, &bytes) {
        Presented::None if endpoint == Some(Endpoint::OrgSignup) => Presented::Client(client),
        other => other,
    };
    let Some(scope) = service.idempotency_scope(presented).await? else {
        // No valid credential: the handler answers 401, nothing is kept.
        return Ok(next.run(Request::from_parts(parts, Body::from(bytes))).await);
    };
    let key = IdempotencyKey { scope, key: client_key };
    let target = parts.uri.path_and_query().map_or("", |p| p.as_str());
    let fingerprint = crate::auth::secret::hex(&Sha256::digest(
        [
            parts.method.as_str().as_bytes(),
            b"\n",
            target.as_bytes(),
            b"\n",
            &bytes,
        ]
        .concat(),
    ));
    match service.begin_idempotent(&key, fingerprint).await? {
        IdempotencyBegin::Started => {}
        IdempotencyBegin::InProgress => return Err(Error::IdempotencyKeyInUse),
        IdempotencyBegin::Mismatch => return Err(Error::IdempotencyKeyReused),
        IdempotencyBegin::Done(kept) => return replay(kept),
    }
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if response.status().is_server_error() {
        if let Err(e) = service.abandon_idempotent(&key).await {
            tracing::warn!(error = ?e, "could not forget a failed request's idempotency key; it frees when its lease ends");
        }
        return Ok(response);
    }
    let (head, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX).await.map_err(Error::internal)?;
    let kept = KeptReply {
        status: head.status.as_u16(),
        body: keeps_body.then(|| String::from_utf8_lossy(&body).into_owned()),
        location: head
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    if let Err(e) = service.finish_idempotent(&key, &kept).await {
        // The answer still goes out; a replay meets the running record (409)
        // until its lease ends.
        tracing::warn!(error = ?e, "could not keep an idempotent answer");
    }
    Ok(Response::from_parts(head, Body::from(body)))
}

/// The credential the request presents, as the handlers will read it: a
/// bearer token, else `X-Api-Key`, else the JSON body's `secret`.
fn presented<'a>(headers: &'a axum::http::HeaderMap, body: &'a [u8]) -> Presented<'a> {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
    {
        return Presented::Jwt(token);
    }
    if let Some(secret) = super::extract::org_secret(headers, None) {
        return Presented::Secret(Cow::Borrowed(secret));
    }
    // Read as the handler reads it: a JSON string, escapes and all.
    #[derive(serde::Deserialize)]
    struct WithSecret<'a> {
        #[serde(borrow, default)]
        secret: Option<Cow<'a, str>>,
    }
    match serde_json::from_slice::<WithSecret>(body) {
        Ok(WithSecret { secret: Some(s) }) if !s.is_empty() => Presented::Secret(s),
        _ => Presented::None,
    }
}

/// The kept answer again, marked as a replay.
fn replay(kept: KeptReply) -> Result<Response> {
    let Some(body) = kept.body else {
        return Err(Error::IdempotentReplyNotKept);
    };
    let status = axum::http::StatusCode::from_u16(kept.status).map_err(Error::internal)?;
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    if let Some(location) = kept.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    Ok(response)
}
