//! Rate-limit counters on DynamoDB: one item per key and fixed window
//! (`LIMIT#<key>#<window start>` / `LIMIT`), taken with one conditional
//! `UpdateItem` (`ADD` below the limit), expiring by TTL (`expiresAt`) a
//! minute after its window ends.

use super::errors::Classify;
use super::items::{self, Item, n};
use crate::domain::Timestamp;
use crate::domain::limits::{Slot, window_of};
use crate::error::StoreError;
use crate::ports::{RateLimiter, StoreResult};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use std::time::Duration;

pub struct DynamoLimits {
    client: Client,
    table: String,
}

impl DynamoLimits {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl RateLimiter for DynamoLimits {
    async fn take(&self, key: &str, now: Timestamp, window: Duration, limit: u32) -> StoreResult<Slot> {
        let (start, end) = window_of(now, window);
        if limit == 0 {
            return Ok(Slot::RetryAfter(now.until(end)));
        }
        let expires = end.plus(Duration::from_secs(60)).millis() / 1000;
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::key(format!("LIMIT#{key}#{}", start.millis()), "LIMIT")))
            .update_expression("ADD #c :one SET expiresAt = :exp")
            .condition_expression("attribute_not_exists(#c) OR #c < :limit")
            .expression_attribute_names("#c", "count")
            .set_expression_attribute_values(Some(Item::from([
                (":one".to_owned(), n(1)),
                (":exp".to_owned(), n(expires)),
                (":limit".to_owned(), n(i64::from(limit))),
            ])))
            .send()
            .await
            .classify();
        match update {
            Ok(_) => Ok(Slot::Taken),
            Err(StoreError::Conflict(_)) => Ok(Slot::RetryAfter(now.until(end))),
            Err(e) => Err(e),
        }
    }
}
