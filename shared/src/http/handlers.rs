//! One handler per endpoint, each: parse, authenticate, call the service, shape the reply.

use super::client_ip::Client;
use super::extract::{AdminAuth, ApiJson, ApiQuery, TicketIdPath, org_secret};
use crate::domain::{AdminId, OrgId, Response, Ticket, Timestamp};
use crate::error::Result;
use crate::service::{ListQuery, NewAdmin, NewTicket, Service, Signin, TicketPatch};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSignupBody {
    name: String,
    domain: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgSignupReply {
    id: OrgId,
    name: String,
    domain: String,
    /// Shown once; only its hash is kept.
    secret: String,
    created_at: Timestamp,
}

pub async fn org_signup(
    State(service): State<Service>,
    ApiJson(body): ApiJson<OrgSignupBody>,
) -> Result<(StatusCode, Json<OrgSignupReply>)> {
    let signup = service.signup_org(&body.name, &body.domain).await?;
    Ok((
        StatusCode::CREATED,
        Json(OrgSignupReply {
            id: signup.org.id,
            name: signup.org.name,
            domain: signup.org.domain.as_str().to_owned(),
            secret: signup.secret,
            created_at: signup.org.created_at,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdminSignupBody {
    first_name: String,
    last_name: String,
    email: String,
    password: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    available: Option<bool>,
}

pub async fn admin_signup(
    State(service): State<Service>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AdminSignupBody>,
) -> Result<(StatusCode, Json<crate::domain::Admin>)> {
    let org = service
        .authenticate_org(org_secret(&headers, body.secret.as_deref()))
        .await?;
    let admin = service
        .signup_admin(
            &org,
            NewAdmin {
                first_name: body.first_name,
                last_name: body.last_name,
                email: body.email,
                password: body.password,
                available: body.available,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(admin)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SigninBody {
    email: String,
    password: String,
    /// Needed only when the email and password fit accounts in several orgs.
    #[serde(default)]
    org_domain: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SigninReply {
    jwt: String,
    expires_at: Timestamp,
}

pub async fn admin_signin(
    State(service): State<Service>,
    Client(client): Client,
    ApiJson(body): ApiJson<SigninBody>,
) -> Result<Json<SigninReply>> {
    let signin = Signin {
        email: body.email,
        password: body.password,
        org_domain: body.org_domain,
    };
    let (jwt, expires_at) = service.signin(signin, client).await?;
    Ok(Json(SigninReply { jwt, expires_at }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateTicketBody {
    title: String,
    description: String,
    added_by: String,
    #[serde(default)]
    secret: Option<String>,
}

pub async fn create_ticket(
    State(service): State<Service>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateTicketBody>,
) -> Result<(StatusCode, Json<Ticket>)> {
    let org = service
        .authenticate_org(org_secret(&headers, body.secret.as_deref()))
        .await?;
    let ticket = service
        .create_ticket(
            &org,
            NewTicket {
                title: body.title,
                description: body.description,
                added_by: body.added_by,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(ticket)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeStatusBody {
    status: String,
}

pub async fn change_status(
    State(service): State<Service>,
    AdminAuth(claims): AdminAuth,
    TicketIdPath(id): TicketIdPath,
    ApiJson(body): ApiJson<ChangeStatusBody>,
) -> Result<Json<Ticket>> {
    Ok(Json(service.change_status(&claims, id, &body.status).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondBody {
    message: String,
}

#[derive(Serialize)]
pub struct RespondReply {
    #[serde(flatten)]
    response: Response,
    ticket: Ticket,
}

pub async fn respond(
    State(service): State<Service>,
    AdminAuth(claims): AdminAuth,
    TicketIdPath(id): TicketIdPath,
    ApiJson(body): ApiJson<RespondBody>,
) -> Result<(StatusCode, Json<RespondReply>)> {
    let (response, ticket) = service.respond(&claims, id, &body.message).await?;
    Ok((StatusCode::CREATED, Json(RespondReply { response, ticket })))
}

#[derive(Serialize)]
pub struct TicketWithResponses {
    #[serde(flatten)]
    ticket: Ticket,
    responses: Vec<Response>,
}

pub async fn get_ticket(
    State(service): State<Service>,
    AdminAuth(claims): AdminAuth,
    TicketIdPath(id): TicketIdPath,
) -> Result<Json<TicketWithResponses>> {
    let (ticket, responses) = service.get_ticket(&claims, id).await?;
    Ok(Json(TicketWithResponses { ticket, responses }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListParams {
    admin_email: Option<String>,
    status: Option<String>,
    customer_email: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListReply {
    tickets: Vec<Ticket>,
    next_cursor: Option<String>,
}

pub async fn list_tickets(
    State(service): State<Service>,
    AdminAuth(claims): AdminAuth,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<ListReply>> {
    let result = service
        .list_tickets(
            &claims,
            ListQuery {
                admin_email: p.admin_email,
                status: p.status,
                customer_email: p.customer_email,
                limit: p.limit,
                cursor: p.cursor,
            },
        )
        .await?;
    Ok(Json(ListReply {
        tickets: result.tickets,
        next_cursor: result.next_cursor,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateTicketBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    /// Absent: unchanged; `null`: unassign; an id: reassign.
    #[serde(default, deserialize_with = "present")]
    admin_id: Option<Option<AdminId>>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    org_id: Option<OrgId>,
}

/// Tells a present `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> std::result::Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

pub async fn update_ticket(
    State(service): State<Service>,
    AdminAuth(claims): AdminAuth,
    TicketIdPath(id): TicketIdPath,
    ApiJson(body): ApiJson<UpdateTicketBody>,
) -> Result<Json<Ticket>> {
    let patch = TicketPatch {
        title: body.title,
        description: body.description,
        admin_id: body.admin_id,
        status: body.status,
        org_id: body.org_id,
    };
    Ok(Json(service.update_ticket(&claims, id, patch).await?))
}
