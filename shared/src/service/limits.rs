//! The service's rate limits over the [`RateLimiter`](crate::ports::RateLimiter)
//! port: each use names its [`Limit`] and the key it counts (an org, a
//! recipient, a ticket), and the rate comes from the settings.

use super::Service;
use crate::domain::duration::format_duration;
use crate::domain::limits::{Limit, Rate, Slot};
use crate::error::{Error, Result};
use std::time::Duration;

impl Service {
    /// Takes a slot of `limit` for `key`, or refuses with `rate_limited` (429).
    pub(super) async fn take_slot(&self, limit: Limit, key: &str) -> Result<()> {
        match self.try_slot(limit, key).await? {
            Slot::Taken => Ok(()),
            Slot::RetryAfter(retry_after) => Err(rate_limited(limit, self.config.limits.rate(limit), retry_after)),
        }
    }

    /// Takes a slot of `limit` for `key`, saying whether it got one.
    pub(super) async fn try_slot(&self, limit: Limit, key: &str) -> Result<Slot> {
        let rate = self.config.limits.rate(limit);
        self.take_rate(&format!("{}:{key}", limit.as_str()), rate).await
    }

    /// One slot of `rate` under `key` (already namespaced).
    pub(super) async fn take_rate(&self, key: &str, rate: Rate) -> Result<Slot> {
        Ok(self.ports.limits.take(key, self.now(), rate.window, rate.limit).await?)
    }
}

/// The error a full window gives: which limit, its rate, when to retry.
pub(super) fn rate_limited(limit: Limit, rate: Rate, retry_after: Duration) -> Error {
    Error::RateLimited {
        limit,
        message: format!(
            "rate limit {} reached ({} per {}); retry after {}s",
            limit.as_str(),
            rate.limit,
            format_duration(rate.window),
            retry_after.as_secs().max(1)
        ),
        retry_after,
    }
}
