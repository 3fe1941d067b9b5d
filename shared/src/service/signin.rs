//! Signing in: the password is checked against the accounts of that email
//! (one per org at most), and failures are throttled per client, for one
//! email and across emails, so a guesser locks out only itself.

use super::Service;
use super::commands::Signin;
use crate::auth::password;
use crate::domain::{Admin, ClientId, Email, ThrottleKey, Timestamp, rules};
use crate::error::{Error, Result};

/// Accounts one sign-in checks the password against, at most. Each check is
/// an Argon2 verify (19 MiB, ~50 ms of CPU), so accounts piled up under one
/// email (one per squatting org) must not multiply what signing in as that
/// email costs; a person admin of more orgs under one email names the org.
pub const MAX_ACCOUNTS_PER_SIGNIN: usize = 5;

/// What a sign-in's failures count against.
struct SigninKeys {
    client: ThrottleKey,
    /// None when the email is not an email at all.
    pair: Option<ThrottleKey>,
}

impl SigninKeys {
    fn new(email: Option<&Email>, client: ClientId) -> Self {
        Self {
            client: ThrottleKey::Client(client),
            pair: email.map(|e| ThrottleKey::EmailFromClient(e.clone(), client)),
        }
    }
}

/// The accounts whose hash `password` verifies against; with no accounts (or
/// a password too long to hash) one fallback verify, so that costs the same.
async fn matching_accounts(accounts: Vec<(Admin, String)>, password_input: String) -> Result<Vec<Admin>> {
    let too_long = password_input.chars().count() > password::MAX_PASSWORD;
    if accounts.is_empty() || too_long {
        let candidate = if too_long { String::new() } else { password_input };
        password::verify_password(candidate, None).await?;
        return Ok(vec![]);
    }
    let mut matched = Vec::new();
    for (admin, hash) in accounts {
        if password::verify_password(password_input.clone(), Some(hash)).await? {
            matched.push(admin);
        }
    }
    Ok(matched)
}

impl Service {
    /// A JWT and its expiry, for the one account whose email and password
    /// match (in the org named by `org_domain`, if given). Unknown email and
    /// wrong password are the same 401 and cost at least one password verify.
    pub async fn signin(&self, input: Signin, client: ClientId) -> Result<(String, Timestamp)> {
        const BAD: Error = Error::Unauthorized("invalid email or password");
        let Signin {
            email,
            password,
            org_domain,
        } = input;
        let keys = SigninKeys::new(email.as_ref(), client);
        let pair_window = self.check_signin_throttle(&keys).await?;

        let accounts = match (&email, org_domain) {
            (None, _) => vec![],
            (Some(e), Some(domain)) => match self.ports.store.org_id_by_domain(&domain).await? {
                Some(org) => self.ports.store.admin_credentials(e, Some(org), 1).await?,
                None => vec![],
            },
            (Some(e), None) => {
                let found = self
                    .ports
                    .store
                    .admin_credentials(e, None, MAX_ACCOUNTS_PER_SIGNIN + 1)
                    .await?;
                if found.len() > MAX_ACCOUNTS_PER_SIGNIN {
                    return Err(Error::Conflict(format!(
                        "this email has admin accounts in more than {MAX_ACCOUNTS_PER_SIGNIN} orgs: \
                         add orgDomain (your org's domain) to choose one"
                    )));
                }
                found
            }
        };
        // The keys are read (on a cold process) while the password is checked.
        let (matched, signer) = tokio::join!(matching_accounts(accounts, password), self.config.keys.get());
        let matched = matched?;
        match matched.as_slice() {
            [admin] => {
                if pair_window && let Some(pair) = &keys.pair {
                    self.ports.store.clear_signin_failures(pair).await?;
                }
                let (token, expires_at) = signer?.issue(admin.id, admin.org_id, self.now())?;
                tracing::info!(admin = %admin.id, "admin signed in");
                Ok((token, expires_at))
            }
            [] => {
                self.record_signin_failure(&keys).await?;
                Err(BAD)
            }
            _ => Err(Error::Conflict(
                "this email and password fit admin accounts in several orgs: \
                 add orgDomain (your org's domain) to choose one"
                    .into(),
            )),
        }
    }

    /// 429 if the client, or the client for this email, has used up its
    /// failures; else whether the (email, client) pair has failures counted.
    async fn check_signin_throttle(&self, keys: &SigninKeys) -> Result<bool> {
        let (limit, now, store) = (self.config.signin, self.now(), &self.ports.store);
        let pair = async {
            match &keys.pair {
                Some(k) => store.signin_failures(k, now, limit.window).await,
                None => Ok(None),
            }
        };
        let (client_window, pair_window) =
            tokio::try_join!(store.signin_failures(&keys.client, now, limit.window), pair)?;
        let wait = [
            rules::signin_lockout(client_window, now, limit.window, limit.max_client_failures),
            rules::signin_lockout(pair_window, now, limit.window, limit.max_failures),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            tracing::warn!("sign-in refused: too many failures from this client");
            return Err(Error::TooManyRequests(
                "too many failed sign-ins; try again later".into(),
                wait,
            ));
        }
        Ok(pair_window.is_some())
    }

    async fn record_signin_failure(&self, keys: &SigninKeys) -> Result<()> {
        let (window, now, store) = (self.config.signin.window, self.now(), &self.ports.store);
        let pair = async {
            match &keys.pair {
                Some(k) => store.record_signin_failure(k, now, window).await,
                None => Ok(()),
            }
        };
        tokio::try_join!(store.record_signin_failure(&keys.client, now, window), pair)?;
        Ok(())
    }
}
