//! Opaque list cursors, signed so a client can neither forge one nor replay it
//! for another org or another filter.

use crate::auth::VerifyKeys;
use crate::domain::{OrgId, PagePosition, TicketFilter, TicketId, Timestamp};
use crate::error::Error;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Serialize, Deserialize)]
struct Payload {
    /// org the cursor was issued to
    o: OrgId,
    /// filter fingerprint
    f: String,
    /// created_at millis and id of the last ticket shown
    c: i64,
    i: TicketId,
}

/// Signs with the current key's cursor key and accepts either key's, so a
/// rotation breaks no paging in flight (the cursor keys travel with the JWT
/// verify keys: every function that lists holds them). Trying both costs one more HMAC
/// of ~100 bytes (well under a microsecond) and keeps cursors as they were.
#[derive(Clone)]
pub struct CursorCodec {
    /// The current key's, then the previous one's; never empty.
    keys: Vec<[u8; 32]>,
}

impl CursorCodec {
    /// With no keys (none published yet, so no token verifies and no list
    /// is served), a random key of this process keeps signing total.
    pub fn new(keys: &VerifyKeys) -> Self {
        let mut keys: Vec<[u8; 32]> = keys.keys().map(|k| *k.cursor_key()).collect();
        if keys.is_empty() {
            keys.push(rand::random());
        }
        Self { keys }
    }

    fn sign(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.keys[0]).expect("HMAC takes any key length");
        mac.update(data);
        mac.finalize().into_bytes()[..16].to_vec()
    }

    pub fn encode(&self, org: OrgId, filter: &TicketFilter, pos: PagePosition) -> String {
        self.encode_scoped(org, &fingerprint(filter), pos)
    }

    fn encode_scoped(&self, org: OrgId, f: &str, pos: PagePosition) -> String {
        let payload = Payload {
            o: org,
            f: f.to_owned(),
            c: pos.created_at.millis(),
            i: pos.id,
        };
        let json = serde_json::to_vec(&payload).expect("cursor payload serializes");
        format!("{}.{}", B64.encode(&json), B64.encode(self.sign(&json)))
    }

    pub fn decode(&self, org: OrgId, filter: &TicketFilter, cursor: &str) -> Result<PagePosition, Error> {
        self.decode_scoped(org, &fingerprint(filter), cursor)
    }

    fn decode_scoped(&self, org: OrgId, f: &str, cursor: &str) -> Result<PagePosition, Error> {
        let bad = || Error::invalid("cursor", "is not a cursor this list issued; start again without one");
        let (data, sig) = cursor.split_once('.').ok_or_else(bad)?;
        let json = B64.decode(data).map_err(|_| bad())?;
        let sig = B64.decode(sig).map_err(|_| bad())?;
        if sig.len() != 16 {
            return Err(bad());
        }
        let signed_by = |key: &[u8; 32]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(&json);
            mac.verify_truncated_left(&sig).is_ok()
        };
        if !self.keys.iter().any(signed_by) {
            return Err(bad());
        }
        let p: Payload = serde_json::from_slice(&json).map_err(|_| bad())?;
        if p.o != org || p.f != f {
            return Err(bad());
        }
        Ok(PagePosition {
            created_at: Timestamp::from_millis(p.c),
            id: p.i,
        })
    }
}

impl CursorCodec {
    /// A cursor for a list paged by one id (a ticket's events, an org's
    /// admins), bound to the org and to `scope` (which list) as list cursors
    /// are bound to their filter.
    pub fn encode_id(&self, org: OrgId, scope: &str, id: uuid::Uuid) -> String {
        let pos = PagePosition {
            created_at: Timestamp::from_millis(0),
            id: TicketId(id),
        };
        self.encode_scoped(org, &scoped(scope), pos)
    }

    pub fn decode_id(&self, org: OrgId, scope: &str, cursor: &str) -> Result<uuid::Uuid, Error> {
        self.decode_scoped(org, &scoped(scope), cursor).map(|p| p.id.0)
    }
}

/// The fingerprint of a keyed list: never equal to a ticket filter's, so
/// one list's cursor is refused by every other.
fn scoped(scope: &str) -> String {
    crate::auth::secret::hex(&Sha256::digest(format!("scope:{scope}").as_bytes())[..8])
}

fn fingerprint(f: &TicketFilter) -> String {
    let text = format!(
        "{}|{}|{}",
        f.admin_id.map(|a| a.to_string()).unwrap_or_default(),
        f.status.map(|s| s.as_str()).unwrap_or_default(),
        f.customer.as_ref().map(|c| c.as_str()).unwrap_or_default()
    );
    crate::auth::secret::hex(&Sha256::digest(text.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{KeyRing, SigningKey};
    use crate::domain::Status;

    fn ring(secret: &str) -> KeyRing {
        KeyRing::single(SigningKey::new("1", secret.repeat(32)).unwrap())
    }

    fn keys(secret: &str) -> VerifyKeys {
        ring(secret).verify_keys()
    }

    fn pos() -> PagePosition {
        PagePosition {
            created_at: Timestamp::from_millis(42),
            id: TicketId::new(),
        }
    }

    #[test]
    fn round_trips_for_the_same_org_and_filter() {
        let codec = CursorCodec::new(&keys("k"));
        let (org, p) = (OrgId::new(), pos());
        let c = codec.encode(org, &TicketFilter::default(), p);
        assert_eq!(codec.decode(org, &TicketFilter::default(), &c).unwrap(), p);
    }

    #[test]
    fn another_orgs_cursor_is_rejected() {
        let codec = CursorCodec::new(&keys("k"));
        let c = codec.encode(OrgId::new(), &TicketFilter::default(), pos());
        assert!(codec.decode(OrgId::new(), &TicketFilter::default(), &c).is_err());
    }

    #[test]
    fn cursor_for_another_filter_is_rejected() {
        let codec = CursorCodec::new(&keys("k"));
        let org = OrgId::new();
        let c = codec.encode(org, &TicketFilter::default(), pos());
        let open = TicketFilter {
            status: Some(Status::Open),
            ..Default::default()
        };
        assert!(codec.decode(org, &open, &c).is_err());
    }

    #[test]
    fn forged_or_garbled_cursors_are_rejected() {
        let codec = CursorCodec::new(&keys("k"));
        let org = OrgId::new();
        let c = codec.encode(org, &TicketFilter::default(), pos());
        let (data, _) = c.split_once('.').unwrap();
        let forged_payload = B64.encode(format!(r#"{{"o":"{org}","f":"x","c":1,"i":"{}"}}"#, TicketId::new()));
        for bad in [
            String::new(),
            "x".into(),
            format!("{data}."),
            format!("{data}.AAAA"),
            format!("{forged_payload}.{}", c.split_once('.').unwrap().1),
            CursorCodec::new(&keys("other")).encode(org, &TicketFilter::default(), pos()),
        ] {
            assert!(codec.decode(org, &TicketFilter::default(), &bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn id_cursors_are_bound_to_their_org_and_list() {
        let codec = CursorCodec::new(&keys("k"));
        let (org, id) = (OrgId::new(), uuid::Uuid::now_v7());
        let c = codec.encode_id(org, "events:1", id);
        assert_eq!(codec.decode_id(org, "events:1", &c).unwrap(), id);
        assert!(
            codec.decode_id(org, "events:2", &c).is_err(),
            "another ticket's history"
        );
        assert!(codec.decode_id(OrgId::new(), "events:1", &c).is_err());
        assert!(
            codec.decode(org, &TicketFilter::default(), &c).is_err(),
            "not a ticket list cursor"
        );
        let list = codec.encode(org, &TicketFilter::default(), pos());
        assert!(codec.decode_id(org, "events:1", &list).is_err());
    }

    #[test]
    fn a_cursor_survives_one_rotation_and_not_two() {
        let (org, p, all) = (OrgId::new(), pos(), TicketFilter::default());
        let first = ring("k");
        let codec = |ring: &KeyRing| CursorCodec::new(&ring.verify_keys());
        let c = codec(&first).encode(org, &all, p);
        let second = first.rotated();
        assert_eq!(codec(&second).decode(org, &all, &c).unwrap(), p);
        assert!(codec(&second.rotated()).decode(org, &all, &c).is_err());
        let fresh = codec(&second).encode(org, &all, p);
        assert_ne!(fresh, c, "signed with the new current key");
        assert!(codec(&first).decode(org, &all, &fresh).is_err());
    }
}
