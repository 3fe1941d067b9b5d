//! The sign-in throttle half of the [`Store`](crate::ports::Store) port on
//! DynamoDB: one item per [`ThrottleKey`] (`SIGNIN#<key>`) holding the open
//! window's start and its count, removed by TTL after the window ends. A slot
//! is taken by a conditional update, so concurrent attempts cannot pass the
//! limit between a read and a write.

use super::dynamo::{DynamoStore, malformed};
use super::errors::Classify;
use super::items::{self, n};
use crate::domain::{SigninSlot, SigninWindow, ThrottleKey, Timestamp};
use crate::error::StoreError;
use crate::ports::StoreResult;
use aws_sdk_dynamodb::types::ReturnValue;
use std::time::Duration;

impl DynamoStore {
    /// At most four calls: count into the open window; else open a new one;
    /// else (another attempt opened it meanwhile) count again; else read the
    /// full window, for how long it has left.
    pub(super) async fn reserve_signin_item(
        &self,
        key: &ThrottleKey,
        now: Timestamp,
        window: Duration,
        max: u32,
    ) -> StoreResult<SigninSlot> {
        let cutoff = now.millis() - i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 2);
        if let Some(w) = self.count_into_open_window(key, cutoff, max).await? {
            return Ok(SigninSlot::Taken(w));
        }
        let opened = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(items::throttle_item(key, now, window)))
            .condition_expression("attribute_not_exists(pk) OR windowStart <= :cutoff")
            .expression_attribute_values(":cutoff", n(cutoff))
            .send()
            .await
            .classify();
        match opened {
            Ok(_) => {
                return Ok(SigninSlot::Taken(SigninWindow {
                    failures: 1,
                    started_at: now,
                }));
            }
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        if let Some(w) = self.count_into_open_window(key, cutoff, max).await? {
            return Ok(SigninSlot::Taken(w));
        }
        let changed = || {
            StoreError::Unavailable(anyhow::anyhow!(
                "sign-in throttle window changed under concurrent attempts"
            ))
        };
        let item = self.get(items::throttle_key(key)).await?.ok_or_else(changed)?;
        let w = items::throttle_from(&item).map_err(malformed)?;
        if w.started_at.millis() > cutoff && w.failures >= max {
            Ok(SigninSlot::Refused(w))
        } else {
            Err(changed())
        }
    }

    /// Counts one attempt into `key`'s window if it is open (started after
    /// `cutoff`) and holds fewer than `max`, in one conditional update: the
    /// window after the count, or `None` if the condition failed.
    async fn count_into_open_window(
        &self,
        key: &ThrottleKey,
        cutoff: i64,
        max: u32,
    ) -> StoreResult<Option<SigninWindow>> {
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::throttle_key(key)))
            .update_expression("SET failures = failures + :one")
            .condition_expression("windowStart > :cutoff AND failures < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cutoff", n(cutoff))
            .expression_attribute_values(":max", n(i64::from(max)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .classify();
        match counted {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                Ok(Some(items::throttle_from(&item).map_err(malformed)?))
            }
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn release_signin_item(&self, key: &ThrottleKey, started_at: Timestamp) -> StoreResult<()> {
        let released = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::throttle_key(key)))
            .update_expression("SET failures = failures - :one")
            .condition_expression("windowStart = :start AND failures > :zero")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":start", n(started_at.millis()))
            .send()
            .await
            .classify();
        match released {
            // The window ended (or was cleared) meanwhile: nothing to give back.
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
