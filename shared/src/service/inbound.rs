//! Inbound email, the one path both entry points (ticketd's `POST
//! /inbound/email`, the `inbound-email` Lambda) share: store the raw message
//! first (so the sender may be told 2xx and nothing is lost), then parse,
//! drop what must not be answered, find the ticket, check the sender, and
//! apply the reply exactly as the API's `customer_reply` would.

use super::Service;
use super::replies::{CustomerReply, ReplyOutcome, ReplyVia};
use crate::auth::ReplyKey;
use crate::domain::inbound::{self, Drop, InboundMail, InboundReceipt, MAX_RAW_MESSAGE, SesVerdicts};
use crate::domain::{Actor, Cause, Change, MAX_MESSAGE, TicketId};
use crate::error::{Error, Result};

/// How a message reached us.
#[derive(Debug, Clone, Default)]
pub struct InboundSource {
    /// Where the raw message is kept outside the store (SES's S3 object).
    pub stored_at: Option<String>,
    /// SES's receipt verdicts (none for ticketd).
    pub verdicts: SesVerdicts,
    /// The envelope recipients, when known (SES's receipt): a reply address
    /// there counts even if the headers do not show it (Bcc).
    pub recipients: Vec<String>,
}

/// Why a message was read but not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not a message at all.
    Unreadable,
    /// No reply address or Message-ID of ours names a ticket that exists.
    NoTicket,
    /// A reply address whose token does not verify (forged or altered).
    ForgedAddress,
    /// `From` is not the ticket's customer.
    WrongSender,
    /// Nothing left once quoted history and signature are cut.
    Empty,
    /// The ticket was reopened too often in the last hour.
    ReopenLimit,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Unreadable => "unreadable",
            Rejection::NoTicket => "no_ticket",
            Rejection::ForgedAddress => "forged_address",
            Rejection::WrongSender => "wrong_sender",
            Rejection::Empty => "empty",
            Rejection::ReopenLimit => "reopen_limit",
        }
    }
}

/// What became of an inbound message. Every variant means it is stored: the
/// sender (MTA, SES) must not send it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundOutcome {
    /// Added to `ticket` (or to the follow-up ticket it opened).
    Applied {
        ticket: TicketId,
        follow_up: bool,
    },
    /// Seen before: a redelivery, applied (or dropped) once already.
    Duplicate,
    Dropped(Drop),
    Rejected(Rejection),
}

impl InboundOutcome {
    /// The name stored with the message and counted (`applied`, `dropped:bounce`, ...).
    pub fn name(&self) -> String {
        match self {
            InboundOutcome::Applied { follow_up: false, .. } => "applied".into(),
            InboundOutcome::Applied { follow_up: true, .. } => "applied:follow_up".into(),
            InboundOutcome::Duplicate => "duplicate".into(),
            InboundOutcome::Dropped(d) => format!("dropped:{}", d.as_str()),
            InboundOutcome::Rejected(r) => format!("rejected:{}", r.as_str()),
        }
    }
}

/// Concurrent writes to one ticket (a reply racing an admin) are retried this often.
const CONFLICT_RETRIES: usize = 3;

impl Service {
    /// Receives one raw RFC 5322 message. An error means it may not be
    /// stored (the store is down): the sender should try again later. A
    /// message larger than [`MAX_RAW_MESSAGE`] is refused before anything.
    pub async fn receive_inbound(&self, raw: &[u8], source: InboundSource) -> Result<InboundOutcome> {
        if raw.len() > MAX_RAW_MESSAGE {
            return Err(Error::PayloadTooLarge(MAX_RAW_MESSAGE));
        }
        let Some((_, key)) = self.config.reply_keys.get().await? else {
            return Err(Error::internal(anyhow::anyhow!(
                "inbound mail reached a service without an inbound domain and reply key"
            )));
        };
        let receipt = InboundReceipt {
            key: inbound::dedupe_key(raw),
            received_at: self.now(),
            source: source.stored_at.clone(),
        };
        let stored = self.ports.store.save_inbound(&receipt, raw).await?;
        if stored.outcome.is_some() {
            tracing::info!(counter = "inbound_mail", outcome = "duplicate", key = %receipt.key, "inbound mail");
            return Ok(InboundOutcome::Duplicate);
        }
        let (outcome, ticket) = match inbound::parse(raw, &source.verdicts) {
            None => (InboundOutcome::Rejected(Rejection::Unreadable), None),
            Some(mut mail) => {
                mail.recipients
                    .extend(source.recipients.iter().map(|r| r.trim().to_ascii_lowercase()));
                self.apply(&mail, key, stored.received_at).await?
            }
        };
        let name = outcome.name();
        self.ports
            .store
            .finish_inbound(&receipt.key, &name, ticket, self.now())
            .await?;
        tracing::info!(counter = "inbound_mail", outcome = %name, key = %receipt.key, ticket = ?ticket, "inbound mail");
        Ok(outcome)
    }

    /// Reads a parsed message into an outcome, and the ticket it concerned.
    async fn apply(
        &self,
        mail: &InboundMail,
        key: &ReplyKey,
        received_at: crate::domain::Timestamp,
    ) -> Result<(InboundOutcome, Option<TicketId>)> {
        if let Some(drop) = mail.drop {
            return Ok((InboundOutcome::Dropped(drop), None));
        }
        let id = match find_ticket(mail, key) {
            Ok(id) => id,
            Err(r) => return Ok((InboundOutcome::Rejected(r), None)),
        };
        let Some(ticket) = self.ports.store.ticket(id).await? else {
            return Ok((InboundOutcome::Rejected(Rejection::NoTicket), None));
        };
        let sender_ok = mail
            .from
            .as_deref()
            .is_some_and(|f| f.eq_ignore_ascii_case(ticket.added_by.as_str()));
        if !sender_ok {
            // Recorded in the ticket's history (the sender's address is not:
            // it is not the customer's to show).
            let rejected = Cause::new(Actor::System, self.now()).event(
                id,
                Change::InboundRejected {
                    reason: Rejection::WrongSender.as_str().to_owned(),
                },
            );
            self.ports.store.add_events(&[rejected]).await?;
            return Ok((InboundOutcome::Rejected(Rejection::WrongSender), Some(id)));
        }
        let Some(message) = reply_text(&mail.text) else {
            return Ok((InboundOutcome::Rejected(Rejection::Empty), Some(id)));
        };
        let reply = CustomerReply {
            ticket: id,
            from: ticket.added_by.clone(),
            message,
            via: ReplyVia::Email {
                message_id: mail.key.clone(),
                received_at,
            },
        };
        let mut tries = 0;
        let outcome = loop {
            tries += 1;
            match self.customer_reply(None, reply.clone()).await {
                Err(Error::Conflict(_)) if tries < CONFLICT_RETRIES => continue,
                other => break other,
            }
        };
        Ok(match outcome {
            Ok(ReplyOutcome::Added { ticket, .. }) => (
                InboundOutcome::Applied {
                    ticket: ticket.id,
                    follow_up: false,
                },
                Some(ticket.id),
            ),
            Ok(ReplyOutcome::FollowUp { ticket, .. }) => (
                InboundOutcome::Applied {
                    ticket: ticket.id,
                    follow_up: true,
                },
                Some(ticket.id),
            ),
            Ok(ReplyOutcome::Duplicate { ticket }) => (InboundOutcome::Duplicate, Some(ticket.id)),
            Err(Error::TooManyRequests(..)) => (InboundOutcome::Rejected(Rejection::ReopenLimit), Some(id)),
            Err(Error::NotFound(_)) => (InboundOutcome::Rejected(Rejection::NoTicket), Some(id)),
            Err(Error::Forbidden(_)) => (InboundOutcome::Rejected(Rejection::WrongSender), Some(id)),
            Err(e) => return Err(e),
        })
    }
}

/// The ticket a message is for: its reply address (any recipient), else a
/// Message-ID of ours it answers. A reply address that does not verify is
/// forged: refused, not looked past.
fn find_ticket(mail: &InboundMail, key: &ReplyKey) -> std::result::Result<TicketId, Rejection> {
    let mut forged = false;
    for address in &mail.recipients {
        if crate::auth::reply::parse_address(address).is_some() {
            match key.ticket_of(address) {
                Some(t) => return Ok(t),
                None => forged = true,
            }
        }
    }
    if forged {
        return Err(Rejection::ForgedAddress);
    }
    mail.references
        .iter()
        .find_map(|id| key.ticket_of_message_id(id))
        .ok_or(Rejection::NoTicket)
}

/// The reply as a message: control characters other than newline and tab
/// removed, cut to [`MAX_MESSAGE`] characters; `None` if nothing is left.
fn reply_text(text: &str) -> Option<String> {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .take(MAX_MESSAGE)
        .collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_text_is_clean_bounded_and_never_empty() {
        assert_eq!(reply_text("  \n\t "), None);
        assert_eq!(reply_text("a\u{7}b\u{1b}[31m\n"), Some("ab[31m".into()));
        assert_eq!(
            reply_text(&"x".repeat(MAX_MESSAGE + 10)).unwrap().chars().count(),
            MAX_MESSAGE
        );
    }

    #[test]
    fn outcomes_have_stable_names() {
        let t = TicketId::new();
        assert_eq!(
            InboundOutcome::Applied {
                ticket: t,
                follow_up: false
            }
            .name(),
            "applied"
        );
        assert_eq!(InboundOutcome::Dropped(Drop::Bounce).name(), "dropped:bounce");
        assert_eq!(
            InboundOutcome::Rejected(Rejection::WrongSender).name(),
            "rejected:wrong_sender"
        );
    }
}
