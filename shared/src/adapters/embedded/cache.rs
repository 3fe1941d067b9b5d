//! A bounded in-process cache of tickets with their responses, as a decorator
//! over the [`Store`] port, so a hot `GET /tickets/{id}` skips the hop to the
//! blocking pool and the SQLite read.
//!
//! Why it may exist: `ticketd` is the only writer of its database, and every
//! write of a ticket or response row goes through this decorator's `Store`
//! methods (create_ticket, update_ticket, add_response, assign_ticket, and the
//! mail writes claim_mail, record_attempt, record_mail_event), which invalidate
//! the entry. Events and admins are not part of an entry. Measured in bench part a (bench/RESULTS.md).
//!
//! Why reads are never stale, including under concurrency:
//! - a write empties the ticket's slot and marks it busy *before* it starts and
//!   stamps it again *after* it committed, so while a write is in flight every
//!   read goes to SQLite (which is itself consistent), and no read can fill the
//!   slot with a value it read before the write committed;
//! - a read that missed notes the logical clock when it started and fills the
//!   slot only if the ticket was not written since (per-entry stamp), or, for a
//!   slot dropped by eviction, only if nothing evicted was written since;
//! - the write runs in its own task, so a caller that gives up (a closed
//!   connection drops the handler's future) cannot leave a write committing
//!   after its slot was released.

use crate::auth::SecretHash;
use crate::domain::inbound::{InboundReceipt, StoredInbound};
use crate::domain::{
    Admin, AdminId, AdminRole, AdminSummary, ApiKey, ApiKeyId, Cause, ClaimedMail, Credential, Delivery, Domain, Email,
    EventId, IdempotencyBegin, IdempotencyKey, IdempotencyRecord, KeptReply, Mail, Message, Org, OrgId, PageRequest,
    ResponseId, SigninSlot, ThrottleKey, Ticket, TicketEvent, TicketFilter, TicketId, TicketPage, Timestamp,
};
use crate::error::StoreError;
use crate::ports::{Store, StoreResult};
use async_trait::async_trait;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Tickets kept at most. 10,000 tickets of typical size take a few MB.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
/// Approximate bytes kept at most (text plus a fixed overhead per row).
pub const DEFAULT_MAX_BYTES: usize = 32 << 20;

type Entry = Arc<(Ticket, Vec<Message>)>;

/// The [`Store`] `inner`, with `ticket_with_responses` served from memory when
/// it can be.
pub struct CachedStore<S> {
    inner: Arc<S>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Logical clock, advanced at the start and at the end of every write.
    clock: u64,
    /// The newest `changed` of any slot evicted: a read that started before it
    /// may not fill a slot that no longer exists.
    floor: u64,
    slots: HashMap<TicketId, Slot>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

/// One ticket's place in the cache. A slot with no value still remembers when
/// the ticket was last written.
struct Slot {
    changed: u64,
    writers: u32,
    value: Option<(Entry, usize)>,
}

fn weight((ticket, messages): &(Ticket, Vec<Message>)) -> usize {
    const ROW: usize = 256;
    ROW + ticket.title.len() + ticket.description.len() + messages.iter().map(|r| ROW + r.message.len()).sum::<usize>()
}

impl State {
    fn drop_value(&mut self, id: TicketId) {
        if let Some((_, w)) = self.slots.get_mut(&id).and_then(|s| s.value.take()) {
            self.bytes -= w;
        }
    }

    fn begin_write(&mut self, id: TicketId) {
        self.drop_value(id);
        self.clock += 1;
        let clock = self.clock;
        let slot = self.slots.entry(id).or_insert(Slot {
            changed: clock,
            writers: 0,
            value: None,
        });
        slot.writers += 1;
        slot.changed = clock;
        self.evict();
    }

    fn end_write(&mut self, id: TicketId) {
        self.drop_value(id);
        self.clock += 1;
        let clock = self.clock;
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.writers -= 1;
            slot.changed = clock;
        }
    }

    fn fill(&mut self, id: TicketId, started: u64, entry: Entry) {
        let fresh = match self.slots.get(&id) {
            Some(slot) => slot.writers == 0 && slot.changed <= started,
            None => self.floor <= started,
        };
        if !fresh {
            return;
        }
        let w = weight(&entry);
        if w > self.max_bytes / 16 {
            return; // one huge ticket may not push out everything else
        }
        let slot = self.slots.entry(id).or_insert(Slot {
            changed: 0,
            writers: 0,
            value: None,
        });
        if let Some((_, old)) = slot.value.replace((entry, w)) {
            self.bytes -= old;
        }
        self.bytes += w;
        self.evict();
    }

    /// Drops idle slots until within bounds. Which ones is left to the hash
    /// map's order: random eviction, which keeps no per-read bookkeeping.
    fn evict(&mut self) {
        while self.slots.len() > self.max_entries || self.bytes > self.max_bytes {
            let Some(id) = self.slots.iter().find(|(_, s)| s.writers == 0).map(|(id, _)| *id) else {
                return; // every slot is being written; they go when the writes end
            };
            if let Some(slot) = self.slots.remove(&id) {
                self.floor = self.floor.max(slot.changed);
                if let Some((_, w)) = slot.value {
                    self.bytes -= w;
                }
            }
        }
    }
}

/// Ends a write's critical span even if the write task panics.
struct WriteGuard {
    state: Arc<Mutex<State>>,
    id: TicketId,
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        lock(&self.state).end_write(self.id);
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S: Store> CachedStore<S> {
    pub fn new(inner: S) -> Self {
        Self::with_bounds(inner, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES)
    }

    pub fn with_bounds(inner: S, max_entries: usize, max_bytes: usize) -> Self {
        Self {
            inner: Arc::new(inner),
            state: Arc::new(Mutex::new(State {
                max_entries,
                max_bytes,
                ..State::default()
            })),
        }
    }

    /// Tickets held now.
    pub fn len(&self) -> usize {
        lock(&self.state).slots.values().filter(|s| s.value.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs the write `f` on the inner store, bracketed by the invalidation of
    /// ticket `id`, in a task of its own so it finishes even if the caller goes away.
    async fn write<T, F, Fut>(&self, id: TicketId, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<S>) -> Fut,
        Fut: Future<Output = StoreResult<T>> + Send + 'static,
    {
        lock(&self.state).begin_write(id);
        let guard = WriteGuard {
            state: self.state.clone(),
            id,
        };
        let write = f(self.inner.clone());
        tokio::spawn(async move {
            let result = write.await;
            drop(guard);
            result
        })
        .await
        .map_err(|e| StoreError::Internal(e.into()))?
    }
}

#[async_trait]
impl<S: Store> Store for CachedStore<S> {
    async fn create_org(&self, org: &Org, secret: &SecretHash) -> StoreResult<()> {
        self.inner.create_org(org, secret).await
    }

    async fn credential(&self, secret: &SecretHash) -> StoreResult<Option<Credential>> {
        self.inner.credential(secret).await
    }

    async fn create_api_key(&self, key: &ApiKey, secret: &SecretHash) -> StoreResult<()> {
        self.inner.create_api_key(key, secret).await
    }

    async fn api_keys(&self, org: OrgId) -> StoreResult<Vec<ApiKey>> {
        self.inner.api_keys(org).await
    }

    async fn revoke_api_key(&self, org: OrgId, id: ApiKeyId) -> StoreResult<bool> {
        self.inner.revoke_api_key(org, id).await
    }

    async fn touch_api_key(&self, org: OrgId, id: ApiKeyId, at: Timestamp) -> StoreResult<()> {
        self.inner.touch_api_key(org, id, at).await
    }

    async fn rotate_org_secret(&self, org: OrgId, secret: &SecretHash) -> StoreResult<()> {
        self.inner.rotate_org_secret(org, secret).await
    }

    async fn begin_idempotent(&self, record: &IdempotencyRecord, now: Timestamp) -> StoreResult<IdempotencyBegin> {
        self.inner.begin_idempotent(record, now).await
    }

    async fn finish_idempotent(&self, key: &IdempotencyKey, reply: &KeptReply) -> StoreResult<()> {
        self.inner.finish_idempotent(key, reply).await
    }

    async fn abandon_idempotent(&self, key: &IdempotencyKey) -> StoreResult<()> {
        self.inner.abandon_idempotent(key).await
    }

    async fn org_id_by_domain(&self, domain: &Domain) -> StoreResult<Option<OrgId>> {
        self.inner.org_id_by_domain(domain).await
    }

    async fn create_admin(&self, admin: &Admin, password_hash: &str) -> StoreResult<()> {
        self.inner.create_admin(admin, password_hash).await
    }

    async fn admin_credentials(
        &self,
        email: &Email,
        org: Option<OrgId>,
        limit: usize,
    ) -> StoreResult<Vec<(Admin, String)>> {
        self.inner.admin_credentials(email, org, limit).await
    }

    async fn admin(&self, org: OrgId, id: AdminId) -> StoreResult<Option<Admin>> {
        self.inner.admin(org, id).await
    }

    async fn admin_by_email(&self, org: OrgId, email: &Email) -> StoreResult<Option<Admin>> {
        self.inner.admin_by_email(org, email).await
    }

    async fn create_ticket(&self, ticket: &Ticket, cause: &Cause) -> StoreResult<Ticket> {
        // A new id has nothing cached (misses are not cached), but a read of
        // it may be in flight: bracket it like any other write.
        let (ticket, cause) = (ticket.clone(), cause.clone());
        self.write(ticket.id, |s| async move { s.create_ticket(&ticket, &cause).await })
            .await
    }

    async fn ticket(&self, id: TicketId) -> StoreResult<Option<Ticket>> {
        // Read before a versioned write: left to SQLite, where the version check is.
        self.inner.ticket(id).await
    }

    async fn update_ticket(&self, before: &Ticket, after: &Ticket, cause: &Cause) -> StoreResult<()> {
        let (before, after, cause) = (before.clone(), after.clone(), cause.clone());
        self.write(
            after.id,
            |s| async move { s.update_ticket(&before, &after, &cause).await },
        )
        .await
    }

    async fn add_message(
        &self,
        before: &Ticket,
        after: &Ticket,
        message: &Message,
        mail: Option<&Mail>,
        cause: &Cause,
    ) -> StoreResult<()> {
        let (before, after, message, mail, cause) = (
            before.clone(),
            after.clone(),
            message.clone(),
            mail.cloned(),
            cause.clone(),
        );
        self.write(after.id, |s| async move {
            s.add_message(&before, &after, &message, mail.as_ref(), &cause).await
        })
        .await
    }

    async fn assign_ticket(&self, before: &Ticket, cause: &Cause) -> StoreResult<Option<Ticket>> {
        let (before, cause) = (before.clone(), cause.clone());
        self.write(before.id, |s| async move { s.assign_ticket(&before, &cause).await })
            .await
    }

    async fn unassigned_tickets(&self, org: OrgId, limit: usize) -> StoreResult<Vec<TicketId>> {
        // An index read; the assignment re-checks each ticket's version.
        self.inner.unassigned_tickets(org, limit).await
    }

    async fn assignment_backlog(&self, limit: usize) -> StoreResult<Vec<OrgId>> {
        self.inner.assignment_backlog(limit).await
    }

    async fn set_assignment_backlog(&self, org: OrgId, pending: bool) -> StoreResult<()> {
        self.inner.set_assignment_backlog(org, pending).await
    }

    async fn set_admin_available(&self, org: OrgId, id: AdminId, available: bool) -> StoreResult<Option<Admin>> {
        // Admins are not cached: no ticket entry changes.
        self.inner.set_admin_available(org, id, available).await
    }

    async fn set_admin_role(&self, org: OrgId, id: AdminId, role: AdminRole) -> StoreResult<Option<Admin>> {
        self.inner.set_admin_role(org, id, role).await
    }

    async fn list_admins(&self, org: OrgId, after: Option<AdminId>, limit: usize) -> StoreResult<Vec<AdminSummary>> {
        self.inner.list_admins(org, after, limit).await
    }

    async fn add_events(&self, events: &[TicketEvent]) -> StoreResult<()> {
        // Events are not part of a cached entry (ticket and responses).
        self.inner.add_events(events).await
    }

    async fn ticket_events(
        &self,
        ticket: TicketId,
        after: Option<EventId>,
        limit: usize,
    ) -> StoreResult<Vec<TicketEvent>> {
        self.inner.ticket_events(ticket, after, limit).await
    }

    async fn claim_mail(
        &self,
        ticket: TicketId,
        response: ResponseId,
        now: Timestamp,
        lease: Duration,
    ) -> StoreResult<Option<ClaimedMail>> {
        // A claim changes the attempts shown on the response.
        self.write(
            ticket,
            |s| async move { s.claim_mail(ticket, response, now, lease).await },
        )
        .await
    }

    async fn record_attempt(
        &self,
        ticket: TicketId,
        response: ResponseId,
        lease: &str,
        outcome: &Delivery,
    ) -> StoreResult<bool> {
        let (lease, outcome) = (lease.to_owned(), outcome.clone());
        self.write(ticket, |s| async move {
            s.record_attempt(ticket, response, &lease, &outcome).await
        })
        .await
    }

    async fn record_mail_event(
        &self,
        ticket: TicketId,
        response: ResponseId,
        delivery: &Delivery,
    ) -> StoreResult<bool> {
        let delivery = delivery.clone();
        self.write(ticket, |s| async move {
            s.record_mail_event(ticket, response, &delivery).await
        })
        .await
    }

    async fn due_mail(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<(TicketId, ResponseId)>> {
        // Only ids, from the partial index: nothing cached to serve it from.
        self.inner.due_mail(now, limit).await
    }

    async fn ticket_with_messages(&self, id: TicketId) -> StoreResult<Option<(Ticket, Vec<Message>)>> {
        let started = {
            let state = lock(&self.state);
            if let Some((entry, _)) = state.slots.get(&id).and_then(|s| s.value.as_ref()) {
                let entry = entry.clone();
                drop(state);
                return Ok(Some((*entry).clone()));
            }
            state.clock
        };
        let read = self.inner.ticket_with_messages(id).await?;
        if let Some(found) = &read {
            lock(&self.state).fill(id, started, Arc::new(found.clone()));
        }
        Ok(read)
    }

    async fn reserve_signin_attempt(
        &self,
        key: &ThrottleKey,
        now: Timestamp,
        window: Duration,
        max: u32,
    ) -> StoreResult<SigninSlot> {
        self.inner.reserve_signin_attempt(key, now, window, max).await
    }

    async fn release_signin_attempt(&self, key: &ThrottleKey, started_at: Timestamp) -> StoreResult<()> {
        self.inner.release_signin_attempt(key, started_at).await
    }

    async fn clear_signin_failures(&self, key: &ThrottleKey) -> StoreResult<()> {
        self.inner.clear_signin_failures(key).await
    }

    async fn list_tickets(&self, org: OrgId, filter: &TicketFilter, page: PageRequest) -> StoreResult<TicketPage> {
        // Lists come from SQLite's indexes: a page is one range read already.
        self.inner.list_tickets(org, filter, page).await
    }

    async fn due_auto_closes(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Ticket>> {
        // The sweeper re-reads each ticket through `ticket`, so an index read is enough.
        self.inner.due_auto_closes(now, limit).await
    }

    // Inbound mail touches no cached ticket.
    async fn save_inbound(&self, receipt: &InboundReceipt, raw: &[u8]) -> StoreResult<StoredInbound> {
        self.inner.save_inbound(receipt, raw).await
    }

    async fn finish_inbound(
        &self,
        key: &str,
        outcome: &str,
        ticket: Option<TicketId>,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.inner.finish_inbound(key, outcome, ticket, at).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::{Db, SqliteStore};
    use crate::domain::{Domain, Response, Status};
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn system() -> Cause {
        Cause::new(crate::domain::Actor::System, Timestamp::now())
    }

    struct Desk {
        _dir: tempfile::TempDir,
        store: Arc<CachedStore<SqliteStore>>,
        admin: AdminId,
        org: OrgId,
    }

    async fn desk(max_entries: usize) -> Desk {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let store = Arc::new(CachedStore::with_bounds(
            SqliteStore::new(db),
            max_entries,
            DEFAULT_MAX_BYTES,
        ));
        let org = Org {
            id: OrgId::new(),
            name: "Acme".into(),
            domain: Domain::from_trusted("acme.example".into()),
            created_at: Timestamp::now(),
        };
        store.create_org(&org, &SecretHash::of("s")).await.unwrap();
        let admin = Admin {
            id: AdminId::new(),
            org_id: org.id,
            first_name: "Ana".into(),
            last_name: "A".into(),
            email: Email::from_trusted("ana@acme.example".into()),
            available: true,
            created_at: Timestamp::now(),
            role: crate::domain::AdminRole::Full,
        };
        store.create_admin(&admin, "hash").await.unwrap();
        Desk {
            _dir: dir,
            store,
            admin: admin.id,
            org: org.id,
        }
    }

    impl Desk {
        async fn file_ticket(&self, title: &str) -> Ticket {
            let now = Timestamp::now();
            let ticket = Ticket {
                id: TicketId::new(),
                org_id: self.org,
                title: title.into(),
                description: "d".into(),
                added_by: Email::from_trusted("carla@customer.example".into()),
                admin_id: None,
                status: Status::Open,
                created_at: now,
                updated_at: now,
                responded_at: None,
                closed_at: None,
                auto_close_at: None,
                version: 1,
                follow_up_of: None,
            };
            self.store.create_ticket(&ticket, &system()).await.unwrap()
        }

        async fn read(&self, id: TicketId) -> (Ticket, Vec<Message>) {
            self.store.ticket_with_messages(id).await.unwrap().unwrap()
        }
    }

    /// What writers have had acknowledged so far.
    #[derive(Clone, Default)]
    struct Acked {
        version: i64,
        responses: HashSet<ResponseId>,
        sent: HashSet<ResponseId>,
    }

    /// Writers retitle, respond and record deliveries while readers read the
    /// ticket in a loop: every read shows at least what had been acknowledged
    /// when it started.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_read_after_an_acknowledged_write_always_sees_it() {
        let desk = Arc::new(desk(DEFAULT_MAX_ENTRIES).await);
        let id = desk.file_ticket("first").await.id;
        let acked = Arc::new(Mutex::new(Acked::default()));
        let done = Arc::new(AtomicBool::new(false));

        let mut readers = Vec::new();
        for _ in 0..4 {
            let (desk, acked, done) = (desk.clone(), acked.clone(), done.clone());
            readers.push(tokio::spawn(async move {
                let mut reads = 0u64;
                while !done.load(Ordering::SeqCst) {
                    let before = acked.lock().unwrap().clone();
                    let (ticket, responses) = desk.read(id).await;
                    assert!(
                        ticket.version >= before.version,
                        "stale ticket {} < {}",
                        ticket.version,
                        before.version
                    );
                    let seen: HashSet<_> = responses.iter().map(|r| r.id).collect();
                    assert!(before.responses.is_subset(&seen), "an acknowledged response is missing");
                    for r in responses.iter().filter(|r| before.sent.contains(&r.id)) {
                        assert!(
                            matches!(r.delivery, Some(Delivery::Sent { .. })),
                            "an acknowledged delivery is missing"
                        );
                    }
                    reads += 1;
                    tokio::task::yield_now().await;
                }
                reads
            }));
        }

        let mut writers = Vec::new();
        for w in 0..3 {
            let (desk, acked) = (desk.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                for n in 0..40 {
                    loop {
                        let before = desk.store.ticket(id).await.unwrap().unwrap();
                        let mut after = before.clone();
                        after.title = format!("writer {w}, edit {n}");
                        after.version += 1;
                        let result = if n % 2 == 0 {
                            desk.store.update_ticket(&before, &after, &system()).await.map(|_| None)
                        } else {
                            let response = Response {
                                id: ResponseId::new(),
                                ticket_id: id,
                                admin_id: desk.admin,
                                message: format!("reply {w}/{n}"),
                                created_at: Timestamp::now(),
                                delivery: Delivery::new_pending(Timestamp::now()),
                            };
                            let mail = Mail {
                                to: before.added_by.clone(),
                                from: "support@acme.example".into(),
                                subject: "Re".into(),
                                text: response.message.clone(),
                                ticket_id: id,
                                response_id: response.id,
                                reply_to: None,
                                message_id: None,
                            };
                            desk.store
                                .add_message(
                                    &before,
                                    &after,
                                    &Message::from(response.clone()),
                                    Some(&mail),
                                    &system(),
                                )
                                .await
                                .map(|_| Some(response.id))
                        };
                        match result {
                            Ok(response) => {
                                {
                                    let mut a = acked.lock().unwrap();
                                    a.version = a.version.max(after.version);
                                    a.responses.extend(response);
                                }
                                if let Some(r) = response {
                                    // Claimed then recorded: both are writes the cache must see.
                                    let claim = desk
                                        .store
                                        .claim_mail(id, r, Timestamp::now(), Duration::from_secs(60))
                                        .await
                                        .unwrap()
                                        .expect("a new mail is due");
                                    let sent = Delivery::Sent {
                                        message_id: format!("m-{r}"),
                                        at: Timestamp::now(),
                                    };
                                    assert!(desk.store.record_attempt(id, r, &claim.lease, &sent).await.unwrap());
                                    acked.lock().unwrap().sent.insert(r);
                                }
                                break;
                            }
                            Err(StoreError::Conflict(_)) => continue, // another writer won; retry on the new version
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                }
            }));
        }
        for w in writers {
            w.await.unwrap();
        }
        done.store(true, Ordering::SeqCst);
        let mut reads = 0;
        for r in readers {
            reads += r.await.unwrap();
        }
        let (ticket, responses) = desk.read(id).await;
        assert_eq!(ticket.version, 1 + 3 * 40);
        assert_eq!(responses.len(), 3 * 20);
        assert!(
            responses
                .iter()
                .all(|r| matches!(r.delivery, Some(Delivery::Sent { .. })))
        );
        assert!(reads > 120, "readers ran alongside the writers ({reads} reads)");
    }

    /// A client that disconnects mid-write drops the write's future; the write
    /// still commits, and once it has, reads show it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_whose_caller_went_away_is_still_seen() {
        let desk = Arc::new(desk(DEFAULT_MAX_ENTRIES).await);
        let before = desk.file_ticket("before").await;
        desk.read(before.id).await;
        let mut after = before.clone();
        after.title = "after".into();
        after.version += 1;

        let reading = {
            let desk = desk.clone();
            tokio::spawn(async move {
                for _ in 0..200 {
                    desk.read(before.id).await;
                    tokio::task::yield_now().await;
                }
            })
        };
        // Polled once, then dropped: what hyper does when the connection closes.
        let cause = system();
        let mut write = desk.store.update_ticket(&before, &after, &cause);
        let polled = write
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        assert!(polled.is_pending(), "the write was still running when its caller left");
        drop(write);
        while desk.store.ticket(before.id).await.unwrap().unwrap().version == before.version {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        reading.await.unwrap();
        assert_eq!(desk.read(before.id).await.0.title, "after");
    }

    /// The cache holds at most its bound, and what it evicted is read again from SQLite.
    #[tokio::test]
    async fn the_cache_stays_within_its_bound() {
        let desk = desk(5).await;
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(desk.file_ticket(&format!("t{i}")).await.id);
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(desk.read(*id).await.0.title, format!("t{i}"));
            assert!(desk.store.len() <= 5, "{} cached", desk.store.len());
        }
        for (i, id) in ids.iter().enumerate().rev() {
            assert_eq!(desk.read(*id).await.0.title, format!("t{i}"));
        }
        assert_eq!(desk.store.len(), 5);
    }
}
