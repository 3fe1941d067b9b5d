//! The AWS adapter set: DynamoDB store, SES mailer, EventBridge Scheduler,
//! and the wiring that builds them once per process, shared by every request.
//!
//! - `settings`: where the resources are, from the environment
//! - `sdk`: the SDK configuration and HTTPS client
//! - `budgets`: each function's worst-case time over its AWS calls
//! - `dynamo` (+ `dynamo_lists`) and `items`: the store and its one item mapping

pub mod budgets;
mod calls;
mod dynamo;
mod dynamo_assign;
mod dynamo_history;
mod dynamo_idem;
mod dynamo_inbound;
mod dynamo_keys;
mod dynamo_limits;
mod dynamo_lists;
mod dynamo_mail;
mod dynamo_signin;
mod dynamo_webhooks;
mod errors;
pub mod failures;
pub mod inbound_mail;
pub mod items;
mod jwt_keys;
mod mail_events;
mod reconciler;
mod reply_key;
mod resources;
mod scheduler;
mod sdk;
mod secret_text;
mod ses;
mod settings;
pub mod stream;
mod webhook_queue;

pub use aws_sdk_s3::Client as S3Client;
pub use aws_sdk_secretsmanager::Client as SecretsClient;
pub use calls::{Call, DynamoCalls};
pub use dynamo::DynamoStore;
pub use dynamo_limits::DynamoLimits;
pub use dynamo_lists::QueryStats;
pub use dynamo_webhooks::DynamoWebhooks;
pub use jwt_keys::{KEYS_MAX_AGE, NO_VERIFY_KEYS, SecretsManagerKeys, SecretsManagerVerifyKeys};
pub use mail_events::{MailNotice, handle_mail_message, parse_mail_event, poll_mail_events};
pub use reconciler::{MISSED_AFTER, Reconciler, Sweeper, Tick};
pub use reply_key::SecretsManagerReplyKey;
pub use resources::{create_missing_resources, mail_events_queue_url};
pub use scheduler::{CloseEvent, EventBridgeScheduler, at_expression, schedule_name};
pub use sdk::{
    DEFAULT_CALL_TIMEOUT, LazyClient, ROOTS, call_limits, endpoint_override, sdk_config, sdk_config_at, sdk_config_with,
};
pub use ses::{SesMailer, TAG_RESPONSE, TAG_TICKET};
pub use settings::*;
pub use webhook_queue::{Job as WebhookJob, MAX_DELAY as WEBHOOK_MAX_DELAY, WebhookQueue};

use crate::adapters::webhook_http::HttpWebhookClient;
use crate::domain::CloseJob;
use crate::ports::{Ports, SystemClock};
use crate::service::{CloseOutcome, InlineSend, KeyConfig, ReplyKeyConfig, Service};
use aws_config::SdkConfig;
use std::sync::Arc;

/// The AWS clients and the adapters over them, built once per process and
/// shared by every request.
#[derive(Clone)]
pub struct AwsAdapters {
    pub store: Arc<DynamoStore>,
    pub webhooks: Arc<DynamoWebhooks>,
    pub limits: Arc<DynamoLimits>,
    /// Reaches public addresses only, unless tests allow private ones.
    pub webhook_client: Arc<dyn crate::ports::WebhookClient>,
    pub mailer: Arc<SesMailer>,
    pub scheduler: Arc<EventBridgeScheduler>,
    /// DynamoDB calls made so far, by operation, and every AWS call of
    /// every client here (service, action, what it names).
    pub dynamo_calls: DynamoCalls,
    /// Built at init: every function reads or writes the table.
    pub dynamo: aws_sdk_dynamodb::Client,
    /// The others are built on first use: most functions never send mail,
    /// schedule, read a queue or the stream, or read the JWT keys before
    /// their first request, and each client built at init costs cold-start
    /// time (bench part d).
    pub ses: LazyClient<aws_sdk_ses::Client>,
    pub schedules: LazyClient<aws_sdk_scheduler::Client>,
    sqs: LazyClient<aws_sdk_sqs::Client>,
    streams: LazyClient<aws_sdk_dynamodbstreams::Client>,
    secrets: LazyClient<aws_sdk_secretsmanager::Client>,
    s3: LazyClient<aws_sdk_s3::Client>,
}

/// A client of `sdk`'s configuration with the call recorder attached, built
/// on first use.
macro_rules! lazy {
    ($sdk:expr, $calls:expr, $krate:ident) => {{
        let (sdk, calls) = ($sdk.clone(), $calls.clone());
        LazyClient::new(move || {
            $krate::Client::from_conf($krate::config::Builder::from(&sdk).interceptor(calls).build())
        })
    }};
}

/// S3, for the inbound-email function (path-style addressing against a
/// local endpoint such as moto, where bucket host names do not resolve).
fn lazy_s3(sdk: &SdkConfig, calls: &DynamoCalls) -> LazyClient<aws_sdk_s3::Client> {
    let (sdk, calls) = (sdk.clone(), calls.clone());
    LazyClient::new(move || {
        let local = sdk.endpoint_url().is_some();
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(local)
                .interceptor(calls)
                .build(),
        )
    })
}

impl AwsAdapters {
    pub fn new(sdk: &SdkConfig, settings: &AwsSettings) -> Self {
        let dynamo_calls = DynamoCalls::default();
        let dynamo = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(sdk)
                .interceptor(dynamo_calls.clone())
                .build(),
        );
        let ses = lazy!(sdk, dynamo_calls, aws_sdk_ses);
        let schedules = lazy!(sdk, dynamo_calls, aws_sdk_scheduler);
        let store = Arc::new(DynamoStore::new(dynamo.clone(), &settings.table));
        Self {
            webhooks: Arc::new(DynamoWebhooks(store.clone())),
            limits: Arc::new(DynamoLimits::new(dynamo.clone(), &settings.table)),
            webhook_client: HttpWebhookClient::new(false),
            store,
            mailer: Arc::new(SesMailer::new(ses.clone(), settings.configuration_set.clone())),
            scheduler: Arc::new(EventBridgeScheduler::new(
                schedules.clone(),
                settings.schedule_group.clone(),
                settings.close_function_arn.clone(),
                settings.scheduler_role_arn.clone(),
                settings.dead_letter_arn.clone(),
            )),
            sqs: lazy!(sdk, dynamo_calls, aws_sdk_sqs),
            streams: lazy!(sdk, dynamo_calls, aws_sdk_dynamodbstreams),
            secrets: lazy!(sdk, dynamo_calls, aws_sdk_secretsmanager),
            s3: lazy_s3(sdk, &dynamo_calls),
            dynamo_calls,
            dynamo,
            ses,
            schedules,
        }
    }

    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }

    pub fn streams(&self) -> &aws_sdk_dynamodbstreams::Client {
        &self.streams
    }

    pub fn secrets(&self) -> &aws_sdk_secretsmanager::Client {
        &self.secrets
    }

    pub fn s3(&self) -> &aws_sdk_s3::Client {
        &self.s3
    }

    /// The webhook-sender function's queue, when the settings name one.
    pub fn webhook_queue(&self, settings: &AwsSettings) -> Option<WebhookQueue> {
        let url = settings.webhook_queue_url.clone()?;
        Some(WebhookQueue::new(self.sqs.clone(), url))
    }

    /// The JWT keys from the settings' secrets, read on first use (not at
    /// init: see docs/ARCHITECTURE.md), with a client built then: the signing
    /// ring where one is named (admin-signin), else the verify keys; none
    /// without a secret.
    pub fn jwt_keys(&self, settings: &AwsSettings) -> KeyConfig {
        match (&settings.jwt_signing_secret_arn, &settings.jwt_secret_arn) {
            (Some(signing), verify) => KeyConfig::Source(Arc::new(SecretsManagerKeys::new(
                self.secrets.clone(),
                signing.clone(),
                verify.clone(),
            ))),
            (None, Some(verify)) => KeyConfig::Source(Arc::new(SecretsManagerVerifyKeys::new(
                self.secrets.clone(),
                verify.clone(),
            ))),
            (None, None) => KeyConfig::None,
        }
    }

    /// The reply key from the settings' secret, read on first use; none
    /// without a secret (a function that renders or reads no reply address).
    pub fn reply_keys(&self, settings: &AwsSettings) -> ReplyKeyConfig {
        match &settings.reply_key_secret_arn {
            Some(arn) => {
                ReplyKeyConfig::Source(Arc::new(SecretsManagerReplyKey::new(self.secrets.clone(), arn.clone())))
            }
            None => ReplyKeyConfig::None,
        }
    }

    pub fn ports(&self) -> Ports {
        Ports {
            store: self.store.clone(),
            mailer: self.mailer.clone(),
            scheduler: self.scheduler.clone(),
            clock: Arc::new(SystemClock),
            webhooks: self.webhooks.clone(),
            webhook_client: self.webhook_client.clone(),
            limits: self.limits.clone(),
        }
    }

    /// Deliveries may reach private addresses over plain http (tests, local development).
    pub fn allow_private_webhooks(mut self) -> Self {
        self.webhook_client = HttpWebhookClient::new(true);
        self
    }
}

/// The service on AWS, configured from the environment: what each Lambda
/// function builds once, before its first invocation.
pub async fn service_from_env() -> anyhow::Result<Service> {
    Ok(wiring_from_env().await?.0)
}

/// The service and the adapters under it (for the functions that also read
/// queues and the stream), configured from the environment.
pub async fn wiring_from_env() -> anyhow::Result<(Service, AwsAdapters, AwsSettings)> {
    let mut config = AwsConfig::from_env()?;
    let adapters = AwsAdapters::new(&sdk_config().await, &config.settings);
    config.service.jwt_keys = adapters.jwt_keys(&config.settings);
    config.service.inbound.reply_key = adapters.reply_keys(&config.settings);
    // On Lambda the instance freezes once the answer is returned: respond's
    // inline mail attempt must end with the request (budgets.rs, INLINE_SEND).
    let service = Service::new(adapters.ports(), &config.service)?.with_inline_send(InlineSend::Cut);
    read_keys_at_init(&service).await?;
    Ok((service, adapters, config.settings))
}

/// Reads the reply key, when the function has one (respond, inbound-email,
/// the sweeper), before the first invocation: at init, outside the
/// function's timeout, so no request waits on Secrets Manager for it (it
/// never rotates). A failure fails the init, which Lambda retries.
pub async fn read_keys_at_init(service: &Service) -> anyhow::Result<()> {
    service
        .config()
        .reply_keys
        .get()
        .await
        .map_err(|e| anyhow::anyhow!("reading the reply key at init: {e}"))?;
    Ok(())
}

/// What the close function does with a schedule's input: close the ticket if
/// it is still RESPONDED for that response. Safe to repeat.
pub async fn handle_close_event(service: &Service, event: CloseEvent) -> crate::Result<CloseOutcome> {
    let job = CloseJob {
        ticket_id: event.ticket_id,
        responded_at: event.responded_at,
        due_at: event.responded_at.plus(service.config().auto_close_after),
    };
    service.run_close_job(&job).await
}
