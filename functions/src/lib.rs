//! What every Lambda binary shares: build the service once from the
//! environment (clients outside the handler, reused across invocations), then
//! serve one endpoint, the close function, or the mail-events function.

pub mod emf;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use lambda_runtime::{LambdaEvent, service_fn};
use ticketing::adapters::aws::stream::{Record, StreamEvent};
use ticketing::adapters::aws::{self, CloseEvent};
use ticketing::http::client_ip::SourceIp;
use ticketing::http::{self, Endpoint};
use ticketing::service::Service;

/// How the functions write their logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One line of text per event (sam local, a function with `LogFormat: Text`).
    Text,
    /// One JSON object per line, fields at the top level, which CloudWatch
    /// Logs Insights queries by name (`LoggingConfig: LogFormat: JSON`).
    Json,
}

impl LogFormat {
    /// JSON when Lambda says its log format is JSON (`AWS_LAMBDA_LOG_FORMAT`).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Self {
        match get("AWS_LAMBDA_LOG_FORMAT") {
            Some(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }
}

/// The level filter: `RUST_LOG`, else the function's `ApplicationLogLevel`
/// (`AWS_LAMBDA_LOG_LEVEL`), else info.
pub fn log_filter(get: impl Fn(&str) -> Option<String>) -> tracing_subscriber::EnvFilter {
    get("RUST_LOG")
        .or_else(|| get("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_ascii_lowercase()))
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"))
}

/// The functions' subscriber, writing to `writer`: what `init_tracing`
/// installs over stdout, and what tests capture. In JSON (on Lambda), an
/// Embedded Metric Format object follows each line that counts a business
/// metric (`emf`), its `Function` dimension Lambda's function name.
pub fn log_subscriber<W>(
    format: LogFormat,
    filter: tracing_subscriber::EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Clone + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer.clone())
        .with_ansi(false);
    match format {
        // The Lambda runtime's span adds requestId and xrayTraceId; the
        // request span adds our request_id to whatever the service logs.
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(true)
                .finish()
                .with(emf::EmfLayer::new(
                    writer,
                    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into()),
                )),
        ),
        // CloudWatch stamps the time; no colours in log files.
        LogFormat::Text => Box::new(builder.without_time().finish()),
    }
}

fn init_tracing() {
    let env = |k: &str| std::env::var(k).ok();
    let subscriber = log_subscriber(LogFormat::from_env(env), log_filter(env), std::io::stdout);
    // Only fails if one is set already, which then keeps logging.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The router one endpoint's function serves: that route only.
pub fn app(service: Service, endpoint: Endpoint) -> axum::Router {
    http::router(service, &[endpoint]).layer(axum::middleware::map_request(source_ip))
}

/// Marks the request with the client address API Gateway saw
/// (`requestContext.http.sourceIp`): the TCP peer of a function is API
/// Gateway itself, and `X-Forwarded-For` is whatever the client wrote.
async fn source_ip(mut req: axum::extract::Request) -> axum::extract::Request {
    let ip = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.as_deref().and_then(|ip| ip.parse().ok()),
        _ => None,
    };
    if let Some(ip) = ip {
        req.extensions_mut().insert(SourceIp(ip));
    }
    req
}

/// Runs an HTTP endpoint's function.
pub async fn serve(endpoint: Endpoint) -> Result<(), lambda_http::Error> {
    init_tracing();
    let service = aws::service_from_env().await?;
    lambda_http::run(app(service, endpoint)).await
}

/// The close function's handler: closes the ticket only if it is still
/// RESPONDED for the response the schedule was made for. An error makes
/// Scheduler retry (and finally dead-letter) the invocation.
pub async fn close_ticket(service: &Service, event: CloseEvent) -> Result<serde_json::Value, lambda_runtime::Error> {
    let outcome = aws::handle_close_event(service, event).await?;
    Ok(serde_json::json!({ "ticketId": event.ticket_id, "outcome": outcome.to_string() }))
}

/// Runs the close function.
pub async fn serve_close() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let service = aws::service_from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<CloseEvent>| {
        let service = service.clone();
        async move { close_ticket(&service, event.payload).await }
    }))
    .await
}

/// The reconcile function's handler: applies a batch of table-stream records
/// (schedules follow tickets, new responses get their email). A failed record
/// is reported by its sequence number, so Lambda retries the batch from
/// there (bisecting it), and after its retries hands the batch's position to
/// the on-failure destination for the sweeper.
pub async fn reconcile(service: &Service, effects: aws::stream::Effects<'_>, event: StreamEvent) -> serde_json::Value {
    let records: Vec<Record> = event.records.iter().map(Record::from).collect();
    let failures: Vec<serde_json::Value> = aws::stream::apply_records(service, effects, &records, None)
        .await
        .map(|i| serde_json::json!({ "itemIdentifier": records[i].sequence_number }))
        .into_iter()
        .collect();
    serde_json::json!({ "batchItemFailures": failures })
}

/// Runs the reconcile function (DynamoDB stream event source).
pub async fn serve_reconcile() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let (service, adapters, settings) = aws::wiring_from_env().await?;
    let queue = adapters.webhook_queue(&settings);
    lambda_runtime::run(service_fn(|event: LambdaEvent<StreamEvent>| {
        let (service, adapters, queue) = (service.clone(), adapters.clone(), queue.clone());
        async move {
            let effects = aws::stream::Effects::new(&adapters, queue.as_ref());
            Ok::<_, lambda_runtime::Error>(reconcile(&service, effects, event.payload).await)
        }
    }))
    .await
}

/// The webhook-sender function's handler: one attempt per queued job. A job
/// that fails (the table unreachable) is reported as a batch item failure:
/// SQS redelivers it after its visibility timeout, and the delivery stays
/// due in the table for the sweep either way.
pub async fn webhook_sender(service: &Service, queue: &aws::WebhookQueue, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        if let Err(e) = queue.handle(service, body).await {
            tracing::warn!(message = %id, error = %format!("{e:#}"), "webhook job failed; SQS retries it");
            response.add_failure(id);
        }
    }
    response
}

/// Runs the webhook-sender function (the WebhookQueue's consumer).
pub async fn serve_webhook_sender() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let (service, adapters, settings) = aws::wiring_from_env().await?;
    let queue = adapters
        .webhook_queue(&settings)
        .ok_or("TICKETING_WEBHOOK_QUEUE_URL is not set (see template.yaml)")?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let (service, queue) = (service.clone(), queue.clone());
        async move { Ok::<_, lambda_runtime::Error>(webhook_sender(&service, &queue, event.payload).await) }
    }))
    .await
}

/// Runs the sweeper function (a `rate(1 minute)` schedule): closes overdue
/// RESPONDED tickets and retries what the failure queues hold.
pub async fn serve_sweeper() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let (service, adapters, settings) = aws::wiring_from_env().await?;
    let sweeper = std::sync::Arc::new(aws::Sweeper::new(service, adapters, &settings));
    lambda_runtime::run(service_fn(|_: LambdaEvent<serde_json::Value>| {
        let sweeper = sweeper.clone();
        async move {
            let (sweep, drained) = sweeper.run(aws::budgets::SWEEP_WINDOW).await;
            Ok::<_, lambda_runtime::Error>(serde_json::json!({
                "sweep": sweep,
                "failuresRetried": drained.retried,
                "failuresKept": drained.kept,
            }))
        }
    }))
    .await
}

/// The mail-events function's handler: records each SES report in the batch
/// (SNS -> SQS) on its response. A message that cannot be recorded is
/// reported as a batch item failure: SQS redelivers only it, and after the
/// queue's maxReceiveCount moves it to the dead-letter queue.
pub async fn mail_events(service: &Service, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        if let Err(e) = aws::handle_mail_message(service, body).await {
            tracing::warn!(message = %id, error = %e, "mail event not recorded; SQS retries it");
            response.add_failure(id);
        }
    }
    response
}

/// Runs the mail-events function.
pub async fn serve_mail_events() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let service = aws::service_from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let service = service.clone();
        async move { Ok::<_, lambda_runtime::Error>(mail_events(&service, event.payload).await) }
    }))
    .await
}

/// The inbound-email function's handler: each message of SES's receipt
/// event, read from S3, goes through `Service::receive_inbound`. An error
/// (S3 or DynamoDB unreachable) fails the invocation: SES invokes
/// asynchronously, so Lambda retries it, and a message applied before the
/// failure is keyed by its Message-ID and not applied twice.
pub async fn inbound_email(
    service: &Service,
    s3: &aws::S3Client,
    bucket: &aws::inbound_mail::InboundBucket,
    event: aws::inbound_mail::SesReceiptEvent,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    let outcomes = aws::inbound_mail::handle_ses_event(service, s3, bucket, event).await?;
    let names: Vec<String> = outcomes.iter().map(|o| o.name()).collect();
    Ok(serde_json::json!({ "outcomes": names }))
}

/// Runs the inbound-email function.
pub async fn serve_inbound_email() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let (service, adapters, _) = aws::wiring_from_env().await?;
    let bucket = aws::inbound_mail::InboundBucket::from_env()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<aws::inbound_mail::SesReceiptEvent>| {
        let (service, adapters, bucket) = (service.clone(), adapters.clone(), bucket.clone());
        async move { inbound_email(&service, adapters.s3(), &bucket, event.payload).await }
    }))
    .await
}
