//! The idempotency half of the [`Store`](crate::ports::Store) port on
//! DynamoDB: one item per key (`IDEM#<sha256 of scope and key>`), begun with
//! a conditional put, and removed by TTL (`expiresAt`) a day later.

use super::dynamo::{DynamoStore, malformed};
use super::errors::Classify;
use super::items::{self, Item, get_n, get_s, n, opt_s, s};
use crate::auth::SecretHash;
use crate::domain::{IdempotencyBegin, IdempotencyKey, IdempotencyRecord, KeptReply, Timestamp};
use crate::error::StoreError;
use crate::ports::StoreResult;

fn idem_key(key: &IdempotencyKey) -> Item {
    // Hashed: a key is up to 255 characters of the client's choosing.
    let hash = SecretHash::of(&format!("{}\u{0}{}", key.scope, key.key));
    items::key(format!("IDEM#{}", hash.0), "IDEM")
}

/// Seconds since the epoch: what DynamoDB's TTL reads.
fn secs(t: Timestamp) -> i64 {
    t.millis().div_euclid(1000)
}

impl DynamoStore {
    pub(super) async fn begin_idempotent_item(
        &self,
        record: &IdempotencyRecord,
        now: Timestamp,
    ) -> StoreResult<IdempotencyBegin> {
        let mut item = idem_key(&record.key);
        item.insert("fingerprint".into(), s(&record.fingerprint));
        item.insert("state".into(), s("running"));
        item.insert("leaseUntil".into(), n(record.lease_until.millis()));
        item.insert("expiresAt".into(), n(secs(record.expires_at)));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // New, expired (TTL deletes lazily), or the same request whose
            // runner died holding the lease.
            .condition_expression(
                "attribute_not_exists(pk) OR expiresAt < :now_s \
                 OR (#state = :running AND leaseUntil < :now AND fingerprint = :fp)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now_s", n(secs(now)))
            .expression_attribute_values(":now", n(now.millis()))
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":fp", s(&record.fingerprint))
            .send()
            .await
            .classify();
        match put {
            Ok(_) => return Ok(IdempotencyBegin::Started),
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        let Some(found) = self.get(idem_key(&record.key)).await? else {
            // Forgotten in between (a 5xx abandoned it): the client retries.
            return Ok(IdempotencyBegin::InProgress);
        };
        if get_s(&found, "fingerprint").map_err(malformed)? != record.fingerprint {
            return Ok(IdempotencyBegin::Mismatch);
        }
        if get_s(&found, "state").map_err(malformed)? == "running" {
            return Ok(IdempotencyBegin::InProgress);
        }
        Ok(IdempotencyBegin::Done(KeptReply {
            status: u16::try_from(get_n(&found, "status").map_err(malformed)?).unwrap_or(200),
            body: opt_s(&found, "body").map(str::to_owned),
            location: opt_s(&found, "location").map(str::to_owned),
        }))
    }

    pub(super) async fn finish_idempotent_item(&self, key: &IdempotencyKey, reply: &KeptReply) -> StoreResult<()> {
        let mut set = vec!["#state = :done", "#status = :status"];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(idem_key(key)))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":status", n(i64::from(reply.status)));
        if let Some(body) = &reply.body {
            set.push("body = :body");
            update = update.expression_attribute_values(":body", s(body));
        }
        if let Some(location) = &reply.location {
            set.push("#location = :location");
            update = update
                .expression_attribute_names("#location", "location")
                .expression_attribute_values(":location", s(location));
        }
        match update
            .update_expression(format!("SET {}", set.join(", ")))
            .send()
            .await
            .classify()
        {
            // Expired and removed meanwhile: nothing left to keep it on.
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn abandon_idempotent_item(&self, key: &IdempotencyKey) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(idem_key(key)))
            .send()
            .await
            .classify()?;
        Ok(())
    }
}
