//! What every Lambda binary shares: build the service once from the
//! environment (clients outside the handler, reused across invocations), then
//! serve one endpoint, or the close function.

use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use lambda_runtime::{LambdaEvent, service_fn};
use ticketing::adapters::aws::stream::{Record, StreamEvent};
use ticketing::adapters::aws::{self, CloseEvent};
use ticketing::http::client_ip::SourceIp;
use ticketing::http::{self, Endpoint};
use ticketing::service::Service;

fn init_tracing() {
    // CloudWatch stamps the time; no colours in log files.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .without_time()
        .init();
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
pub async fn reconcile(service: &Service, event: StreamEvent) -> serde_json::Value {
    let records: Vec<Record> = event.records.iter().map(Record::from).collect();
    let failures: Vec<serde_json::Value> = aws::stream::apply_records(service, &records)
        .await
        .map(|i| serde_json::json!({ "itemIdentifier": records[i].sequence_number }))
        .into_iter()
        .collect();
    serde_json::json!({ "batchItemFailures": failures })
}

/// Runs the reconcile function (DynamoDB stream event source).
pub async fn serve_reconcile() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let service = aws::service_from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<StreamEvent>| {
        let service = service.clone();
        async move { Ok::<_, lambda_runtime::Error>(reconcile(&service, event.payload).await) }
    }))
    .await
}

/// Runs the sweeper function (a `rate(1 minute)` schedule): closes overdue
/// RESPONDED tickets and retries what the failure queues hold.
pub async fn serve_sweeper() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let (service, adapters, settings) = aws::wiring_from_env().await?;
    let sweeper = std::sync::Arc::new(tokio::sync::Mutex::new(aws::Sweeper::new(service, adapters, &settings)));
    lambda_runtime::run(service_fn(|_: LambdaEvent<serde_json::Value>| {
        let sweeper = sweeper.clone();
        async move {
            let (sweep, drained) = sweeper.lock().await.run().await;
            Ok::<_, lambda_runtime::Error>(serde_json::json!({
                "sweep": sweep,
                "failuresRetried": drained.retried,
                "failuresKept": drained.kept,
            }))
        }
    }))
    .await
}
