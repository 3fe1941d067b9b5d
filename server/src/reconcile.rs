//! ticketd's reconcile loop: every `--reconcile-interval` it sweeps due
//! auto-closes (both backends), and on AWS also plays the `reconcile` and
//! `sweeper` functions (table stream, failure queues) with their own code.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use ticketing::service::Service;

/// Runs `tick` every `interval` until `shutdown`; a tick never overlaps the next.
async fn every<F, Fut>(interval: Duration, shutdown: Pin<Box<dyn Future<Output = ()> + Send>>, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut shutdown = shutdown;
    let mut timer = tokio::time::interval(interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = timer.tick() => tick().await,
        }
    }
    tracing::info!("reconcile loop stopped");
}

/// The embedded backend: the close-job runner does the scheduled work; the
/// sweep catches what it cannot (a job lost between the ticket's commit and
/// its own write, a job that failed all its attempts).
pub async fn embedded(service: Service, interval: Duration, shutdown: Pin<Box<dyn Future<Output = ()> + Send>>) {
    every(interval, shutdown, || {
        let service = service.clone();
        async move {
            // Within the interval, so sweeps never pile up behind each other.
            if let Err(e) = service.sweep(tokio::time::Instant::now() + interval).await {
                tracing::warn!(error = %e, "sweep failed");
            }
        }
    })
    .await
}

/// The AWS backend: stream, retries, sweep and failure queues, in-process.
#[cfg(feature = "aws")]
pub async fn aws(
    reconciler: ticketing::adapters::aws::Reconciler,
    interval: Duration,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
) {
    // Ticks run one at a time; the mutex only lets the closure hand it out.
    let reconciler = std::sync::Arc::new(tokio::sync::Mutex::new(reconciler));
    every(interval, shutdown, || {
        let reconciler = reconciler.clone();
        async move {
            let tick = reconciler.lock().await.tick(interval).await;
            tracing::debug!(?tick, "reconciled");
        }
    })
    .await
}
