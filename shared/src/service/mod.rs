//! The use cases, written once over the ports.

mod cursor;

pub use cursor::CursorCodec;

use crate::auth::{Claims, JwtKeys, SecretHash, generate_secret, password};
use crate::domain::rules::{self, AutoClose};
use crate::domain::{
    Admin, AdminId, ClientId, CloseJob, Delivery, Domain, Email, MAX_DESCRIPTION, MAX_MESSAGE, MAX_NAME, MAX_TITLE,
    Mail, Org, OrgId, PageRequest, Response, ResponseId, Status, ThrottleKey, Ticket, TicketFilter, TicketId,
    Timestamp, text,
};
use crate::error::{Error, Result};
use crate::ports::{Clock, Mailer, Scheduler, Store};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 100;

#[derive(Clone)]
pub struct Config {
    pub auto_close_after: Duration,
    pub mail_from: String,
    pub jwt: JwtKeys,
    pub cursors: CursorCodec,
    pub signin: SigninLimit,
}

/// How many failed sign-ins a client may have per window, for one email and
/// across all emails, before it is refused (429) for the rest of that window.
/// Counting per client means a guesser locks only itself out, never the
/// admin it guesses at; the per-client budget stops password spraying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigninLimit {
    /// Per (email, client).
    pub max_failures: u32,
    /// Per client, whatever the emails. 20: a few mistyped emails and
    /// passwords are far below it; a spray of one guess per account is not.
    pub max_client_failures: u32,
    pub window: Duration,
}

impl Default for SigninLimit {
    fn default() -> Self {
        Self {
            max_failures: 5,
            max_client_failures: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

impl Config {
    /// Token and cursor keys both derive from the one configured secret.
    pub fn new(jwt_secret: &[u8], auto_close_after: Duration, mail_from: String) -> Self {
        Self {
            auto_close_after,
            mail_from,
            jwt: JwtKeys::new(jwt_secret, crate::auth::DEFAULT_TOKEN_LIFETIME),
            cursors: CursorCodec::new(jwt_secret),
            signin: SigninLimit::default(),
        }
    }

    pub fn with_signin_limit(mut self, signin: SigninLimit) -> Self {
        self.signin = signin;
        self
    }
}

/// The ports the service runs on.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub scheduler: Arc<dyn Scheduler>,
    pub clock: Arc<dyn Clock>,
}

#[derive(Clone)]
pub struct Service {
    ports: Ports,
    config: Config,
    known_admins: KnownAdmins,
}

/// Admins known to belong to their org, so each process checks a token's
/// admin against storage once, not on every request (which would add a
/// GetItem or an SQLite read to every authenticated call). Only "yes"
/// is kept, which stays true because admins are never deleted or moved
/// between orgs today; whoever adds either must evict here too. Only tokens
/// signed with our key get this far, so it holds at most every real admin.
#[derive(Clone, Default)]
struct KnownAdmins(Arc<std::sync::RwLock<std::collections::HashSet<(OrgId, AdminId)>>>);

impl KnownAdmins {
    fn contains(&self, org: OrgId, admin: AdminId) -> bool {
        self.0.read().unwrap_or_else(|p| p.into_inner()).contains(&(org, admin))
    }

    fn insert(&self, org: OrgId, admin: AdminId) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).insert((org, admin));
    }
}

/// A new org and its secret, which is never shown again.
pub struct OrgSignup {
    pub org: Org,
    pub secret: String,
}

pub struct NewAdmin {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub password: String,
    pub available: Option<bool>,
}

/// A sign-in: the seed's email and password, and the org's domain when the
/// email has accounts in several orgs.
pub struct Signin {
    pub email: String,
    pub password: String,
    pub org_domain: Option<String>,
}

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

pub struct NewTicket {
    pub title: String,
    pub description: String,
    pub added_by: String,
}

#[derive(Default)]
pub struct TicketPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    /// `Some(None)` unassigns.
    pub admin_id: Option<Option<AdminId>>,
    pub status: Option<String>,
    pub org_id: Option<OrgId>,
}

#[derive(Default)]
pub struct ListQuery {
    pub admin_email: Option<String>,
    pub status: Option<String>,
    pub customer_email: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

pub struct ListResult {
    pub tickets: Vec<Ticket>,
    pub next_cursor: Option<String>,
}

/// What a close job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOutcome {
    Closed,
    /// The ticket moved on (reopened, responded again, closed by hand, gone).
    Skipped(&'static str),
}

impl Service {
    pub fn new(ports: Ports, config: Config) -> Self {
        Self {
            ports,
            config,
            known_admins: KnownAdmins::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn now(&self) -> crate::domain::Timestamp {
        self.ports.clock.now()
    }

    pub async fn signup_org(&self, name: &str, domain: &str) -> Result<OrgSignup> {
        let org = Org {
            id: OrgId::new(),
            name: text("name", name, MAX_NAME)?,
            domain: Domain::parse("domain", domain)?,
            created_at: self.now(),
        };
        let secret = generate_secret();
        self.ports
            .store
            .create_org(&org, &SecretHash::of(&secret))
            .await
            .map_err(|e| conflict_as(e, "domain is already registered"))?;
        tracing::info!(org = %org.id, domain = org.domain.as_str(), "org signed up");
        Ok(OrgSignup { org, secret })
    }

    /// The org holding `secret`, or 401.
    pub async fn authenticate_org(&self, secret: Option<&str>) -> Result<Org> {
        let secret = secret.filter(|s| !s.is_empty()).ok_or(Error::Unauthorized(
            "an org secret is required (body field `secret` or header X-Api-Key)",
        ))?;
        if secret.len() > 256 {
            return Err(Error::Unauthorized("invalid org secret"));
        }
        self.ports
            .store
            .org_by_secret(&SecretHash::of(secret))
            .await?
            .ok_or(Error::Unauthorized("invalid org secret"))
    }

    pub async fn signup_admin(&self, org: &Org, input: NewAdmin) -> Result<Admin> {
        let admin = Admin {
            id: AdminId::new(),
            org_id: org.id,
            first_name: text("firstName", &input.first_name, MAX_NAME)?,
            last_name: text("lastName", &input.last_name, MAX_NAME)?,
            email: Email::parse("email", &input.email)?,
            available: input.available.unwrap_or(true),
            created_at: self.now(),
        };
        password::check_password_rules("password", &input.password)?;
        let hash = password::hash_password(input.password).await?;
        self.ports
            .store
            .create_admin(&admin, &hash)
            .await
            .map_err(|e| conflict_as(e, "an admin of this org already has this email"))?;
        tracing::info!(org = %org.id, admin = %admin.id, "admin signed up");
        Ok(admin)
    }

    /// A JWT and its expiry, for the one account whose email and password
    /// match (in the org named by `org_domain`, if given). Unknown email and
    /// wrong password are the same 401 and cost at least one password verify.
    pub async fn signin(&self, input: Signin, client: ClientId) -> Result<(String, Timestamp)> {
        const BAD: Error = Error::Unauthorized("invalid email or password");
        let org_domain = input
            .org_domain
            .as_deref()
            .map(|d| Domain::parse("orgDomain", d))
            .transpose()?;
        let email = Email::parse("email", &input.email).ok();
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
        let matched = matching_accounts(accounts, input.password).await?;
        match matched.as_slice() {
            [admin] => {
                if pair_window && let Some(pair) = &keys.pair {
                    self.ports.store.clear_signin_failures(pair).await?;
                }
                let (token, expires_at) = self.config.jwt.issue(admin.id, admin.org_id, self.now());
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

    /// The claims of a valid token whose `sub` is an admin of its `org`, else 401.
    pub async fn authenticate_admin(&self, token: &str) -> Result<Claims> {
        const BAD: Error = Error::Unauthorized("invalid or expired token");
        let claims = self.config.jwt.verify(token).ok_or(BAD)?;
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

    pub async fn create_ticket(&self, org: &Org, input: NewTicket) -> Result<Ticket> {
        let now = self.now();
        let draft = Ticket {
            id: TicketId::new(),
            org_id: org.id,
            title: text("title", &input.title, MAX_TITLE)?,
            description: text("description", &input.description, MAX_DESCRIPTION)?,
            added_by: Email::parse("addedBy", &input.added_by)?,
            admin_id: None,
            status: Status::Open,
            created_at: now,
            updated_at: now,
            responded_at: None,
            closed_at: None,
            auto_close_at: None,
            version: 1,
        };
        let ticket = self.ports.store.create_ticket(&draft).await?;
        tracing::info!(org = %org.id, ticket = %ticket.id, admin = %ticket.admin_id.map_or_else(|| "none".to_owned(), |a| a.to_string()), "ticket created");
        Ok(ticket)
    }

    /// The caller's org's ticket; another org's ticket is indistinguishable from none.
    async fn own_ticket(&self, claims: &Claims, id: TicketId) -> Result<Ticket> {
        match self.ports.store.ticket(id).await? {
            Some(t) if t.org_id == claims.org => Ok(t),
            _ => Err(Error::NotFound("ticket")),
        }
    }

    pub async fn get_ticket(&self, claims: &Claims, id: TicketId) -> Result<(Ticket, Vec<Response>)> {
        match self.ports.store.ticket_with_responses(id).await? {
            Some((t, responses)) if t.org_id == claims.org => Ok((t, responses)),
            _ => Err(Error::NotFound("ticket")),
        }
    }

    pub async fn change_status(&self, claims: &Claims, id: TicketId, status: &str) -> Result<Ticket> {
        self.update_ticket(
            claims,
            id,
            TicketPatch {
                status: Some(status.to_owned()),
                ..Default::default()
            },
        )
        .await
    }

    pub async fn update_ticket(&self, claims: &Claims, id: TicketId, patch: TicketPatch) -> Result<Ticket> {
        if patch.title.is_none()
            && patch.description.is_none()
            && patch.admin_id.is_none()
            && patch.status.is_none()
            && patch.org_id.is_none()
        {
            return Err(Error::invalid(
                "body",
                "must set at least one of title, description, adminId, status, orgId",
            ));
        }
        // Validate everything before touching storage.
        let title = patch
            .title
            .as_deref()
            .map(|t| text("title", t, MAX_TITLE))
            .transpose()?;
        let description = patch
            .description
            .as_deref()
            .map(|d| text("description", d, MAX_DESCRIPTION))
            .transpose()?;
        let status = patch
            .status
            .as_deref()
            .map(|s| Status::parse("status", s))
            .transpose()?;
        if let Some(org) = patch.org_id
            && org != claims.org
        {
            return Err(Error::Forbidden(
                "orgId: a ticket can only belong to your own org".into(),
            ));
        }
        if let Some(Some(admin_id)) = patch.admin_id
            && self.ports.store.admin(claims.org, admin_id).await?.is_none()
        {
            return Err(Error::invalid("adminId", "is not an admin of your org"));
        }

        let before = self.own_ticket(claims, id).await?;
        let now = self.now();
        let mut after = before.clone();
        if let Some(t) = title {
            after.title = t;
        }
        if let Some(d) = description {
            after.description = d;
        }
        if let Some(a) = patch.admin_id {
            after.admin_id = a;
        }
        let effect = match status {
            Some(s) => rules::set_status(&mut after, s, now, self.config.auto_close_after),
            None => AutoClose::Unchanged,
        };
        if after == before {
            return Ok(before);
        }
        after.updated_at = now;
        after.version = before.version + 1;
        self.ports
            .store
            .update_ticket(&before, &after)
            .await
            .map_err(|e| conflict_as(e, "the ticket was changed concurrently; reload it and retry"))?;
        self.apply_auto_close(effect).await;
        tracing::info!(ticket = %id, status = %after.status, version = after.version, "ticket updated");
        Ok(after)
    }

    /// Stores the response and moves the ticket to RESPONDED, then emails the
    /// customer and records how that went. The response survives a failed send.
    pub async fn respond(&self, claims: &Claims, id: TicketId, message: &str) -> Result<(Response, Ticket)> {
        let message = text("message", message, MAX_MESSAGE)?;
        let before = self.own_ticket(claims, id).await?;
        if before.status == Status::Closed {
            return Err(Error::Conflict(
                "the ticket is CLOSED; reopen it before responding".into(),
            ));
        }
        let now = self.now();
        let mut after = before.clone();
        let effect = rules::record_response(&mut after, now, self.config.auto_close_after);
        after.version = before.version + 1;
        let mut response = Response {
            id: ResponseId::new(),
            ticket_id: id,
            admin_id: claims.sub,
            message,
            created_at: now,
            delivery: Delivery::Pending,
        };
        self.ports
            .store
            .add_response(&before, &after, &response)
            .await
            .map_err(|e| conflict_as(e, "the ticket was changed concurrently; reload it and retry"))?;
        self.apply_auto_close(effect).await;

        let mail = Mail {
            to: after.added_by.clone(),
            from: self.config.mail_from.clone(),
            subject: format!("Re: {} [ticket {}]", after.title, after.id),
            text: format!(
                "{}\n\n--\nTicket {}: \"{}\" is now {}.\nIf this resolves your request there is nothing more to do; \
                 otherwise reply within {} and we will pick it up.\n",
                response.message,
                after.id,
                after.title,
                after.status,
                crate::domain::duration::format_duration(self.config.auto_close_after),
            ),
            ticket_id: after.id,
        };
        response.delivery = match self.ports.mailer.send(&mail).await {
            Ok(message_id) => Delivery::Sent {
                message_id,
                at: self.now(),
            },
            Err(e) => {
                tracing::warn!(ticket = %id, response = %response.id, error = %e, "response email failed");
                Delivery::Failed {
                    reason: e.0,
                    at: self.now(),
                }
            }
        };
        if let Err(e) = self.ports.store.set_delivery(id, response.id, &response.delivery).await {
            // The response itself is stored; only its delivery note is missing.
            tracing::error!(ticket = %id, response = %response.id, error = ?e, "could not record delivery");
        }
        tracing::info!(ticket = %id, response = %response.id, delivery = response.delivery.state(), "responded");
        Ok((response, after))
    }

    pub async fn list_tickets(&self, claims: &Claims, q: ListQuery) -> Result<ListResult> {
        let limit = match q.limit.as_deref() {
            None | Some("") => DEFAULT_PAGE,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| Error::invalid("limit", format!("must be a whole number from 1 to {MAX_PAGE}")))?,
        };
        let status = non_empty(&q.status).map(|s| Status::parse("status", s)).transpose()?;
        let customer = non_empty(&q.customer_email)
            .map(|c| Email::parse("customerEmail", c))
            .transpose()?;
        let admin_email = non_empty(&q.admin_email)
            .map(|a| Email::parse("adminEmail", a))
            .transpose()?;
        let admin_id = match admin_email {
            None => None,
            Some(email) => match self.ports.store.admin_by_email(claims.org, &email).await? {
                Some(a) => Some(a.id),
                // No such admin in this org: nothing can match.
                _ => {
                    return Ok(ListResult {
                        tickets: vec![],
                        next_cursor: None,
                    });
                }
            },
        };
        let filter = TicketFilter {
            admin_id,
            status,
            customer,
        };
        let after = non_empty(&q.cursor)
            .map(|c| self.config.cursors.decode(claims.org, &filter, c))
            .transpose()?;
        let page = self
            .ports
            .store
            .list_tickets(claims.org, &filter, PageRequest { limit, after })
            .await?;
        Ok(ListResult {
            next_cursor: page.next.map(|p| self.config.cursors.encode(claims.org, &filter, p)),
            tickets: page.tickets,
        })
    }

    /// The auto-close: closes the ticket only if it is still the RESPONDED
    /// ticket the job was scheduled for. Safe to run twice or late.
    pub async fn run_close_job(&self, job: &CloseJob) -> Result<CloseOutcome> {
        // A version conflict means the ticket changed under us: look again.
        for _ in 0..3 {
            let Some(before) = self.ports.store.ticket(job.ticket_id).await? else {
                return Ok(CloseOutcome::Skipped("ticket not found"));
            };
            if !rules::close_job_applies(&before, job) {
                return Ok(CloseOutcome::Skipped("ticket moved on since the job was scheduled"));
            }
            let mut after = before.clone();
            rules::set_status(&mut after, Status::Closed, self.now(), self.config.auto_close_after);
            after.version = before.version + 1;
            match self.ports.store.update_ticket(&before, &after).await {
                Ok(()) => {
                    tracing::info!(ticket = %job.ticket_id, "ticket auto-closed");
                    return Ok(CloseOutcome::Closed);
                }
                Err(crate::error::StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict("ticket kept changing during auto-close".into()))
    }

    async fn apply_auto_close(&self, effect: AutoClose) {
        match effect {
            AutoClose::Unchanged => {}
            AutoClose::Schedule(job) => {
                if let Err(e) = self.ports.scheduler.schedule_close(&job).await {
                    tracing::error!(ticket = %job.ticket_id, error = ?e, "could not schedule auto-close");
                }
            }
            AutoClose::Cancel(ticket) => {
                // Harmless if it fails: a stale job re-checks the ticket and finds it moved on.
                if let Err(e) = self.ports.scheduler.cancel_close(ticket).await {
                    tracing::warn!(ticket = %ticket, error = ?e, "could not cancel auto-close");
                }
            }
        }
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn conflict_as(e: crate::error::StoreError, message: &str) -> Error {
    match e {
        crate::error::StoreError::Conflict(_) => Error::Conflict(message.to_owned()),
        other => other.into(),
    }
}
