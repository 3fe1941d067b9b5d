//! Assignment on DynamoDB: a new ticket, or a waiting one, goes to the
//! org's least-loaded available admin, whose counter moves in the same
//! transaction as the ticket and its events.

use super::budgets;
use super::dynamo::{ASSIGN_STRIPES, DynamoStore};
use super::items;
use crate::domain::{Cause, Ticket, rules};
use crate::error::StoreError;
use crate::ports::StoreResult;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use std::time::Duration;

impl DynamoStore {
    /// [`Store::create_ticket`](crate::ports::Store::create_ticket): the rule's choice of
    /// assignee, its counter moved under its observed value, the ticket and
    /// its events, in one transaction; retried with jitter on losing a race.
    pub(super) async fn create_ticket_item(&self, ticket: &Ticket, cause: &Cause) -> StoreResult<Ticket> {
        let mut ticket = ticket.clone();
        let stripe = (ticket.org_id.0.as_u128() % ASSIGN_STRIPES as u128) as usize;
        let _turn = self.assign_turns[stripe].lock().await;
        let deadline = tokio::time::Instant::now() + self.assign_window;
        for attempt in 0usize.. {
            if tokio::time::Instant::now() > deadline {
                break;
            }
            let loads = self.admin_loads(ticket.org_id).await?;
            // First try the rule's choice; after losing a race, spread over the
            // equally right choices so concurrent creates stop colliding.
            let candidates = rules::least_loaded(&loads);
            ticket.admin_id = match attempt {
                0 => candidates.first().copied(),
                _ if candidates.is_empty() => None,
                _ => Some(candidates[rand::random_range(0..candidates.len())]),
            };
            let put = self.put(items::ticket_item(&ticket), "attribute_not_exists(pk)");
            let mut writes = vec![TransactWriteItem::builder().put(put).build()];
            writes.extend(self.ticket_event_puts(&cause.events(None, &ticket), &ticket)?);
            let Some(admin) = ticket.admin_id else {
                self.transact(writes).await?;
                return Ok(ticket);
            };
            let observed = loads.iter().find(|l| l.admin_id == admin).map_or(0, |l| l.open_tickets);
            writes.push(self.counter_update(ticket.org_id, admin, 1, Some((ticket.created_at, observed))));
            match self.transact(writes).await {
                Ok(_) => return Ok(ticket),
                // Another create moved this admin's count first: look again.
                Err(StoreError::Conflict(_)) => {
                    // Full jitter, capped (budgets::ASSIGN_MAX_JITTER): losers
                    // spread out instead of colliding again.
                    let cap = 2u64
                        .saturating_pow(attempt.min(7) as u32)
                        .clamp(2, budgets::ASSIGN_MAX_JITTER.as_millis() as u64);
                    tokio::time::sleep(Duration::from_millis(rand::random_range(0..cap))).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable(anyhow::anyhow!(
            "assignment kept conflicting; too many concurrent creates"
        )))
    }

    /// Assigns `before` by the rule, like a create: the chosen admin's counter
    /// moves under its observed value, so a concurrent assignment makes this
    /// a Conflict (the caller moves on), never a miscount.
    pub(super) async fn assign_item(&self, before: &Ticket, cause: &Cause) -> StoreResult<Option<Ticket>> {
        let loads = self.admin_loads(before.org_id).await?;
        let Some(admin) = rules::choose_assignee(&loads) else {
            return Ok(None);
        };
        let observed = loads.iter().find(|l| l.admin_id == admin).map_or(0, |l| l.open_tickets);
        let mut after = before.clone();
        after.admin_id = Some(admin);
        after.updated_at = cause.at;
        after.version = before.version + 1;
        let guard = items::ticket_guard(before);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(items::ticket_item(&after)))
            .condition_expression(guard.condition)
            .set_expression_attribute_names(Some(guard.names))
            .set_expression_attribute_values(Some(guard.values))
            .build()
            .expect("complete put");
        let mut writes = vec![
            TransactWriteItem::builder().put(put).build(),
            self.counter_update(after.org_id, admin, 1, Some((cause.at, observed))),
        ];
        writes.extend(self.ticket_event_puts(&cause.events(Some(before), &after), &after)?);
        self.transact(writes).await?;
        Ok(Some(after))
    }
}
