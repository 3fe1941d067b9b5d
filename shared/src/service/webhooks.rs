//! Webhooks: admins register endpoints; each message a ticket write committed
//! (the outbox) is fanned out to the endpoints subscribed to its type, and
//! each delivery is attempted, signed, until a 2xx or its retries run out.
//! An endpoint answering 410, or failing for a day, is disabled and its
//! org's admins are emailed.

use super::Service;
use crate::auth::Claims;
use crate::domain::limits::Limit;
use crate::domain::webhooks::{
    self, Attempt, DELIVERY_LEASE, DeliveryState, Health, MAX_WEBHOOKS, StoredWebhook, Webhook, WebhookDelivery,
    WebhookEventType, WebhookMessage, WebhookUrl, generate_webhook_secret,
};
use crate::domain::{Mail, ResponseId, TicketId, WebhookId};
use crate::error::{Error, Result};
use tokio::time::Instant;

/// Deliveries one sweep of due ones reads; more wait for the next.
pub const DUE_PER_SWEEP: usize = 100;
/// Deliveries attempted at once by a sweep.
pub const SWEEP_IN_FLIGHT: usize = 8;
/// Attempts under way at once to one endpoint: a slow one (an endpoint
/// that accepts and never answers holds each for the 10 s timeout) ties up
/// this many, never the others' share.
pub const ENDPOINT_IN_FLIGHT: usize = 4;
/// Attempts under way at once for one org's endpoints together (ticketd's
/// dispatcher; on AWS, the sender function's concurrency bounds them).
pub const ORG_IN_FLIGHT: usize = 8;
/// Deliveries a list shows (the newest).
pub const DELIVERIES_LISTED: usize = 100;
/// Admins told of a disabled endpoint: one page of the admin list, mailed
/// at once (an org with more has its first 100 by id told).
pub const NOTICE_ADMINS: usize = 100;
/// How long creating an endpoint waits for its host to resolve.
pub const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A new endpoint with its signing secret, shown this once.
pub struct IssuedWebhook {
    pub webhook: Webhook,
    pub secret: String,
}

impl Service {
    pub async fn create_webhook(
        &self,
        claims: &Claims,
        url: &str,
        events: Vec<WebhookEventType>,
    ) -> Result<IssuedWebhook> {
        let client = &self.ports.webhook_client;
        let url = WebhookUrl::parse(url, client.allows_private())?;
        match tokio::time::timeout(RESOLVE_TIMEOUT, client.check(&url)).await {
            Ok(Ok(())) => {}
            Ok(Err(why)) => return Err(Error::invalid("url", why)),
            Err(_) => return Err(Error::invalid("url", "the host did not resolve within 3 s")),
        }
        if self.ports.webhooks.webhooks(claims.org).await?.len() >= MAX_WEBHOOKS {
            return Err(Error::Conflict(format!(
                "an org may have at most {MAX_WEBHOOKS} webhooks; delete one first"
            )));
        }
        let secret = generate_webhook_secret();
        let webhook = Webhook {
            id: WebhookId::new(),
            org_id: claims.org,
            url,
            events,
            created_at: self.now(),
            enabled: true,
            disabled_at: None,
            disabled_reason: None,
            failing_since: None,
        };
        self.ports
            .webhooks
            .create_webhook(&StoredWebhook {
                webhook: webhook.clone(),
                secret: secret.clone(),
            })
            .await?;
        Ok(IssuedWebhook { webhook, secret })
    }

    pub async fn webhooks(&self, claims: &Claims) -> Result<Vec<Webhook>> {
        let hooks = self.ports.webhooks.webhooks(claims.org).await?;
        Ok(hooks.into_iter().map(|h| h.webhook).collect())
    }

    async fn own_webhook(&self, claims: &Claims, id: WebhookId) -> Result<StoredWebhook> {
        self.ports
            .webhooks
            .webhook(claims.org, id)
            .await?
            .ok_or(Error::NotFound("webhook"))
    }

    pub async fn delete_webhook(&self, claims: &Claims, id: WebhookId) -> Result<()> {
        match self.ports.webhooks.delete_webhook(claims.org, id).await? {
            true => Ok(()),
            false => Err(Error::NotFound("webhook")),
        }
    }

    /// A new signing secret; the old one signs nothing from now on.
    pub async fn rotate_webhook_secret(&self, claims: &Claims, id: WebhookId) -> Result<String> {
        let secret = generate_webhook_secret();
        match self.ports.webhooks.set_webhook_secret(claims.org, id, &secret).await? {
            true => Ok(secret),
            false => Err(Error::NotFound("webhook")),
        }
    }

    pub async fn webhook_deliveries(&self, claims: &Claims, id: WebhookId) -> Result<Vec<WebhookDelivery>> {
        self.own_webhook(claims, id).await?;
        Ok(self.ports.webhooks.deliveries(id, DELIVERIES_LISTED).await?)
    }

    /// Makes a finished delivery due again with a fresh retry budget; 409 if
    /// it is still pending (its next attempt is already coming).
    pub async fn redeliver(&self, claims: &Claims, id: WebhookId, delivery: &str) -> Result<WebhookDelivery> {
        let hook = self.own_webhook(claims, id).await?;
        if !hook.webhook.enabled {
            return Err(Error::Conflict(
                "the webhook is disabled; create a new one for the endpoint".into(),
            ));
        }
        self.take_slot(Limit::RedeliveriesPerOrg, &claims.org.to_string())
            .await?;
        let found = self
            .ports
            .webhooks
            .delivery(id, delivery)
            .await?
            .ok_or(Error::NotFound("delivery"))?;
        let again = found.redelivered(self.now());
        if !self.ports.webhooks.redeliver(&again).await? {
            return Err(Error::Conflict("the delivery is pending already".into()));
        }
        Ok(again)
    }

    /// Creates `message`'s deliveries, one per enabled endpoint of its org
    /// subscribed to its type; a repeat creates none twice. Returns the new ones.
    pub async fn fan_out_webhook(&self, message: &WebhookMessage) -> Result<Vec<WebhookDelivery>> {
        let now = self.now();
        let deliveries: Vec<WebhookDelivery> = self
            .ports
            .webhooks
            .webhooks(message.org_id)
            .await?
            .iter()
            .filter(|h| h.webhook.wants(message.kind))
            .map(|h| WebhookDelivery::new(message, h.webhook.id, now))
            .collect();
        if deliveries.is_empty() {
            return Ok(vec![]);
        }
        Ok(self.ports.webhooks.create_deliveries(&deliveries).await?)
    }

    /// One attempt at a delivery if it is due and no other sender holds it;
    /// the delivery after it (`None`: nothing attempted).
    pub async fn deliver_webhook(&self, webhook: WebhookId, id: &str) -> Result<Option<WebhookDelivery>> {
        let store = &self.ports.webhooks;
        let Some(claim) = store.claim_delivery(webhook, id, self.now(), DELIVERY_LEASE).await? else {
            return Ok(None);
        };
        let delivery = &claim.delivery;
        let hook = store.webhook(delivery.org_id, webhook).await?;
        let attempt = match &hook {
            Some(h) if h.webhook.enabled => self.attempt(h, delivery).await,
            // Deleted or disabled since: the delivery ends here.
            _ => Attempt {
                at: self.now(),
                status_code: None,
                latency_ms: 0,
                error: Some("the webhook was deleted or disabled".into()),
            },
        };
        let mut after = delivery.after(attempt.clone(), rand::random::<f64>());
        if hook.as_ref().is_none_or(|h| !h.webhook.enabled) {
            (after.state, after.next_attempt_at) = (DeliveryState::Failed, None);
        }
        if !store.record_delivery(&claim, &after).await? {
            // The lease ran out and another sender took over: its record stands.
            return Ok(None);
        }
        tracing::info!(
            webhook = %webhook,
            delivery = %id,
            status_code = attempt.status_code,
            state = after.state.as_str(),
            "webhook attempt"
        );
        // A disabled endpoint's admins are told by the next notice sweep
        // (`send_webhook_notices`), which the mark set here makes find it.
        if let Some(hook) = hook.filter(|h| h.webhook.enabled)
            && let Some(health) = Health::of(&hook.webhook, &attempt)
            && store.set_webhook_health(hook.webhook.org_id, webhook, health).await?
        {
            tracing::warn!(webhook = %webhook, "webhook endpoint disabled");
        }
        Ok(Some(after))
    }

    /// Signs and posts the delivery's body once.
    async fn attempt(&self, hook: &StoredWebhook, delivery: &WebhookDelivery) -> Attempt {
        let at = self.now();
        let timestamp = at.millis() / 1000;
        let Some(signature) = webhooks::sign(&hook.secret, &delivery.id, timestamp, &delivery.body) else {
            return Attempt {
                at,
                status_code: None,
                latency_ms: 0,
                error: Some("the stored signing secret is unreadable; rotate it".into()),
            };
        };
        let headers = [
            ("webhook-id", delivery.id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ];
        let started = Instant::now();
        let result = self
            .ports
            .webhook_client
            .post(&hook.webhook.url, &headers, &delivery.body)
            .await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(code) => Attempt {
                at,
                status_code: Some(code),
                latency_ms,
                error: (!(200..300).contains(&code)).then(|| format!("the endpoint answered {code}")),
            },
            Err(why) => Attempt {
                at,
                status_code: None,
                latency_ms,
                error: Some(why),
            },
        }
    }

    /// Attempts the deliveries due now, up to [`DUE_PER_SWEEP`]: each
    /// endpoint's in order, by up to [`ENDPOINT_IN_FLIGHT`] workers of its
    /// own, [`SWEEP_IN_FLIGHT`] attempts at once in all. No batch waits for
    /// its slowest: an endpoint that never answers holds its own workers,
    /// and every other endpoint's first attempt starts at once. The first
    /// [`SWEEP_IN_FLIGHT`] attempts always run; no later one starts after
    /// `deadline` (so work earlier in a sweep that used up its window, a
    /// backlog of closes, cannot starve the retries); how many were attempted.
    pub async fn deliver_due_webhooks(&self, deadline: Option<Instant>) -> Result<usize> {
        use std::sync::atomic::AtomicUsize;
        let due = self.ports.webhooks.due_deliveries(self.now(), DUE_PER_SWEEP).await?;
        let mut queues: Vec<(WebhookId, std::sync::Mutex<std::collections::VecDeque<String>>)> = Vec::new();
        for (hook, id) in due {
            match queues.iter_mut().find(|(h, _)| *h == hook) {
                Some((_, queue)) => queue.get_mut().unwrap_or_else(|e| e.into_inner()).push_back(id),
                None => queues.push((hook, std::sync::Mutex::new([id].into()))),
            }
        }
        let permits = tokio::sync::Semaphore::new(SWEEP_IN_FLIGHT);
        let (started, attempted) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (permits, started, attempted) = (&permits, &started, &attempted);
        let workers = queues.iter().flat_map(|(hook, queue)| {
            let n = queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len()
                .min(ENDPOINT_IN_FLIGHT);
            (0..n).map(move |_| self.sweep_worker(*hook, queue, permits, started, attempted, deadline))
        });
        futures_util::future::join_all(workers).await;
        Ok(attempted.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// One of an endpoint's workers in a sweep: attempts its deliveries in
    /// order while the sweep's caps and deadline allow.
    async fn sweep_worker(
        &self,
        hook: WebhookId,
        queue: &std::sync::Mutex<std::collections::VecDeque<String>>,
        permits: &tokio::sync::Semaphore,
        started: &std::sync::atomic::AtomicUsize,
        attempted: &std::sync::atomic::AtomicUsize,
        deadline: Option<Instant>,
    ) {
        use std::sync::atomic::Ordering;
        loop {
            let Ok(_permit) = permits.acquire().await else { return };
            if started.load(Ordering::Relaxed) >= SWEEP_IN_FLIGHT && deadline.is_some_and(|d| Instant::now() >= d) {
                return;
            }
            let Some(id) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                return;
            };
            started.fetch_add(1, Ordering::Relaxed);
            match self.deliver_webhook(hook, &id).await {
                Ok(Some(_)) => {
                    attempted.fetch_add(1, Ordering::Relaxed);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "webhook delivery not recorded; retried when due"),
            }
        }
    }

    /// Emails the admins of each disabled endpoint not told yet, starting
    /// none after `deadline`; how many endpoints' admins were told.
    pub async fn send_webhook_notices(&self, deadline: Option<Instant>) -> Result<usize> {
        let pending = self.ports.webhooks.pending_webhook_notices(DUE_PER_SWEEP).await?;
        let mut told = 0;
        for hook in &pending {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            self.send_webhook_notice(hook).await?;
            told += 1;
        }
        Ok(told)
    }

    /// Tells the endpoint's org's admins (the first [`NOTICE_ADMINS`] by id)
    /// that it was disabled, all at once, then clears the mark; a failure
    /// leaves it for the next sweep (a repeat may mail some admins twice:
    /// at least once, not exactly once).
    async fn send_webhook_notice(&self, hook: &Webhook) -> Result<()> {
        let reason = match hook.disabled_reason {
            Some(webhooks::DisabledReason::Gone) => "it answered 410 Gone",
            _ => "every delivery to it failed for 24 hours",
        };
        let admins = self.ports.store.list_admins(hook.org_id, None, NOTICE_ADMINS).await?;
        let sends = admins.iter().take(NOTICE_ADMINS).map(|admin| {
            let mail = Mail {
                to: admin.admin.email.clone(),
                from: self.config.mail_from.clone(),
                subject: "A webhook endpoint was disabled".into(),
                text: format!(
                    "Hello {},\n\nYour org's webhook {} was disabled because {reason}. \
                         No more events are sent to it. Check the endpoint, then register it \
                         again (POST /webhooks) and redeliver what it missed from \
                         GET /webhooks/{}/deliveries.\n",
                    admin.admin.first_name, hook.id, hook.id
                ),
                // Not about a ticket: the ids name the webhook, so the
                // provider's reports on it match no response and are dropped.
                ticket_id: TicketId(hook.id.0),
                response_id: ResponseId::derived(hook.disabled_at.unwrap_or(hook.created_at), &hook.id.to_string()),
                reply_to: None,
                message_id: None,
            };
            async move { self.ports.mailer.send(&mail).await }
        });
        for sent in futures_util::future::join_all(sends).await {
            sent.map_err(|e| Error::Unavailable(anyhow::anyhow!("webhook notice not sent: {e}")))?;
        }
        self.ports.webhooks.clear_webhook_notice(hook.org_id, hook.id).await?;
        Ok(())
    }
}
