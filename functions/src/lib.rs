//! What every Lambda binary shares: build the service once from the
//! environment (clients outside the handler, reused across invocations), then
//! serve one endpoint, or the close function.

use lambda_runtime::{LambdaEvent, service_fn};
use ticketing::adapters::aws::{self, CloseEvent};
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
    http::router(service, &[endpoint])
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
