//! API keys: credentials an org's admins issue to their client products, each
//! limited to some scopes and revocable on its own, beside the org secret
//! (which holds every scope).

use super::ids::{ApiKeyId, OrgId};
use super::model::Org;
use super::time::Timestamp;
use crate::error::Error;
use serde::Serialize;
use std::fmt;

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// File tickets and post the customer's replies.
    TicketsCreate,
    /// The customer-side reads: a ticket in the customer's view, a
    /// customer's tickets.
    TicketsRead,
    /// Sign up admins.
    AdminsCreate,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::TicketsCreate, Scope::TicketsRead, Scope::AdminsCreate];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::TicketsCreate => "tickets:create",
            Scope::TicketsRead => "tickets:read",
            Scope::AdminsCreate => "admins:create",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        Scope::ALL.into_iter().find(|s| s.as_str() == raw).ok_or_else(|| {
            Error::invalid(
                field,
                "each scope must be one of tickets:create, tickets:read, admins:create",
            )
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Scopes as stored: sorted, comma-separated.
pub fn scopes_to_string(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

/// Scopes as stored; an unknown one (written by a later version) is dropped,
/// so it grants nothing here.
pub fn scopes_from_str(stored: &str) -> Vec<Scope> {
    stored
        .split(',')
        .filter_map(|s| Scope::ALL.into_iter().find(|x| x.as_str() == s))
        .collect()
}

/// An API key as its org's admins see it: never the key itself, which is
/// shown once, at creation, and stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: ApiKeyId,
    #[serde(skip)]
    pub org_id: OrgId,
    pub name: String,
    /// The key's first characters (`tk_` and 8 more), to recognise it by.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// What a presented secret turned out to be: the org's own secret (every
/// scope), or one of its API keys (its scopes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub org: Org,
    /// `None` for the org secret.
    pub key: Option<KeyGrant>,
}

/// The API key a request came with, and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGrant {
    pub id: ApiKeyId,
    pub scopes: Vec<Scope>,
}

impl Credential {
    pub fn allows(&self, scope: Scope) -> bool {
        self.key.as_ref().is_none_or(|k| k.scopes.contains(&scope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_unknown_ones_grant_nothing() {
        let all = Scope::ALL.to_vec();
        assert_eq!(scopes_from_str(&scopes_to_string(&all)), all);
        assert_eq!(scopes_from_str("tickets:read,tickets:delete"), vec![Scope::TicketsRead]);
        assert!(Scope::parse("scopes", "tickets:write").is_err());
    }
}
