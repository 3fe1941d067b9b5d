//! The embedded adapter set: `ticketd` in-process on a fresh data dir.

use super::{AdapterSet, Deployment, SentMail, TestConfig};
use async_trait::async_trait;
use std::time::Duration;
use tempfile::TempDir;

pub struct EmbeddedSet;

/// The dashboard's token in every embedded deployment (the cases read mail there).
const DASHBOARD_TOKEN: &str = "dashboard-token-for-the-contract-cases-0123";

struct Running {
    _dir: TempDir,
    config: ticketd::Config,
    server: Option<ticketd::Server>,
    base_url: String,
    http: reqwest::Client,
}

#[async_trait]
impl AdapterSet for EmbeddedSet {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn start(&self, test: TestConfig) -> anyhow::Result<Box<dyn Deployment>> {
        Ok(self.start_with_db(test).await?.0)
    }
}

impl EmbeddedSet {
    /// A deployment, and its database for tests that play a crash's damage.
    pub async fn start_with_db(
        &self,
        test: TestConfig,
    ) -> anyhow::Result<(Box<dyn Deployment>, std::sync::Arc<ticketing::adapters::embedded::Db>)> {
        let dir = tempfile::tempdir()?;
        let mut config = ticketd::Config::new("127.0.0.1:0".parse()?, dir.path().join("data"));
        config.auto_close_after = test.auto_close_after;
        config.reopen_window = test.reopen_window;
        config.signin = test.signin;
        config.reconcile_interval = test.reconcile_interval;
        config.allow_private_webhooks = test.allow_private_webhooks;
        config.limits = test.limits.clone();
        config.dashboard_token = Some(DASHBOARD_TOKEN.into());
        if let Some((domain, token)) = test.inbound {
            config.inbound_domain = Some(domain);
            config.inbound_token = Some(token);
            config.inbound_authserv_id = Some(crate::inbound::AUTHSERV_ID.into());
        }
        // The key file ticketd reads, holding the tests' known key (kid "0"),
        // which then serves every case, as in a real data dir.
        std::fs::create_dir_all(&config.data_dir)?;
        std::fs::write(
            config.data_dir.join(ticketd::JWT_KEYS_FILE),
            super::jwt_ring().to_json(),
        )?;
        let server = ticketd::start(config.clone()).await?;
        let db = server.db.clone().expect("the embedded database");
        let running = Running {
            base_url: format!("http://{}", server.addr),
            server: Some(server),
            _dir: dir,
            config,
            http: reqwest::Client::new(),
        };
        Ok((Box::new(running), db))
    }
}

#[async_trait]
impl Deployment for Running {
    fn base_url(&self) -> String {
        self.base_url.clone()
    }

    async fn mails_to(&self, to: &str) -> anyhow::Result<Vec<SentMail>> {
        let body: serde_json::Value = self
            .http
            .get(format!("{}/dashboard/api/mail", self.base_url))
            .header("x-dashboard-token", DASHBOARD_TOKEN)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut mails: Vec<SentMail> = body["mail"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m["to"] == to)
            .map(|m| SentMail {
                to: m["to"].as_str().unwrap_or_default().into(),
                subject: m["subject"].as_str().unwrap_or_default().into(),
                text: m["text"].as_str().unwrap_or_default().into(),
                reply_to: m["replyTo"].as_str().map(str::to_owned),
            })
            .collect();
        mails.reverse();
        Ok(mails)
    }

    async fn reply_key(&self) -> anyhow::Result<ticketing::auth::ReplyKey> {
        ticketd::keys::reply_key(&self.config.data_dir)
    }

    async fn open_ticket_counts(&self, org_id: &str) -> anyhow::Result<std::collections::HashMap<String, i64>> {
        let conn = rusqlite::Connection::open_with_flags(
            self.config.data_dir.join(ticketd::DB_FILE),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let mut stmt = conn.prepare("SELECT id, open_tickets FROM admins WHERE org_id = ?1")?;
        let rows = stmt.query_map([org_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn restart(&mut self, downtime: Duration) -> anyhow::Result<()> {
        if let Some(server) = self.server.take() {
            server.shutdown().await?;
        }
        tokio::time::sleep(downtime).await;
        let server = ticketd::start(self.config.clone()).await?;
        self.base_url = format!("http://{}", server.addr);
        self.server = Some(server);
        Ok(())
    }

    async fn stop(mut self: Box<Self>) -> anyhow::Result<()> {
        if let Some(server) = self.server.take() {
            server.shutdown().await?;
        }
        Ok(())
    }
}
