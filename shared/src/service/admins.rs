//! Admins: signing up with the org secret, signing in for a JWT, and
//! recognising a signed-in admin by that token.

use super::commands::NewAdmin;
use super::{Service, conflict_as};
use crate::auth::{Claims, password};
use crate::domain::{Admin, AdminId, Email, Org, Timestamp, rules};
use crate::error::{Error, Result};

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
            .map_err(|e| conflict_as(e, "email is already registered"))?;
        tracing::info!(org = %org.id, admin = %admin.id, "admin signed up");
        Ok(admin)
    }

    /// A JWT and its expiry. Unknown email (or one that is not an email at
    /// all: `None`) and wrong password are the same 401 and cost the same time.
    pub async fn signin(&self, email: Option<Email>, password_input: String) -> Result<(String, Timestamp)> {
        const BAD: Error = Error::Unauthorized("invalid email or password");
        let limit = self.config.signin;
        let mut locked_window = None;
        if let Some(e) = &email {
            let window = self.ports.store.signin_failures(e, self.now(), limit.window).await?;
            if let Some(wait) = rules::signin_lockout(window, self.now(), limit.window, limit.max_failures) {
                tracing::warn!("sign-in refused: too many failures for this email");
                return Err(Error::TooManyRequests(
                    "too many failed sign-ins; try again later".into(),
                    wait,
                ));
            }
            locked_window = window;
        }
        let found = match &email {
            Some(e) => self.ports.store.admin_credentials(e).await?,
            None => None,
        };
        let too_long = password_input.chars().count() > password::MAX_PASSWORD;
        let (admin, hash) = match found {
            Some((admin, hash)) if !too_long => (Some(admin), Some(hash)),
            _ => (None, None),
        };
        // A too-long password is not hashed at all, but still costs a fallback verify.
        let candidate = if too_long { String::new() } else { password_input };
        let ok = password::verify_password(candidate, hash).await?;
        match (admin, &email) {
            (Some(admin), Some(e)) if ok => {
                if locked_window.is_some() {
                    self.ports.store.clear_signin_failures(e).await?;
                }
                let (token, expires_at) = self.config.jwt.issue(admin.id, admin.org_id, self.now());
                tracing::info!(admin = %admin.id, "admin signed in");
                Ok((token, expires_at))
            }
            (_, Some(e)) => {
                self.ports
                    .store
                    .record_signin_failure(e, self.now(), limit.window)
                    .await?;
                Err(BAD)
            }
            _ => Err(BAD),
        }
    }

    /// The claims of a valid token, or `None`.
    pub fn verify_token(&self, token: &str) -> Option<Claims> {
        self.config.jwt.verify(token)
    }
}
