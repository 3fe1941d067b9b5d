//! The AWS adapter set: DynamoDB store, SES mailer, EventBridge Scheduler,
//! and the wiring that builds them once per process, shared by every request.
//!
//! - `settings`: where the resources are, from the environment
//! - `sdk`: the SDK configuration and HTTPS client
//! - `dynamo` (+ `dynamo_lists`) and `items`: the store and its one item mapping

mod calls;
mod dynamo;
mod dynamo_lists;
mod dynamo_mail;
mod errors;
pub mod items;
mod mail_events;
mod resources;
mod scheduler;
mod sdk;
mod ses;
mod settings;

pub use calls::DynamoCalls;
pub use dynamo::DynamoStore;
pub use dynamo_lists::QueryStats;
pub use mail_events::{MailNotice, handle_mail_message, parse_mail_event, poll_mail_events};
pub use resources::{create_missing_resources, mail_events_queue_url};
pub use scheduler::{CloseEvent, EventBridgeScheduler, at_expression, schedule_name};
pub use sdk::{DEFAULT_CALL_TIMEOUT, ROOTS, endpoint_override, sdk_config, sdk_config_at};
pub use ses::{SesMailer, TAG_RESPONSE, TAG_TICKET};
pub use settings::*;

use crate::domain::CloseJob;
use crate::ports::{Ports, SystemClock};
use crate::service::{CloseOutcome, Service};
use aws_config::SdkConfig;
use std::sync::Arc;

/// The AWS clients and the adapters over them.
#[derive(Clone)]
pub struct AwsAdapters {
    pub store: Arc<DynamoStore>,
    pub mailer: Arc<SesMailer>,
    pub scheduler: Arc<EventBridgeScheduler>,
    /// DynamoDB calls made so far, by operation.
    pub dynamo_calls: DynamoCalls,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub ses: aws_sdk_ses::Client,
    pub schedules: aws_sdk_scheduler::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsAdapters {
    pub fn new(sdk: &SdkConfig, settings: &AwsSettings) -> Self {
        let dynamo_calls = DynamoCalls::default();
        let dynamo = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(sdk)
                .interceptor(dynamo_calls.clone())
                .build(),
        );
        let ses = aws_sdk_ses::Client::new(sdk);
        let schedules = aws_sdk_scheduler::Client::new(sdk);
        Self {
            store: Arc::new(DynamoStore::new(dynamo.clone(), &settings.table)),
            mailer: Arc::new(SesMailer::new(ses.clone(), settings.configuration_set.clone())),
            scheduler: Arc::new(EventBridgeScheduler::new(
                schedules.clone(),
                settings.schedule_group.clone(),
                settings.close_function_arn.clone(),
                settings.scheduler_role_arn.clone(),
                settings.dead_letter_arn.clone(),
            )),
            dynamo_calls,
            dynamo,
            ses,
            schedules,
            sqs: aws_sdk_sqs::Client::new(sdk),
        }
    }

    pub fn ports(&self) -> Ports {
        Ports {
            store: self.store.clone(),
            mailer: self.mailer.clone(),
            scheduler: self.scheduler.clone(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The service on AWS, configured from the environment: what each Lambda
/// function builds once, before its first invocation.
pub async fn service_from_env() -> anyhow::Result<Service> {
    let config = AwsConfig::from_env()?;
    let adapters = AwsAdapters::new(&sdk_config().await, &config.settings);
    Ok(Service::new(adapters.ports(), &config.service)?)
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
