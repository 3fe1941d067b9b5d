//! Inbound email, the one path both entry points (ticketd's `POST
//! /inbound/email`, the `inbound-email` Lambda) share: store the raw message
//! first (so the sender may be told 2xx and nothing is lost), then parse,
//! drop what must not be answered, find the ticket, check the sender, and
//! apply the reply exactly as the API's `customer_reply` would.

use super::Service;
use super::replies::{CustomerReply, ReplyOutcome, ReplyVia};
use crate::auth::ReplyKey;
use crate::domain::inbound::{
    self, AuthVerdict, Drop, InboundMail, InboundReceipt, MAX_RAW_MESSAGE, SenderAuth, SesVerdicts,
};
use crate::domain::limits::{Limit, Rate, Slot};
use crate::domain::{Actor, Cause, Change, MAX_MESSAGE, Ticket, TicketId};
use crate::error::{Error, Result};
use std::time::Duration;

/// How long a reply's claim is kept at least (its dedupe record): MTAs give
/// up retrying after about 5 days, SES after hours; 30 days is far past
/// either, whatever the raw retention.
const CLAIM_KEPT: Duration = Duration::from_secs(30 * 86_400);

/// A refused message (wrong sender, unauthenticated) is recorded in its
/// ticket's history at most once per this long: strangers who know a reply
/// address cannot grow the history.
const REFUSAL_EVENT_EVERY: Duration = Duration::from_secs(3600);

/// How a message reached us.
#[derive(Debug, Clone, Default)]
pub struct InboundSource {
    /// Where the raw message is kept outside the store (SES's S3 object).
    pub stored_at: Option<String>,
    /// SES's receipt verdicts (none for ticketd).
    pub verdicts: SesVerdicts,
    /// SES's SPF, DKIM and DMARC verdicts; `None` for ticketd, which reads
    /// the `Authentication-Results` header of its trusted MTA instead.
    pub auth: Option<SenderAuth>,
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
    /// `From`'s domain is not authenticated (no SPF or DKIM pass, or DMARC failed).
    Unauthenticated,
    /// Nothing left once quoted history and signature are cut.
    Empty,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Unreadable => "unreadable",
            Rejection::NoTicket => "no_ticket",
            Rejection::ForgedAddress => "forged_address",
            Rejection::WrongSender => "wrong_sender",
            Rejection::Unauthenticated => "unauthenticated",
            Rejection::Empty => "empty",
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
    /// Kept on `ticket` without its effect: a limit refused it (a reopen, a
    /// follow-up, inbound mail's own); admins see it and its `replyHeld` event.
    Held {
        ticket: TicketId,
        limit: Limit,
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
            InboundOutcome::Held { limit, .. } => format!("held:{}", limit.as_str()),
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
    ///
    /// The raw message is stored under the hash of its bytes (a redelivery
    /// of the same bytes is answered `duplicate` at once); a reply is
    /// deduplicated later, by the claim its checked sender makes
    /// ([`inbound::reply_claim_key`]), so nobody can pre-empt it.
    pub async fn receive_inbound(&self, raw: &[u8], source: InboundSource) -> Result<InboundOutcome> {
        if raw.len() > MAX_RAW_MESSAGE {
            return Err(Error::PayloadTooLarge(MAX_RAW_MESSAGE));
        }
        let Some((_, key)) = self.config.reply_keys.get().await? else {
            return Err(Error::internal(anyhow::anyhow!(
                "inbound mail reached a service without an inbound domain and reply key"
            )));
        };
        let now = self.now();
        let receipt = InboundReceipt {
            key: inbound::hash_key(raw),
            received_at: now,
            source: source.stored_at.clone(),
            expires_at: now.plus(self.config.limits.inbound_retention),
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
                self.apply(&mail, key, &source, &receipt.key).await?
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
        source: &InboundSource,
        raw_key: &str,
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
            return self.refuse(&ticket, Rejection::WrongSender).await;
        }
        let Some(sender_auth) = self.sender_auth(mail, source) else {
            return self.refuse(&ticket, Rejection::Unauthenticated).await;
        };
        let Some(message) = reply_text(&mail.text) else {
            return Ok((InboundOutcome::Rejected(Rejection::Empty), Some(id)));
        };
        // The checked sender's claim on this Message-ID for this ticket.
        let now = self.now();
        let claim = InboundReceipt {
            key: inbound::reply_claim_key(&id.to_string(), ticket.added_by.as_str(), &mail.key),
            received_at: now,
            source: Some(format!("inbound:{raw_key}")),
            expires_at: now.plus(CLAIM_KEPT.max(self.config.limits.inbound_retention)),
        };
        let claimed = self.ports.store.save_inbound(&claim, &[]).await?;
        if claimed.outcome.is_some() {
            return Ok((InboundOutcome::Duplicate, Some(id)));
        }
        // Inbound mail's own limits, per sender and per ticket: past them a
        // reply is held (kept on the ticket, no reopen, no notice).
        let mut held = None;
        for (limit, key) in [
            (Limit::InboundPerSender, ticket.added_by.as_str().to_owned()),
            (Limit::InboundPerTicket, id.to_string()),
        ] {
            if held.is_none() && self.try_slot(limit, &key).await? != Slot::Taken {
                held = Some(limit);
            }
        }
        let reply = CustomerReply {
            ticket: id,
            from: ticket.added_by.clone(),
            message,
            via: ReplyVia::Email {
                message_id: mail.key.clone(),
                received_at: claimed.received_at,
                sender_auth,
                held,
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
        let result = match outcome {
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
            Ok(ReplyOutcome::Held { ticket, limit, .. }) => (
                InboundOutcome::Held {
                    ticket: ticket.id,
                    limit,
                },
                Some(ticket.id),
            ),
            Ok(ReplyOutcome::Duplicate { ticket }) => (InboundOutcome::Duplicate, Some(ticket.id)),
            Err(Error::NotFound(_)) => (InboundOutcome::Rejected(Rejection::NoTicket), Some(id)),
            Err(Error::Forbidden(_)) => (InboundOutcome::Rejected(Rejection::WrongSender), Some(id)),
            Err(e) => return Err(e),
        };
        self.ports
            .store
            .finish_inbound(&claim.key, &result.0.name(), result.1, self.now())
            .await?;
        Ok(result)
    }

    /// How the sender is authenticated (`dmarc`, `spf`, `dkim`, or
    /// `unauthenticated` where allowed); `None` to refuse the message.
    fn sender_auth(&self, mail: &InboundMail, source: &InboundSource) -> Option<String> {
        let policy = &self.config.inbound_auth;
        let auth = match (&source.auth, &policy.trusted_authserv_id) {
            (Some(ses), _) => ses.clone(),
            (None, Some(id)) => SenderAuth::from_headers(mail.auth_results.iter().map(String::as_str), id),
            (None, None) => SenderAuth::default(),
        };
        match auth.verdict() {
            AuthVerdict::Pass(how) => Some(how.to_owned()),
            _ if policy.allow_unauthenticated => Some("unauthenticated".to_owned()),
            _ => None,
        }
    }

    /// Refuses a message for `ticket`, recording it in the ticket's history
    /// at most once per [`REFUSAL_EVENT_EVERY`] (the sender's address is not
    /// recorded: it is not the customer's to show).
    async fn refuse(&self, ticket: &Ticket, why: Rejection) -> Result<(InboundOutcome, Option<TicketId>)> {
        let every = Rate::new(1, REFUSAL_EVENT_EVERY);
        if self.take_rate(&format!("inbound_refused:{}", ticket.id), every).await? == Slot::Taken {
            let rejected = Cause::new(Actor::System, self.now()).event(
                ticket.id,
                Change::InboundRejected {
                    reason: why.as_str().to_owned(),
                },
            );
            self.ports.store.add_events(&[rejected]).await?;
        }
        Ok((InboundOutcome::Rejected(why), Some(ticket.id)))
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
