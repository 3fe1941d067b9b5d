//! The AWS adapter set: `ticketd --backend aws` in-process against moto, each
//! test on its own table and schedule group. moto never fires schedules, so a
//! small pump plays EventBridge Scheduler and Lambda: it reads the stored
//! schedules back and, when one is due, deletes it (`ActionAfterCompletion:
//! DELETE`: Scheduler's part ends when Lambda accepts the async invoke) and
//! hands its Input to the close function's handler; if that fails, it puts
//! Lambda's on-failure record into the failure queue, as close-ticket's
//! `EventInvokeConfig` does once its retries are spent.

use super::{AdapterSet, Deployment, SentMail, TestConfig, unique};
use async_trait::async_trait;
use std::collections::HashMap;
use std::time::Duration;
use ticketing::adapters::aws::{AwsSettings, CloseEvent};
use ticketing::domain::Timestamp;
use ticketing::service::Service;
use tokio::task::JoinHandle;

/// moto's address; `./scripts/test` starts moto and sets it.
pub fn moto_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect(
        "the AWS adapter tests need moto: run ./scripts/test, which starts moto_server and sets AWS_ENDPOINT_URL",
    )
}

/// The moto serving SES. `./scripts/test` gives SES (and Scheduler) a moto of
/// their own: moto keeps a copy of every DynamoDB item it ever touched, which
/// would make reading mail back (`/moto-api/data.json`) slower by the test.
pub fn moto_mail_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_SES").unwrap_or_else(|_| moto_endpoint())
}

pub struct AwsSet;

struct Running {
    config: ticketd::Config,
    server: Option<ticketd::Server>,
    pump: Option<JoinHandle<()>>,
    base_url: String,
}

fn settings() -> AwsSettings {
    // SES identities are global to moto: each deployment verifies its own sender.
    AwsSettings {
        jwt_secret_arn: Some(unique("jwt-keys-")),
        jwt_signing_secret_arn: Some(unique("jwt-signing-keys-")),
        ..AwsSettings::local(
            unique("tickets-"),
            unique("group-"),
            format!("{}@ticketing.example.com", unique("support-")),
        )
    }
}

/// The deployment's key secrets: the signing ring from `JWT_SECRET` (kid
/// `FIXED_KID`, so the cases' hand-made tokens verify) and its verify keys:
/// every case on this set reads its keys from Secrets Manager, as the functions do.
async fn create_key_secret(settings: &AwsSettings) -> anyhow::Result<()> {
    use ticketing::adapters::aws::{SecretsClient, SecretsManagerKeys, sdk_config};
    let signing = settings.jwt_signing_secret_arn.clone().expect("set above");
    SecretsManagerKeys::new(
        SecretsClient::new(&sdk_config().await),
        signing,
        settings.jwt_secret_arn.clone(),
    )
    .create(&super::jwt_ring())
    .await
}

/// A schedule as stored in (moto's) EventBridge Scheduler.
#[derive(Debug, Clone)]
pub struct MotoSchedule {
    pub name: String,
    pub expression: String,
    pub timezone: Option<String>,
    pub target_arn: String,
    pub role_arn: String,
    pub input: serde_json::Value,
    pub action_after_completion: Option<String>,
    pub flexible_window_off: bool,
    pub dead_letter_arn: Option<String>,
    pub max_retries: Option<i32>,
}

impl MotoSchedule {
    pub async fn get(client: &aws_sdk_scheduler::Client, group: &str, name: &str) -> Option<Self> {
        let s = client.get_schedule().group_name(group).name(name).send().await.ok()?;
        let target = s.target()?;
        Some(Self {
            name: name.to_owned(),
            expression: s.schedule_expression().unwrap_or_default().to_owned(),
            timezone: s.schedule_expression_timezone().map(str::to_owned),
            target_arn: target.arn().to_owned(),
            role_arn: target.role_arn().to_owned(),
            input: serde_json::from_str(target.input().unwrap_or("null")).unwrap_or_default(),
            action_after_completion: s.action_after_completion().map(|a| a.as_str().to_owned()),
            flexible_window_off: s.flexible_time_window().is_some_and(|w| w.mode().as_str() == "OFF"),
            dead_letter_arn: target.dead_letter_config().and_then(|d| d.arn()).map(str::to_owned),
            max_retries: target.retry_policy().and_then(|r| r.maximum_retry_attempts()),
        })
    }

    /// When an `at(...)` schedule fires.
    pub fn due(&self) -> Option<Timestamp> {
        let inner = self.expression.strip_prefix("at(")?.strip_suffix(')')?;
        Timestamp::parse_rfc3339(&format!("{inner}Z"))
    }
}

/// Fires due schedules of `group` through the close handler, like Scheduler
/// and Lambda would.
async fn pump(service: Service, aws: ticketing::adapters::aws::AwsAdapters, settings: AwsSettings) {
    let (client, group) = (&aws.schedules, &settings.schedule_group);
    loop {
        if let Ok(list) = client.list_schedules().group_name(group).send().await {
            for summary in list.schedules() {
                let Some(name) = summary.name() else { continue };
                let Some(schedule) = MotoSchedule::get(client, group, name).await else {
                    continue;
                };
                if schedule.due().is_some_and(|due| due <= Timestamp::now())
                    && let Ok(event) = serde_json::from_value::<CloseEvent>(schedule.input.clone())
                    && client
                        .delete_schedule()
                        .group_name(group)
                        .name(name)
                        .send()
                        .await
                        .is_ok()
                    && let Err(e) = ticketing::adapters::aws::handle_close_event(&service, event).await
                {
                    let record =
                        ticketing::adapters::aws::failures::Failure::async_invoke_record(&event, &e.to_string());
                    if let Ok(url) =
                        ticketing::adapters::aws::failures::queue_url(aws.sqs(), &settings.failure_queue_arn).await
                    {
                        let _ = aws
                            .sqs()
                            .send_message()
                            .queue_url(url)
                            .message_body(record)
                            .send()
                            .await;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Running {
    async fn launch(&mut self) -> anyhow::Result<()> {
        let server = ticketd::start(self.config.clone()).await?;
        let ticketd::Backend::Aws { settings, .. } = &self.config.backend else {
            unreachable!()
        };
        let aws = server.aws.clone().expect("AWS adapters");
        self.pump = Some(tokio::spawn(pump(server.service.clone(), aws, settings.clone())));
        self.base_url = format!("http://{}", server.addr);
        self.server = Some(server);
        Ok(())
    }

    async fn halt(&mut self) -> anyhow::Result<()> {
        if let Some(p) = self.pump.take() {
            p.abort();
        }
        if let Some(s) = self.server.take() {
            s.shutdown().await?;
        }
        Ok(())
    }
}

/// What AWS-specific tests reach beside the HTTP API.
#[derive(Clone)]
pub struct AwsHandle {
    pub settings: AwsSettings,
    pub service: Service,
    pub adapters: ticketing::adapters::aws::AwsAdapters,
}

impl AwsSet {
    /// A deployment on fresh resources, and a handle on its AWS side.
    pub async fn start_with_handle(&self, test: TestConfig) -> anyhow::Result<(Box<dyn Deployment>, AwsHandle)> {
        moto_endpoint();
        let settings = settings();
        let mut config = ticketd::Config::new("127.0.0.1:0".parse()?, std::env::temp_dir());
        config.backend = ticketd::Backend::Aws {
            settings: settings.clone(),
            create_resources: true,
            endpoint_url: test.aws_endpoint.clone(),
            // moto serves DynamoDB one request at a time and copies its table
            // for each item of a TransactWriteItems: a burst of creates (each
            // a ticket, a counter and its history events) queues for seconds.
            call_timeout: Some(Duration::from_secs(10)),
        };
        config.auto_close_after = test.auto_close_after;
        config.reopen_window = test.reopen_window;
        config.signin = test.signin;
        config.reconcile_interval = test.reconcile_interval;
        config.allow_private_webhooks = test.allow_private_webhooks;
        config.limits = test.limits.clone();
        if let Some((domain, token)) = test.inbound {
            config.inbound_domain = Some(domain);
            config.inbound_token = Some(token);
            config.inbound_authserv_id = Some(crate::inbound::AUTHSERV_ID.into());
        }
        create_key_secret(&settings).await?;
        let mut running = Running {
            config,
            server: None,
            pump: None,
            base_url: String::new(),
        };
        running.launch().await?;
        let server = running.server.as_ref().expect("running");
        let handle = AwsHandle {
            settings,
            service: server.service.clone(),
            adapters: server.aws.clone().expect("AWS adapters"),
        };
        Ok((Box::new(running), handle))
    }
}

#[async_trait]
impl AdapterSet for AwsSet {
    fn name(&self) -> &'static str {
        "aws"
    }

    async fn start(&self, test: TestConfig) -> anyhow::Result<Box<dyn Deployment>> {
        Ok(self.start_with_handle(test).await?.0)
    }
}

#[async_trait]
impl Deployment for Running {
    fn base_url(&self) -> String {
        self.base_url.clone()
    }

    async fn mails_to(&self, to: &str) -> anyhow::Result<Vec<SentMail>> {
        super::faults::moto_mails_to(to).await
    }

    async fn reply_key(&self) -> anyhow::Result<ticketing::auth::ReplyKey> {
        use ticketing::ports::ReplyKeySource;
        let server = self.server.as_ref().expect("running");
        let aws = server.aws.as_ref().expect("AWS adapters");
        let ticketd::Backend::Aws { settings, .. } = &self.config.backend else {
            unreachable!()
        };
        let secret = settings.reply_key_secret_arn.clone().expect("a reply key secret");
        ticketing::adapters::aws::SecretsManagerReplyKey::new(aws.secrets().clone(), secret)
            .load()
            .await
    }

    async fn open_ticket_counts(&self, org_id: &str) -> anyhow::Result<HashMap<String, i64>> {
        let server = self.server.as_ref().expect("running");
        let counts = server
            .aws
            .as_ref()
            .expect("AWS adapters")
            .store
            .open_ticket_counts(org_id.parse()?)
            .await?;
        Ok(counts.into_iter().map(|(a, n)| (a.to_string(), n)).collect())
    }

    async fn restart(&mut self, downtime: Duration) -> anyhow::Result<()> {
        self.halt().await?;
        tokio::time::sleep(downtime).await;
        self.launch().await
    }

    async fn stop(mut self: Box<Self>) -> anyhow::Result<()> {
        // Drop the table: moto copies every live table on each transaction.
        let server = self.server.as_ref().expect("running");
        let aws = server.aws.clone().expect("AWS adapters");
        self.halt().await?;
        let ticketd::Backend::Aws { settings, .. } = &self.config.backend else {
            unreachable!()
        };
        aws.dynamo.delete_table().table_name(&settings.table).send().await?;
        Ok(())
    }
}
