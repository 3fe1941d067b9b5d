//! Signing in: the password is checked against the accounts of that email
//! (one per org at most), and attempts are throttled per client, for one
//! email and across emails, so a guesser locks out only itself.
//!
//! An attempt takes its throttle slots before any password is checked (one
//! conditional write per key), so a burst of concurrent guesses gets no more
//! password checks than the limit; a sign-in that does not fail gives its
//! slots back. What the answer says never depends on how many accounts the
//! email has: a wrong password is a 401 whatever their number, and only a
//! password that fits accounts in several orgs is asked for `orgDomain`.

use super::Service;
use super::commands::Signin;
use crate::domain::{Admin, ClientId, Domain, Email, SigninSlot, SigninWindow, ThrottleKey, Timestamp, rules};
use crate::error::{Error, Result};

/// Accounts one sign-in checks the password against, at most. Each check is
/// an Argon2 verify (19 MiB, ~50 ms of CPU), so accounts piled up under one
/// email (one per squatting org) must not multiply what signing in as that
/// email costs. Which ones: see [`Service::signin_candidates`].
pub const MAX_ACCOUNTS_PER_SIGNIN: usize = 5;

const BAD: Error = Error::Unauthorized(
    "invalid email or password (an admin of several orgs under one email may add orgDomain to choose one)",
);

/// What a sign-in's attempts count against.
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

/// The slots an attempt took: the windows they were counted in.
struct Slots {
    client: Option<SigninWindow>,
    pair: Option<SigninWindow>,
}

/// The accounts whose hash `password` verifies against.
enum Matched {
    None,
    One(Admin),
    Several,
}

impl Service {
    /// A JWT and its expiry, for the one account whose email and password
    /// match (in the org named by `org_domain`, if given). Unknown email and
    /// wrong password are the same 401 and cost at least one password verify.
    pub async fn signin(&self, input: Signin, client: ClientId) -> Result<(String, Timestamp)> {
        let Signin {
            email,
            password,
            org_domain,
        } = input;
        let keys = SigninKeys::new(email.as_ref(), client);
        // The accounts are read while the slots are taken (nothing is
        // verified before both are in), and the JWT keys (on a cold
        // process) while the password is checked.
        let (slots, accounts) = tokio::join!(
            self.take_signin_slots(&keys),
            self.signin_accounts(email.as_ref(), org_domain)
        );
        let slots = slots?;
        let accounts = match accounts {
            Ok(accounts) => accounts,
            Err(e) => {
                self.give_back(&keys, &slots).await;
                return Err(e);
            }
        };
        let (matched, signer) = tokio::join!(self.match_password(accounts, password), self.config.keys.get());
        match matched {
            Ok(Matched::One(admin)) => {
                self.settle_success(&keys, &slots).await?;
                let (token, expires_at) = signer?.issue(admin.id, admin.org_id, self.now())?;
                tracing::info!(admin = %admin.id, "admin signed in");
                Ok((token, expires_at))
            }
            // The slots stay taken: they are the failure's count.
            Ok(Matched::None) => Err(BAD),
            Ok(Matched::Several) => {
                self.give_back(&keys, &slots).await;
                Err(Error::Conflict(
                    "this email and password fit admin accounts in several orgs: \
                     add orgDomain (your org's domain) to choose one"
                        .into(),
                ))
            }
            // Not a verdict on the password (busy, storage down): not a failure.
            Err(e) => {
                self.give_back(&keys, &slots).await;
                Err(e)
            }
        }
    }

    /// The accounts a sign-in checks, at most [`MAX_ACCOUNTS_PER_SIGNIN`]:
    /// with `orgDomain`, that org's only. Without it, first the account in
    /// the org registered under the email's own domain (org domains are
    /// unique, so no squatter holds that one), then the accounts of the
    /// oldest orgs. Squatters' accounts, however many, can only come after
    /// the owner's org's when they were made before it existed; an owner
    /// outnumbered that way names the org (the 401 says how).
    async fn signin_candidates(&self, email: &Email, org_domain: Option<Domain>) -> Result<Vec<(Admin, String)>> {
        let store = &self.ports.store;
        if let Some(domain) = org_domain {
            return Ok(match store.org_id_by_domain(&domain).await? {
                Some(org) => store.admin_credentials(email, Some(org), 1).await?,
                None => vec![],
            });
        }
        let home = async {
            let Some(domain) = email
                .as_str()
                .rsplit_once('@')
                .and_then(|(_, d)| Domain::parse("email", d).ok())
            else {
                return Ok(vec![]);
            };
            match store.org_id_by_domain(&domain).await? {
                Some(org) => store.admin_credentials(email, Some(org), 1).await,
                None => Ok(vec![]),
            }
        };
        let (mut found, oldest) =
            tokio::try_join!(home, store.admin_credentials(email, None, MAX_ACCOUNTS_PER_SIGNIN))?;
        for account in oldest {
            if found.len() < MAX_ACCOUNTS_PER_SIGNIN && found.iter().all(|(a, _)| a.id != account.0.id) {
                found.push(account);
            }
        }
        Ok(found)
    }

    async fn signin_accounts(&self, email: Option<&Email>, org_domain: Option<Domain>) -> Result<Vec<(Admin, String)>> {
        match email {
            Some(e) => self.signin_candidates(e, org_domain).await,
            None => Ok(vec![]),
        }
    }

    /// Which of `accounts` `password` fits. With none to check (or a
    /// password too long to hash) one fallback verify, so that costs the same.
    async fn match_password(&self, accounts: Vec<(Admin, String)>, password: String) -> Result<Matched> {
        let hasher = &self.config.passwords;
        let too_long = password.chars().count() > crate::auth::password::MAX_PASSWORD;
        if accounts.is_empty() || too_long {
            let candidate = if too_long { String::new() } else { password };
            hasher.verify_password(candidate, None).await?;
            return Ok(Matched::None);
        }
        let mut matched = None;
        for (admin, hash) in accounts {
            if hasher.verify_password(password.clone(), Some(hash)).await? {
                if matched.is_some() {
                    return Ok(Matched::Several);
                }
                matched = Some(admin);
            }
        }
        Ok(matched.map_or(Matched::None, Matched::One))
    }

    /// Takes a slot on the client's window and the (email, client) pair's,
    /// or 429 (with how long until the fuller window ends) if either is full.
    async fn take_signin_slots(&self, keys: &SigninKeys) -> Result<Slots> {
        let (limit, now, store) = (self.config.signin, self.now(), &self.ports.store);
        let pair = async {
            match &keys.pair {
                Some(k) => store
                    .reserve_signin_attempt(k, now, limit.window, limit.max_failures)
                    .await
                    .map(Some),
                None => Ok(None),
            }
        };
        let (client, pair) = tokio::join!(
            store.reserve_signin_attempt(&keys.client, now, limit.window, limit.max_client_failures),
            pair
        );
        let taken = |slot: &SigninSlot| match slot {
            SigninSlot::Taken(w) => Some(*w),
            SigninSlot::Refused(_) => None,
        };
        let slots = Slots {
            client: client.as_ref().ok().and_then(taken),
            pair: pair.as_ref().ok().and_then(Option::as_ref).and_then(taken),
        };
        let refused = |slot: &SigninSlot, max: u32| match slot {
            SigninSlot::Refused(w) => Some(rules::signin_lockout(Some(*w), now, limit.window, max).unwrap_or_default()),
            SigninSlot::Taken(_) => None,
        };
        let verdict = client.map_err(Error::from).and_then(|client| {
            let pair = pair?;
            let wait = [
                refused(&client, limit.max_client_failures),
                pair.as_ref().and_then(|p| refused(p, limit.max_failures)),
            ]
            .into_iter()
            .flatten()
            .max();
            match wait {
                Some(wait) => {
                    tracing::warn!("sign-in refused: too many failures from this client");
                    Err(Error::TooManyRequests(
                        "too many failed sign-ins; try again later".into(),
                        wait,
                    ))
                }
                None => Ok(()),
            }
        });
        if let Err(e) = verdict {
            // Whichever slot was taken is given back: this attempt checks nothing.
            self.give_back(keys, &slots).await;
            return Err(e);
        }
        Ok(slots)
    }

    /// A sign-in succeeded: the pair's failures are forgotten (as an owner
    /// who remembers the password expects) and the client's slot given back.
    async fn settle_success(&self, keys: &SigninKeys, slots: &Slots) -> Result<()> {
        let store = &self.ports.store;
        let pair = async {
            match &keys.pair {
                Some(k) => store.clear_signin_failures(k).await,
                None => Ok(()),
            }
        };
        let client = async {
            match slots.client {
                Some(w) => store.release_signin_attempt(&keys.client, w.started_at).await,
                None => Ok(()),
            }
        };
        tokio::try_join!(client, pair)?;
        Ok(())
    }

    /// Gives back the slots of an attempt that did not fail. Best effort: a
    /// slot not given back only counts one failure too many until its
    /// window ends.
    async fn give_back(&self, keys: &SigninKeys, slots: &Slots) {
        let store = &self.ports.store;
        let pair = async {
            match (&keys.pair, slots.pair) {
                (Some(k), Some(w)) => store.release_signin_attempt(k, w.started_at).await,
                _ => Ok(()),
            }
        };
        let client = async {
            match slots.client {
                Some(w) => store.release_signin_attempt(&keys.client, w.started_at).await,
                None => Ok(()),
            }
        };
        if let Err(e) = tokio::try_join!(client, pair) {
            tracing::warn!(error = ?e, "could not give back a sign-in throttle slot");
        }
    }
}
