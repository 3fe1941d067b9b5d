//! Tickets: filing one (assigned on the way in), reading, listing, and
//! changing fields and status.

use super::commands::{ListQuery, ListResult, NewTicket, TicketPatch};
use super::{CONCURRENT_CHANGE, Service, conflict_as};
use crate::auth::Claims;
use crate::domain::rules::{self, AutoClose};
use crate::domain::{Message, Org, OrgId, PageRequest, Status, Ticket, TicketFilter, TicketId};
use crate::error::{Error, Result};

impl Service {
    pub async fn create_ticket(&self, org: &Org, input: NewTicket) -> Result<Ticket> {
        let now = self.now();
        let draft = Ticket {
            id: TicketId::new(),
            org_id: org.id,
            title: input.title,
            description: input.description,
            added_by: input.added_by,
            admin_id: None,
            status: Status::Open,
            created_at: now,
            updated_at: now,
            responded_at: None,
            closed_at: None,
            auto_close_at: None,
            version: 1,
            follow_up_of: None,
        };
        let ticket = self.ports.store.create_ticket(&draft).await?;
        tracing::info!(
            org = %org.id,
            ticket = %ticket.id,
            admin = %ticket.admin_id.map_or_else(|| "none".to_owned(), |a| a.to_string()),
            "ticket created"
        );
        Ok(ticket)
    }

    /// The ticket with its whole conversation (responses, replies, notes).
    pub async fn get_ticket(&self, claims: &Claims, id: TicketId) -> Result<(Ticket, Vec<Message>)> {
        self.ticket_in(claims.org, id).await
    }

    /// The customer's view, for the client product holding the org's
    /// credential: the ticket with its public messages only (no notes).
    pub async fn customer_ticket(&self, org: &Org, id: TicketId) -> Result<(Ticket, Vec<Message>)> {
        let (ticket, mut messages) = self.ticket_in(org.id, id).await?;
        messages.retain(|m| m.kind.is_public());
        Ok((ticket, messages))
    }

    async fn ticket_in(&self, org: OrgId, id: TicketId) -> Result<(Ticket, Vec<Message>)> {
        match self.ports.store.ticket_with_messages(id).await? {
            Some((t, messages)) if t.org_id == org => Ok((t, messages)),
            _ => Err(Error::NotFound("ticket")),
        }
    }

    pub async fn change_status(&self, claims: &Claims, id: TicketId, status: Status) -> Result<Ticket> {
        let patch = TicketPatch {
            status: Some(status),
            ..Default::default()
        };
        self.update_ticket(claims, id, patch).await
    }

    pub async fn update_ticket(&self, claims: &Claims, id: TicketId, patch: TicketPatch) -> Result<Ticket> {
        if let Some(org) = patch.org_id
            && org != claims.org
        {
            return Err(Error::Forbidden(
                "orgId: a ticket can only belong to your own org".into(),
            ));
        }
        if let Some(Some(admin_id)) = patch.admin_id
            && self.ports.store.admin(claims.org, admin_id).await?.is_none()
        {
            return Err(Error::invalid("adminId", "is not an admin of your org"));
        }

        let before = self.own_ticket(claims, id).await?;
        let now = self.now();
        let mut after = before.clone();
        if let Some(t) = patch.title {
            after.title = t;
        }
        if let Some(d) = patch.description {
            after.description = d;
        }
        if let Some(a) = patch.admin_id {
            after.admin_id = a;
        }
        let effect = match patch.status {
            Some(s) => rules::change_status(&mut after, s, now, self.config.auto_close_after)?,
            None => AutoClose::Unchanged,
        };
        if after == before {
            return Ok(before);
        }
        after.updated_at = now;
        after.version = before.version + 1;
        self.ports
            .store
            .update_ticket(&before, &after)
            .await
            .map_err(|e| conflict_as(e, CONCURRENT_CHANGE))?;
        self.apply_auto_close(effect).await;
        tracing::info!(ticket = %id, status = %after.status, version = after.version, "ticket updated");
        Ok(after)
    }

    pub async fn list_tickets(&self, claims: &Claims, q: ListQuery) -> Result<ListResult> {
        let admin_id = match q.admin {
            None => None,
            Some(email) => match self.ports.store.admin_by_email(claims.org, &email).await? {
                Some(a) => Some(a.id),
                // No such admin in this org: nothing can match.
                _ => {
                    return Ok(ListResult {
                        tickets: vec![],
                        next_cursor: None,
                    });
                }
            },
        };
        let filter = TicketFilter {
            admin_id,
            status: q.status,
            customer: q.customer,
        };
        self.list(claims.org, filter, q.limit, q.cursor.as_deref()).await
    }

    /// One customer's tickets, for the client product holding the org's
    /// credential: `customer` is required, `admin` refused (admins are not
    /// the customer's to see).
    pub async fn list_customer_tickets(&self, org: &Org, q: ListQuery) -> Result<ListResult> {
        if q.admin.is_some() {
            return Err(Error::invalid("adminEmail", "is not available with the org secret"));
        }
        let Some(customer) = q.customer else {
            return Err(Error::invalid("customerEmail", "is required with the org secret"));
        };
        let filter = TicketFilter {
            admin_id: None,
            status: q.status,
            customer: Some(customer),
        };
        self.list(org.id, filter, q.limit, q.cursor.as_deref()).await
    }

    async fn list(&self, org: OrgId, filter: TicketFilter, limit: usize, cursor: Option<&str>) -> Result<ListResult> {
        let keys = self.config.keys.get().await?;
        let after = cursor.map(|c| keys.cursors.decode(org, &filter, c)).transpose()?;
        let page = self
            .ports
            .store
            .list_tickets(org, &filter, PageRequest { limit, after })
            .await?;
        Ok(ListResult {
            next_cursor: page.next.map(|p| keys.cursors.encode(org, &filter, p)),
            tickets: page.tickets,
        })
    }
}
