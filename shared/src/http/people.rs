//! The admins area's handlers: the org's admin list, setting an admin's
//! availability, and (a full admin) an admin's role.

use super::extract::{AdminAuth, ApiJson, ApiQuery, FullAdminAuth};
use super::history::PageParams;
use crate::domain::{Admin, AdminId, AdminRole, AdminSummary};
use crate::error::{Error, Result};
use crate::service::Service;
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

/// The `{id}` path segment as an admin id.
pub struct AdminIdPath(pub AdminId);

impl<S: Send + Sync> FromRequestParts<S> for AdminIdPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let bad = || Error::invalid("id", "must be an admin id (a UUID)");
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| bad())?;
        raw.parse().map(AdminIdPath).map_err(|_| bad())
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminsReply {
    admins: Vec<AdminSummary>,
    next_cursor: Option<String>,
}

pub async fn list_admins(
    State(service): State<Service>,
    AdminAuth(claims): AdminAuth,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<AdminsReply>> {
    let (limit, cursor) = params.parts()?;
    let page = service.list_admins(&claims, limit, cursor).await?;
    Ok(Json(AdminsReply {
        admins: page.admins,
        next_cursor: page.next_cursor,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityBody {
    available: bool,
}

pub async fn set_availability(
    State(service): State<Service>,
    AdminAuth(claims): AdminAuth,
    AdminIdPath(id): AdminIdPath,
    ApiJson(body): ApiJson<AvailabilityBody>,
) -> Result<Json<Admin>> {
    Ok(Json(service.set_availability(&claims, id, body.available).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    role: String,
}

pub async fn set_role(
    State(service): State<Service>,
    FullAdminAuth(claims): FullAdminAuth,
    AdminIdPath(id): AdminIdPath,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Json<Admin>> {
    let role = AdminRole::parse("role", &body.role)?;
    Ok(Json(service.set_admin_role(&claims, id, role).await?))
}
