//! The mail-events function: SES delivery, bounce and complaint reports from the MailEventsQueue.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ticketing_functions::serve_mail_events().await
}
