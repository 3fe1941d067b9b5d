//! The domain: entities, values and rules. No I/O here.

mod client;
pub mod duration;
mod ids;
pub mod inbound;
mod mail;
mod model;
pub mod rules;
mod time;
mod values;

pub use client::{ClientId, ThrottleKey};
pub use ids::{AdminId, OrgId, ResponseId, TicketId};
pub use mail::*;
pub use model::*;
pub use time::Timestamp;
pub use values::{Domain, Email, MAX_DESCRIPTION, MAX_MESSAGE, MAX_NAME, MAX_TITLE, header_line, line, text};
