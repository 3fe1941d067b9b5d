//! `ticketd --backend aws`'s stand-in for the `reconcile` and `sweeper`
//! functions: the same code, driven by a timer in-process. Each tick reads
//! the table's stream from where it left off (as Lambda's event source
//! mapping would), retries what failed last tick, sweeps due auto-closes and
//! drains the failure queues.

use super::failures::{self, Drained};
use super::stream::{self, Change, Record};
use super::{AwsAdapters, AwsSettings};
use crate::domain::Timestamp;
use crate::service::{DUE_PER_SWEEP, DeliveryPool, Service, Start};
use anyhow::Context;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// What one tick did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    pub changes_applied: usize,
    pub changes_failed: usize,
    pub sweep: crate::service::SweepReport,
    pub failures: Drained,
    /// SES reports recorded.
    pub mail_events: usize,
}

/// The `sweeper` function's work: sweep due auto-closes, send the response
/// mail that is due (retries), fan out the webhook messages the stream
/// missed, send the webhook deliveries that are due (retries), tell admins
/// of disabled webhooks, then retry what the failure queues hold (closes,
/// stream batches, inbound mail).
pub struct Sweeper {
    service: Service,
    aws: AwsAdapters,
    queue_arns: [String; 2],
    /// Where inbound mail is stored, to re-apply what inbound-email failed on.
    inbound: Option<super::inbound_mail::InboundBucket>,
    /// Resolved from the ARNs on first use (one GetQueueUrl each per cold start).
    queue_urls: tokio::sync::OnceCell<Vec<String>>,
    /// In a long-running process (ticketd): due deliveries start as tasks of
    /// their own and the sweep does not wait for them, so a slow endpoint
    /// never holds up the next tick. `None` (the sweeper function): the
    /// sweep attempts them itself before it returns.
    pool: Option<std::sync::Arc<DeliveryPool>>,
}

impl Sweeper {
    pub fn new(service: Service, aws: AwsAdapters, settings: &AwsSettings) -> Self {
        Self {
            service,
            aws,
            queue_arns: [settings.failure_queue_arn.clone(), settings.dead_letter_arn.clone()],
            inbound: settings.inbound_bucket.clone(),
            queue_urls: tokio::sync::OnceCell::new(),
            pool: None,
        }
    }

    /// Due deliveries go to `pool` instead of being attempted in the sweep.
    pub fn with_pool(mut self, pool: std::sync::Arc<DeliveryPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Starts the due deliveries in the pool, leaving out what is under way
    /// and the endpoints at their caps; how many it started.
    async fn start_due_webhooks(&self, pool: &DeliveryPool) -> crate::Result<usize> {
        let (full, _) = pool.saturated();
        let under_way = pool.under_way();
        let due = self
            .aws
            .webhooks
            .due_deliveries_skipping(self.service.now(), DUE_PER_SWEEP, &full, &under_way)
            .await?;
        let mut started = 0;
        for (hook, id) in due {
            match pool.try_start(&self.service, hook, None, id) {
                Start::Started => started += 1,
                Start::PoolFull => break,
                _ => {}
            }
        }
        Ok(started)
    }

    /// One sweep, starting no new work after `window`; the two halves are
    /// independent, so one failing does not stop the other.
    pub async fn run(&self, window: Duration) -> (crate::service::SweepReport, Drained) {
        let deadline = Instant::now() + window;
        let mut sweep = self.service.sweep(deadline).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "sweep failed");
            Default::default()
        });
        match self.service.send_due_mail_until(MAIL_PER_SWEEP, Some(deadline)).await {
            Ok(n) => sweep.mail_attempted = n,
            Err(e) => tracing::warn!(error = %e, "due mail not sent; next sweep retries"),
        }
        // Before the due deliveries: those it creates are due at once.
        match self.fan_out_missed(deadline).await {
            Ok(n) => sweep.missed_messages = n,
            Err(e) => tracing::warn!(error = %e, "missed webhook messages not fanned out; next sweep retries"),
        }
        // Retries past the queue's 15-minute delay, and deliveries never queued.
        let webhooks = match &self.pool {
            Some(pool) => self.start_due_webhooks(pool).await,
            None => self.service.deliver_due_webhooks(Some(deadline)).await,
        };
        match webhooks {
            Ok(n) => sweep.webhooks_attempted = n,
            Err(e) => tracing::warn!(error = %e, "due webhooks not sent; next sweep retries"),
        }
        match self.service.send_webhook_notices(Some(deadline)).await {
            Ok(n) => sweep.webhook_notices = n,
            Err(e) => tracing::warn!(error = %e, "webhook notices not sent; next sweep retries"),
        }
        // Boxed: the retry path (close job, stream replay, mail) nests deep
        // enough that one unboxed future overflows rustc's layout depth when
        // a crate unifies both adapter sets.
        let drained = Box::pin(self.drain_failures(deadline)).await.unwrap_or_else(|e| {
            tracing::warn!(error = %format!("{e:#}"), "could not drain the failure queues");
            Default::default()
        });
        (sweep, drained)
    }

    /// Fans out the outbox messages still marked [`MISSED_AFTER`] after
    /// their event: the stream takes each within seconds, so these are ones
    /// it lost (an outage longer than its 24 h retention, a batch that
    /// failed past its retries and could not be replayed).
    async fn fan_out_missed(&self, deadline: Instant) -> crate::Result<usize> {
        let before = self.service.now().millis() - i64::try_from(MISSED_AFTER.as_millis()).unwrap_or(i64::MAX);
        let missed = self
            .aws
            .webhooks
            .unfanned_messages(Timestamp::from_millis(before), MISSED_PER_SWEEP)
            .await?;
        let mut done = 0;
        for message in &missed {
            if Instant::now() >= deadline {
                break;
            }
            self.service.fan_out_webhook(message).await?;
            self.aws.webhooks.fanned_out(message).await?;
            done += 1;
        }
        if done > 0 {
            tracing::warn!(
                messages = done,
                "webhook messages the stream missed were fanned out by the sweep"
            );
        }
        Ok(done)
    }

    async fn drain_failures(&self, deadline: Instant) -> anyhow::Result<Drained> {
        let urls = self
            .queue_urls
            .get_or_try_init(|| async {
                let mut urls = Vec::new();
                for arn in &self.queue_arns {
                    urls.push(failures::queue_url(self.aws.sqs(), arn).await?);
                }
                anyhow::Ok(urls)
            })
            .await?;
        let mut total = Drained::default();
        for url in urls {
            let redrive = failures::Redrive {
                inbound: self.inbound.as_ref(),
            };
            let d = failures::drain(&self.service, &self.aws, redrive, url, deadline).await?;
            total.retried += d.retried;
            total.kept += d.kept;
        }
        Ok(total)
    }
}

/// Due mails one sweep reads (one Query); more wait for the next sweep.
const MAIL_PER_SWEEP: usize = 100;
/// How long an outbox message may wait for the stream's fan-out before the
/// sweep takes it: the stream delivers within seconds, and Lambda retries a
/// failing batch for minutes; a fan-out by both creates nothing twice.
pub const MISSED_AFTER: Duration = Duration::from_secs(5 * 60);
/// Missed messages one sweep reads (one Query); more wait for the next sweep.
const MISSED_PER_SWEEP: usize = 100;

pub struct Reconciler {
    service: Service,
    aws: AwsAdapters,
    sweeper: Sweeper,
    stream_arn: Option<String>,
    /// Where SES's delivery reports arrive (the `mail-events` function's
    /// queue), resolved on first use; `None` until found.
    mail_events: Option<String>,
    settings: AwsSettings,
    /// Per shard: how far it has been read (absent: not yet, start at its oldest record).
    shards: HashMap<String, Position>,
    /// Changes that failed, retried first next tick (deduplicated: each
    /// re-reads the stored state, so once is enough).
    retry: Vec<Change>,
}

#[derive(Debug, Clone)]
enum Position {
    /// Read up to and including this sequence number.
    After(String),
    /// The shard is closed and read to its end.
    Done,
}

impl Reconciler {
    pub fn new(service: Service, aws: AwsAdapters, settings: &AwsSettings) -> Self {
        let pool = std::sync::Arc::new(DeliveryPool::new(crate::service::SWEEP_IN_FLIGHT * 8));
        Self {
            sweeper: Sweeper::new(service.clone(), aws.clone(), settings).with_pool(pool),
            service,
            aws,
            stream_arn: None,
            mail_events: None,
            settings: settings.clone(),
            shards: HashMap::new(),
            retry: Vec::new(),
        }
    }

    /// One round, starting no new sweep work after `window`. A step that
    /// fails is logged and left for the next tick; the others still run.
    pub async fn tick(&mut self, window: Duration) -> Tick {
        let mut tick = Tick::default();
        let mut pending = std::mem::take(&mut self.retry);
        // Records read before a failure are kept: their shards' positions moved.
        let mut records = Vec::new();
        if let Err(e) = self.read_stream(&mut records).await {
            tracing::warn!(error = %format!("{e:#}"), "could not read the table stream");
        }
        pending.extend(records.iter().filter_map(Record::change));
        for change in pending {
            if self.retry.contains(&change) {
                continue;
            }
            match stream::apply(&self.service, stream::Effects::new(&self.aws, None), &change).await {
                Ok(()) => tick.changes_applied += 1,
                Err(e) => {
                    tracing::warn!(change = ?change, error = %e, "change failed; retried next tick");
                    tick.changes_failed += 1;
                    self.retry.push(change);
                }
            }
        }
        (tick.sweep, tick.failures) = self.sweeper.run(window).await;
        // What the mail-events function does on AWS: record SES's reports.
        if self.mail_events.is_none() {
            self.mail_events = super::mail_events_queue_url(&self.aws, &self.settings).await;
        }
        if let Some(url) = &self.mail_events {
            match super::poll_mail_events(&self.service, self.aws.sqs(), url).await {
                Ok(n) => tick.mail_events = n,
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "mail events not read; next tick retries"),
            }
        }
        tick
    }

    /// The records written since the last read, every shard, oldest first
    /// per shard. The first read starts at the stream's oldest record: a
    /// restart re-applies up to 24 h of changes, which are idempotent.
    async fn read_stream(&mut self, records: &mut Vec<Record>) -> anyhow::Result<()> {
        let stream_arn = match &self.stream_arn {
            Some(arn) => arn.clone(),
            None => {
                let table = self
                    .aws
                    .dynamo
                    .describe_table()
                    .table_name(&self.settings.table)
                    .send()
                    .await?;
                let arn = table
                    .table
                    .and_then(|t| t.latest_stream_arn)
                    .context("the table has no stream (StreamSpecification missing)")?;
                self.stream_arn = Some(arn.clone());
                arn
            }
        };
        let described = self
            .aws
            .streams()
            .describe_stream()
            .stream_arn(&stream_arn)
            .send()
            .await
            .map_err(|e| stream::streams_error("DescribeStream", e))?;
        let shard_ids: Vec<String> = described
            .stream_description()
            .map(|d| {
                d.shards()
                    .iter()
                    .filter_map(|s| s.shard_id().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for shard in shard_ids {
            // A fresh iterator every tick, after the last record applied,
            // rather than the previous page's NextShardIterator: an iterator
            // expires after 15 idle minutes, and moto's (whose rollback of a
            // cancelled transaction swaps the table for a copy) stops seeing
            // new records for good, which stalled the fault matrix.
            let (kind, after) = match self.shards.get(&shard) {
                Some(Position::Done) => continue,
                Some(Position::After(seq)) => (ShardIteratorType::AfterSequenceNumber, Some(seq.as_str())),
                None => (ShardIteratorType::TrimHorizon, None),
            };
            let mut iterator = match stream::shard_iterator(self.aws.streams(), &stream_arn, &shard, kind, after).await
            {
                Ok(it) => it,
                Err(e) => {
                    // Past the stream's 24 h: start again at its oldest record
                    // (the table sweeps cover what the stream no longer holds).
                    if format!("{e:#}").contains("TrimmedDataAccess") {
                        self.shards.remove(&shard);
                    }
                    return Err(e);
                }
            };
            // Read the shard up to its present end; pages of up to 1,000.
            for _ in 0..50 {
                let Some(it) = iterator.take() else {
                    // No next iterator: the shard is closed and read to its end.
                    self.shards.insert(shard.clone(), Position::Done);
                    break;
                };
                let page = self
                    .aws
                    .streams()
                    .get_records()
                    .shard_iterator(it)
                    .send()
                    .await
                    .map_err(|e| stream::streams_error("GetRecords", e))?;
                let read = page.records().len();
                records.extend(page.records().iter().map(Record::from));
                // Remember the position page by page, so an error later in
                // this shard neither re-reads (harmless) nor skips anything.
                if read > 0
                    && let Some(last) = records.last()
                {
                    self.shards
                        .insert(shard.clone(), Position::After(last.sequence_number.clone()));
                } else if page.next_shard_iterator.is_some() {
                    break; // caught up with the open shard
                }
                iterator = page.next_shard_iterator;
            }
        }
        Ok(())
    }
}
