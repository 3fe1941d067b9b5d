//! The contract cases, each generic over the adapter set.

mod api_keys;
mod auth;
mod concurrency;
mod conversation;
mod errors;
mod history;
mod idempotency;
mod inbound;
mod lifecycle;
mod limits;
mod lists;
mod mail;
mod probe;
mod signin;
mod tenancy;
mod walkthrough;
mod webhooks;

pub use api_keys::*;
pub use auth::*;
pub use concurrency::*;
pub use conversation::*;
pub use errors::*;
pub use history::*;
pub use idempotency::*;
pub use inbound::*;
pub use lifecycle::*;
pub use limits::*;
pub use lists::*;
pub use mail::*;
pub use probe::*;
pub use signin::*;
pub use tenancy::*;
pub use walkthrough::*;
pub use webhooks::*;
