//! Webhook attempts as tasks of their own, for the long-running processes
//! (ticketd's dispatcher, on either backend): nothing waits for a batch, so
//! a slow endpoint holds only its own attempts. At most
//! [`ENDPOINT_IN_FLIGHT`] run per endpoint, [`ORG_IN_FLIGHT`] per org (when
//! the caller knows it) and the pool's size in all; callers read the due
//! deliveries leaving out what [`DeliveryPool::saturated`] and
//! [`DeliveryPool::under_way`] name, so one endpoint's backlog never hides
//! another's deliveries.

use super::Service;
use super::webhooks::{ENDPOINT_IN_FLIGHT, ORG_IN_FLIGHT};
use crate::domain::{OrgId, WebhookId};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// What [`DeliveryPool::try_start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Started,
    /// Already under way: nothing started.
    UnderWay,
    /// Its endpoint is at its cap (now or already): leave the endpoint out.
    EndpointFull,
    /// Its org is at its cap: leave the org out.
    OrgFull,
    /// The pool is full: start nothing more this round.
    PoolFull,
}

#[derive(Default)]
struct InFlight {
    deliveries: HashSet<String>,
    hooks: HashMap<WebhookId, usize>,
    orgs: HashMap<OrgId, usize>,
}

struct Shared {
    in_flight: Mutex<InFlight>,
    idle: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, InFlight> {
        self.in_flight.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}

/// Held by an attempt's task: when it ends (or is dropped), the delivery is
/// no longer under way.
struct Running {
    shared: Arc<Shared>,
    hook: WebhookId,
    org: Option<OrgId>,
    key: String,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        s.deliveries.remove(&self.key);
        decrement(&mut s.hooks, &self.hook);
        if let Some(org) = &self.org {
            decrement(&mut s.orgs, org);
        }
        let idle = s.deliveries.is_empty();
        drop(s);
        if idle {
            self.shared.idle.notify_waiters();
        }
    }
}

pub struct DeliveryPool {
    permits: Arc<Semaphore>,
    shared: Arc<Shared>,
}

impl DeliveryPool {
    /// A pool of at most `size` attempts at once.
    pub fn new(size: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(size)),
            shared: Arc::new(Shared {
                in_flight: Mutex::default(),
                idle: Notify::new(),
            }),
        }
    }

    /// How a delivery is named in [`DeliveryPool::under_way`].
    pub fn key(hook: WebhookId, id: &str) -> String {
        format!("{hook} {id}")
    }

    /// Whether another attempt could start now.
    pub fn has_room(&self) -> bool {
        self.permits.available_permits() > 0
    }

    /// The endpoints and orgs at their caps.
    pub fn saturated(&self) -> (Vec<WebhookId>, Vec<OrgId>) {
        let s = self.shared.lock();
        let hooks = s.hooks.iter().filter(|(_, n)| **n >= ENDPOINT_IN_FLIGHT);
        let orgs = s.orgs.iter().filter(|(_, n)| **n >= ORG_IN_FLIGHT);
        (hooks.map(|(h, _)| *h).collect(), orgs.map(|(o, _)| *o).collect())
    }

    /// The deliveries under way, as [`DeliveryPool::key`] names them.
    pub fn under_way(&self) -> Vec<String> {
        self.shared.lock().deliveries.iter().cloned().collect()
    }

    /// Starts one attempt at a delivery (`org`, when known, counts toward
    /// its org's cap) as a task of its own, if the caps allow.
    pub fn try_start(&self, service: &Service, hook: WebhookId, org: Option<OrgId>, id: String) -> Start {
        let key = Self::key(hook, &id);
        {
            let mut s = self.shared.lock();
            if s.deliveries.contains(&key) {
                return Start::UnderWay;
            }
            if s.hooks.get(&hook).is_some_and(|n| *n >= ENDPOINT_IN_FLIGHT) {
                return Start::EndpointFull;
            }
            if org.is_some_and(|o| s.orgs.get(&o).is_some_and(|n| *n >= ORG_IN_FLIGHT)) {
                return Start::OrgFull;
            }
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                return Start::PoolFull;
            };
            s.deliveries.insert(key.clone());
            *s.hooks.entry(hook).or_default() += 1;
            if let Some(org) = org {
                *s.orgs.entry(org).or_default() += 1;
            }
            let running = Running {
                shared: self.shared.clone(),
                hook,
                org,
                key,
                _permit: permit,
            };
            let service = service.clone();
            tokio::spawn(async move {
                let _running = running;
                if let Err(e) = service.deliver_webhook(hook, &id).await {
                    tracing::warn!(error = %e, "webhook delivery not recorded; retried when due");
                }
            });
        }
        Start::Started
    }

    /// Resolves once no attempt is under way.
    pub async fn idle(&self) {
        loop {
            let notified = self.shared.idle.notified();
            if self.shared.lock().deliveries.is_empty() {
                return;
            }
            notified.await;
        }
    }
}
