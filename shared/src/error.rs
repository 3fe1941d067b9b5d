//! The one error type of the service. `http::error` maps it to a status and a JSON body.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed or invalid input; `field` names what to fix.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    /// The API key lacks the scope the route needs.
    #[error("this API key lacks the scope {0}")]
    InsufficientScope(crate::domain::Scope),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// An `Idempotency-Key` whose first request is still running.
    #[error("a request with this Idempotency-Key is still running; retry after it finishes")]
    IdempotencyKeyInUse,
    /// An `Idempotency-Key` used before for another request.
    #[error("this Idempotency-Key was used for another request (method, path or body)")]
    IdempotencyKeyReused,
    /// A replay of a request whose answer held a credential shown once.
    #[error("this request was already applied; its answer held a credential shown once and is not kept")]
    IdempotentReplyNotKept,
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    TooManyRequests(String, Duration),
    /// Every password-hashing turn of the process is taken (and stayed
    /// taken while the request waited): retry after the duration.
    #[error("too many password checks at once; retry shortly")]
    Busy(Duration),
    /// One of the service's rate limits ([`Limit`](crate::domain::limits::Limit)) is reached for now.
    #[error("{message}")]
    RateLimited {
        limit: crate::domain::limits::Limit,
        message: String,
        retry_after: Duration,
    },
    /// A dependency (database, AWS) is unreachable; the client may retry.
    #[error("service temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// A real fault. Logged in full, never echoed.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }
}

/// What storage adapters report; the service turns it into [`Error`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule or an optimistic version check failed.
    #[error("{0}")]
    Conflict(String),
    #[error("storage unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("storage fault")]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Error::Conflict(m),
            StoreError::Unavailable(e) => Error::Unavailable(e),
            StoreError::Internal(e) => Error::Internal(e),
        }
    }
}
