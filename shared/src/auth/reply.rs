//! The reply address of a response email, `reply+{ticketId}.{token}@{inbound domain}`:
//! the token is a truncated HMAC-SHA256 of the ticket id under the reply key,
//! so an address names its ticket and cannot be forged or altered.
//!
//! The reply key never rotates (unlike the JWT keys): a customer may answer
//! a weeks-old email, and its address must still verify.

use super::secret::hex;
use crate::domain::{ResponseId, TicketId};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Bytes of the HMAC kept in the address: 10 bytes, 20 hex digits, 80 bits.
/// An email local part holds at most 64 characters, and `reply+`, the ticket
/// id and the dot take 43 of them. Guessing costs one delivered email per
/// try, so 2^79 expected tries is far out of reach; hex survives MTAs that
/// fold the local part's case.
pub const TOKEN_BYTES: usize = 10;

/// The shortest reply key accepted, in bytes: HMAC-SHA256's block of security.
pub const MIN_REPLY_KEY: usize = 32;

/// The local part's prefix.
const PREFIX: &str = "reply+";

/// The key the reply tokens are made with. Its `Debug` shows nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplyKey(Vec<u8>);

impl std::fmt::Debug for ReplyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyKey(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the reply key must be at least {MIN_REPLY_KEY} characters")]
pub struct WeakReplyKey;

impl ReplyKey {
    /// A key from its stored text (a file, a secret): at least 32 bytes once trimmed.
    pub fn from_text(text: &str) -> Result<Self, WeakReplyKey> {
        let text = text.trim();
        if text.len() < MIN_REPLY_KEY {
            return Err(WeakReplyKey);
        }
        Ok(Self(text.as_bytes().to_vec()))
    }

    /// A fresh key as text: 64 hex digits (256 bits) from the OS-seeded CSPRNG.
    pub fn generate_text() -> String {
        let bytes: [u8; 32] = rand::random();
        hex(&bytes)
    }

    fn mac(&self, ticket: TicketId) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        // Domain-separated, should the key ever sign anything else.
        mac.update(b"ticketing reply address v1\0");
        mac.update(ticket.to_string().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The token of `ticket`'s reply address.
    pub fn token(&self, ticket: TicketId) -> String {
        hex(&self.mac(ticket)[..TOKEN_BYTES])
    }

    /// Whether `token` is `ticket`'s (case-insensitive, constant time).
    pub fn verify(&self, ticket: TicketId, token: &str) -> bool {
        let expected = self.token(ticket);
        let given = token.to_ascii_lowercase();
        given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
    }

    /// `reply+{ticket}.{token}@{domain}`.
    pub fn address(&self, ticket: TicketId, domain: &str) -> String {
        format!("{PREFIX}{ticket}.{}@{domain}", self.token(ticket))
    }

    /// The Message-ID (without angle brackets) of the email carrying
    /// `response` on `ticket`: `{response}.{ticket}.{token}@{domain}`. A reply
    /// quotes it in `In-Reply-To`/`References`, which finds the ticket when a
    /// client dropped the reply address; the token makes it as unforgeable.
    pub fn message_id(&self, ticket: TicketId, response: ResponseId, domain: &str) -> String {
        format!("{response}.{ticket}.{}@{domain}", self.token(ticket))
    }

    /// The ticket a Message-ID of ours names, if its token verifies.
    pub fn ticket_of_message_id(&self, id: &str) -> Option<TicketId> {
        let (local, _domain) = id.trim().trim_matches(['<', '>']).rsplit_once('@')?;
        let mut parts = local.split('.');
        let (_response, ticket, token) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let ticket: TicketId = ticket.to_ascii_lowercase().parse().ok()?;
        self.verify(ticket, token).then_some(ticket)
    }

    /// The ticket a reply address names, if its token verifies. The domain
    /// is not checked: the receiving MTA or SES rule decided the mail is ours.
    pub fn ticket_of(&self, address: &str) -> Option<TicketId> {
        let (ticket, token) = parse_address(address)?;
        self.verify(ticket, token).then_some(ticket)
    }
}

/// The ticket id and token of a `reply+{ticket}.{token}@...` address, unverified.
pub fn parse_address(address: &str) -> Option<(TicketId, &str)> {
    let (local, _domain) = address.trim().rsplit_once('@')?;
    let rest = strip_prefix_ignore_case(local, PREFIX)?;
    let (ticket, token) = rest.split_once('.')?;
    Some((ticket.to_ascii_lowercase().parse().ok()?, token))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ReplyKey {
        ReplyKey::from_text(&ReplyKey::generate_text()).unwrap()
    }

    #[test]
    fn an_address_names_its_ticket_and_fits_a_local_part() {
        let (k, t) = (key(), TicketId::new());
        let address = k.address(t, "in.acme.example");
        let local = address.split('@').next().unwrap();
        assert!(local.len() <= 64, "{local}");
        assert_eq!(k.ticket_of(&address), Some(t));
        assert_eq!(k.ticket_of(&address.to_uppercase()), Some(t), "case folded by an MTA");
    }

    #[test]
    fn forged_or_altered_addresses_are_refused() {
        let (k, t) = (key(), TicketId::new());
        let address = k.address(t, "in.example");
        let other = TicketId::new();
        // Another ticket's id with this token; a flipped digit; another key's token.
        let swapped = address.replace(&t.to_string(), &other.to_string());
        let token = k.token(t);
        let flipped = format!("{}{}", &token[..19], if token.ends_with('0') { '1' } else { '0' });
        for forged in [
            swapped,
            address.replace(&token, &flipped),
            address.replace(&token, &token[..18]),
            key().address(t, "in.example"),
            format!("reply+{t}@in.example"),
            format!("support+{t}.{token}@in.example"),
            "reply+not-a-uuid.00@in.example".to_owned(),
        ] {
            assert_eq!(k.ticket_of(&forged), None, "{forged}");
        }
    }

    #[test]
    fn our_message_ids_name_their_ticket_unforgeably() {
        let (k, t, r) = (key(), TicketId::new(), ResponseId::new());
        let id = k.message_id(t, r, "in.example");
        assert_eq!(k.ticket_of_message_id(&format!("<{id}>")), Some(t));
        assert_eq!(
            k.ticket_of_message_id(&id.replace(&t.to_string(), &TicketId::new().to_string())),
            None
        );
        assert_eq!(k.ticket_of_message_id(&key().message_id(t, r, "in.example")), None);
        assert_eq!(k.ticket_of_message_id("CAKx9@mail.gmail.com"), None);
    }

    #[test]
    fn the_key_must_be_long_and_is_never_shown() {
        assert_eq!(ReplyKey::from_text("short"), Err(WeakReplyKey));
        let text = ReplyKey::generate_text();
        assert_eq!(text.len(), 64);
        assert_eq!(format!("{:?}", ReplyKey::from_text(&text).unwrap()), "ReplyKey(..)");
        // Stable: the same key text gives the same token (a restart changes nothing).
        let t = TicketId::new();
        assert_eq!(
            ReplyKey::from_text(&text).unwrap().token(t),
            ReplyKey::from_text(&format!("{text}\n")).unwrap().token(t)
        );
    }
}
