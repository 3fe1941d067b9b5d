//! Inbound email, read: a raw RFC 5322 message parsed (mail-parser) into what
//! the service needs (sender, recipients, thread references, the new text
//! without quoted history or signature) and classified (a reply, or mail to
//! drop: auto-replies, bounces, spam). No I/O here.

mod auth;
mod classify;
mod quotes;

pub use auth::{AuthVerdict, SenderAuth};
pub use classify::{Drop, SesVerdicts, classify};
pub use quotes::{html_to_text, strip_quoted};

use super::Timestamp;
use mail_parser::{Address, HeaderValue, Message, MessageParser};
use sha2::{Digest, Sha256};

/// The longest raw message read, 10 MiB: ticketd's route and the Lambda
/// refuse larger ones (SES receipt caps a message at 40 MB, but a reply is
/// text: 10 MiB leaves room for a few attachments we do not keep).
pub const MAX_RAW_MESSAGE: usize = 10 * 1024 * 1024;

/// A Message-ID longer than this is keyed by its hash: it must fit a
/// DynamoDB key (2 KB) and an SQLite index comfortably; real ones are < 100.
const MAX_KEY_ID: usize = 250;

/// An inbound message as first stored, before it is read (its key:
/// [`hash_key`] of the raw bytes, so only the same bytes are the same
/// message), or the claim a reply makes once its sender is checked (its key:
/// [`reply_claim_key`], with no raw bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundReceipt {
    pub key: String,
    pub received_at: Timestamp,
    /// Where the raw message is kept when not in the store itself (the S3
    /// object SES wrote), e.g. `s3://bucket/key`.
    pub source: Option<String>,
    /// When the store may forget the record, raw bytes and all (DynamoDB's
    /// TTL; ticketd's sweep empties raw bytes past the retention instead).
    pub expires_at: Timestamp,
}

/// The key a reply from a checked sender claims: one per (ticket, sender,
/// Message-ID). Claimed only after the sender check, so a stranger who sends
/// a customer's Message-ID first claims nothing of the customer's; a
/// redelivery of the customer's message (even with other bytes: a relay's
/// extra header) finds the claim and is applied once.
pub fn reply_claim_key(ticket: &str, from: &str, message_key: &str) -> String {
    let named = format!("{ticket}\n{}\n{message_key}", from.to_ascii_lowercase());
    format!("reply:{}", &hash_key(named.as_bytes())["sha256:".len()..])
}

/// What the store holds under a receipt's key after storing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInbound {
    /// False when a message with this key was stored before (a redelivery).
    pub first: bool,
    /// When the first one was received: replies derive their ids from it.
    pub received_at: Timestamp,
    /// What became of it; `None` while (or if never) handled to the end.
    pub outcome: Option<String>,
}

/// One inbound message, as the service uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMail {
    /// The dedupe key: the Message-ID without angle brackets, or
    /// `sha256:<hex of the raw message>` when it has none.
    pub key: String,
    /// The Message-ID, when the message has one.
    pub message_id: Option<String>,
    /// The `From` address, lower-cased; `None` when missing or unreadable.
    pub from: Option<String>,
    /// Every address the message was sent to (`To`, `Cc`, `Delivered-To`,
    /// `X-Original-To`), lower-cased: one of them should be a reply address.
    pub recipients: Vec<String>,
    /// `In-Reply-To` then `References`, without angle brackets.
    pub references: Vec<String>,
    pub subject: String,
    /// The customer's new text: the plain part (or the HTML part as text),
    /// quoted history and signature stripped. Empty if nothing is left.
    pub text: String,
    /// Why the message must not be applied, if it must not (loop protection).
    pub drop: Option<Drop>,
    /// Each `Authentication-Results` header's value, topmost first (see
    /// [`SenderAuth::from_headers`]).
    pub auth_results: Vec<String>,
}

/// The dedupe key of a raw message that cannot be parsed, or has no Message-ID.
pub fn hash_key(raw: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(raw).iter().fold(String::from("sha256:"), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The dedupe key `raw` will have, read cheaply before the full parse: the
/// service stores the message under it first.
pub fn dedupe_key(raw: &[u8]) -> String {
    MessageParser::new()
        .parse_headers(raw)
        .and_then(|m| m.message_id().map(clean_id))
        .and_then(id_key)
        .unwrap_or_else(|| hash_key(raw))
}

/// The key of a Message-ID: itself, or its hash when too long; none if empty.
fn id_key(id: String) -> Option<String> {
    match id.len() {
        0 => None,
        n if n > MAX_KEY_ID => Some(hash_key(id.as_bytes())),
        _ => Some(id),
    }
}

/// Parses `raw`; `None` if it is not a message at all. `verdicts`: SES's
/// receipt verdicts, when SES received it (ticketd has none).
pub fn parse(raw: &[u8], verdicts: &SesVerdicts) -> Option<InboundMail> {
    let message = MessageParser::new().parse(raw)?;
    let message_id = message.message_id().map(clean_id).filter(|id| !id.is_empty());
    let key = message_id.clone().and_then(id_key).unwrap_or_else(|| hash_key(raw));
    let from = message
        .from()
        .and_then(Address::first)
        .and_then(|a| a.address())
        .map(|a| a.trim().to_ascii_lowercase());
    let mut recipients = Vec::new();
    for list in [message.to(), message.cc()].into_iter().flatten() {
        recipients.extend(addresses(list));
    }
    for name in ["Delivered-To", "X-Original-To"] {
        for value in message.header_values(name) {
            if let Some(text) = value.as_text() {
                recipients.push(text.trim().trim_matches(['<', '>']).to_ascii_lowercase());
            }
        }
    }
    let mut references = ids(message.in_reply_to());
    references.extend(ids(message.references()));
    let drop = classify(&message, verdicts);
    let auth_results = message
        .header_values("Authentication-Results")
        .filter_map(|v| v.as_text().map(str::to_owned))
        .collect();
    Some(InboundMail {
        key,
        message_id,
        from,
        recipients,
        references,
        subject: message.subject().unwrap_or_default().to_owned(),
        text: strip_quoted(&body_text(&message)),
        drop,
        auth_results,
    })
}

/// The plain part, else the HTML part as text; CRLF read as LF.
fn body_text(message: &Message<'_>) -> String {
    let text = if let Some(part) = message.text_bodies().find(|p| p.is_text() && !p.is_text_html()) {
        part.text_contents().unwrap_or_default().to_owned()
    } else if let Some(html) = message.body_html(0) {
        html_to_text(&html)
    } else {
        String::new()
    };
    text.replace("\r\n", "\n")
}

fn addresses(list: &Address<'_>) -> Vec<String> {
    let one = |a: &mail_parser::Addr<'_>| a.address().map(|s| s.trim().to_ascii_lowercase());
    match list {
        Address::List(l) => l.iter().filter_map(one).collect(),
        Address::Group(groups) => groups.iter().flat_map(|g| g.addresses.iter()).filter_map(one).collect(),
    }
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![clean_id(t)],
        HeaderValue::TextList(l) => l.iter().map(|t| clean_id(t)).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|id| !id.is_empty())
    .collect()
}

fn clean_id(id: &str) -> String {
    id.trim().trim_matches(['<', '>']).trim().to_owned()
}

#[cfg(test)]
mod tests;
