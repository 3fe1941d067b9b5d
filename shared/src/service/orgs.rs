//! Orgs: signing up (credentials are in `api_keys.rs`).

use super::commands::{NewOrg, OrgSignup};
use super::{Service, conflict_as};
use crate::auth::{SecretHash, generate_secret};
use crate::domain::{Org, OrgId};
use crate::error::Result;

impl Service {
    pub async fn signup_org(&self, input: NewOrg) -> Result<OrgSignup> {
        let org = Org {
            id: OrgId::new(),
            name: input.name,
            domain: input.domain,
            created_at: self.now(),
        };
        let secret = generate_secret();
        self.ports
            .store
            .create_org(&org, &SecretHash::of(&secret))
            .await
            .map_err(|e| conflict_as(e, "domain is already registered"))?;
        tracing::info!(org = %org.id, domain = ?org.domain.as_str(), "org signed up");
        Ok(OrgSignup { org, secret })
    }
}
