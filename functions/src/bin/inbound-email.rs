//! The inbound-email function: SES's receipt rule stored a message in S3; apply it as a customer reply.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ticketing_functions::serve_inbound_email().await
}
