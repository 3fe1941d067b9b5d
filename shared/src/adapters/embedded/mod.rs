//! The embedded adapter set: SQLite store (behind a ticket cache), outbox
//! mailer, persistent close jobs.

mod cache;
mod db;
mod history_store;
mod idem_store;
mod inbound_store;
mod jobs;
mod key_store;
mod lists;
mod mail_store;
mod outbox;
mod rate_limits;
mod rows;
mod store;
mod webhook_dispatch;
mod webhook_store;

pub use cache::CachedStore;
pub use db::Db;
pub use inbound_store::{InboundCount, inbound_counts};
pub use jobs::{JobRunner, JobView, LocalScheduler, recent_jobs};
pub use outbox::{MailView, OutboxMailer, recent_mail};
pub use rate_limits::{SqliteLimits, sweep_expired};
pub use store::SqliteStore;
pub use webhook_dispatch::{DISPATCH_EVERY, DISPATCH_IN_FLIGHT, WebhookDispatcher};
pub use webhook_store::SqliteWebhooks;

use crate::adapters::webhook_http::HttpWebhookClient;
use crate::ports::{Clock, Ports, RateLimiter, WebhookClient};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Notify;

/// The embedded parts over one database file.
pub struct Embedded {
    pub db: Arc<Db>,
    /// One cache per database: every `Ports` shares it, so a write through
    /// any of them invalidates what the others read.
    store: Arc<CachedStore<SqliteStore>>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    webhooks: Arc<SqliteWebhooks>,
    webhook_client: Arc<dyn WebhookClient>,
    limits: Arc<dyn RateLimiter>,
}

impl Embedded {
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let db = Db::open(path)?;
        Ok(Self {
            store: Arc::new(CachedStore::new(SqliteStore::new(db.clone()))),
            webhooks: Arc::new(SqliteWebhooks::new(db.clone())),
            webhook_client: HttpWebhookClient::new(false),
            limits: Arc::new(SqliteLimits::new(db.clone())),
            db,
            clock,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Deliveries may reach private addresses over plain http
    /// (`--allow-private-webhooks`: local development and tests only).
    pub fn allow_private_webhooks(mut self) -> Self {
        self.webhook_client = HttpWebhookClient::new(true);
        self
    }

    pub fn ports(&self) -> Ports {
        Ports {
            store: self.store.clone(),
            mailer: Arc::new(OutboxMailer::new(self.db.clone(), self.clock.clone())),
            scheduler: Arc::new(LocalScheduler::new(
                self.db.clone(),
                self.clock.clone(),
                self.wake.clone(),
            )),
            clock: self.clock.clone(),
            webhooks: self.webhooks.clone(),
            webhook_client: self.webhook_client.clone(),
            limits: self.limits.clone(),
        }
    }

    /// The task that fans out the webhook outbox and sends due deliveries.
    pub fn webhook_dispatcher(&self) -> WebhookDispatcher {
        WebhookDispatcher::new(self.webhooks.clone())
    }

    /// The task that runs close jobs; spawn it beside the server.
    pub fn job_runner(&self) -> JobRunner {
        JobRunner {
            db: self.db.clone(),
            clock: self.clock.clone(),
            wake: self.wake.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lists::list_query;
    use super::*;
    use crate::domain::{AdminId, Email, OrgId, PagePosition, PageRequest, Status, TicketFilter, TicketId, Timestamp};

    /// Every filter combination, first page and later pages, is an index
    /// search with no table scan and no sort.
    #[test]
    fn every_list_filter_is_served_by_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let conn = rusqlite::Connection::open(db.path()).unwrap();
        let after = PagePosition {
            created_at: Timestamp::from_millis(5),
            id: TicketId::new(),
        };
        for mask in 0..8u8 {
            for page_after in [None, Some(after)] {
                let filter = TicketFilter {
                    admin_id: (mask & 1 != 0).then(AdminId::new),
                    status: (mask & 2 != 0).then_some(Status::Open),
                    customer: (mask & 4 != 0).then(|| Email::from_trusted("c@x.io".into())),
                };
                let (sql, values) = list_query(
                    OrgId::new(),
                    &filter,
                    PageRequest {
                        limit: 50,
                        after: page_after,
                    },
                );
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                let plan: Vec<String> = stmt
                    .query_map(rusqlite::params_from_iter(values), |r| r.get::<_, String>(3))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                let plan = plan.join(" | ");
                assert!(
                    plan.contains("SEARCH tickets USING INDEX tickets_by_"),
                    "{filter:?}: {plan}"
                );
                assert!(!plan.contains("SCAN"), "{filter:?}: {plan}");
                assert!(!plan.contains("TEMP B-TREE"), "{filter:?}: {plan}");
            }
        }
    }
}
