//! The customer's side of the conversation: a reply (from the client
//! product's API call or an inbound email) joins, reopens or follows up on its
//! ticket, and its assignee is emailed through the same outbox as responses.

use super::{CONCURRENT_CHANGE, Service, conflict_as};
use crate::domain::rules::{self, AutoClose, ReplyEffect};
use crate::domain::{
    Actor, Author, Cause, Change, Delivery, Email, MAX_TITLE, Mail, Message, MessageKind, OrgId, ResponseId, Status,
    Ticket, TicketId, Timestamp, header_line,
};
use crate::error::{Error, Result};
use std::time::Duration;

/// At most this many replies an hour may reopen one ticket (a RESPONDED or
/// CLOSED one); more are refused (429). Two mail systems answering each other
/// (an auto-reply to our response, our response to it) stop here.
pub const MAX_REOPENS_PER_HOUR: usize = 5;
const REOPEN_LIMIT_WINDOW: Duration = Duration::from_secs(3600);

/// How the reply reached us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyVia {
    /// `POST /tickets/{id}/replies` by the client product.
    Api,
    /// An inbound email: `message_id` is its Message-ID (or a hash of it when
    /// missing), `received_at` when it was first stored. Together they derive
    /// the ids this reply creates, so a redelivered email is applied once.
    Email { message_id: String, received_at: Timestamp },
}

/// A customer's reply, parsed and validated at the edge.
#[derive(Debug, Clone)]
pub struct CustomerReply {
    pub ticket: TicketId,
    /// Must be the ticket's customer (`addedBy`).
    pub from: Email,
    /// Validated multi-line text.
    pub message: String,
    pub via: ReplyVia,
}

/// What a reply did.
#[derive(Debug, Clone)]
pub enum ReplyOutcome {
    /// Stored on its ticket (reopened if it was RESPONDED or recently CLOSED).
    Added { ticket: Ticket, reply: Message },
    /// The ticket was closed too long ago: a new ticket follows up on it,
    /// with the reply as its description and first message.
    FollowUp { ticket: Ticket, reply: Message },
    /// This email was applied before (a redelivery): nothing changed.
    Duplicate { ticket: Ticket },
}

impl Service {
    /// Applies a customer's reply. `org` is the caller's org (API); `None`
    /// when the reply's route already proved the ticket (an inbound email's
    /// signed address). Another org's ticket is a 404; a sender other than the
    /// ticket's customer a 403.
    pub async fn customer_reply(&self, org: Option<OrgId>, reply: CustomerReply) -> Result<ReplyOutcome> {
        let now = self.now();
        let (reply_id, follow_up_id) = match &reply.via {
            ReplyVia::Api => (ResponseId::new(), TicketId::new()),
            ReplyVia::Email {
                message_id,
                received_at,
            } => (
                ResponseId::derived(*received_at, message_id),
                TicketId::derived(*received_at, message_id),
            ),
        };
        let (before, messages) = match self.ports.store.ticket_with_messages(reply.ticket).await? {
            Some((t, m)) if org.is_none_or(|o| o == t.org_id) => (t, m),
            _ => return Err(Error::NotFound("ticket")),
        };
        if reply.from != before.added_by {
            return Err(Error::Forbidden(
                "from: only the ticket's customer (addedBy) can reply to it".into(),
            ));
        }
        if messages.iter().any(|m| m.id == reply_id) {
            return Ok(ReplyOutcome::Duplicate { ticket: before });
        }
        let effect = rules::reply_effect(&before, now, self.config.reopen_window);
        if effect != ReplyEffect::Joins {
            let since = Timestamp::from_millis(now.millis() - REOPEN_LIMIT_WINDOW.as_millis() as i64);
            let recent = messages
                .iter()
                .filter(|m| m.kind == MessageKind::Reply && m.created_at > since)
                .count();
            if recent >= MAX_REOPENS_PER_HOUR {
                return Err(Error::TooManyRequests(
                    format!("this ticket was reopened by {MAX_REOPENS_PER_HOUR} replies in the last hour; try later"),
                    REOPEN_LIMIT_WINDOW,
                ));
            }
        }
        if effect == ReplyEffect::FollowsUp {
            return self.follow_up(&before, reply, reply_id, follow_up_id, now).await;
        }
        let mut after = before.clone();
        let auto_close = match effect {
            ReplyEffect::Reopens => rules::set_status(&mut after, Status::Open, now, self.config.auto_close_after),
            _ => AutoClose::Unchanged,
        };
        after.updated_at = now;
        after.version = before.version + 1;
        let message = self.store_reply(&before, &after, reply_id, &reply, now).await?;
        self.apply_auto_close(auto_close).await;
        tracing::info!(ticket = %after.id, reply = %message.id, status = %after.status, "customer replied");
        Ok(ReplyOutcome::Added {
            ticket: after,
            reply: message,
        })
    }

    /// Opens the ticket a reply to a long-closed one becomes (assigned as any
    /// new ticket is), then stores the reply on it. An email redelivered
    /// after the first step finds the ticket by its derived id and finishes.
    async fn follow_up(
        &self,
        old: &Ticket,
        reply: CustomerReply,
        reply_id: ResponseId,
        id: TicketId,
        now: Timestamp,
    ) -> Result<ReplyOutcome> {
        let existing = match reply.via {
            ReplyVia::Email { .. } => self.ports.store.ticket_with_messages(id).await?,
            ReplyVia::Api => None,
        };
        let ticket = match existing {
            Some((t, messages)) if messages.iter().any(|m| m.id == reply_id) => {
                return Ok(ReplyOutcome::Duplicate { ticket: t });
            }
            Some((t, _)) => t,
            None => {
                let draft = Ticket {
                    id,
                    org_id: old.org_id,
                    title: follow_up_title(&old.title),
                    description: reply.message.clone(),
                    added_by: old.added_by.clone(),
                    admin_id: None,
                    status: Status::Open,
                    created_at: now,
                    updated_at: now,
                    responded_at: None,
                    closed_at: None,
                    auto_close_at: None,
                    version: 1,
                    follow_up_of: Some(old.id),
                };
                let cause = Cause::new(customer(&reply.from), now).with(Change::FollowUpOf { ticket_id: old.id });
                let created = self.ports.store.create_ticket(&draft, &cause).await?;
                // The old ticket's history points at its follow-up.
                let pointer = cause.event(old.id, Change::FollowUpCreated { ticket_id: created.id });
                self.ports.store.add_events(&[pointer]).await?;
                created
            }
        };
        let mut after = ticket.clone();
        after.version = ticket.version + 1;
        let message = self.store_reply(&ticket, &after, reply_id, &reply, now).await?;
        tracing::info!(ticket = %after.id, follows = %old.id, reply = %message.id, "customer reply opened a follow-up ticket");
        Ok(ReplyOutcome::FollowUp {
            ticket: after,
            reply: message,
        })
    }

    /// Commits the reply with the email telling its assignee (none when the
    /// ticket is unassigned), then tries the send once, briefly.
    async fn store_reply(
        &self,
        before: &Ticket,
        after: &Ticket,
        id: ResponseId,
        reply: &CustomerReply,
        now: Timestamp,
    ) -> Result<Message> {
        let assignee = match after.admin_id {
            Some(a) => self.ports.store.admin(after.org_id, a).await?,
            None => None,
        };
        let mut message = Message {
            id,
            ticket_id: after.id,
            kind: MessageKind::Reply,
            author: Author::Customer {
                email: reply.from.clone(),
            },
            message: reply.message.clone(),
            created_at: now,
            delivery: assignee.as_ref().map(|_| Delivery::new_pending(now)),
        };
        let mail = assignee.map(|a| Mail {
            to: a.email,
            from: self.config.mail_from.clone(),
            subject: header_line(&format!("Customer replied: {} [ticket {}]", after.title, after.id)),
            text: format!(
                "{} replied to ticket {} (\"{}\"), now {}:\n\n{}\n",
                after.added_by.as_str(),
                after.id,
                after.title,
                after.status,
                reply.message,
            ),
            ticket_id: after.id,
            response_id: id,
            // To an admin: replies to it are not a customer's.
            reply_to: None,
            message_id: None,
        });
        let cause = Cause::new(customer(&reply.from), now).with(Change::Replied { message_id: id });
        self.ports
            .store
            .add_message(before, after, &message, mail.as_ref(), &cause)
            .await
            .map_err(|e| conflict_as(e, CONCURRENT_CHANGE))?;
        if let Some(committed) = message.delivery.take() {
            message.delivery = Some(self.deliver_inline(after.id, id, committed).await);
        }
        Ok(message)
    }
}

fn customer(email: &Email) -> Actor {
    Actor::Customer { email: email.clone() }
}

/// "Re: <title>", cut to fit the title limit on a character boundary.
fn follow_up_title(title: &str) -> String {
    let full = format!("Re: {title}");
    match full.char_indices().nth(MAX_TITLE) {
        Some((cut, _)) => full[..cut].to_owned(),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follow_up_title_fits_the_limit() {
        assert_eq!(follow_up_title("printer"), "Re: printer");
        let long = "é".repeat(MAX_TITLE);
        assert_eq!(follow_up_title(&long).chars().count(), MAX_TITLE);
    }
}
