//! Admins: signing up with the org secret, and recognising a signed-in admin
//! by a token (signing in is in `signin`).

use super::commands::NewAdmin;
use super::{Service, conflict_as};
use crate::auth::{Claims, password};
use crate::domain::{Admin, AdminId, Org, OrgId};
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::sync::{Arc, RwLock};

impl Service {
    pub async fn signup_admin(&self, org: &Org, input: NewAdmin) -> Result<Admin> {
        let admin = Admin {
            id: AdminId::new(),
            org_id: org.id,
            first_name: input.first_name,
            last_name: input.last_name,
            email: input.email,
            available: input.available,
            created_at: self.now(),
        };
        let hash = password::hash_password(input.password).await?;
        self.ports
            .store
            .create_admin(&admin, &hash)
            .await
            .map_err(|e| conflict_as(e, "an admin of this org already has this email"))?;
        tracing::info!(org = %org.id, admin = %admin.id, "admin signed up");
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
