//! The domain: entities, values and rules. No I/O here.

mod api_keys;
mod client;
pub mod duration;
pub mod events;
mod idempotency;
mod ids;
pub mod inbound;
pub mod limits;
mod mail;
mod model;
pub mod rules;
mod time;
mod values;
pub mod webhooks;

pub use api_keys::{ApiKey, Credential, KeyGrant, Scope, scopes_from_str, scopes_to_string};
pub use client::{ClientId, ThrottleKey};
pub use events::{Actor, Cause, Change, TicketEvent};
pub use idempotency::{IdempotencyBegin, IdempotencyKey, IdempotencyRecord, KeptReply};
pub use ids::{AdminId, ApiKeyId, EventId, OrgId, ResponseId, TicketId, WebhookId};
pub use mail::*;
pub use model::*;
pub use time::Timestamp;
pub use values::{Domain, Email, MAX_DESCRIPTION, MAX_MESSAGE, MAX_NAME, MAX_TITLE, header_line, line, text};
