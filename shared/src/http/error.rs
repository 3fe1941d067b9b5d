//! The one mapping from [`Error`] to an HTTP response: `{"error": {code, message, field?}}`.

use crate::error::Error;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Invalid { .. } => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) | Error::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) | Error::IdempotencyKeyInUse | Error::IdempotentReplyNotKept => StatusCode::CONFLICT,
            Error::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::TooManyRequests(..) | Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) | Error::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid_request",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::InsufficientScope(_) => "insufficient_scope",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::IdempotencyKeyInUse => "idempotency_key_in_use",
            Error::IdempotencyKeyReused => "idempotency_key_reused",
            Error::IdempotentReplyNotKept => "idempotent_reply_not_kept",
            Error::PayloadTooLarge(_) => "payload_too_large",
            Error::TooManyRequests(..) => "too_many_requests",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unavailable(_) => "unavailable",
            Error::Busy(_) => "busy",
            Error::Internal(_) => "internal",
        }
    }
}

/// A 404 or 405 produced by routing rather than by a handler.
pub fn routing_error(status: StatusCode) -> Response {
    let (code, message) = if status == StatusCode::METHOD_NOT_ALLOWED {
        ("method_not_allowed", "this method is not allowed on this path")
    } else {
        ("not_found", "no such route")
    };
    (status, Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            // Full detail goes to the log only; the client gets a generic message.
            Error::Internal(e) => tracing::error!(error = ?e, "internal error"),
            Error::Unavailable(e) => tracing::warn!(error = ?e, "dependency unavailable"),
            _ => {}
        }
        let mut body = json!({"code": self.code(), "message": self.to_string()});
        match &self {
            Error::Invalid { field, .. } => body["field"] = json!(field),
            Error::RateLimited { limit, .. } => body["limit"] = json!(limit.as_str()),
            _ => {}
        }
        let mut response = (status, Json(json!({ "error": body }))).into_response();
        let headers = response.headers_mut();
        match &self {
            Error::TooManyRequests(_, wait) | Error::Busy(wait) | Error::RateLimited { retry_after: wait, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
            }
            Error::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Error::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}
