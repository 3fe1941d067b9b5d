//! ticketd's reconcile loop: every `--reconcile-interval` it sweeps due
//! auto-closes (both backends), and on AWS also plays the `reconcile` and
//! `sweeper` functions (table stream, failure queues) with their own code.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use ticketing::service::Service;

/// Fires every `interval` until `shutdown`; the caller's work runs between
/// ticks, so a tick never overlaps the next.
struct Ticker {
    timer: tokio::time::Interval,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Ticker {
    fn new(interval: Duration, shutdown: Pin<Box<dyn Future<Output = ()> + Send>>) -> Self {
        let mut timer = tokio::time::interval(interval);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self { timer, shutdown }
    }

    /// Waits for the next tick; false once shut down.
    async fn next(&mut self) -> bool {
        tokio::select! {
            _ = &mut self.shutdown => {
                tracing::info!("reconcile loop stopped");
                false
            }
            _ = self.timer.tick() => true,
        }
    }
}

/// The embedded backend: the close-job runner does the scheduled work; the
/// sweep catches what it cannot (a job lost between the ticket's commit and
/// its own write, a job that failed all its attempts).
pub async fn embedded(service: Service, interval: Duration, shutdown: Pin<Box<dyn Future<Output = ()> + Send>>) {
    let mut ticker = Ticker::new(interval, shutdown);
    while ticker.next().await {
        // Within the interval, so sweeps never pile up behind each other.
        if let Err(e) = service.sweep(tokio::time::Instant::now() + interval).await {
            tracing::warn!(error = %e, "sweep failed");
        }
    }
}

/// The AWS backend: stream, retries, sweep and failure queues, in-process.
#[cfg(feature = "aws")]
pub async fn aws(
    mut reconciler: ticketing::adapters::aws::Reconciler,
    interval: Duration,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
) {
    let mut ticker = Ticker::new(interval, shutdown);
    while ticker.next().await {
        let tick = reconciler.tick(interval).await;
        tracing::debug!(?tick, "reconciled");
    }
}
