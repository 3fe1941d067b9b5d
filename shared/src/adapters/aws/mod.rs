//! The AWS adapter set: DynamoDB store, SES mailer, EventBridge Scheduler.
//! Clients are built once per process and shared by every request.

mod calls;
mod dynamo;
mod errors;
pub mod items;
mod resources;
mod scheduler;
mod ses;

pub use calls::DynamoCalls;
pub use dynamo::{DynamoStore, QueryStats};
pub use resources::create_missing_resources;
pub use scheduler::{CloseEvent, EventBridgeScheduler, at_expression, schedule_name};
pub use ses::SesMailer;

use crate::domain::duration::parse_duration;
use crate::ports::SystemClock;
use crate::service::{self, Ports, Service};
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig, retry::RetryConfig};
use std::sync::Arc;
use std::time::Duration;

/// Where the AWS resources are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    pub table: String,
    /// Sender of response emails; must be an SES-verified identity.
    pub mail_from: String,
    pub schedule_group: String,
    /// The close-ticket function the schedules invoke.
    pub close_function_arn: String,
    /// The role EventBridge Scheduler assumes to invoke it.
    pub scheduler_role_arn: String,
    /// Where Scheduler sends invocations that kept failing.
    pub dead_letter_arn: String,
}

/// Everything a Lambda function needs, read once from the environment.
#[derive(Clone)]
pub struct AwsConfig {
    pub settings: AwsSettings,
    pub jwt_secret: String,
    pub auto_close_after: Duration,
    pub signin: service::SigninLimit,
}

pub const ENV_TABLE: &str = "TICKETING_TABLE";
pub const ENV_MAIL_FROM: &str = "TICKETING_MAIL_FROM";
pub const ENV_SCHEDULE_GROUP: &str = "TICKETING_SCHEDULE_GROUP";
pub const ENV_CLOSE_FUNCTION_ARN: &str = "TICKETING_CLOSE_FUNCTION_ARN";
pub const ENV_SCHEDULER_ROLE_ARN: &str = "TICKETING_SCHEDULER_ROLE_ARN";
pub const ENV_DEAD_LETTER_ARN: &str = "TICKETING_SCHEDULE_DLQ_ARN";
pub const ENV_JWT_SECRET: &str = "TICKETING_JWT_SECRET";
pub const ENV_AUTO_CLOSE_AFTER: &str = "TICKETING_AUTO_CLOSE_AFTER";
/// Optional: sign-in throttle (defaults: 5 failures per 15m).
pub const ENV_SIGNIN_MAX_FAILURES: &str = "TICKETING_SIGNIN_MAX_FAILURES";
pub const ENV_SIGNIN_WINDOW: &str = "TICKETING_SIGNIN_WINDOW";
/// Optional: one endpoint for every AWS client, e.g. a local moto under
/// `sam local`. Declared empty in template.yaml (AWS's own endpoints) so that
/// `sam local --env-vars` can set it.
pub const ENV_AWS_ENDPOINT_URL: &str = "TICKETING_AWS_ENDPOINT_URL";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set (see template.yaml for what each function needs)")]
    Missing(&'static str),
    #[error("environment variable {0}: {1}")]
    Invalid(&'static str, String),
}

impl AwsSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let need = |k: &'static str| get(k).filter(|v| !v.trim().is_empty()).ok_or(ConfigError::Missing(k));
        Ok(Self {
            table: need(ENV_TABLE)?,
            mail_from: need(ENV_MAIL_FROM)?,
            schedule_group: need(ENV_SCHEDULE_GROUP)?,
            close_function_arn: need(ENV_CLOSE_FUNCTION_ARN)?,
            scheduler_role_arn: need(ENV_SCHEDULER_ROLE_ARN)?,
            dead_letter_arn: need(ENV_DEAD_LETTER_ARN)?,
        })
    }
}

impl AwsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let settings = AwsSettings::from_lookup(&get)?;
        let jwt_secret = get(ENV_JWT_SECRET)
            .filter(|v| !v.is_empty())
            .ok_or(ConfigError::Missing(ENV_JWT_SECRET))?;
        if jwt_secret.len() < 32 {
            return Err(ConfigError::Invalid(
                ENV_JWT_SECRET,
                "must be at least 32 characters".into(),
            ));
        }
        let delay = get(ENV_AUTO_CLOSE_AFTER).ok_or(ConfigError::Missing(ENV_AUTO_CLOSE_AFTER))?;
        let auto_close_after = parse_duration(&delay).map_err(|e| ConfigError::Invalid(ENV_AUTO_CLOSE_AFTER, e))?;
        let mut signin = service::SigninLimit::default();
        if let Some(v) = get(ENV_SIGNIN_MAX_FAILURES) {
            signin.max_failures = v
                .parse()
                .map_err(|_| ConfigError::Invalid(ENV_SIGNIN_MAX_FAILURES, "must be a whole number".into()))?;
        }
        if let Some(v) = get(ENV_SIGNIN_WINDOW) {
            signin.window = parse_duration(&v).map_err(|e| ConfigError::Invalid(ENV_SIGNIN_WINDOW, e))?;
        }
        Ok(Self {
            settings,
            jwt_secret,
            auto_close_after,
            signin,
        })
    }
}

/// The SDK configuration: region, credentials and endpoint from the usual
/// sources (`AWS_ENDPOINT_URL` points it at moto, and so does a non-empty
/// [`ENV_AWS_ENDPOINT_URL`]), with bounded timeouts and retries so a dead
/// dependency is a quick 503, never a hang.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_at(endpoint_override(|k| std::env::var(k).ok()).as_deref()).await
}

/// The [`ENV_AWS_ENDPOINT_URL`] override, if set to something.
pub fn endpoint_override(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    get(ENV_AWS_ENDPOINT_URL)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// [`sdk_config`], with every service's endpoint overridden (a private moto).
pub async fn sdk_config_at(endpoint_url: Option<&str>) -> SdkConfig {
    // Seconds per call; raise it for slow stand-ins (moto copies whole tables per transaction).
    let operation = std::env::var("TICKETING_AWS_TIMEOUT")
        .ok()
        .and_then(|v| parse_duration(&v).ok())
        .unwrap_or(Duration::from_secs(4));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(operation / 2)
                .operation_timeout(operation)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_max_backoff(Duration::from_millis(500)),
        );
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The HTTPS client for AWS calls. AWS endpoints chain to the Amazon Trust
/// Services roots (and Starfield Services G2), so only those are trusted,
/// compiled in: parsing the system's whole CA bundle took more than half of a
/// function's cold start. `TICKETING_TLS_NATIVE_ROOTS=true` trusts the system
/// bundle instead (e.g. behind a TLS-inspecting proxy).
fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    const ROOTS: [&[u8]; 5] = [
        include_bytes!("roots/Amazon_Root_CA_1.pem"),
        include_bytes!("roots/Amazon_Root_CA_2.pem"),
        include_bytes!("roots/Amazon_Root_CA_3.pem"),
        include_bytes!("roots/Amazon_Root_CA_4.pem"),
        include_bytes!("roots/Starfield_Services_Root_Certificate_Authority_-_G2.pem"),
    ];
    let native = std::env::var("TICKETING_TLS_NATIVE_ROOTS").is_ok_and(|v| v == "true" || v == "1");
    let trust = ROOTS
        .iter()
        .fold(TrustStore::empty().with_native_roots(native), |t, pem| {
            t.with_pem_certificate(*pem)
        });
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("static TLS settings are valid");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

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
            mailer: Arc::new(SesMailer::new(ses.clone())),
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
    Ok(Service::new(
        adapters.ports(),
        service::Config::new(
            config.jwt_secret.as_bytes(),
            config.auto_close_after,
            config.settings.mail_from,
        )
        .with_signin_limit(config.signin),
    ))
}

/// What the close function does with a schedule's input: close the ticket if
/// it is still RESPONDED for that response. Safe to repeat.
pub async fn handle_close_event(service: &Service, event: CloseEvent) -> crate::Result<crate::service::CloseOutcome> {
    let job = crate::domain::CloseJob {
        ticket_id: event.ticket_id,
        responded_at: event.responded_at,
        due_at: event.responded_at.plus(service.config().auto_close_after),
    };
    service.run_close_job(&job).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            (ENV_TABLE, "tickets"),
            (ENV_MAIL_FROM, "support@example.com"),
            (ENV_SCHEDULE_GROUP, "ticketing"),
            (ENV_CLOSE_FUNCTION_ARN, "arn:aws:lambda:eu-west-1:1:function:close"),
            (ENV_SCHEDULER_ROLE_ARN, "arn:aws:iam::1:role/scheduler"),
            (ENV_DEAD_LETTER_ARN, "arn:aws:sqs:eu-west-1:1:dlq"),
            (ENV_JWT_SECRET, "0123456789abcdef0123456789abcdef"),
            (ENV_AUTO_CLOSE_AFTER, "30d"),
        ])
    }

    #[test]
    fn config_reads_every_variable() {
        let env = env();
        let c = AwsConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.settings.table, "tickets");
        assert_eq!(c.auto_close_after, Duration::from_secs(30 * 86_400));
    }

    #[test]
    fn a_missing_variable_is_named() {
        for missing in env().keys() {
            let mut env = env();
            env.remove(missing);
            let err = AwsConfig::from_lookup(|k| env.get(k).map(|v| v.to_string()))
                .err()
                .expect("fails");
            assert!(err.to_string().contains(missing), "{err}");
        }
    }

    #[test]
    fn the_endpoint_override_applies_only_when_set_to_something() {
        let with = |v: &'static str| move |k: &str| (k == ENV_AWS_ENDPOINT_URL).then(|| v.to_owned());
        assert_eq!(endpoint_override(|_| None), None);
        assert_eq!(endpoint_override(with("")), None);
        assert_eq!(endpoint_override(with("  ")), None);
        assert_eq!(
            endpoint_override(with("http://host.docker.internal:5000")).as_deref(),
            Some("http://host.docker.internal:5000")
        );
    }

    #[test]
    fn bad_delay_and_short_secret_are_rejected() {
        let mut env = env();
        env.insert(ENV_AUTO_CLOSE_AFTER, "soon");
        assert!(AwsConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).is_err());
        let mut env = self::tests::env();
        env.insert(ENV_JWT_SECRET, "short");
        assert!(AwsConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).is_err());
    }
}

#[cfg(test)]
mod roots_tests {
    use base64::Engine;

    /// The compiled-in roots are well-formed certificates (a bad one would
    /// only show as failed TLS handshakes against real AWS).
    #[test]
    fn compiled_in_roots_are_der_certificates() {
        for pem in [
            include_str!("roots/Amazon_Root_CA_1.pem"),
            include_str!("roots/Amazon_Root_CA_2.pem"),
            include_str!("roots/Amazon_Root_CA_3.pem"),
            include_str!("roots/Amazon_Root_CA_4.pem"),
            include_str!("roots/Starfield_Services_Root_Certificate_Authority_-_G2.pem"),
        ] {
            let body: String = pem
                .lines()
                .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
                .skip(1)
                .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
                .collect();
            let der = base64::engine::general_purpose::STANDARD.decode(body).expect("base64");
            // A DER SEQUENCE whose long-form length covers exactly the rest.
            assert_eq!(der[0], 0x30);
            let len_bytes = usize::from(der[1] & 0x7f);
            let len = der[2..2 + len_bytes]
                .iter()
                .fold(0usize, |n, b| (n << 8) | usize::from(*b));
            assert_eq!(len + 2 + len_bytes, der.len());
        }
    }
}
