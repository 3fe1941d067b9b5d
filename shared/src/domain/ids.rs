//! Typed ids: a ticket id can't be passed where an admin id is expected.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($name:ident) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Time-ordered (v7) so ids sort roughly by creation.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The same id for the same `key` every time: a v7 id stamped
            /// `at`, its random bits taken from a hash of `key`. An inbound
            /// email applied twice (a redelivery) makes the same message.
            pub fn derived(at: crate::domain::Timestamp, key: &str) -> Self {
                use sha2::Digest;
                let hash = sha2::Sha256::digest(key.as_bytes());
                let mut bits = [0u8; 10];
                bits.copy_from_slice(&hash[..10]);
                let millis = u64::try_from(at.millis()).unwrap_or(0);
                Self(uuid::Builder::from_unix_timestamp_millis(millis, &bits).into_uuid())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = NotCanonical;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_canonical(s).map(Self)
            }
        }

        /// From a string in the canonical form only, like [`FromStr`].
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A string that is not a UUID in its canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotCanonical;

impl fmt::Display for NotCanonical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("must be a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
    }
}

impl std::error::Error for NotCanonical {}

/// The one spelling the contract names, 8-4-4-4-12 hex digits with hyphens (the
/// `uuid` crate also reads braced, 32-digit and `urn:uuid:` forms): one id, one
/// string, so ids compare, log and key storage the same way everywhere. Of the
/// forms `uuid` reads, only the hyphenated one is 36 characters long.
fn parse_canonical(s: &str) -> Result<Uuid, NotCanonical> {
    if s.len() != 36 {
        return Err(NotCanonical);
    }
    Uuid::try_parse(s).map_err(|_| NotCanonical)
}

id_type!(OrgId);
id_type!(AdminId);
id_type!(TicketId);
id_type!(ResponseId);
id_type!(ApiKeyId);
id_type!(EventId);
id_type!(WebhookId);

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0190f5c3-8a4e-7c12-9b3d-5e6f7a8b9c0d";

    #[test]
    fn only_the_hyphenated_form_parses() {
        assert_eq!(ID.parse::<TicketId>().unwrap().to_string(), ID);
        let upper = ID.to_ascii_uppercase();
        assert_eq!(
            upper.parse::<TicketId>().unwrap().to_string(),
            ID,
            "hex digits in either case"
        );
        for other in [
            format!("{{{ID}}}"),
            ID.replace('-', ""),
            format!("urn:uuid:{ID}"),
            format!(" {ID}"),
            format!("{ID} "),
            "0190f5c3-8a4e-7c12-9b3d-5e6f7a8b9c0".to_owned(),
            "0190f5c38-a4e-7c12-9b3d-5e6f7a8b9c0d".to_owned(),
            "g190f5c3-8a4e-7c12-9b3d-5e6f7a8b9c0d".to_owned(),
            String::new(),
        ] {
            assert_eq!(other.parse::<TicketId>(), Err(NotCanonical), "{other:?}");
        }
    }

    #[test]
    fn json_ids_are_read_in_the_hyphenated_form_only() {
        let ok: AdminId = serde_json::from_value(serde_json::json!(ID)).unwrap();
        assert_eq!(serde_json::to_value(ok).unwrap(), serde_json::json!(ID));
        for other in [format!("{{{ID}}}"), ID.replace('-', ""), format!("urn:uuid:{ID}")] {
            assert!(
                serde_json::from_value::<OrgId>(serde_json::json!(other)).is_err(),
                "{other}"
            );
        }
        assert!(serde_json::from_value::<OrgId>(serde_json::json!(5)).is_err());
    }
}
