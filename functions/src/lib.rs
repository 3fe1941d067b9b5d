//! What every Lambda binary shares: build the service once from the
//! environment (clients outside the handler, reused across invocations), then
//! serve one endpoint, the close function, or the mail-events function.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use lambda_runtime::{LambdaEvent, service_fn};
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
