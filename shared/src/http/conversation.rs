//! The conversation area's handlers: a customer's reply (posted by the client
//! product with the org secret), an admin's internal note, and the customer's
//! views of tickets, which never show notes, admin ids or admin emails.

use super::extract::{AdminAuth, ApiJson, TicketIdPath, org_secret};
use crate::domain::{
    Author, Email, MAX_MESSAGE, Message, MessageKind, Scope, Status, Ticket, TicketId, Timestamp, text,
};
use crate::error::Result;
use crate::service::{CustomerReply, ReplyOutcome, ReplyVia, Service};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

/// A ticket as its customer may see it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerTicket {
    id: TicketId,
    title: String,
    description: String,
    added_by: Email,
    status: Status,
    created_at: Timestamp,
    updated_at: Timestamp,
    responded_at: Option<Timestamp>,
    closed_at: Option<Timestamp>,
    auto_close_at: Option<Timestamp>,
    follow_up_of: Option<TicketId>,
}

impl From<Ticket> for CustomerTicket {
    fn from(t: Ticket) -> Self {
        Self {
            id: t.id,
            title: t.title,
            description: t.description,
            added_by: t.added_by,
            status: t.status,
            created_at: t.created_at,
            updated_at: t.updated_at,
            responded_at: t.responded_at,
            closed_at: t.closed_at,
            auto_close_at: t.auto_close_at,
            follow_up_of: t.follow_up_of,
        }
    }
}

/// Who wrote a public message, as the customer sees it: support, or themselves.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Sender {
    Support,
    Customer,
}

/// A response or reply as its customer sees it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerMessage {
    id: crate::domain::ResponseId,
    kind: MessageKind,
    from: Sender,
    message: String,
    created_at: Timestamp,
}

impl CustomerMessage {
    /// Only public messages become customer messages.
    fn of(m: Message) -> Option<Self> {
        m.kind.is_public().then_some(Self {
            id: m.id,
            kind: m.kind,
            from: match m.author {
                Author::Admin { .. } => Sender::Support,
                Author::Customer { .. } => Sender::Customer,
            },
            message: m.message,
            created_at: m.created_at,
        })
    }
}

/// `GET /tickets/{id}` with the org secret.
#[derive(Serialize)]
pub struct CustomerTicketView {
    #[serde(flatten)]
    ticket: CustomerTicket,
    messages: Vec<CustomerMessage>,
}

impl CustomerTicketView {
    pub fn new(ticket: Ticket, messages: Vec<Message>) -> Self {
        Self {
            ticket: ticket.into(),
            messages: messages.into_iter().filter_map(CustomerMessage::of).collect(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyBody {
    message: String,
    from: String,
    #[serde(default)]
    secret: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Outcome {
    /// Stored on the ticket (reopening it if it was RESPONDED or recently CLOSED).
    Added,
    /// The ticket was closed too long ago: `ticket` is the one following up on it.
    FollowUp,
    /// Kept on the ticket without reopening it or opening a follow-up (a
    /// chain of follow-ups too long to follow).
    Held,
}

#[derive(Serialize)]
pub struct ReplyReply {
    outcome: Outcome,
    reply: CustomerMessage,
    ticket: CustomerTicket,
}

pub async fn add_reply(
    State(service): State<Service>,
    headers: HeaderMap,
    TicketIdPath(id): TicketIdPath,
    ApiJson(mut body): ApiJson<ReplyBody>,
) -> Result<(StatusCode, Json<ReplyReply>)> {
    let secret = body.secret.take();
    let org = service
        .authenticate_org(org_secret(&headers, secret.as_deref()), Scope::TicketsCreate)
        .await?;
    super::request_log::note_org(org.id);
    let reply = CustomerReply {
        ticket: id,
        from: Email::parse("from", &body.from)?,
        message: text("message", &body.message, MAX_MESSAGE)?,
        via: ReplyVia::Api,
    };
    let (outcome, ticket, reply) = match service.customer_reply(Some(org.id), reply).await? {
        ReplyOutcome::Added { ticket, reply } => (Outcome::Added, ticket, reply),
        ReplyOutcome::FollowUp { ticket, reply } => (Outcome::FollowUp, ticket, reply),
        ReplyOutcome::Held { ticket, reply, .. } => (Outcome::Held, ticket, reply),
        ReplyOutcome::Duplicate { .. } => {
            return Err(crate::Error::internal(anyhow::anyhow!(
                "an API reply has a fresh id; it cannot repeat"
            )));
        }
    };
    let reply = CustomerMessage::of(reply)
        .ok_or_else(|| crate::Error::internal(anyhow::anyhow!("a customer reply is a public message")))?;
    Ok((
        StatusCode::CREATED,
        Json(ReplyReply {
            outcome,
            reply,
            ticket: ticket.into(),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    message: String,
}

pub async fn add_note(
    State(service): State<Service>,
    AdminAuth(claims): AdminAuth,
    TicketIdPath(id): TicketIdPath,
    ApiJson(body): ApiJson<NoteBody>,
) -> Result<(StatusCode, Json<Message>)> {
    let message = text("message", &body.message, MAX_MESSAGE)?;
    Ok((StatusCode::CREATED, Json(service.add_note(&claims, id, message).await?)))
}
