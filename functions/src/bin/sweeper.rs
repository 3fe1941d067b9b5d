//! The sweeper function: closes overdue tickets, retries due mail and failures (every minute).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ticketing_functions::serve_sweeper().await
}
