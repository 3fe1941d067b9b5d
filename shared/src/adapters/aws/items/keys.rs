//! How API keys and the org secret's rotation map onto items. A key is two
//! items: its listing in the org's partition (`ORG#<org>` / `APIKEY#<id>`,
//! with `lastUsedAt`), and a `SECRET#<sha256>` item beside the org secret's,
//! holding the org and the key's id and scopes, so that one GetItem
//! authenticates either kind of credential.

use super::{Item, Malformed, get_s, key, n, opt_s, opt_ts, org_fields, org_from, org_partition, parse, s, ts};
use crate::domain::{ApiKey, ApiKeyId, Credential, KeyGrant, Org, OrgId, scopes_from_str, scopes_to_string};

/// Sort-key prefix of the API key listings in an org's partition.
pub const API_KEY_PREFIX: &str = "APIKEY#";
/// On the org item: the hash of the org's current secret, so that a
/// rotation can delete the old secret's item.
pub const ORG_SECRET_HASH: &str = "secretHash";

pub fn api_key_key(org: OrgId, id: ApiKeyId) -> Item {
    key(org_partition(org), &format!("{API_KEY_PREFIX}{id}"))
}

/// The listing of `k`, which also names its secret item (`secretHash`) for
/// revocation.
pub fn api_key_item(k: &ApiKey, hash: &str) -> Item {
    let mut item = api_key_key(k.org_id, k.id);
    item.insert("keyId".into(), s(k.id.to_string()));
    item.insert("orgId".into(), s(k.org_id.to_string()));
    item.insert("name".into(), s(&k.name));
    item.insert("prefix".into(), s(&k.prefix));
    item.insert("scopes".into(), s(scopes_to_string(&k.scopes)));
    item.insert("createdAt".into(), n(k.created_at.millis()));
    item.insert(ORG_SECRET_HASH.into(), s(hash));
    item
}

pub fn api_key_from(item: &Item) -> Result<ApiKey, Malformed> {
    Ok(ApiKey {
        id: parse(item, "keyId")?,
        org_id: parse(item, "orgId")?,
        name: get_s(item, "name")?.to_owned(),
        prefix: get_s(item, "prefix")?.to_owned(),
        scopes: scopes_from_str(get_s(item, "scopes")?),
        created_at: ts(item, "createdAt")?,
        last_used_at: opt_ts(item, "lastUsedAt"),
    })
}

/// The secret item of an API key of `org`: the org's fields (as the org
/// secret's item has them) and the key's grant.
pub fn key_secret_item(org: &Org, k: &ApiKey, hash: &str) -> Item {
    let mut item = super::secret_key(hash);
    item.extend(org_fields(org));
    item.insert("keyId".into(), s(k.id.to_string()));
    item.insert("scopes".into(), s(scopes_to_string(&k.scopes)));
    item
}

/// What a `SECRET#` item authenticates.
pub fn credential_from(item: &Item) -> Result<Credential, Malformed> {
    let key = match opt_s(item, "keyId") {
        None => None,
        Some(_) => Some(KeyGrant {
            id: parse(item, "keyId")?,
            scopes: scopes_from_str(opt_s(item, "scopes").unwrap_or_default()),
        }),
    };
    Ok(Credential {
        org: org_from(item)?,
        key,
    })
}
