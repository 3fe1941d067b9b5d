//! The reconcile function: schedules and response mail follow the table (DynamoDB stream).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ticketing_functions::serve_reconcile().await
}
