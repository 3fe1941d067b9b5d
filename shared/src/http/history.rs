//! The history area's handler: a ticket's events, oldest first, in pages.

use super::extract::{AdminAuth, ApiQuery, TicketIdPath};
use crate::domain::TicketEvent;
use crate::error::Result;
use crate::service::Service;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

/// `limit` and `cursor`, as every paged list takes them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    limit: Option<String>,
    cursor: Option<String>,
}

impl PageParams {
    /// The page size (default and bounds as the ticket list's) and the cursor, if given.
    pub fn parts(&self) -> Result<(usize, Option<&str>)> {
        use super::tickets::{given, page_limit};
        Ok((page_limit(given(&self.limit))?, given(&self.cursor)))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsReply {
    events: Vec<TicketEvent>,
    next_cursor: Option<String>,
}

pub async fn ticket_events(
    State(service): State<Service>,
    AdminAuth(claims): AdminAuth,
    TicketIdPath(id): TicketIdPath,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<EventsReply>> {
    let (limit, cursor) = params.parts()?;
    let page = service.ticket_events(&claims, id, limit, cursor).await?;
    Ok(Json(EventsReply {
        events: page.events,
        next_cursor: page.next_cursor,
    }))
}
