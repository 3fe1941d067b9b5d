//! Admins: signing up with the org secret, and recognising a signed-in admin
//! by a token (signing in is in `signin`).

use super::commands::NewAdmin;
use super::{Service, conflict_as};
use crate::auth::Claims;
use crate::domain::{Admin, AdminId, AdminRole, Credential, OrgId};
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::sync::{Arc, RwLock};

impl Service {
    /// A new admin of the credential's org: full when signed up with the org
    /// secret, limited with an API key (see [`AdminRole`]).
    pub async fn signup_admin(&self, by: &Credential, input: NewAdmin) -> Result<Admin> {
        let org = &by.org;
        let admin = Admin {
            id: AdminId::new(),
            org_id: org.id,
            first_name: input.first_name,
            last_name: input.last_name,
            email: input.email,
            available: input.available,
            created_at: self.now(),
            role: if by.key.is_some() {
                AdminRole::Limited
            } else {
                AdminRole::Full
            },
        };
        let hash = self.config.passwords.hash_password(input.password).await?;
        self.ports
            .store
            .create_admin(&admin, &hash)
            .await
            .map_err(|e| conflict_as(e, "an admin of this org already has this email"))?;
        tracing::info!(org = %org.id, admin = %admin.id, role = admin.role.as_str(), "admin signed up");
        Ok(admin)
    }

    /// [`Self::authenticate_admin`] for what only a full admin may do (the
    /// org's credentials, webhooks, roles): 403 for a limited admin. The role
    /// is read from storage each time, so a grant applies at once.
    pub async fn authenticate_full_admin(&self, token: &str) -> Result<Claims> {
        let claims = self.config.keys.verify(token).await?;
        // One read: it both proves the admin exists and gives the role.
        match self.ports.store.admin(claims.org, claims.sub).await? {
            Some(admin) if admin.role == AdminRole::Full => {
                self.known_admins.insert(claims.org, claims.sub);
                Ok(claims)
            }
            Some(_) => Err(Error::Forbidden(
                "a limited admin cannot manage API keys, the org secret, webhooks or roles; \
                 a full admin can grant the full role (POST /admins/{id}/role)"
                    .into(),
            )),
            None => {
                tracing::warn!("token refused: its subject is not an admin of its org");
                Err(Error::Unauthorized("invalid or expired token"))
            }
        }
    }

    /// Sets the role of an admin of the caller's org (the caller a full
    /// admin); another org's admin is 404.
    pub async fn set_admin_role(&self, claims: &Claims, id: AdminId, role: AdminRole) -> Result<Admin> {
        let admin = self
            .ports
            .store
            .set_admin_role(claims.org, id, role)
            .await?
            .ok_or(Error::NotFound("admin"))?;
        tracing::info!(org = %claims.org, admin = %id, role = role.as_str(), by = %claims.sub, "admin role set");
        Ok(admin)
    }

    /// The claims of a valid token whose `sub` is an admin of its `org`, else 401.
    pub async fn authenticate_admin(&self, token: &str) -> Result<Claims> {
        const BAD: Error = Error::Unauthorized("invalid or expired token");
        let claims = self.config.keys.verify(token).await?;
        if self.known_admins.contains(claims.org, claims.sub) {
            return Ok(claims);
        }
        if self.ports.store.admin(claims.org, claims.sub).await?.is_none() {
            tracing::warn!("token refused: its subject is not an admin of its org");
            return Err(BAD);
        }
        self.known_admins.insert(claims.org, claims.sub);
        Ok(claims)
    }
}

/// Admins known to belong to their org, so each process checks a token's
/// admin against storage once, not on every request (which would add a
/// GetItem or an SQLite read to every authenticated call). Only "yes" is
/// kept, which stays true because admins are never deleted or moved between
/// orgs today; whoever adds either must evict here too. Only tokens signed
/// with our key get this far, so it holds at most every real admin.
#[derive(Clone, Default)]
pub(super) struct KnownAdmins(Arc<RwLock<HashSet<(OrgId, AdminId)>>>);

impl KnownAdmins {
    fn contains(&self, org: OrgId, admin: AdminId) -> bool {
        self.0.read().unwrap_or_else(|p| p.into_inner()).contains(&(org, admin))
    }

    fn insert(&self, org: OrgId, admin: AdminId) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).insert((org, admin));
    }
}
