//! Records every AWS call through an SDK interceptor on each client: how
//! tests and the benchmark prove what each endpoint costs (and that nothing
//! scans), and what IAM must allow each function (functions/tests/iam.rs
//! checks every recorded call against the function's template policy).

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// One AWS call as IAM authorizes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The IAM service prefix: `dynamodb` (streams too), `ses`, `scheduler`,
    /// `sqs`, `secretsmanager`, `s3`.
    pub service: &'static str,
    /// The IAM action: the operation's name; for an item of a
    /// `TransactWriteItems`, the item's own action (`PutItem`, `UpdateItem`,
    /// `DeleteItem`, `ConditionCheckItem`), which is what IAM checks.
    pub action: String,
    /// What the call names, in the service's terms: a table (`table`, or
    /// `table/index/name`), a stream ARN (empty for `GetRecords`, whose
    /// iterator names it), a queue URL or name, a secret id, `bucket/key`,
    /// `group/schedule`, the SES sender.
    pub resource: String,
    /// The item's partition key value (`dynamodb:LeadingKeys`): item calls,
    /// a transaction's items, and a Query on the table itself.
    pub leading_key: Option<String>,
    /// The role a schedule's target passes (`iam:PassRole`).
    pub passed_role: Option<String>,
    /// SES: the configuration set a mail is sent with.
    pub configuration_set: Option<String>,
    /// The answer was an `AccessDenied*` error.
    pub denied: bool,
}

impl Call {
    fn new(service: &'static str, action: &str, resource: impl Into<String>) -> Self {
        Self {
            service,
            action: action.to_owned(),
            resource: resource.into(),
            leading_key: None,
            passed_role: None,
            configuration_set: None,
            denied: false,
        }
    }

    fn key(mut self, key: Option<&HashMap<String, AttributeValue>>) -> Self {
        self.leading_key = key
            .and_then(|k| k.get(super::items::PK))
            .and_then(|v| v.as_s().ok())
            .cloned();
        self
    }

    /// The partition key's prefix up to its first `#` (`ORG#`, `IDEM#`,
    /// `TICKET#`, ...), or the whole key when it has none.
    pub fn key_prefix(&self) -> Option<&str> {
        let key = self.leading_key.as_deref()?;
        Some(key.find('#').map_or(key, |i| &key[..=i]))
    }

    /// `service:Action`, as a policy names it.
    pub fn iam_action(&self) -> String {
        format!("{}:{}", self.service, self.action)
    }
}

#[derive(Debug, Default)]
struct Log {
    /// DynamoDB (table) calls by operation name.
    dynamo: BTreeMap<String, u64>,
    /// Every client's operations by `service:Operation` (`DynamoDB:GetItem`,
    /// `Secrets Manager:GetSecretValue`, `SES:SendEmail`, ...): what the
    /// budget test compares with each function's time budget.
    operations: BTreeMap<String, u64>,
    calls: Vec<Call>,
}

/// The calls made so far by every client it is attached to (one per
/// `AwsAdapters`). Cloning shares the record.
#[derive(Debug, Clone, Default)]
pub struct DynamoCalls(Arc<Mutex<Log>>);

/// Where an operation's calls sit in the log, for marking them denied.
#[derive(Debug, Clone)]
struct Recorded(std::ops::Range<usize>);

impl Storable for Recorded {
    type Storer = StoreReplace<Self>;
}

impl DynamoCalls {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// DynamoDB calls so far, by operation name (`GetItem`, `Query`, ...).
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.log().dynamo.clone()
    }

    /// Returns the DynamoDB calls so far and starts counting from zero.
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut self.log().dynamo)
    }

    /// Returns every client's operations so far, by `service:Operation`,
    /// and starts counting from zero.
    pub fn take_operations(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut self.log().operations)
    }

    /// Every AWS call so far, in the order made.
    pub fn calls(&self) -> Vec<Call> {
        self.log().calls.clone()
    }

    /// Returns every AWS call so far and starts a new record.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.log().calls)
    }
}

/// The calls one operation makes, as IAM sees them, from its input.
fn describe(meta: &Metadata, input: &aws_smithy_runtime_api::client::interceptors::context::Input) -> Vec<Call> {
    use aws_sdk_dynamodb::operation as ddb;
    let action = meta.name();
    macro_rules! as_input {
        ($t:ty) => {
            input.downcast_ref::<$t>()
        };
    }
    let table = |t: Option<&str>| t.unwrap_or_default().to_owned();
    match meta.service() {
        "DynamoDB" => {
            if let Some(i) = as_input!(ddb::get_item::GetItemInput) {
                return vec![Call::new("dynamodb", action, table(i.table_name())).key(i.key())];
            }
            if let Some(i) = as_input!(ddb::put_item::PutItemInput) {
                return vec![Call::new("dynamodb", action, table(i.table_name())).key(i.item())];
            }
            if let Some(i) = as_input!(ddb::update_item::UpdateItemInput) {
                return vec![Call::new("dynamodb", action, table(i.table_name())).key(i.key())];
            }
            if let Some(i) = as_input!(ddb::delete_item::DeleteItemInput) {
                return vec![Call::new("dynamodb", action, table(i.table_name())).key(i.key())];
            }
            if let Some(i) = as_input!(ddb::query::QueryInput) {
                let mut resource = table(i.table_name());
                let mut call = match i.index_name() {
                    Some(index) => {
                        resource.push_str("/index/");
                        resource.push_str(index);
                        Call::new("dynamodb", action, resource)
                    }
                    None => Call::new("dynamodb", action, resource),
                };
                // The table's partition key, as the queries name it (`pk = :pk`).
                if i.index_name().is_none()
                    && let Some(placeholder) = i
                        .key_condition_expression()
                        .and_then(|e| e.strip_prefix("pk = "))
                        .and_then(|e| e.split_whitespace().next())
                {
                    call.leading_key = i
                        .expression_attribute_values()
                        .and_then(|v| v.get(placeholder))
                        .and_then(|v| v.as_s().ok())
                        .cloned();
                }
                return vec![call];
            }
            if let Some(i) = as_input!(ddb::transact_write_items::TransactWriteItemsInput) {
                return i
                    .transact_items()
                    .iter()
                    .filter_map(|item| {
                        if let Some(p) = item.put() {
                            Some(Call::new("dynamodb", "PutItem", p.table_name()).key(Some(p.item())))
                        } else if let Some(u) = item.update() {
                            Some(Call::new("dynamodb", "UpdateItem", u.table_name()).key(Some(u.key())))
                        } else if let Some(d) = item.delete() {
                            Some(Call::new("dynamodb", "DeleteItem", d.table_name()).key(Some(d.key())))
                        } else {
                            item.condition_check()
                                .map(|c| Call::new("dynamodb", "ConditionCheckItem", c.table_name()).key(Some(c.key())))
                        }
                    })
                    .collect();
            }
            if let Some(i) = as_input!(ddb::batch_write_item::BatchWriteItemInput) {
                let mut calls = Vec::new();
                for (t, requests) in i.request_items().into_iter().flatten() {
                    for r in requests {
                        let key = r
                            .put_request()
                            .map(|p| p.item())
                            .or_else(|| r.delete_request().map(|d| d.key()));
                        calls.push(Call::new("dynamodb", action, t.clone()).key(key));
                    }
                }
                return calls;
            }
            vec![Call::new("dynamodb", action, "")]
        }
        "DynamoDB Streams" => {
            use aws_sdk_dynamodbstreams::operation as st;
            let arn = if let Some(i) = as_input!(st::describe_stream::DescribeStreamInput) {
                i.stream_arn()
            } else if let Some(i) = as_input!(st::get_shard_iterator::GetShardIteratorInput) {
                i.stream_arn()
            } else {
                None
            };
            vec![Call::new("dynamodb", action, arn.unwrap_or_default())]
        }
        "SES" => {
            use aws_sdk_ses::operation as ses;
            if let Some(i) = as_input!(ses::send_email::SendEmailInput) {
                let mut call = Call::new("ses", action, i.source().unwrap_or_default());
                call.configuration_set = i.configuration_set_name().map(str::to_owned);
                return vec![call];
            }
            vec![Call::new("ses", action, "")]
        }
        "Scheduler" => {
            use aws_sdk_scheduler::operation as sch;
            let (group, name, role) = if let Some(i) = as_input!(sch::create_schedule::CreateScheduleInput) {
                (i.group_name(), i.name(), i.target().map(|t| t.role_arn()))
            } else if let Some(i) = as_input!(sch::update_schedule::UpdateScheduleInput) {
                (i.group_name(), i.name(), i.target().map(|t| t.role_arn()))
            } else if let Some(i) = as_input!(sch::delete_schedule::DeleteScheduleInput) {
                (i.group_name(), i.name(), None)
            } else if let Some(i) = as_input!(sch::get_schedule::GetScheduleInput) {
                (i.group_name(), i.name(), None)
            } else {
                (None, None, None)
            };
            let resource = format!("{}/{}", group.unwrap_or("default"), name.unwrap_or_default());
            let mut call = Call::new("scheduler", action, resource);
            call.passed_role = role.map(str::to_owned);
            vec![call]
        }
        "SQS" => {
            use aws_sdk_sqs::operation as sqs;
            let queue = if let Some(i) = as_input!(sqs::send_message::SendMessageInput) {
                i.queue_url()
            } else if let Some(i) = as_input!(sqs::send_message_batch::SendMessageBatchInput) {
                i.queue_url()
            } else if let Some(i) = as_input!(sqs::receive_message::ReceiveMessageInput) {
                i.queue_url()
            } else if let Some(i) = as_input!(sqs::delete_message::DeleteMessageInput) {
                i.queue_url()
            } else if let Some(i) = as_input!(sqs::get_queue_url::GetQueueUrlInput) {
                i.queue_name()
            } else {
                None
            };
            vec![Call::new("sqs", action, queue.unwrap_or_default())]
        }
        "Secrets Manager" => {
            use aws_sdk_secretsmanager::operation as sm;
            let id = if let Some(i) = as_input!(sm::get_secret_value::GetSecretValueInput) {
                i.secret_id()
            } else if let Some(i) = as_input!(sm::put_secret_value::PutSecretValueInput) {
                i.secret_id()
            } else {
                None
            };
            vec![Call::new("secretsmanager", action, id.unwrap_or_default())]
        }
        "S3" => {
            use aws_sdk_s3::operation as s3;
            let object = as_input!(s3::get_object::GetObjectInput)
                .map(|i| format!("{}/{}", i.bucket().unwrap_or_default(), i.key().unwrap_or_default()));
            vec![Call::new("s3", action, object.unwrap_or_default())]
        }
        other => vec![Call::new("unknown", action, other)],
    }
}

impl Intercept for DynamoCalls {
    fn name(&self) -> &'static str {
        "AwsCalls"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Once per operation (retries re-enter later phases, not this one).
        if let Some(meta) = cfg.load::<Metadata>() {
            let calls = describe(meta, context.input());
            let mut log = self.log();
            if meta.service() == "DynamoDB" {
                *log.dynamo.entry(meta.name().to_owned()).or_default() += 1;
            }
            *log.operations
                .entry(format!("{}:{}", meta.service(), meta.name()))
                .or_default() += 1;
            let start = log.calls.len();
            log.calls.extend(calls);
            let recorded = Recorded(start..log.calls.len());
            drop(log);
            cfg.interceptor_state().store_put(recorded);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // `AccessDenied` (moto, S3, SES) or `AccessDeniedException` (DynamoDB
        // and the JSON services) in the final answer's body, read by now;
        // not any 403 (a bad signature is one too).
        let denied = context
            .response()
            .and_then(|r| r.body().bytes())
            .is_some_and(|b| String::from_utf8_lossy(b).contains("AccessDenied"));
        if denied && let Some(Recorded(range)) = cfg.load::<Recorded>().cloned() {
            for call in self.log().calls.get_mut(range).into_iter().flatten() {
                call.denied = true;
            }
        }
        Ok(())
    }
}
