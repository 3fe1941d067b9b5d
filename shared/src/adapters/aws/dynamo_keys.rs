//! The credentials half of the [`Store`](crate::ports::Store) port on
//! DynamoDB: API keys (a listing item and a `SECRET#` item, written and
//! deleted together) and the org secret's rotation, one transaction each.

use super::dynamo::{DynamoStore, malformed};
use super::errors::Classify;
use super::items::{self, Item, keys, s};
use crate::auth::SecretHash;
use crate::domain::{ApiKey, ApiKeyId, Credential, OrgId, Timestamp};
use crate::error::StoreError;
use crate::ports::StoreResult;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};

impl DynamoStore {
    pub(super) async fn credential_item(&self, hash: &SecretHash) -> StoreResult<Option<Credential>> {
        self.get(items::secret_key(&hash.0))
            .await?
            .map(|i| keys::credential_from(&i).map_err(malformed))
            .transpose()
    }

    pub(super) async fn create_api_key_items(&self, key: &ApiKey, hash: &SecretHash) -> StoreResult<()> {
        let org = self
            .get(items::org_key(key.org_id))
            .await?
            .ok_or_else(|| StoreError::Conflict("no such org".into()))?;
        let org = items::org_from(&org).map_err(malformed)?;
        self.put_all_new(vec![
            keys::api_key_item(key, &hash.0),
            keys::key_secret_item(&org, key, &hash.0),
        ])
        .await
    }

    /// The org's keys, oldest first (v7 ids sort by time): one Query of its
    /// partition's `APIKEY#` range.
    pub(super) async fn api_key_items(&self, org: OrgId) -> StoreResult<Vec<ApiKey>> {
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(items::org_partition(org)))
                .expression_attribute_values(":prefix", s(keys::API_KEY_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .classify()?;
            for item in out.items() {
                found.push(keys::api_key_from(item).map_err(malformed)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(found),
            }
        }
    }

    /// Deletes the listing and the secret item together; false if the key
    /// is not (or no longer) the org's.
    pub(super) async fn revoke_api_key_items(&self, org: OrgId, id: ApiKeyId) -> StoreResult<bool> {
        let Some(listing) = self.get(keys::api_key_key(org, id)).await? else {
            return Ok(false);
        };
        let hash = items::get_s(&listing, keys::ORG_SECRET_HASH).map_err(malformed)?;
        let delete = |key: Item| {
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key))
                        .condition_expression("attribute_exists(pk)")
                        .build()
                        .expect("table, key and condition are set"),
                )
                .build()
        };
        match self
            .transact(vec![
                delete(keys::api_key_key(org, id)),
                delete(items::secret_key(hash)),
            ])
            .await
        {
            Ok(()) => Ok(true),
            // Revoked by a concurrent request.
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn touch_api_key_item(&self, org: OrgId, id: ApiKeyId, at: Timestamp) -> StoreResult<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::api_key_key(org, id)))
            .update_expression("SET lastUsedAt = :at")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(lastUsedAt) OR lastUsedAt < :at)")
            .expression_attribute_values(":at", items::n(at.millis()))
            .send()
            .await
            .classify();
        match out {
            // Revoked meanwhile, or a later use recorded first: nothing to do.
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Swaps the org's secret item in one transaction, on condition that the
    /// org item still names the old one (a concurrent rotation is a conflict).
    /// Orgs created before the org item recorded `secretHash` cannot rotate:
    /// nothing names their secret item without a scan.
    pub(super) async fn rotate_org_secret_items(&self, org: OrgId, new: &SecretHash) -> StoreResult<()> {
        let item = self
            .get(items::org_key(org))
            .await?
            .ok_or_else(|| StoreError::Conflict("no such org".into()))?;
        let old = items::opt_s(&item, keys::ORG_SECRET_HASH)
            .ok_or_else(|| StoreError::Conflict("this org's secret predates rotation".into()))?
            .to_owned();
        let org_value = items::org_from(&item).map_err(malformed)?;
        let mut secret_item = items::secret_key(&new.0);
        secret_item.extend(items::org_fields(&org_value));
        let writes = vec![
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(items::secret_key(&old)))
                        .build()
                        .expect("table and key are set"),
                )
                .build(),
            TransactWriteItem::builder()
                .put(self.put(secret_item, "attribute_not_exists(pk)"))
                .build(),
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(items::org_key(org)))
                        .update_expression("SET #h = :new")
                        .condition_expression("#h = :old")
                        .expression_attribute_names("#h", keys::ORG_SECRET_HASH)
                        .expression_attribute_values(":new", s(&new.0))
                        .expression_attribute_values(":old", s(&old))
                        .build()
                        .expect("table, key and expressions are set"),
                )
                .build(),
        ];
        self.transact(writes).await
    }
}
