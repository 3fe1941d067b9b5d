//! The credentials area's handlers (a full admin's JWT): issuing, listing and
//! revoking API keys, and rotating the org secret.

use super::extract::{ApiJson, FullAdminAuth};
use crate::domain::{ApiKey, ApiKeyId, Scope};
use crate::error::{Error, Result};
use crate::service::{Service, key_name};
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    name: String,
    scopes: Vec<String>,
}

impl CreateKeyBody {
    fn command(self) -> Result<(String, Vec<Scope>)> {
        let name = key_name(&self.name)?;
        let mut scopes = self
            .scopes
            .iter()
            .map(|s| Scope::parse("scopes", s))
            .collect::<Result<Vec<_>>>()?;
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(Error::invalid("scopes", "must name at least one scope"));
        }
        Ok((name, scopes))
    }
}

/// A new key: its fields, and the key itself, shown this once.
#[derive(Serialize)]
pub struct IssuedKeyReply {
    #[serde(flatten)]
    key: ApiKey,
    #[serde(rename = "key")]
    secret: String,
}

pub async fn create_api_key(
    State(service): State<Service>,
    FullAdminAuth(claims): FullAdminAuth,
    ApiJson(body): ApiJson<CreateKeyBody>,
) -> Result<(StatusCode, Json<IssuedKeyReply>)> {
    let (name, scopes) = body.command()?;
    let issued = service.create_api_key(&claims, name, scopes).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedKeyReply {
            key: issued.key,
            secret: issued.secret,
        }),
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyList {
    api_keys: Vec<ApiKey>,
}

pub async fn list_api_keys(
    State(service): State<Service>,
    FullAdminAuth(claims): FullAdminAuth,
) -> Result<Json<KeyList>> {
    Ok(Json(KeyList {
        api_keys: service.api_keys(&claims).await?,
    }))
}

/// The `{id}` of `/api-keys/{id}`; anything but a canonical UUID is a 400.
pub struct KeyIdPath(ApiKeyId);

impl<S: Send + Sync> FromRequestParts<S> for KeyIdPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let bad = || Error::invalid("id", "must be an API key id (a UUID)");
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| bad())?;
        raw.parse().map(KeyIdPath).map_err(|_| bad())
    }
}

pub async fn revoke_api_key(
    State(service): State<Service>,
    FullAdminAuth(claims): FullAdminAuth,
    KeyIdPath(id): KeyIdPath,
) -> Result<StatusCode> {
    service.revoke_api_key(&claims, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct RotatedSecret {
    secret: String,
}

pub async fn rotate_org_secret(
    State(service): State<Service>,
    FullAdminAuth(claims): FullAdminAuth,
) -> Result<Json<RotatedSecret>> {
    Ok(Json(RotatedSecret {
        secret: service.rotate_org_secret(&claims).await?,
    }))
}
