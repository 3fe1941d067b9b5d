//! Emails at least once. The mail is committed with its response (delivery
//! `pending`); a sender claims it with a lease (a conditional write, so two
//! senders never send one mail at once), sends it, and records `sent`, or a
//! retry with backoff, or `failed` after the last attempt. Whoever runs
//! (respond inline, the stream handler, the sweeper, ticketd's loop) calls
//! the same [`Service::deliver_mail`]; the provider's events move a sent mail
//! on to `delivered`, `bounced` or `complained`.

use super::Service;
use crate::domain::{Delivery, MailEvent, ResponseId, TicketId};
use crate::error::Result;
use std::time::Duration;
use tokio::time::Instant;

/// How long a claim keeps other senders off a mail. Far above one send's
/// budget (the SDK's 4 s operation timeout; the outbox is a local write), so
/// a live sender always records its outcome before another may start; a
/// sender that died is replaced a minute later.
pub const MAIL_LEASE: Duration = Duration::from_secs(60);

/// How long `respond` waits for its inline send before answering `pending`:
/// a fast answer matters more than a `sent` (the send goes on regardless).
pub const INLINE_SEND_BUDGET: Duration = Duration::from_secs(2);

impl Service {
    /// Sends the response's mail if it is pending and due, and records how it
    /// went. A no-op when it is not pending, not due yet, or being sent by
    /// another sender right now.
    pub async fn deliver_mail(&self, ticket: TicketId, response: ResponseId) -> Result<()> {
        self.deliver(ticket, response).await.map(|_| ())
    }

    /// Attempts every pending mail that is due (at most `limit`); returns how
    /// many were attempted. A mail that fails again is rescheduled, not lost.
    pub async fn send_due_mail(&self, limit: usize) -> Result<usize> {
        self.send_due_mail_until(limit, None).await
    }

    /// [`Service::send_due_mail`], starting no attempt after `deadline` (the
    /// sweeper's time box); the rest wait for the next run.
    pub async fn send_due_mail_until(&self, limit: usize, deadline: Option<Instant>) -> Result<usize> {
        let due = self.ports.store.due_mail(self.now(), limit).await?;
        let mut attempted = 0;
        for (ticket, response) in due {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            match self.deliver(ticket, response).await {
                Ok(Some(_)) => attempted += 1,
                Ok(None) => {}
                // The store is unreachable: the rest would fail alike.
                Err(e) => {
                    tracing::warn!(ticket = %ticket, response = %response, error = ?e, "due mail not attempted");
                    return if attempted > 0 { Ok(attempted) } else { Err(e) };
                }
            }
        }
        Ok(attempted)
    }

    /// Records a delivery, bounce or complaint the provider reported.
    /// Idempotent, and never moves a delivery backwards: a repeated or late
    /// event changes nothing.
    pub async fn apply_mail_event(&self, event: MailEvent) -> Result<()> {
        let delivery = event.delivery();
        let applied = self
            .ports
            .store
            .record_mail_event(event.ticket_id, event.response_id, &delivery)
            .await?;
        tracing::info!(
            ticket = %event.ticket_id,
            response = %event.response_id,
            delivery = delivery.state(),
            applied,
            "mail event"
        );
        Ok(())
    }

    /// Respond's inline attempt, bounded by [`INLINE_SEND_BUDGET`]: the
    /// delivery to show, `committed` unless the attempt finished in time.
    /// Detached (ticketd), the attempt runs in a task of its own, so a slow
    /// send still completes and records its outcome after respond has
    /// answered. Cut (Lambda, whose instance freezes once the answer is
    /// returned), an attempt still running at the budget is dropped: its
    /// claim keeps other senders off for [`MAIL_LEASE`], then the sweeper
    /// sends the mail (at least once: a send SES accepted just before the
    /// cut may go again).
    pub(super) async fn deliver_inline(&self, ticket: TicketId, response: ResponseId, committed: Delivery) -> Delivery {
        let outcome = match self.config.inline_send {
            super::InlineSend::Detached => {
                let service = self.clone();
                let attempt = tokio::spawn(async move { service.deliver(ticket, response).await });
                match tokio::time::timeout(INLINE_SEND_BUDGET, attempt).await {
                    Ok(Ok(outcome)) => Ok(outcome),
                    Ok(Err(e)) => {
                        tracing::error!(ticket = %ticket, response = %response, error = ?e, "inline send task failed");
                        return committed;
                    }
                    Err(elapsed) => Err(elapsed),
                }
            }
            super::InlineSend::Cut => tokio::time::timeout(INLINE_SEND_BUDGET, self.deliver(ticket, response)).await,
        };
        match outcome {
            Ok(Ok(Some(delivery))) => delivery,
            // Claimed by another sender first: it is theirs to record.
            Ok(Ok(None)) => committed,
            Ok(Err(e)) => {
                tracing::warn!(ticket = %ticket, response = %response, error = ?e, "inline send not attempted; the sweeper retries");
                committed
            }
            Err(_) => {
                tracing::info!(ticket = %ticket, response = %response, inline = ?self.config.inline_send, "inline send out of time; answering pending");
                committed
            }
        }
    }

    /// One claimed attempt: the delivery recorded, or `None` when there was
    /// nothing to claim.
    async fn deliver(&self, ticket: TicketId, response: ResponseId) -> Result<Option<Delivery>> {
        let store = &self.ports.store;
        let Some(claim) = store.claim_mail(ticket, response, self.now(), MAIL_LEASE).await? else {
            return Ok(None);
        };
        let outcome = match self.ports.mailer.send(&claim.mail).await {
            Ok(message_id) => Delivery::Sent {
                message_id,
                at: self.now(),
            },
            Err(e) => {
                let at = self.now();
                match self.config.mail_retry.after(claim.attempt) {
                    Some(delay) => Delivery::Pending {
                        attempts: claim.attempt,
                        next_attempt_at: at.plus(delay),
                        last_error: Some(e.0),
                    },
                    None => Delivery::Failed { reason: e.0, at },
                }
            }
        };
        let recorded = store.record_attempt(ticket, response, &claim.lease, &outcome).await?;
        tracing::info!(
            ticket = %ticket,
            response = %response,
            attempt = claim.attempt,
            delivery = outcome.state(),
            recorded,
            "mail attempt"
        );
        Ok(Some(outcome))
    }
}
