//! Where the AWS resources are and how the service behaves on them: read
//! once from the environment (the variables template.yaml sets), with
//! defaults only for local runs.

use crate::domain::duration::parse_duration;
use crate::domain::limits::Limits;
use crate::service;

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
    /// The SQS queue collecting what failed after Lambda's own retries: close
    /// invocations (async on-failure destination) and stream batches
    /// (reconcile's on-failure destination). The sweeper drains it.
    pub failure_queue_arn: String,
    /// The Secrets Manager secret (ARN or name) holding the JWT verify keys
    /// (`auth::VerifyKeys`: public keys, no signing key); set only for the
    /// functions that verify or sign JWTs.
    pub jwt_secret_arn: Option<String>,
    /// The secret holding the JWT signing ring (`auth::KeyRing`); set only
    /// where tokens are signed (admin-signin, ticketd), which also publishes
    /// the ring's verify keys to [`Self::jwt_secret_arn`].
    pub jwt_signing_secret_arn: Option<String>,
    /// The SES configuration set every mail is sent with: its event
    /// destination reports deliveries, bounces and complaints.
    pub configuration_set: String,
    /// The SQS queue those reports arrive in, for `ticketd --backend aws` to
    /// poll (a Lambda gets them from its event source instead). Optional.
    pub mail_events_queue_url: Option<String>,
    /// Inbound email (optional): the domain reply addresses are at.
    pub inbound_domain: Option<String>,
    /// The Secrets Manager secret holding the reply key; set only for the
    /// functions that render reply addresses (`respond`) or check them
    /// (`inbound-email`).
    pub reply_key_secret_arn: Option<String>,
    /// The webhook-sender function's queue (set for the functions that queue
    /// attempts: reconcile, webhook-sender). Without it new deliveries wait
    /// in the table for the sweep (ticketd sweeps every tick).
    pub webhook_queue_url: Option<String>,
    /// Where SES stores inbound mail (`TICKETING_INBOUND_BUCKET` and
    /// `TICKETING_INBOUND_PREFIX`): set for inbound-email, which reads it, and
    /// the sweeper, which re-applies what inbound-email failed on.
    pub inbound_bucket: Option<super::inbound_mail::InboundBucket>,
}

/// Everything a Lambda function needs, read once from the environment.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    pub settings: AwsSettings,
    pub service: service::Settings,
}

pub const ENV_TABLE: &str = "TICKETING_TABLE";
pub const ENV_MAIL_FROM: &str = "TICKETING_MAIL_FROM";
pub const ENV_SCHEDULE_GROUP: &str = "TICKETING_SCHEDULE_GROUP";
pub const ENV_CLOSE_FUNCTION_ARN: &str = "TICKETING_CLOSE_FUNCTION_ARN";
pub const ENV_SCHEDULER_ROLE_ARN: &str = "TICKETING_SCHEDULER_ROLE_ARN";
pub const ENV_DEAD_LETTER_ARN: &str = "TICKETING_SCHEDULE_DLQ_ARN";
pub const ENV_FAILURE_QUEUE_ARN: &str = "TICKETING_FAILURE_QUEUE_ARN";
/// Optional: the secret holding the JWT verify keys (see `jwt_keys`).
/// Functions without it serve no JWT route, and cannot read the keys.
pub const ENV_JWT_SECRET_ARN: &str = "TICKETING_JWT_SECRET_ARN";
/// Optional: the secret holding the JWT signing ring: admin-signin only.
pub const ENV_JWT_SIGNING_SECRET_ARN: &str = "TICKETING_JWT_SIGNING_SECRET_ARN";
pub const ENV_SES_CONFIGURATION_SET: &str = "TICKETING_SES_CONFIGURATION_SET";
/// Optional (ticketd only): see [`AwsSettings::mail_events_queue_url`].
pub const ENV_MAIL_EVENTS_QUEUE_URL: &str = "TICKETING_MAIL_EVENTS_QUEUE_URL";
/// Optional: inbound email's domain; with [`ENV_REPLY_KEY_ARN`], responses carry a reply address.
pub const ENV_INBOUND_DOMAIN: &str = "TICKETING_INBOUND_DOMAIN";
/// Optional: the secret holding the reply key (see `reply_key`).
pub const ENV_REPLY_KEY_ARN: &str = "TICKETING_REPLY_KEY_ARN";
/// Optional: see [`AwsSettings::webhook_queue_url`].
pub const ENV_WEBHOOK_QUEUE_URL: &str = "TICKETING_WEBHOOK_QUEUE_URL";
pub const ENV_AUTO_CLOSE_AFTER: &str = "TICKETING_AUTO_CLOSE_AFTER";
/// How long after closing a customer's reply reopens a ticket (default 7d).
pub const ENV_REOPEN_WINDOW: &str = "TICKETING_REOPEN_WINDOW";
/// Optional: sign-in throttle (defaults: 5 failures per email and client, 20 per client, per 15m).
pub const ENV_SIGNIN_MAX_FAILURES: &str = "TICKETING_SIGNIN_MAX_FAILURES";
pub const ENV_SIGNIN_MAX_CLIENT_FAILURES: &str = "TICKETING_SIGNIN_MAX_CLIENT_FAILURES";
pub const ENV_SIGNIN_WINDOW: &str = "TICKETING_SIGNIN_WINDOW";
pub const ENV_PASSWORD_HASH_CONCURRENCY: &str = "TICKETING_PASSWORD_HASH_CONCURRENCY";
/// Optional: `true` applies inbound mail whose `From` domain is not
/// authenticated by SES's SPF/DKIM/DMARC verdicts (local use only; default false).
pub const ENV_INBOUND_ALLOW_UNAUTHENTICATED: &str = "TICKETING_INBOUND_ALLOW_UNAUTHENTICATED";
/// Optional: how often an assignee is mailed about one ticket's customer replies (default 10m).
pub const ENV_REPLY_NOTICE_EVERY: &str = "TICKETING_REPLY_NOTICE_EVERY";
/// Optional: how long raw inbound mail a DynamoDB item keeps is kept (default 30d).
pub const ENV_INBOUND_RETENTION: &str = "TICKETING_INBOUND_RETENTION";
// Rate limits: `TICKETING_LIMIT_<NAME>=N/DURATION`, one per `domain::limits::Limit`.
/// Optional: one endpoint for every AWS client, e.g. a local moto under
/// `sam local`. Declared empty in template.yaml (AWS's own endpoints) so that
/// `sam local --env-vars` can set it.
pub const ENV_AWS_ENDPOINT_URL: &str = "TICKETING_AWS_ENDPOINT_URL";
/// Optional: the time budget of one AWS call, e.g. `4s` (see `sdk`).
pub const ENV_AWS_TIMEOUT: &str = "TICKETING_AWS_TIMEOUT";
/// Optional: `true` trusts the system's CA bundle instead of the compiled-in AWS roots (see `sdk`).
pub const ENV_TLS_NATIVE_ROOTS: &str = "TICKETING_TLS_NATIVE_ROOTS";

/// Local runs (`ticketd --backend aws` against moto): names of the table and
/// schedule group when no variable says otherwise.
pub const LOCAL_TABLE: &str = "ticketing";
pub const LOCAL_SCHEDULE_GROUP: &str = "ticketing-auto-close";
pub const LOCAL_CONFIGURATION_SET: &str = "ticketing-mail";

/// Local runs: the mail-events queue `create_missing_resources` makes for a
/// table (one per table, so deployments sharing a moto never take each
/// other's events).
pub fn local_mail_events_queue(table: &str) -> String {
    format!("{table}-mail-events")
}
/// Placeholder ARNs for local runs: they only matter to schedules, which
/// moto stores but never fires.
pub const LOCAL_CLOSE_FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:ticketing-close-ticket";
pub const LOCAL_SCHEDULER_ROLE_ARN: &str = "arn:aws:iam::000000000000:role/ticketing-scheduler";
pub const LOCAL_DEAD_LETTER_ARN: &str = "arn:aws:sqs:us-east-1:000000000000:ticketing-close-dlq";
const LOCAL_SQS_ARN_PREFIX: &str = "arn:aws:sqs:us-east-1:000000000000:";
/// The JWT key secret's name for local runs (created with a generated key
/// by `create_missing_resources`).
pub const LOCAL_JWT_SECRET: &str = "ticketing-jwt-keys";
/// The JWT signing secret's name for local runs (created likewise).
pub const LOCAL_JWT_SIGNING_SECRET: &str = "ticketing-jwt-signing-keys";
/// The reply key secret's name for local runs (created by `create_missing_resources`).
pub const LOCAL_REPLY_KEY_SECRET: &str = "ticketing-reply-key";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set (see template.yaml for what each function needs)")]
    Missing(&'static str),
    #[error("environment variable {0}: {1}")]
    Invalid(&'static str, String),
}

impl AwsSettings {
    /// Settings for a local run: the given names, placeholder ARNs. The one
    /// builder tests and `ticketd` use.
    pub fn local(table: impl Into<String>, schedule_group: impl Into<String>, mail_from: impl Into<String>) -> Self {
        let table = table.into();
        Self {
            // Named after the table, so deployments sharing one moto never
            // drain each other's failures.
            failure_queue_arn: format!("{LOCAL_SQS_ARN_PREFIX}{table}-failures"),
            table,
            mail_from: mail_from.into(),
            schedule_group: schedule_group.into(),
            close_function_arn: LOCAL_CLOSE_FUNCTION_ARN.into(),
            scheduler_role_arn: LOCAL_SCHEDULER_ROLE_ARN.into(),
            dead_letter_arn: LOCAL_DEAD_LETTER_ARN.into(),
            jwt_secret_arn: Some(LOCAL_JWT_SECRET.into()),
            jwt_signing_secret_arn: Some(LOCAL_JWT_SIGNING_SECRET.into()),
            configuration_set: LOCAL_CONFIGURATION_SET.into(),
            mail_events_queue_url: None,
            inbound_domain: None,
            reply_key_secret_arn: Some(LOCAL_REPLY_KEY_SECRET.into()),
            webhook_queue_url: None,
            inbound_bucket: None,
        }
    }

    /// Every variable required (a deployed function must never fall back to a default).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let need = |k: &'static str| non_empty(&get, k).ok_or(ConfigError::Missing(k));
        Ok(Self {
            table: need(ENV_TABLE)?,
            mail_from: need(ENV_MAIL_FROM)?,
            schedule_group: need(ENV_SCHEDULE_GROUP)?,
            close_function_arn: need(ENV_CLOSE_FUNCTION_ARN)?,
            scheduler_role_arn: need(ENV_SCHEDULER_ROLE_ARN)?,
            dead_letter_arn: need(ENV_DEAD_LETTER_ARN)?,
            failure_queue_arn: need(ENV_FAILURE_QUEUE_ARN)?,
            jwt_secret_arn: non_empty(&get, ENV_JWT_SECRET_ARN),
            jwt_signing_secret_arn: non_empty(&get, ENV_JWT_SIGNING_SECRET_ARN),
            configuration_set: need(ENV_SES_CONFIGURATION_SET)?,
            mail_events_queue_url: non_empty(&get, ENV_MAIL_EVENTS_QUEUE_URL),
            inbound_domain: non_empty(&get, ENV_INBOUND_DOMAIN),
            reply_key_secret_arn: non_empty(&get, ENV_REPLY_KEY_ARN),
            webhook_queue_url: non_empty(&get, ENV_WEBHOOK_QUEUE_URL),
            inbound_bucket: super::inbound_mail::InboundBucket::from_lookup(&get),
        })
    }

    /// These settings with each variable that `get` has set taking precedence.
    pub fn overridden_by(self, get: impl Fn(&str) -> Option<String>) -> Self {
        let or = |k: &str, v: String| non_empty(&get, k).unwrap_or(v);
        Self {
            table: or(ENV_TABLE, self.table),
            mail_from: or(ENV_MAIL_FROM, self.mail_from),
            schedule_group: or(ENV_SCHEDULE_GROUP, self.schedule_group),
            close_function_arn: or(ENV_CLOSE_FUNCTION_ARN, self.close_function_arn),
            scheduler_role_arn: or(ENV_SCHEDULER_ROLE_ARN, self.scheduler_role_arn),
            dead_letter_arn: or(ENV_DEAD_LETTER_ARN, self.dead_letter_arn),
            failure_queue_arn: or(ENV_FAILURE_QUEUE_ARN, self.failure_queue_arn),
            jwt_secret_arn: non_empty(&get, ENV_JWT_SECRET_ARN).or(self.jwt_secret_arn),
            jwt_signing_secret_arn: non_empty(&get, ENV_JWT_SIGNING_SECRET_ARN).or(self.jwt_signing_secret_arn),
            configuration_set: or(ENV_SES_CONFIGURATION_SET, self.configuration_set),
            mail_events_queue_url: non_empty(&get, ENV_MAIL_EVENTS_QUEUE_URL).or(self.mail_events_queue_url),
            inbound_domain: non_empty(&get, ENV_INBOUND_DOMAIN).or(self.inbound_domain),
            reply_key_secret_arn: non_empty(&get, ENV_REPLY_KEY_ARN).or(self.reply_key_secret_arn),
            webhook_queue_url: non_empty(&get, ENV_WEBHOOK_QUEUE_URL).or(self.webhook_queue_url),
            inbound_bucket: super::inbound_mail::InboundBucket::from_lookup(&get).or(self.inbound_bucket),
        }
    }
}

/// A limit's variable name for [`ConfigError`] (made once per bad setting, at start).
fn leak(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

fn non_empty(get: &impl Fn(&str) -> Option<String>, k: &str) -> Option<String> {
    get(k).filter(|v| !v.trim().is_empty())
}

impl AwsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let settings = AwsSettings::from_lookup(&get)?;
        let delay = get(ENV_AUTO_CLOSE_AFTER).ok_or(ConfigError::Missing(ENV_AUTO_CLOSE_AFTER))?;
        let auto_close_after = parse_duration(&delay).map_err(|e| ConfigError::Invalid(ENV_AUTO_CLOSE_AFTER, e))?;
        let reopen_window = match get(ENV_REOPEN_WINDOW) {
            Some(v) => parse_duration(&v).map_err(|e| ConfigError::Invalid(ENV_REOPEN_WINDOW, e))?,
            None => service::DEFAULT_REOPEN_WINDOW,
        };
        let mut signin = service::SigninLimit::default();
        if let Some(v) = get(ENV_SIGNIN_MAX_FAILURES) {
            signin.max_failures = v
                .parse()
                .map_err(|_| ConfigError::Invalid(ENV_SIGNIN_MAX_FAILURES, "must be a whole number".into()))?;
        }
        if let Some(v) = get(ENV_SIGNIN_MAX_CLIENT_FAILURES) {
            signin.max_client_failures = v
                .parse()
                .map_err(|_| ConfigError::Invalid(ENV_SIGNIN_MAX_CLIENT_FAILURES, "must be a whole number".into()))?;
        }
        if let Some(v) = get(ENV_SIGNIN_WINDOW) {
            signin.window = parse_duration(&v).map_err(|e| ConfigError::Invalid(ENV_SIGNIN_WINDOW, e))?;
        }
        if let Some(v) = get(ENV_PASSWORD_HASH_CONCURRENCY) {
            signin.hashes.max_concurrent = v.parse().ok().filter(|n| (1..=256).contains(n)).ok_or_else(|| {
                ConfigError::Invalid(
                    ENV_PASSWORD_HASH_CONCURRENCY,
                    "must be a whole number from 1 to 256".into(),
                )
            })?;
        }
        let mut limits = Limits::from_lookup(&get).map_err(|(var, e)| ConfigError::Invalid(leak(var), e))?;
        if let Some(v) = non_empty(&get, ENV_REPLY_NOTICE_EVERY) {
            limits.reply_notice_every =
                parse_duration(&v).map_err(|e| ConfigError::Invalid(ENV_REPLY_NOTICE_EVERY, e))?;
        }
        if let Some(v) = non_empty(&get, ENV_INBOUND_RETENTION) {
            limits.inbound_retention =
                parse_duration(&v).map_err(|e| ConfigError::Invalid(ENV_INBOUND_RETENTION, e))?;
        }
        let allow_unauthenticated = match non_empty(&get, ENV_INBOUND_ALLOW_UNAUTHENTICATED)
            .as_deref()
            .map(str::trim)
        {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(ConfigError::Invalid(
                    ENV_INBOUND_ALLOW_UNAUTHENTICATED,
                    "must be true or false".into(),
                ));
            }
        };
        Ok(Self {
            service: service::Settings {
                limits,
                // The keys come from the secret, through the adapters (`AwsAdapters::jwt_keys`).
                jwt_keys: service::KeyConfig::None,
                auto_close_after,
                reopen_window,
                mail_from: settings.mail_from.clone(),
                signin,
                // The key comes from its secret, through the adapters (`AwsAdapters::reply_keys`).
                inbound: service::InboundSettings {
                    domain: settings.inbound_domain.clone(),
                    reply_key: service::ReplyKeyConfig::None,
                    allow_unauthenticated,
                    // SES's receipt verdicts are used, not a header.
                    trusted_authserv_id: None,
                },
            },
            settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    fn env() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            (ENV_TABLE, "tickets"),
            (ENV_MAIL_FROM, "support@example.com"),
            (ENV_SCHEDULE_GROUP, "ticketing"),
            (ENV_CLOSE_FUNCTION_ARN, "arn:aws:lambda:eu-west-1:1:function:close"),
            (ENV_SCHEDULER_ROLE_ARN, "arn:aws:iam::1:role/scheduler"),
            (ENV_DEAD_LETTER_ARN, "arn:aws:sqs:eu-west-1:1:dlq"),
            (ENV_FAILURE_QUEUE_ARN, "arn:aws:sqs:eu-west-1:1:failures"),
            (ENV_SES_CONFIGURATION_SET, "ticketing-mail"),
            (ENV_AUTO_CLOSE_AFTER, "30d"),
        ])
    }

    #[test]
    fn config_reads_every_variable() {
        let env = env();
        let c = AwsConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.settings.table, "tickets");
        assert_eq!(c.service.auto_close_after, Duration::from_secs(30 * 86_400));
        assert_eq!(c.service.mail_from, "support@example.com");
    }

    #[test]
    fn a_missing_variable_is_named() {
        for missing in env().keys() {
            let mut env = env();
            env.remove(missing);
            let err = AwsConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).expect_err("fails");
            assert!(err.to_string().contains(missing), "{err}");
        }
    }

    #[test]
    fn limits_and_inbound_auth_are_read_with_defaults() {
        let mut env = env();
        let c = AwsConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.service.limits, Limits::default());
        assert!(!c.service.inbound.allow_unauthenticated);
        env.insert("TICKETING_LIMIT_FOLLOW_UPS_PER_ORG", "3/1m");
        env.insert(ENV_INBOUND_ALLOW_UNAUTHENTICATED, "true");
        env.insert(ENV_INBOUND_RETENTION, "2d");
        let c = AwsConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.service.limits.follow_ups_per_org.limit, 3);
        assert_eq!(c.service.limits.inbound_retention, Duration::from_secs(2 * 86_400));
        assert!(c.service.inbound.allow_unauthenticated);
        env.insert("TICKETING_LIMIT_MAIL_PER_ORG", "lots");
        let err = AwsConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap_err();
        assert!(err.to_string().contains("TICKETING_LIMIT_MAIL_PER_ORG"), "{err}");
    }

    #[test]
    fn bad_delay_is_rejected() {
        let mut env = env();
        env.insert(ENV_AUTO_CLOSE_AFTER, "soon");
        assert!(AwsConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).is_err());
    }

    #[test]
    fn the_jwt_secret_is_optional_and_read_when_set() {
        let mut env = env();
        let get = |env: &HashMap<&str, &str>| AwsSettings::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(get(&env).jwt_secret_arn, None, "a function without JWT routes");
        env.insert(ENV_JWT_SECRET_ARN, "arn:aws:secretsmanager:eu-west-1:1:secret:jwt");
        assert_eq!(
            get(&env).jwt_secret_arn.as_deref(),
            Some("arn:aws:secretsmanager:eu-west-1:1:secret:jwt")
        );
    }

    #[test]
    fn local_runs_take_defaults_that_variables_override() {
        let local = AwsSettings::local(LOCAL_TABLE, LOCAL_SCHEDULE_GROUP, "s@x.io");
        let env = HashMap::from([(ENV_TABLE, "mine"), (ENV_SCHEDULE_GROUP, " ")]);
        let s = local.overridden_by(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(s.table, "mine");
        assert_eq!(s.schedule_group, LOCAL_SCHEDULE_GROUP, "a blank variable is unset");
        assert_eq!(s.close_function_arn, LOCAL_CLOSE_FUNCTION_ARN);
        assert_eq!(s.jwt_secret_arn.as_deref(), Some(LOCAL_JWT_SECRET));
        assert_eq!(s.jwt_signing_secret_arn.as_deref(), Some(LOCAL_JWT_SIGNING_SECRET));
    }
}
