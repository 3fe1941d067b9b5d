//! The ticketing service: domain, rules, auth, ports, service and HTTP API,
//! with the adapters that plug into the ports.
//!
//! - [`domain`]: entities, values and lifecycle rules (no I/O)
//! - [`auth`]: org secrets, passwords, JWTs
//! - [`ports`]: storage, mail, scheduling and clock traits
//! - [`service`]: the use cases, over the ports
//! - [`http`]: one axum handler per endpoint, and the router
//! - [`adapters`]: embedded (SQLite) and, with feature `aws`, AWS implementations

pub mod adapters;
pub mod auth;
pub mod domain;
pub mod error;
pub mod http;
pub mod ports;
pub mod service;

pub use error::{Error, Result};
