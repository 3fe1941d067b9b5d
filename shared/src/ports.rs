//! What the service needs from the outside world, in domain terms. Each storage
//! call is servable by one key lookup or one indexed range read (a DynamoDB
//! `GetItem`/`Query`, an SQLite index search), never a scan.

use crate::auth::{KeySet, SecretHash};
use crate::domain::SigninSlot;
use crate::domain::inbound::{InboundReceipt, StoredInbound};
use crate::domain::limits::Slot;
use crate::domain::webhooks::{ClaimedDelivery, Health, StoredWebhook, Webhook, WebhookDelivery, WebhookUrl};
use crate::domain::{
    Admin, AdminId, AdminRole, AdminSummary, ApiKey, ApiKeyId, Cause, ClaimedMail, CloseJob, Credential, Delivery,
    Domain, Email, EventId, IdempotencyBegin, IdempotencyKey, IdempotencyRecord, KeptReply, Mail, Message, Org, OrgId,
    PageRequest, ResponseId, ThrottleKey, Ticket, TicketEvent, TicketFilter, TicketId, TicketPage, Timestamp,
    WebhookId,
};

use crate::error::StoreError;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Conflict if the domain is taken.
    async fn create_org(&self, org: &Org, secret: &SecretHash) -> StoreResult<()>;
    /// What `secret` authenticates: its org's own secret, or one of the
    /// org's API keys.
    async fn credential(&self, secret: &SecretHash) -> StoreResult<Option<Credential>>;
    /// Stores a new API key of `key.org_id`, found later by `secret`.
    async fn create_api_key(&self, key: &ApiKey, secret: &SecretHash) -> StoreResult<()>;
    /// The org's API keys, oldest first.
    async fn api_keys(&self, org: OrgId) -> StoreResult<Vec<ApiKey>>;
    /// Deletes the key and its credential at once; false if the org has no
    /// such key.
    async fn revoke_api_key(&self, org: OrgId, id: ApiKeyId) -> StoreResult<bool>;
    /// Records a use of the key at `at` (never moving `lastUsedAt` back).
    async fn touch_api_key(&self, org: OrgId, id: ApiKeyId, at: Timestamp) -> StoreResult<()>;
    /// Replaces the org's secret: the old one stops authenticating at once.
    async fn rotate_org_secret(&self, org: OrgId, secret: &SecretHash) -> StoreResult<()>;

    /// Begins a request made with an idempotency key, in one conditional
    /// write: records it as running unless the key has a live record (a
    /// record past its `expires_at`, or a running one of the same request
    /// past its lease, is taken over). Otherwise says what the record holds.
    async fn begin_idempotent(&self, record: &IdempotencyRecord, now: Timestamp) -> StoreResult<IdempotencyBegin>;
    /// Keeps the answer of the request that began `key`.
    async fn finish_idempotent(&self, key: &IdempotencyKey, reply: &KeptReply) -> StoreResult<()>;
    /// Forgets `key` (its request failed with a 5xx: the client may retry).
    async fn abandon_idempotent(&self, key: &IdempotencyKey) -> StoreResult<()>;

    /// The id of the org registered under `domain`.
    async fn org_id_by_domain(&self, domain: &Domain) -> StoreResult<Option<OrgId>>;

    /// Conflict if the admin's org already has an admin with this email.
    /// Emails are unique per org, not globally: one person may admin several
    /// orgs, and an address taken in another org blocks (and reveals) nothing.
    async fn create_admin(&self, admin: &Admin, password_hash: &str) -> StoreResult<()>;
    /// For sign-in only: the accounts with this email and their password
    /// hashes, at most `limit` of them, oldest org first (org ids are
    /// time-ordered); only `org`'s account when `org` is given.
    async fn admin_credentials(
        &self,
        email: &Email,
        org: Option<OrgId>,
        limit: usize,
    ) -> StoreResult<Vec<(Admin, String)>>;
    /// The admin `id` if it belongs to `org`.
    async fn admin(&self, org: OrgId, id: AdminId) -> StoreResult<Option<Admin>>;
    /// `org`'s admin with this email.
    async fn admin_by_email(&self, org: OrgId, email: &Email) -> StoreResult<Option<Admin>>;

    /// Stores `ticket` (whose `admin_id` is ignored), assigned to the org's
    /// least-loaded available admin (`rules::choose_assignee`); the assignee's
    /// counters and the events of `cause` ([`Cause::events`]) are written in
    /// the same transaction. Returns the stored ticket.
    async fn create_ticket(&self, ticket: &Ticket, cause: &Cause) -> StoreResult<Ticket>;
    async fn ticket(&self, id: TicketId) -> StoreResult<Option<Ticket>>;
    /// Replaces `before` with `after` if the stored version is still
    /// `before.version` (else Conflict), adjusting admin counters by
    /// `rules::load_changes` and writing `cause`'s events in the same transaction.
    async fn update_ticket(&self, before: &Ticket, after: &Ticket, cause: &Cause) -> StoreResult<()>;
    /// `update_ticket` and the insert of `message` with its outgoing `mail`
    /// (delivery pending, due at once), atomically: a committed message
    /// always has its mail. Conflict also if a message with its id exists
    /// (ids derived from an inbound email's Message-ID make a redelivery one).
    async fn add_message(
        &self,
        before: &Ticket,
        after: &Ticket,
        message: &Message,
        mail: Option<&Mail>,
        cause: &Cause,
    ) -> StoreResult<()>;
    /// Assigns the unassigned `before` (still at its version, else Conflict)
    /// to the org's least-loaded available admin, as `create_ticket` does,
    /// with `cause`'s events. `None` (nothing written) when no admin is available.
    async fn assign_ticket(&self, before: &Ticket, cause: &Cause) -> StoreResult<Option<Ticket>>;
    /// Up to `limit` of the org's OPEN tickets with no assignee, oldest first,
    /// from an index holding only those. May lag a write (DynamoDB's index is
    /// eventually consistent); callers re-read each ticket.
    async fn unassigned_tickets(&self, org: OrgId, limit: usize) -> StoreResult<Vec<TicketId>>;
    /// Orgs whose unassigned tickets were left for the sweep to assign
    /// (at most `limit`), and marking or clearing one.
    async fn assignment_backlog(&self, limit: usize) -> StoreResult<Vec<OrgId>>;
    async fn set_assignment_backlog(&self, org: OrgId, pending: bool) -> StoreResult<()>;
    /// Sets the admin's availability; `None` if `id` is not an admin of `org`.
    async fn set_admin_available(&self, org: OrgId, id: AdminId, available: bool) -> StoreResult<Option<Admin>>;
    /// Sets the admin's role; `None` if `id` is not an admin of `org`.
    async fn set_admin_role(&self, org: OrgId, id: AdminId, role: AdminRole) -> StoreResult<Option<Admin>>;
    /// One page of the org's admins with their open-ticket counts, in id
    /// (creation) order, after `after`; up to `limit + 1` so callers see if more follow.
    async fn list_admins(&self, org: OrgId, after: Option<AdminId>, limit: usize) -> StoreResult<Vec<AdminSummary>>;
    /// Events with no ticket write of their own (an inbound mail refused), in one write.
    async fn add_events(&self, events: &[TicketEvent]) -> StoreResult<()>;
    /// The ticket's events after `after`, oldest first, at most `limit`: one
    /// indexed range read.
    async fn ticket_events(
        &self,
        ticket: TicketId,
        after: Option<EventId>,
        limit: usize,
    ) -> StoreResult<Vec<TicketEvent>>;
    /// Takes the response's mail for one send attempt if it is pending and due
    /// at `now`, in one conditional write: counts the attempt and makes it due
    /// again only at `now + lease` (a sender that dies mid-send is replaced
    /// then). `None` if not pending, not due, or claimed by another sender.
    async fn claim_mail(
        &self,
        ticket: TicketId,
        response: ResponseId,
        now: Timestamp,
        lease: Duration,
    ) -> StoreResult<Option<ClaimedMail>>;
    /// Records how the claimed attempt went: `Sent` whenever the mail is still
    /// pending (it was sent, whoever holds the lease now); `Pending` (retry)
    /// or `Failed` only while the claim's `lease` is still the current one.
    /// False if the condition did not hold. A move out of `pending` writes a
    /// `deliveryChanged` event (by `system`) in the same transaction.
    async fn record_attempt(
        &self,
        ticket: TicketId,
        response: ResponseId,
        lease: &str,
        outcome: &Delivery,
    ) -> StoreResult<bool>;
    /// Sets `delivery` (a provider event) if it ranks above the stored state
    /// ([`Delivery::rank`]). False if it did not (a repeat, or a later state is
    /// stored) or the response does not exist. When applied, a
    /// `deliveryChanged` event (by `system`) is written with it.
    async fn record_mail_event(&self, ticket: TicketId, response: ResponseId, delivery: &Delivery)
    -> StoreResult<bool>;
    /// Up to `limit` pending mails due at `now`, earliest first, from an
    /// index holding only pending mail.
    async fn due_mail(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<(TicketId, ResponseId)>>;
    /// A ticket and its messages of every kind (oldest first), read together.
    async fn ticket_with_messages(&self, id: TicketId) -> StoreResult<Option<(Ticket, Vec<Message>)>>;
    /// Takes a slot for one sign-in attempt against `key` before its password
    /// is checked, in one atomic count-then-check (an SQLite transaction, a
    /// conditional DynamoDB update): counts it into the window open at `now`
    /// (opening one if there is none or the last one ended) unless that window
    /// already holds `max` attempts. Concurrent attempts never pass `max`.
    async fn reserve_signin_attempt(
        &self,
        key: &ThrottleKey,
        now: Timestamp,
        window: Duration,
        max: u32,
    ) -> StoreResult<SigninSlot>;
    /// Gives back a slot taken in the window that started at `started_at`
    /// (its attempt did not fail); nothing if that window is gone.
    async fn release_signin_attempt(&self, key: &ThrottleKey, started_at: Timestamp) -> StoreResult<()>;
    /// Forgets the failures counted against `key` (after a successful sign-in).
    async fn clear_signin_failures(&self, key: &ThrottleKey) -> StoreResult<()>;
    /// One page of the org's tickets matching `filter`, newest first.
    async fn list_tickets(&self, org: OrgId, filter: &TicketFilter, page: PageRequest) -> StoreResult<TicketPage>;
    /// Stores an inbound message under `receipt.key` before it is read: the
    /// raw message too unless `receipt.source` says where it is kept. A key
    /// stored before is left as it was and reported (`first: false`).
    async fn save_inbound(&self, receipt: &InboundReceipt, raw: &[u8]) -> StoreResult<StoredInbound>;
    /// Records what became of the inbound message `key`.
    async fn finish_inbound(
        &self,
        key: &str,
        outcome: &str,
        ticket: Option<TicketId>,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Up to `limit` RESPONDED tickets whose `auto_close_at` is at or before
    /// `now`, earliest first, across all orgs: the sweeper's read. May lag a
    /// write (DynamoDB's index is eventually consistent); callers re-read.
    async fn due_auto_closes(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Ticket>>;
}

/// Webhook endpoints and their deliveries. The outbox half is written by the
/// [`Store`]'s ticket writes (each write's messages ride on its history
/// events); this port fans those messages out and tracks each delivery.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Stores a new endpoint (the service keeps an org under
    /// [`MAX_WEBHOOKS`](crate::domain::webhooks::MAX_WEBHOOKS)).
    async fn create_webhook(&self, hook: &StoredWebhook) -> StoreResult<()>;
    /// The org's endpoints, oldest first.
    async fn webhooks(&self, org: OrgId) -> StoreResult<Vec<StoredWebhook>>;
    async fn webhook(&self, org: OrgId, id: WebhookId) -> StoreResult<Option<StoredWebhook>>;
    /// Deletes the endpoint (its deliveries stop: they find no endpoint); false if none.
    async fn delete_webhook(&self, org: OrgId, id: WebhookId) -> StoreResult<bool>;
    /// Replaces the signing secret; false if no such endpoint.
    async fn set_webhook_secret(&self, org: OrgId, id: WebhookId, secret: &str) -> StoreResult<bool>;
    /// Applies an attempt's [`Health`] change. For `Disable`: true only for
    /// the call that disabled it, which also marks its admins' notice pending.
    async fn set_webhook_health(&self, org: OrgId, id: WebhookId, health: Health) -> StoreResult<bool>;
    /// Disabled endpoints whose admins have not been told yet (at most `limit`),
    /// and clearing that mark once they have.
    async fn pending_webhook_notices(&self, limit: usize) -> StoreResult<Vec<Webhook>>;
    async fn clear_webhook_notice(&self, org: OrgId, id: WebhookId) -> StoreResult<()>;

    /// Creates each delivery unless the endpoint has one of that message
    /// (a fan-out repeated after a crash creates nothing twice); returns
    /// those it created.
    async fn create_deliveries(&self, deliveries: &[WebhookDelivery]) -> StoreResult<Vec<WebhookDelivery>>;
    async fn delivery(&self, webhook: WebhookId, id: &str) -> StoreResult<Option<WebhookDelivery>>;
    /// The endpoint's deliveries, newest first, at most `limit`.
    async fn deliveries(&self, webhook: WebhookId, limit: usize) -> StoreResult<Vec<WebhookDelivery>>;
    /// Takes a pending delivery due at `now` for one attempt, in one
    /// conditional write that makes it due again only at `now + lease` (a
    /// sender dying mid-attempt is replaced then). `None` if not pending,
    /// not due, or claimed by another sender.
    async fn claim_delivery(
        &self,
        webhook: WebhookId,
        id: &str,
        now: Timestamp,
        lease: Duration,
    ) -> StoreResult<Option<ClaimedDelivery>>;
    /// Stores `after` (the claimed delivery after its attempt) if the claim's
    /// lease is still the current one; false if not.
    async fn record_delivery(&self, claim: &ClaimedDelivery, after: &WebhookDelivery) -> StoreResult<bool>;
    /// Makes the delivery pending and due at once (a redelivery): `after` if
    /// it is not pending now. False if it is (or does not exist).
    async fn redeliver(&self, after: &WebhookDelivery) -> StoreResult<bool>;
    /// Up to `limit` pending deliveries due at `now`, earliest first, from an
    /// index holding only pending ones: (endpoint, delivery id).
    async fn due_deliveries(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<(WebhookId, String)>>;
}

/// Rate-limit counters: one atomic step per call (an SQLite transaction, a
/// conditional DynamoDB `UpdateItem`), so concurrent callers never exceed a
/// limit between them. Counters expire with their window.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Takes one of `limit` slots of `key`'s fixed window of length `window`
    /// that `now` falls in ([`window_of`](crate::domain::limits::window_of)),
    /// or says how long until that window ends when all are taken.
    async fn take(&self, key: &str, now: Timestamp, window: Duration, limit: u32) -> StoreResult<Slot>;
}

/// Posts a signed webhook; one attempt, no redirects followed.
#[async_trait]
pub trait WebhookClient: Send + Sync + 'static {
    /// The endpoint's status code, or why no answer came (refused address,
    /// DNS failure, timeout, connection error). Never quotes the body.
    async fn post(&self, url: &WebhookUrl, headers: &[(&'static str, String)], body: &str) -> Result<u16, String>;
    /// Whether `url`'s host resolves only to addresses deliveries may reach
    /// (always true where private addresses are allowed); the reason if not.
    async fn check(&self, url: &WebhookUrl) -> Result<(), String>;
    /// Whether private addresses (and plain `http`) are allowed: `ticketd
    /// --allow-private-webhooks`, for local development and tests only.
    fn allows_private(&self) -> bool;
}

/// Sends one email; returns the provider's message id.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, mail: &Mail) -> Result<String, MailError>;
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailError(pub String);

/// Runs `close` for a ticket at its due time. Scheduling is an upsert keyed by
/// ticket id; cancelling a ticket with no pending job is not an error.
#[async_trait]
pub trait Scheduler: Send + Sync + 'static {
    async fn schedule_close(&self, job: &CloseJob) -> anyhow::Result<()>;
    async fn cancel_close(&self, ticket: TicketId) -> anyhow::Result<()>;
}

/// Where the JWT keys are kept: ticketd's key file, the signing-keys secret
/// (admin-signin), the verify-keys secret (every other JWT function). Read
/// through the service's cache (`service::keys`).
#[async_trait]
pub trait KeySource: Send + Sync + 'static {
    /// The keys as stored now. The error must not quote key material.
    async fn load(&self) -> anyhow::Result<KeySet>;
    /// How long loaded keys are used before they are read again (so a
    /// process learns a rotation's new current key); the kid of a token
    /// signed with a key not loaded yet also triggers a read, rate-limited.
    fn max_age(&self) -> Duration;
}

/// Where the reply key (inbound email's address tokens) is kept: a Secrets
/// Manager secret (ticketd reads its key file once at start instead).
#[async_trait]
pub trait ReplyKeySource: Send + Sync + 'static {
    /// The key as stored. The error must not quote key material.
    async fn load(&self) -> anyhow::Result<crate::auth::ReplyKey>;
}

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The ports the service runs on, as one adapter set provides them.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub scheduler: Arc<dyn Scheduler>,
    pub clock: Arc<dyn Clock>,
    pub webhooks: Arc<dyn WebhookStore>,
    pub webhook_client: Arc<dyn WebhookClient>,
    pub limits: Arc<dyn RateLimiter>,
}
