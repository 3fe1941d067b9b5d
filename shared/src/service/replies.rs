//! The customer's side of the conversation: a reply (from the client
//! product's API call or an inbound email) joins, reopens or follows up on its
//! ticket, and its assignee is emailed through the same outbox as responses.

use super::{CONCURRENT_CHANGE, Service, conflict_as};
use crate::domain::limits::{Limit, Rate, Slot};
use crate::domain::rules::{self, AutoClose, ReplyEffect};
use crate::domain::{
    Actor, Author, Cause, Change, Delivery, Email, MAX_TITLE, Mail, Message, MessageKind, OrgId, ResponseId, Status,
    Ticket, TicketId, Timestamp, header_line,
};
use crate::error::{Error, Result};
use futures_util::future::BoxFuture;

/// A reply to a long-closed ticket goes to its follow-up; one to a
/// long-closed follow-up to the follow-up's follow-up, and so on: at most
/// this many steps (each needs a ticket closed past the reopen window).
const MAX_FOLLOW_UP_HOPS: usize = 4;

/// How the reply reached us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyVia {
    /// `POST /tickets/{id}/replies` by the client product. A limit refuses
    /// it (429): the product still has it and may retry.
    Api,
    /// An inbound email: `message_id` is its Message-ID (or a hash of it when
    /// missing), `received_at` when its claim was first stored. Together they
    /// derive the ids this reply creates, so a redelivered email is applied
    /// once. A limit holds it (kept on the ticket without its effect): the
    /// sender cannot be asked to retry. `sender_auth`: how the sender was
    /// authenticated, recorded with the reply.
    Email {
        message_id: String,
        received_at: Timestamp,
        sender_auth: String,
        /// A limit of inbound mail that refused it: the reply is held.
        held: Option<Limit>,
    },
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
    /// The ticket was closed too long ago: the reply went to the ticket that
    /// follows up on it (opened for it, with the reply as its description, or
    /// the one an earlier reply opened).
    FollowUp { ticket: Ticket, reply: Message },
    /// An emailed reply a limit refused to let reopen its ticket (or open a
    /// follow-up): stored on the ticket as it is, with a `replyHeld` event.
    Held {
        ticket: Ticket,
        reply: Message,
        limit: Limit,
    },
    /// This email was applied before (a redelivery): nothing changed.
    Duplicate { ticket: Ticket },
}

impl Service {
    /// Applies a customer's reply. `org` is the caller's org (API); `None`
    /// when the reply's route already proved the ticket (an inbound email's
    /// signed address). Another org's ticket is a 404; a sender other than the
    /// ticket's customer a 403.
    pub async fn customer_reply(&self, org: Option<OrgId>, reply: CustomerReply) -> Result<ReplyOutcome> {
        self.reply_to(org, reply, 0).await
    }

    fn reply_to(&self, org: Option<OrgId>, reply: CustomerReply, hops: usize) -> BoxFuture<'_, Result<ReplyOutcome>> {
        Box::pin(async move {
            let now = self.now();
            let reply_id = match &reply.via {
                ReplyVia::Api => ResponseId::new(),
                ReplyVia::Email {
                    message_id,
                    received_at,
                    ..
                } => ResponseId::derived(*received_at, message_id),
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
            let unanswered = unanswered_replies(&messages) + 1;
            let inbound_limit = match &reply.via {
                ReplyVia::Email { held, .. } => *held,
                ReplyVia::Api => None,
            };
            let effect = rules::reply_effect(&before, now, self.config.reopen_window);
            if effect == ReplyEffect::FollowsUp && hops < MAX_FOLLOW_UP_HOPS && inbound_limit.is_none() {
                return self.follow_up(org, &before, reply, hops).await;
            }
            // Only a reply that reopens counts against the reopen limit:
            // details added while the ticket is OPEN are the conversation.
            let held = match (inbound_limit, effect) {
                (Some(limit), _) => Some(limit),
                (None, ReplyEffect::Reopens) => {
                    self.refused(Limit::ReopensPerTicket, &before.id.to_string(), &reply)
                        .await?
                }
                (None, ReplyEffect::FollowsUp) => Some(Limit::FollowUpsPerOrg),
                (None, ReplyEffect::Joins) => None,
            };
            let mut after = before.clone();
            let auto_close = match (effect, held) {
                (ReplyEffect::Reopens, None) => {
                    rules::set_status(&mut after, Status::Open, now, self.config.auto_close_after)
                }
                _ => AutoClose::Unchanged,
            };
            after.updated_at = now;
            after.version = before.version + 1;
            let message = self
                .store_reply(&before, &after, reply_id, &reply, now, held, unanswered)
                .await?;
            self.apply_auto_close(auto_close).await;
            tracing::info!(
                ticket = %after.id,
                reply = %message.id,
                status = %after.status,
                held = held.map(Limit::as_str),
                "customer replied"
            );
            Ok(match held {
                Some(limit) => ReplyOutcome::Held {
                    ticket: after,
                    reply: message,
                    limit,
                },
                None => ReplyOutcome::Added {
                    ticket: after,
                    reply: message,
                },
            })
        })
    }

    /// Whether `limit` refuses the reply's effect for `key`: for an API
    /// reply a 429; for an email `Some(limit)`, so the reply is held.
    async fn refused(&self, limit: Limit, key: &str, reply: &CustomerReply) -> Result<Option<Limit>> {
        match (self.take_slot(limit, key).await, &reply.via) {
            (Ok(()), _) => Ok(None),
            (Err(Error::RateLimited { .. }), ReplyVia::Email { .. }) => Ok(Some(limit)),
            (Err(e), _) => Err(e),
        }
    }

    /// A reply to a ticket closed past the reopen window goes to its
    /// follow-up: one per close of the ticket (its id is derived from the
    /// ticket and its close time), opened by the first such reply (within
    /// the org's follow-up limit) and joined, reopened or followed up on by
    /// the next ones as any ticket is.
    async fn follow_up(
        &self,
        org: Option<OrgId>,
        old: &Ticket,
        reply: CustomerReply,
        hops: usize,
    ) -> Result<ReplyOutcome> {
        let closed = old.closed_at.unwrap_or(old.updated_at);
        let id = TicketId::derived(closed, &format!("follow-up:{}", old.id));
        let next = CustomerReply {
            ticket: id,
            ..reply.clone()
        };
        if self.ports.store.ticket(id).await?.is_none() {
            if let Some(limit) = self
                .refused(Limit::FollowUpsPerOrg, &old.org_id.to_string(), &reply)
                .await?
            {
                return self.hold_on(old, reply, limit).await;
            }
            let now = self.now();
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
            match self.ports.store.create_ticket(&draft, &cause).await {
                Ok(created) => {
                    // The old ticket's history points at its follow-up.
                    let pointer = cause.event(old.id, Change::FollowUpCreated { ticket_id: created.id });
                    self.ports.store.add_events(&[pointer]).await?;
                    tracing::info!(ticket = %created.id, follows = %old.id, "customer reply opened a follow-up ticket");
                }
                // Another reply opened it first: join that one.
                Err(e) if self.ports.store.ticket(id).await?.is_some() => {
                    tracing::info!(ticket = %id, error = %e, "follow-up opened concurrently");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(match self.reply_to(org, next, hops + 1).await? {
            ReplyOutcome::Added { ticket, reply } => ReplyOutcome::FollowUp { ticket, reply },
            other => other,
        })
    }

    /// Keeps `reply` on `ticket` as it is (no reopen, no follow-up).
    async fn hold_on(&self, ticket: &Ticket, reply: CustomerReply, limit: Limit) -> Result<ReplyOutcome> {
        let held = CustomerReply {
            ticket: ticket.id,
            ..reply
        };
        // `reply_to` finds the ticket past its window with no hops left: held.
        self.reply_to(None, held, MAX_FOLLOW_UP_HOPS).await.map(|o| match o {
            ReplyOutcome::Held { ticket, reply, .. } => ReplyOutcome::Held { ticket, reply, limit },
            other => other,
        })
    }

    /// Commits the reply with the email telling its assignee (none when the
    /// ticket is unassigned, when one was sent about this ticket within the
    /// notice interval, or when a mail limit is reached), then tries the
    /// send once, briefly. `held`: the limit that kept it from reopening
    /// the ticket (or opening a follow-up). `unanswered`: the customer's
    /// replies since the last response, this one included.
    #[allow(clippy::too_many_arguments)]
    async fn store_reply(
        &self,
        before: &Ticket,
        after: &Ticket,
        id: ResponseId,
        reply: &CustomerReply,
        now: Timestamp,
        held: Option<Limit>,
        unanswered: usize,
    ) -> Result<Message> {
        // A held reply is not news to mail about (it is on the ticket, with
        // its `replyHeld` event); others are told coalesced, within limits.
        // The assignee is read beside the notice interval's slot.
        let (assignee, notice_due) = match (after.admin_id, held) {
            (Some(a), None) => {
                let (assignee, due) = tokio::join!(self.ports.store.admin(after.org_id, a), self.notice_due(after));
                (assignee?, due?)
            }
            _ => (None, false),
        };
        let assignee = match assignee {
            Some(a) if notice_due && self.may_mail(after, &a.email).await? => Some(a),
            _ => None,
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
        let every = crate::domain::duration::format_duration(self.config.limits.reply_notice_every);
        let mail = assignee.map(|a| Mail {
            to: a.email,
            from: self.config.mail_from.clone(),
            subject: header_line(&format!("Customer replied: {} [ticket {}]", after.title, after.id)),
            text: format!(
                "{} replied to ticket {} (\"{}\"), now {}:\n\n{}\n\n--\n{unanswered} {} from the customer since \
                 the last response. Further replies within {every} are not mailed one by one: see the ticket.\n",
                after.added_by.as_str(),
                after.id,
                after.title,
                after.status,
                reply.message,
                if unanswered == 1 { "reply" } else { "replies" },
            ),
            ticket_id: after.id,
            response_id: id,
            // To an admin: replies to it are not a customer's.
            reply_to: None,
            message_id: None,
        });
        let sender_auth = match &reply.via {
            ReplyVia::Email { sender_auth, .. } => Some(sender_auth.clone()),
            ReplyVia::Api => None,
        };
        let mut cause = Cause::new(customer(&reply.from), now).with(Change::Replied {
            message_id: id,
            sender_auth,
        });
        if let Some(limit) = held {
            cause = cause.with(Change::ReplyHeld {
                message_id: id,
                reason: limit.as_str().to_owned(),
            });
        }
        self.ports
            .store
            .add_message(before, after, &message, mail.as_ref(), &cause)
            .await
            .map_err(|e| conflict_as(e, CONCURRENT_CHANGE))?;
        if let Some(committed) = message.delivery.take() {
            message.delivery = Some(match self.config.inline_send {
                super::InlineSend::Detached => self.deliver_inline(after.id, id, committed).await,
                // On Lambda the assignee's notice is left to the sweeper's
                // next run (within a minute): the reply's time budget has no
                // room for an inline send.
                super::InlineSend::Cut => committed,
            });
        }
        Ok(message)
    }

    /// Whether this reply is the first of its ticket's notice interval (the
    /// assignee is told of the first reply of each interval only).
    async fn notice_due(&self, ticket: &Ticket) -> Result<bool> {
        let every = Rate::new(1, self.config.limits.reply_notice_every);
        Ok(self.take_rate(&format!("reply_notice:{}", ticket.id), every).await? == Slot::Taken)
    }

    /// Whether a notice to `to` about `ticket` fits the org's mail limit and
    /// the recipient's (both slots taken at once).
    async fn may_mail(&self, ticket: &Ticket, to: &Email) -> Result<bool> {
        let org_key = ticket.org_id.to_string();
        let (org, recipient) = tokio::join!(
            self.try_slot(Limit::MailPerOrg, &org_key),
            self.try_slot(Limit::MailPerRecipient, to.as_str())
        );
        for (limit, slot) in [(Limit::MailPerOrg, org?), (Limit::MailPerRecipient, recipient?)] {
            if slot != Slot::Taken {
                tracing::warn!(ticket = %ticket.id, limit = limit.as_str(), "reply notice not mailed: mail limit reached");
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The customer's replies after the last response (or note) of an admin.
fn unanswered_replies(messages: &[Message]) -> usize {
    messages
        .iter()
        .rev()
        .take_while(|m| m.kind == MessageKind::Reply)
        .count()
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
