//! The use cases, written once over the ports, one file per area. Handlers
//! hand them typed commands (`commands`): the service never parses wire input.

mod admins;
mod api_keys;
mod auto_close;
mod commands;
mod cursor;
mod delivery_pool;
mod history;
mod idempotency;
mod inbound;
pub mod keys;
mod limits;
mod mail;
mod orgs;
mod people;
mod reconcile;
mod replies;
mod reply_keys;
mod responses;
mod signin;
mod tickets;
mod webhooks;

pub use api_keys::{IssuedKey, MAX_API_KEYS, key_name};
pub use auto_close::CloseOutcome;
pub use commands::{ListQuery, ListResult, NewAdmin, NewOrg, NewTicket, OrgSignup, Signin, TicketPatch};
pub use cursor::CursorCodec;
pub use delivery_pool::{DeliveryPool, Start};
pub use history::EventPage;
pub use idempotency::{IDEMPOTENCY_LEASE, IDEMPOTENCY_TTL, MAX_IDEMPOTENCY_KEY, Presented, idempotency_key};
pub use inbound::{InboundOutcome, InboundSource, Rejection};
pub use keys::{KeyConfig, Keys, MIN_RELOAD_INTERVAL};
pub use mail::{INLINE_SEND_BUDGET, MAIL_LEASE};
pub use people::{ASSIGN_BATCH, ASSIGN_WINDOW, AdminPage};
pub use reconcile::SweepReport;
pub use replies::{CustomerReply, ReplyOutcome, ReplyVia};
pub use reply_keys::{InboundAuth, InboundSettings, ReplyKeyConfig, ReplyKeys};
pub use signin::MAX_ACCOUNTS_PER_SIGNIN;
pub use webhooks::{
    DELIVERIES_LISTED, DUE_PER_SWEEP, ENDPOINT_IN_FLIGHT, IssuedWebhook, NOTICE_ADMINS, ORG_IN_FLIGHT, RESOLVE_TIMEOUT,
    SWEEP_IN_FLIGHT,
};

use crate::auth::{self, Claims};
use crate::domain::limits::Limits;
use crate::domain::{MailRetry, Ticket, TicketId, Timestamp};
use crate::error::{Error, Result, StoreError};
use crate::ports::Ports;
use std::time::Duration;

pub const DEFAULT_PAGE: usize = 50;
/// How long after closing a customer's reply still reopens a ticket.
pub const DEFAULT_REOPEN_WINDOW: Duration = Duration::from_secs(7 * 86_400);
pub const MAX_PAGE: usize = 100;

/// How the service behaves; built once per process from its configuration.
#[derive(Clone)]
pub struct Config {
    pub auto_close_after: Duration,
    pub reopen_window: Duration,
    pub mail_from: String,
    /// Sign admin tokens and list cursors.
    pub keys: Keys,
    pub signin: SigninLimit,
    /// Hashes and verifies admin passwords, a bounded number at a time.
    pub passwords: auth::password::Hasher,
    /// When failed response emails are tried again.
    pub mail_retry: MailRetry,
    /// Reply addresses and inbound mail.
    pub reply_keys: ReplyKeys,
    pub limits: Limits,
    /// How inbound mail's sender is authenticated.
    pub inbound_auth: InboundAuth,
    /// What happens to respond's inline mail attempt at its budget.
    pub inline_send: InlineSend,
}

/// What respond (and a reply) does with its inline mail attempt when
/// [`INLINE_SEND_BUDGET`] runs out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InlineSend {
    /// The attempt goes on in a task of its own and records its outcome
    /// after the answer (ticketd: the process keeps running).
    #[default]
    Detached,
    /// The attempt is dropped at the budget (Lambda, where the instance
    /// freezes once the answer is returned): its claim expires after
    /// [`MAIL_LEASE`] and the sweeper sends the mail.
    Cut,
}

/// How many failed sign-ins a client may have per window, for one email and
/// across all emails, before it is refused (429) for the rest of that window.
/// Counting per client means a guesser locks only itself out, never the
/// admin it guesses at; the per-client budget stops password spraying.
/// An attempt takes its slot before its password is checked, so concurrent
/// guesses cannot pass the limit; a sign-in that succeeds gives it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigninLimit {
    /// Per (email, client).
    pub max_failures: u32,
    /// Per client, whatever the emails. 20: a few mistyped emails and
    /// passwords stay far below it; one guess at each of many accounts does not.
    pub max_client_failures: u32,
    pub window: Duration,
    /// Password hashes and verifies at once in the process (sign-in and
    /// admin signup alike), and how long a request waits for its turn.
    pub hashes: auth::password::HashLimit,
}

impl Default for SigninLimit {
    fn default() -> Self {
        Self {
            max_failures: 5,
            max_client_failures: 20,
            window: Duration::from_secs(15 * 60),
            hashes: Default::default(),
        }
    }
}

/// What every entry point (ticketd on either backend, each Lambda) configures.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Signs admin tokens and list cursors: a fixed secret (see
    /// [`auth::check_jwt_secret`]), a key source, or none (no JWT route).
    pub jwt_keys: KeyConfig,
    pub auto_close_after: Duration,
    /// A customer's reply reopens a CLOSED ticket within this long of its
    /// closing; a later one opens a follow-up ticket.
    pub reopen_window: Duration,
    pub mail_from: String,
    pub signin: SigninLimit,
    /// Inbound email: off by default.
    pub inbound: InboundSettings,
    /// Rate limits, notice coalescing and raw mail retention.
    pub limits: Limits,
}

impl Config {
    /// Token and cursor keys both derive from the configured key ring; a
    /// fixed secret must pass [`auth::check_jwt_secret`] (a key source's keys
    /// are checked when read).
    pub fn new(settings: &Settings) -> Result<Self, auth::WeakSecret> {
        Ok(Self {
            auto_close_after: settings.auto_close_after,
            reopen_window: settings.reopen_window,
            mail_from: settings.mail_from.clone(),
            keys: Keys::new(&settings.jwt_keys)?,
            signin: settings.signin,
            passwords: auth::password::Hasher::new(settings.signin.hashes),
            mail_retry: MailRetry::default(),
            reply_keys: ReplyKeys::new(&settings.inbound),
            limits: settings.limits.clone(),
            inbound_auth: InboundAuth::new(&settings.inbound),
            inline_send: InlineSend::default(),
        })
    }
}

#[derive(Clone)]
pub struct Service {
    ports: Ports,
    config: Config,
    known_admins: admins::KnownAdmins,
    key_use: api_keys::KeyUse,
}

impl Service {
    /// The one constructor: ticketd (both backends) and every Lambda build the
    /// service here, so the secret rule and key derivation cannot drift.
    pub fn new(ports: Ports, settings: &Settings) -> Result<Self, auth::WeakSecret> {
        Ok(Self {
            ports,
            config: Config::new(settings)?,
            known_admins: Default::default(),
            key_use: Default::default(),
        })
    }

    /// This service with another mail retry schedule (tests use short ones).
    pub fn with_mail_retry(mut self, retry: MailRetry) -> Self {
        self.config.mail_retry = retry;
        self
    }

    /// This service with respond's inline mail attempt handled as `inline`.
    pub fn with_inline_send(mut self, inline: InlineSend) -> Self {
        self.config.inline_send = inline;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The service's clock (fault tests run one ahead).
    pub fn now(&self) -> Timestamp {
        self.ports.clock.now()
    }

    /// The caller's org's ticket; another org's ticket is indistinguishable from none.
    async fn own_ticket(&self, claims: &Claims, id: TicketId) -> Result<Ticket> {
        match self.ports.store.ticket(id).await? {
            Some(t) if t.org_id == claims.org => Ok(t),
            _ => Err(Error::NotFound("ticket")),
        }
    }
}

/// A storage conflict as the client should read it; other store errors pass through.
fn conflict_as(e: StoreError, message: &str) -> Error {
    match e {
        StoreError::Conflict(_) => Error::Conflict(message.to_owned()),
        other => other.into(),
    }
}

const CONCURRENT_CHANGE: &str = "the ticket was changed concurrently; reload it and retry";
