//! The webhook-sender function: one signed attempt per message of the WebhookQueue, retries queued with their delay.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ticketing_functions::serve_webhook_sender().await
}
