//! Implementations of the ports.

#[cfg(feature = "embedded")]
pub mod embedded;
