//! Orgs: signing up, and recognising an org by its secret.

use super::commands::{NewOrg, OrgSignup};
use super::{Service, conflict_as};
use crate::auth::{SecretHash, generate_secret};
use crate::domain::{Org, OrgId};
use crate::error::{Error, Result};

/// Longer than any secret we issue (48 characters); anything longer is not hashed at all.
const MAX_SECRET_LEN: usize = 256;

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

    /// The org holding `secret`, or 401.
    pub async fn authenticate_org(&self, secret: Option<&str>) -> Result<Org> {
        let secret = secret.filter(|s| !s.is_empty()).ok_or(Error::Unauthorized(
            "an org secret is required (body field `secret` or header X-Api-Key)",
        ))?;
        if secret.len() > MAX_SECRET_LEN {
            return Err(Error::Unauthorized("invalid org secret"));
        }
        self.ports
            .store
            .org_by_secret(&SecretHash::of(secret))
            .await?
            .ok_or(Error::Unauthorized("invalid org secret"))
    }
}
