//! The credentials half of the [`Store`](crate::ports::Store) port on SQLite:
//! the org secret and the API keys, each found by its hash through a unique
//! index.

use super::rows::{ORG_COLS, org_from_row, parse, ts};
use super::store::SqliteStore;
use crate::auth::SecretHash;
use crate::domain::{ApiKey, ApiKeyId, Credential, KeyGrant, OrgId, Timestamp, scopes_from_str, scopes_to_string};
use crate::error::StoreError;
use rusqlite::{OptionalExtension, Row, params};

const KEY_COLS: &str = "id, org_id, name, prefix, scopes, created_at, last_used_at";

fn key_from_row(r: &Row) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: parse(r.get(0)?, 0)?,
        org_id: parse(r.get(1)?, 1)?,
        name: r.get(2)?,
        prefix: r.get(3)?,
        scopes: scopes_from_str(&r.get::<_, String>(4)?),
        created_at: ts(r.get(5)?),
        last_used_at: r.get::<_, Option<i64>>(6)?.map(ts),
    })
}

impl SqliteStore {
    /// The org secret first (the common case), then the API keys: two
    /// searches of unique indexes.
    pub(super) async fn credential_row(&self, hash: &SecretHash) -> Result<Option<Credential>, StoreError> {
        let hash = hash.0.clone();
        self.db
            .read(move |c| {
                let org = c
                    .prepare_cached(&format!("SELECT {ORG_COLS} FROM orgs WHERE secret_hash = ?1"))?
                    .query_row([&hash], org_from_row)
                    .optional()?;
                if let Some(org) = org {
                    return Ok(Some(Credential { org, key: None }));
                }
                let cols: Vec<String> = ORG_COLS.split(", ").map(|c| format!("o.{c}")).collect();
                let found = c
                    .prepare_cached(&format!(
                        "SELECT {}, k.id, k.scopes FROM api_keys k JOIN orgs o ON o.id = k.org_id
                         WHERE k.secret_hash = ?1",
                        cols.join(", ")
                    ))?
                    .query_row([&hash], |r| {
                        let org = org_from_row(r)?;
                        let n = cols.len();
                        Ok(Credential {
                            org,
                            key: Some(KeyGrant {
                                id: parse(r.get(n)?, n)?,
                                scopes: scopes_from_str(&r.get::<_, String>(n + 1)?),
                            }),
                        })
                    })
                    .optional()?;
                Ok(found)
            })
            .await
    }

    pub(super) async fn create_api_key_row(&self, key: &ApiKey, hash: &SecretHash) -> Result<(), StoreError> {
        let (key, hash) = (key.clone(), hash.0.clone());
        self.db
            .write(move |tx| {
                tx.execute(
                    &format!("INSERT INTO api_keys ({KEY_COLS}, secret_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                    params![
                        key.id.to_string(),
                        key.org_id.to_string(),
                        key.name,
                        key.prefix,
                        scopes_to_string(&key.scopes),
                        key.created_at.millis(),
                        key.last_used_at.map(Timestamp::millis),
                        hash,
                    ],
                )?;
                Ok(())
            })
            .await
    }

    pub(super) async fn api_key_rows(&self, org: OrgId) -> Result<Vec<ApiKey>, StoreError> {
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {KEY_COLS} FROM api_keys WHERE org_id = ?1 ORDER BY created_at, id"
                ))?;
                let keys = stmt
                    .query_map([org.to_string()], key_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(keys)
            })
            .await
    }

    pub(super) async fn revoke_api_key_row(&self, org: OrgId, id: ApiKeyId) -> Result<bool, StoreError> {
        self.db
            .write(move |tx| {
                let n = tx.execute(
                    "DELETE FROM api_keys WHERE id = ?1 AND org_id = ?2",
                    params![id.to_string(), org.to_string()],
                )?;
                Ok(n == 1)
            })
            .await
    }

    pub(super) async fn touch_api_key_row(&self, org: OrgId, id: ApiKeyId, at: Timestamp) -> Result<(), StoreError> {
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), ?3) WHERE id = ?1 AND org_id = ?2",
                    params![id.to_string(), org.to_string(), at.millis()],
                )?;
                Ok(())
            })
            .await
    }

    pub(super) async fn rotate_org_secret_row(&self, org: OrgId, hash: &SecretHash) -> Result<(), StoreError> {
        let hash = hash.0.clone();
        self.db
            .write(move |tx| {
                let n = tx.execute(
                    "UPDATE orgs SET secret_hash = ?2 WHERE id = ?1",
                    params![org.to_string(), hash],
                )?;
                if n == 1 {
                    Ok(())
                } else {
                    Err(StoreError::Conflict("no such org".into()))
                }
            })
            .await
    }
}
