//! Inbound mail on DynamoDB: one item per message (`INBOUND#<dedupe key>` /
//! `INBOUND`), put only if new, then given its outcome. The raw message is
//! in S3 (SES's receipt rule wrote it; the item names the object); when it
//! arrived another way (ticketd on AWS) the item keeps it, up to
//! [`MAX_RAW_IN_ITEM`]. Each item expires (TTL `expiresAt`) at its
//! receipt's `expires_at`: the raw retention for a message, longer than any
//! MTA's retries for a reply's claim. The raw message in S3 is purged by the
//! bucket's lifecycle rule.

use super::dynamo::DynamoStore;
use super::errors::Classify;
use super::items::{self, Item, n, s};
use crate::domain::inbound::{InboundReceipt, StoredInbound};
use crate::domain::{TicketId, Timestamp};
use crate::error::StoreError;
use crate::ports::StoreResult;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

/// The most raw bytes kept on the item: DynamoDB caps an item at 400 KB.
pub const MAX_RAW_IN_ITEM: usize = 300 * 1024;

fn inbound_key(key: &str) -> Item {
    items::key(format!("INBOUND#{key}"), "INBOUND")
}

impl DynamoStore {
    pub(super) async fn save_inbound_item(&self, receipt: &InboundReceipt, raw: &[u8]) -> StoreResult<StoredInbound> {
        let mut item = inbound_key(&receipt.key);
        item.insert("receivedAt".into(), n(receipt.received_at.millis()));
        item.insert("size".into(), n(i64::try_from(raw.len()).unwrap_or(i64::MAX)));
        let expires = receipt.expires_at.millis() / 1000;
        item.insert("expiresAt".into(), n(expires));
        match &receipt.source {
            Some(source) => {
                item.insert("source".into(), s(source));
            }
            None if raw.len() <= MAX_RAW_IN_ITEM => {
                item.insert("raw".into(), AttributeValue::B(Blob::new(raw)));
            }
            None => tracing::warn!(
                key = %receipt.key,
                size = raw.len(),
                "inbound message too large to keep on its DynamoDB item: only its outcome is kept"
            ),
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .classify();
        match put {
            Ok(_) => Ok(StoredInbound {
                first: true,
                received_at: receipt.received_at,
                outcome: None,
            }),
            Err(StoreError::Conflict(_)) => {
                let out = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(inbound_key(&receipt.key)))
                    .consistent_read(true)
                    .projection_expression("receivedAt, outcome")
                    .send()
                    .await
                    .classify()?;
                let item = out.item.unwrap_or_default();
                Ok(StoredInbound {
                    first: false,
                    received_at: items::opt_ts(&item, "receivedAt").unwrap_or(receipt.received_at),
                    outcome: items::opt_s(&item, "outcome").map(str::to_owned),
                })
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn finish_inbound_item(
        &self,
        key: &str,
        outcome: &str,
        ticket: Option<TicketId>,
        at: Timestamp,
    ) -> StoreResult<()> {
        let mut values = Item::from([(":o".to_owned(), s(outcome)), (":at".to_owned(), n(at.millis()))]);
        let mut update = "SET outcome = :o, finishedAt = :at".to_owned();
        if let Some(t) = ticket {
            values.insert(":t".into(), s(t.to_string()));
            update.push_str(", ticketId = :t");
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(inbound_key(key)))
            .update_expression(update)
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .classify()?;
        Ok(())
    }
}
