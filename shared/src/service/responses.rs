//! The admins' messages. Responding: the response and its email are stored
//! with the ticket's move to RESPONDED, then one bounded attempt sends the
//! email (`mail.rs`). Notes: internal, never emailed, never shown to the
//! customer.

use super::{CONCURRENT_CHANGE, Service, conflict_as};
use crate::auth::{Claims, ReplyKey};
use crate::domain::duration::format_duration;
use crate::domain::limits::Limit;
use crate::domain::{
    Actor, Author, Cause, Change, Delivery, Mail, Message, MessageKind, Response, ResponseId, Status, Ticket, TicketId,
    header_line, rules,
};
use crate::error::{Error, Result};

impl Service {
    /// Stores the response and its email and moves the ticket to RESPONDED,
    /// then tries the send once, briefly: the delivery is `sent`, or `pending`
    /// for the retries to finish. Nothing is lost to a failed send. Past the
    /// org's or the recipient's mail limit, 429 and nothing is stored.
    /// `message` is validated text.
    pub async fn respond(&self, claims: &Claims, id: TicketId, message: String) -> Result<(Response, Ticket)> {
        let before = self.own_ticket(claims, id).await?;
        if before.status == Status::Closed {
            return Err(Error::Conflict(
                "the ticket is CLOSED; reopen it before responding".into(),
            ));
        }
        // The platform's sender mails what an org writes: bounded per org
        // and per recipient (whatever org writes to it). Refused before
        // anything is stored: the admin gets 429 and may send it later. The
        // recipient first: mail refused for one address uses none of the
        // org's budget.
        self.take_slot(Limit::MailPerRecipient, before.added_by.as_str())
            .await?;
        self.take_slot(Limit::MailPerOrg, &claims.org.to_string()).await?;
        let now = self.now();
        let mut after = before.clone();
        let effect = rules::record_response(&mut after, now, self.config.auto_close_after);
        after.version = before.version + 1;
        let mut response = Response {
            id: ResponseId::new(),
            ticket_id: id,
            admin_id: claims.sub,
            message,
            created_at: now,
            delivery: Delivery::new_pending(now),
        };
        let reply_to = self.config.reply_keys.get().await?;
        let mail = self.response_mail(&after, &response, reply_to);
        let cause = Cause::new(Actor::Admin { admin_id: claims.sub }, now).with(Change::Responded {
            message_id: response.id,
        });
        self.ports
            .store
            .add_message(&before, &after, &Message::from(response.clone()), Some(&mail), &cause)
            .await
            .map_err(|e| conflict_as(e, CONCURRENT_CHANGE))?;
        // Mail before scheduling: on ticketd, scheduling wakes the job runner,
        // which would otherwise claim the fresh mail first and leave this
        // reply saying `pending` about a mail sent a moment later.
        response.delivery = self.deliver_inline(id, response.id, response.delivery.clone()).await;
        self.apply_auto_close(effect).await;
        tracing::info!(ticket = %id, response = %response.id, delivery = response.delivery.state(), "responded");
        Ok((response, after))
    }

    /// Adds an internal note to the ticket (any status). The ticket's version
    /// moves (the write is version-checked like every other), its
    /// `updatedAt` does not: customers see that time, and a note is not news
    /// to them.
    pub async fn add_note(&self, claims: &Claims, id: TicketId, message: String) -> Result<Message> {
        let before = self.own_ticket(claims, id).await?;
        let mut after = before.clone();
        after.version = before.version + 1;
        let note = Message {
            id: ResponseId::new(),
            ticket_id: id,
            kind: MessageKind::Note,
            author: Author::Admin { admin_id: claims.sub },
            message,
            created_at: self.now(),
            delivery: None,
        };
        self.ports
            .store
            .add_message(
                &before,
                &after,
                &note,
                None,
                &Cause::new(Actor::Admin { admin_id: claims.sub }, note.created_at)
                    .with(Change::NoteAdded { message_id: note.id }),
            )
            .await
            .map_err(|e| conflict_as(e, CONCURRENT_CHANGE))?;
        tracing::info!(ticket = %id, note = %note.id, "note added");
        Ok(note)
    }

    /// The email carrying `response` to the ticket's customer. With inbound
    /// email on (`reply`: its domain and key), it carries the ticket's reply
    /// address and our Message-ID, and invites a reply; without, it says how
    /// else to follow up, since a reply would go nowhere.
    fn response_mail(&self, ticket: &Ticket, response: &Response, reply: Option<(&str, &ReplyKey)>) -> Mail {
        let follow_up = match reply {
            Some(_) => format!(
                "If this resolves your request there is nothing more to do; otherwise reply to this email \
                 within {} and we will pick it up.",
                format_duration(self.config.auto_close_after)
            ),
            None => format!(
                "If this resolves your request there is nothing more to do. Replies to this email are not read: \
                 to follow up, write to us where you opened this request, quoting ticket {}.",
                ticket.id
            ),
        };
        Mail {
            to: ticket.added_by.clone(),
            from: self.config.mail_from.clone(),
            // Header-safe whatever the title holds (titles are single-line already).
            subject: header_line(&format!("Re: {} [ticket {}]", ticket.title, ticket.id)),
            text: format!(
                "{}\n\n--\nTicket {}: \"{}\" is now {}.\n{follow_up}\n",
                response.message, ticket.id, ticket.title, ticket.status,
            ),
            ticket_id: ticket.id,
            response_id: response.id,
            reply_to: reply.map(|(domain, key)| key.address(ticket.id, domain)),
            message_id: reply.map(|(domain, key)| key.message_id(ticket.id, response.id, domain)),
        }
    }
}
