//! The tickets area's handlers: filing, reading, listing, updating,
//! changing status and responding. Each parses wire input into a typed
//! command, naming the field on failure, before the service sees it.

use super::conversation::{CustomerTicket, CustomerTicketView};
use super::extract::{AdminAuth, ApiJson, ApiQuery, Caller, TicketIdPath, org_secret};
use crate::domain::{
    AdminId, Email, MAX_DESCRIPTION, MAX_MESSAGE, MAX_TITLE, Message, OrgId, Response, Scope, Status, Ticket, line,
    text,
};
use crate::error::{Error, Result};
use crate::service::{DEFAULT_PAGE, ListQuery, MAX_PAGE, NewTicket, Service, TicketPatch};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response as Response_};
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateTicketBody {
    title: String,
    description: String,
    added_by: String,
    #[serde(default)]
    secret: Option<String>,
}

impl CreateTicketBody {
    fn command(self) -> Result<NewTicket> {
        Ok(NewTicket {
            title: line("title", &self.title, MAX_TITLE)?,
            description: text("description", &self.description, MAX_DESCRIPTION)?,
            added_by: Email::parse("addedBy", &self.added_by)?,
        })
    }
}

/// Answered in the customer's view, as `GET /tickets/{id}` answers the same
/// credential: who it is assigned to is the admins' business.
pub async fn create_ticket(
    State(service): State<Service>,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<CreateTicketBody>,
) -> Result<(StatusCode, Json<CustomerTicketView>)> {
    let secret = body.secret.take();
    let org = service
        .authenticate_org(org_secret(&headers, secret.as_deref()), Scope::TicketsCreate)
        .await?;
    super::request_log::note_org(org.id);
    let ticket = service.create_ticket(&org, body.command()?).await?;
    Ok((StatusCode::CREATED, Json(CustomerTicketView::new(ticket, vec![]))))
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
    let status = Status::parse("status", &body.status)?;
    Ok(Json(service.change_status(&claims, id, status).await?))
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
    let message = text("message", &body.message, MAX_MESSAGE)?;
    let (response, ticket) = service.respond(&claims, id, message).await?;
    Ok((StatusCode::CREATED, Json(RespondReply { response, ticket })))
}

/// The admin view: the ticket, its responses (as before the conversation
/// existed) and every message, notes included, oldest first.
#[derive(Serialize)]
pub struct AdminTicketView {
    #[serde(flatten)]
    ticket: Ticket,
    responses: Vec<Response>,
    messages: Vec<Message>,
}

/// An admin (JWT) gets the admin view; the client product (org secret in
/// `X-Api-Key`) its customer's view.
pub async fn get_ticket(
    State(service): State<Service>,
    caller: Caller,
    TicketIdPath(id): TicketIdPath,
) -> Result<Response_> {
    Ok(match caller {
        Caller::Admin(claims) => {
            let (ticket, messages) = service.get_ticket(&claims, id).await?;
            let responses = messages.iter().filter_map(Message::as_response).collect();
            Json(AdminTicketView {
                ticket,
                responses,
                messages,
            })
            .into_response()
        }
        Caller::Org(org) => {
            let (ticket, messages) = service.customer_ticket(&org, id).await?;
            Json(CustomerTicketView::new(ticket, messages)).into_response()
        }
    })
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

/// A query parameter's value, unless absent or blank (blank means "no filter").
pub(super) fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A page size as lists take it: absent is the default, else 1..=MAX_PAGE.
pub(super) fn page_limit(raw: Option<&str>) -> Result<usize> {
    match raw {
        None => Ok(DEFAULT_PAGE),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| Error::invalid("limit", format!("must be a whole number from 1 to {MAX_PAGE}"))),
    }
}

impl ListParams {
    fn query(&self) -> Result<ListQuery> {
        let limit = page_limit(given(&self.limit))?;
        Ok(ListQuery {
            admin: given(&self.admin_email)
                .map(|a| Email::parse("adminEmail", a))
                .transpose()?,
            status: given(&self.status).map(|s| Status::parse("status", s)).transpose()?,
            customer: given(&self.customer_email)
                .map(|c| Email::parse("customerEmail", c))
                .transpose()?,
            limit,
            cursor: given(&self.cursor).map(str::to_owned),
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListReply {
    tickets: Vec<Ticket>,
    next_cursor: Option<String>,
}

/// A customer's tickets as the client product sees them (org secret).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerListReply {
    tickets: Vec<CustomerTicket>,
    next_cursor: Option<String>,
}

/// An admin lists the org's tickets; the client product (org secret) one
/// customer's, `customerEmail` required.
pub async fn list_tickets(
    State(service): State<Service>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Response_> {
    let query = params.query()?;
    Ok(match caller {
        Caller::Admin(claims) => {
            let result = service.list_tickets(&claims, query).await?;
            Json(ListReply {
                tickets: result.tickets,
                next_cursor: result.next_cursor,
            })
            .into_response()
        }
        Caller::Org(org) => {
            let result = service.list_customer_tickets(&org, query).await?;
            Json(CustomerListReply {
                tickets: result.tickets.into_iter().map(CustomerTicket::from).collect(),
                next_cursor: result.next_cursor,
            })
            .into_response()
        }
    })
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

impl UpdateTicketBody {
    fn command(self) -> Result<TicketPatch> {
        let patch = TicketPatch {
            title: self.title.as_deref().map(|t| line("title", t, MAX_TITLE)).transpose()?,
            description: self
                .description
                .as_deref()
                .map(|d| text("description", d, MAX_DESCRIPTION))
                .transpose()?,
            admin_id: self.admin_id,
            status: self.status.as_deref().map(|s| Status::parse("status", s)).transpose()?,
            org_id: self.org_id,
        };
        if patch.is_empty() {
            return Err(Error::invalid(
                "body",
                "must set at least one of title, description, adminId, status, orgId",
            ));
        }
        Ok(patch)
    }
}

pub async fn update_ticket(
    State(service): State<Service>,
    AdminAuth(claims): AdminAuth,
    TicketIdPath(id): TicketIdPath,
    ApiJson(body): ApiJson<UpdateTicketBody>,
) -> Result<Json<Ticket>> {
    Ok(Json(service.update_ticket(&claims, id, body.command()?).await?))
}
