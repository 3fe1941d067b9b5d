//! The dispatcher ticketd runs beside the server (what the stream, the
//! sender function and the sweeper do on AWS): every [`DISPATCH_EVERY`] it
//! fans the outbox out into deliveries and starts the due ones, each as a
//! task of its own. Nothing waits for a batch: a slow endpoint holds only
//! its own attempts. At most [`crate::service::ENDPOINT_IN_FLIGHT`]
//! attempts run per endpoint, [`crate::service::ORG_IN_FLIGHT`] per org and
//! [`DISPATCH_IN_FLIGHT`] in all ([`DeliveryPool`]);
//! the due deliveries are read leaving out the endpoints and orgs at their
//! caps, so one endpoint's backlog never fills the page and another org's
//! first attempt starts in the next round at the latest.

use super::webhook_store::SqliteWebhooks;
use crate::domain::Timestamp;
use crate::domain::webhooks::DELIVERY_RETENTION;
use crate::service::{DeliveryPool, Service, Start};
use std::sync::Arc;
use std::time::Duration;

/// How often the dispatcher looks: the first attempt comes within this of the commit.
pub const DISPATCH_EVERY: Duration = Duration::from_secs(1);
/// How often it removes deliveries past [`DELIVERY_RETENTION`].
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// Attempts under way at once, all endpoints together (each holds a socket
/// for up to the 10 s timeout, and little else).
pub const DISPATCH_IN_FLIGHT: usize = 64;
/// Deliveries removed per transaction, so a large backlog never holds the
/// write lock for long.
const PURGE_BATCH: usize = 1000;
/// Due deliveries one read takes; a round reads again while pages come back
/// full and attempts can start (each read leaves out what the last filled).
const DUE_PAGE: usize = 100;
const READS_PER_ROUND: usize = 8;
/// How long shutdown waits for attempts under way; one cut short is retried
/// when its claim runs out (at least once).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

pub struct WebhookDispatcher {
    store: Arc<SqliteWebhooks>,
    pool: DeliveryPool,
}

impl WebhookDispatcher {
    pub(super) fn new(store: Arc<SqliteWebhooks>) -> Self {
        Self {
            store,
            pool: DeliveryPool::new(DISPATCH_IN_FLIGHT),
        }
    }

    /// One round as the background task runs it: fan out what the outbox
    /// holds (each message removed only once its deliveries exist: at least
    /// once), start the due attempts that fit under the caps (not waiting for
    /// them), and tell the admins of endpoints disabled since; how many
    /// attempts it started.
    pub async fn tick(&self, service: &Service) -> anyhow::Result<usize> {
        // One delete for the batch (a write per message would double the
        // write transactions of every ticket change); on an error, those
        // fanned out so far are removed and the rest wait for the next round.
        let mut done = Vec::new();
        for (event, message) in self.store.outbox(100).await? {
            if let Err(e) = service.fan_out_webhook(&message).await {
                self.store.remove_from_outbox(done).await?;
                return Err(e.into());
            }
            done.push(event);
        }
        self.store.remove_from_outbox(done).await?;
        let started = self.start_due(service).await?;
        service.send_webhook_notices(None).await?;
        Ok(started)
    }

    /// A round that waits for the attempts it started before telling the
    /// admins of disabled endpoints (tests step the dispatcher with it).
    pub async fn round(&self, service: &Service) -> anyhow::Result<usize> {
        let started = self.tick(service).await?;
        self.idle().await;
        service.send_webhook_notices(None).await?;
        Ok(started)
    }

    /// Resolves once no attempt is under way.
    pub async fn idle(&self) {
        self.pool.idle().await;
    }

    /// Starts each due delivery that fits under the caps as a task of its own.
    async fn start_due(&self, service: &Service) -> anyhow::Result<usize> {
        let (mut skip_hooks, mut skip_orgs) = self.pool.saturated();
        let mut skip_deliveries = self.pool.under_way();
        let mut started = 0;
        for _ in 0..READS_PER_ROUND {
            if !self.pool.has_room() {
                break;
            }
            let page = self
                .store
                .due_for_dispatch(service.now(), DUE_PAGE, &skip_hooks, &skip_orgs, &skip_deliveries)
                .await?;
            let full = page.len() == DUE_PAGE;
            for (hook, org, id) in page {
                if skip_hooks.contains(&hook) || skip_orgs.contains(&org) {
                    continue;
                }
                skip_deliveries.push(DeliveryPool::key(hook, &id));
                match self.pool.try_start(service, hook, Some(org), id) {
                    Start::Started => started += 1,
                    Start::UnderWay => {}
                    Start::EndpointFull => skip_hooks.push(hook),
                    Start::OrgFull => skip_orgs.push(org),
                    Start::PoolFull => return Ok(started),
                }
            }
            if !full {
                break;
            }
        }
        Ok(started)
    }

    /// Removes finished deliveries made more than [`DELIVERY_RETENTION`]
    /// ago (what DynamoDB's TTL does on AWS); how many.
    pub async fn purge(&self, service: &Service) -> anyhow::Result<usize> {
        let retention = i64::try_from(DELIVERY_RETENTION.as_millis()).unwrap_or(i64::MAX);
        let before = Timestamp::from_millis(service.now().millis().saturating_sub(retention));
        let mut total = 0;
        loop {
            let removed = self.store.purge_deliveries(before, PURGE_BATCH).await?;
            total += removed;
            if removed < PURGE_BATCH {
                return Ok(total);
            }
        }
    }

    pub async fn run(self, service: Service, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut next_purge = tokio::time::Instant::now();
        loop {
            if let Err(e) = self.tick(&service).await {
                tracing::warn!(error = %format!("{e:#}"), "webhook dispatch failed; retried next round");
            }
            if tokio::time::Instant::now() >= next_purge {
                next_purge += PURGE_EVERY;
                if let Err(e) = self.purge(&service).await {
                    tracing::warn!(error = %format!("{e:#}"), "old webhook deliveries not removed; retried in an hour");
                }
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(DISPATCH_EVERY) => {}
            }
        }
        let _ = tokio::time::timeout(SHUTDOWN_WAIT, self.idle()).await;
    }
}
