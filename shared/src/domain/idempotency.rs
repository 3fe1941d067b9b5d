//! Idempotent requests: what is kept of a request made with an
//! `Idempotency-Key`, and what a request with a key already seen gets.

use super::time::Timestamp;

/// Whose key it is and which key: keys are scoped to the credential (an
/// admin, an org secret, an API key), so two clients never share one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    /// `admin:<id>`, `org:<id>`, `key:<id>`, or `client:<address>` (org
    /// signup, the one POST that needs no credential).
    pub scope: String,
    /// The client's key, 1 to 255 printable ASCII characters.
    pub key: String,
}

/// The first answer, as a replay gets it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptReply {
    pub status: u16,
    /// The JSON body; `None` when the answer carried a credential shown
    /// once (an org or API key secret, a JWT), which is never kept.
    pub body: Option<String>,
    pub location: Option<String>,
}

/// What became of a request's key when it began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// The key is new (or its record expired, or its first request died
    /// holding it): this request runs.
    Started,
    /// The key's first request is still running.
    InProgress,
    /// The key was used for another request (method, path or body).
    Mismatch,
    /// The key's first request finished: its answer.
    Done(KeptReply),
}

/// A request's record, as stored while it runs and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub key: IdempotencyKey,
    /// SHA-256 of method, path and body.
    pub fingerprint: String,
    /// While running: when a request that died holding the key lets go.
    pub lease_until: Timestamp,
    /// When the record is forgotten (24 hours after it began).
    pub expires_at: Timestamp,
}
