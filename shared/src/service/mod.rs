//! The use cases, written once over the ports.

mod cursor;

pub use cursor::CursorCodec;

use crate::auth::{Claims, JwtKeys, SecretHash, generate_secret, password};
use crate::domain::rules::{self, AutoClose};
use crate::domain::{
    Admin, AdminId, CloseJob, Delivery, Domain, Email, MAX_DESCRIPTION, MAX_MESSAGE, MAX_NAME, MAX_TITLE, Mail, Org,
    OrgId, PageRequest, Response, ResponseId, Status, Ticket, TicketFilter, TicketId, header_line, line, text,
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

/// How many failed sign-ins an email may have per window before it is locked
/// out (429) for the rest of that window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigninLimit {
    pub max_failures: u32,
    pub window: Duration,
}

impl Default for SigninLimit {
    fn default() -> Self {
        Self {
            max_failures: 5,
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
        Self { ports, config }
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
            name: line("name", name, MAX_NAME)?,
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
            first_name: line("firstName", &input.first_name, MAX_NAME)?,
            last_name: line("lastName", &input.last_name, MAX_NAME)?,
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
            .map_err(|e| conflict_as(e, "email is already registered"))?;
        tracing::info!(org = %org.id, admin = %admin.id, "admin signed up");
        Ok(admin)
    }

    /// A JWT and its expiry. Unknown email and wrong password are the same 401
    /// and cost the same time.
    pub async fn signin(&self, email: &str, password_input: String) -> Result<(String, crate::domain::Timestamp)> {
        const BAD: Error = Error::Unauthorized("invalid email or password");
        let limit = self.config.signin;
        let email = Email::parse("email", email).ok();
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

    pub fn verify_token(&self, token: &str) -> Option<Claims> {
        self.config.jwt.verify(token)
    }

    pub async fn create_ticket(&self, org: &Org, input: NewTicket) -> Result<Ticket> {
        let now = self.now();
        let draft = Ticket {
            id: TicketId::new(),
            org_id: org.id,
            title: line("title", &input.title, MAX_TITLE)?,
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
            .map(|t| line("title", t, MAX_TITLE))
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
            Some(s) => rules::change_status(&mut after, s, now, self.config.auto_close_after)?,
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
            subject: header_line(&format!("Re: {} [ticket {}]", after.title, after.id)),
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
            Some(email) => match self.ports.store.admin_by_email(&email).await? {
                Some(a) if a.org_id == claims.org => Some(a.id),
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
