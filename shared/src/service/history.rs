//! A ticket's history: its events, oldest first, in signed cursor pages.

use super::Service;
use crate::auth::Claims;
use crate::domain::{EventId, TicketEvent, TicketId};
use crate::error::Result;

/// One page of a ticket's events.
pub struct EventPage {
    pub events: Vec<TicketEvent>,
    pub next_cursor: Option<String>,
}

impl Service {
    /// The caller's org's ticket's events after the cursor's, at most `limit`
    /// (1..=MAX_PAGE); another org's ticket is 404, as everywhere.
    pub async fn ticket_events(
        &self,
        claims: &Claims,
        id: TicketId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<EventPage> {
        self.own_ticket(claims, id).await?;
        let keys = self.config.keys.get().await?;
        let scope = format!("events:{id}");
        let after = cursor
            .map(|c| keys.cursors.decode_id(claims.org, &scope, c))
            .transpose()?
            .map(EventId);
        let mut events = self.ports.store.ticket_events(id, after, limit + 1).await?;
        let more = events.len() > limit;
        events.truncate(limit);
        let next_cursor = match events.last() {
            Some(last) if more => Some(keys.cursors.encode_id(claims.org, &scope, last.id.0)),
            _ => None,
        };
        Ok(EventPage { events, next_cursor })
    }
}
