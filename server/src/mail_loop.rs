//! `ticketd --backend aws`'s in-process stand-in for the mail-events Lambda
//! and the sweeper's mail retries: every interval it records SES's reports
//! from the mail-events queue and sends the response mail that is due.

use std::future::Future;
use std::time::Duration;
use ticketing::adapters::aws::{AwsAdapters, poll_mail_events};
use ticketing::service::Service;

/// Due mails attempted per round at most; the rest wait for the next round.
const BATCH: usize = 100;

/// Runs until `shutdown` resolves. Errors are logged and the next round tries again.
pub async fn run(
    service: Service,
    aws: AwsAdapters,
    queue_url: Option<String>,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        if let Some(url) = &queue_url
            && let Err(e) = poll_mail_events(&service, &aws.sqs, url).await
        {
            tracing::warn!(error = %e, "mail events not read; retrying next round");
        }
        if let Err(e) = service.send_due_mail(BATCH).await {
            tracing::warn!(error = ?e, "due mail not sent; retrying next round");
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
    tracing::info!("mail loop stopped");
}
