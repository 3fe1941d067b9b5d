//! A closed-loop load generator: `concurrency` workers, each sending its next
//! request when the last one answered, for a fixed time. The same generator
//! measures every target, so their figures compare.

use reqwest::{Client, Method};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Stats {
    pub requests: usize,
    pub errors: usize,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Stats {
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// One request to make; `body` is built per request (it may need a fresh value).
pub type MakeRequest = Arc<dyn Fn(usize) -> (Method, String, Option<serde_json::Value>) + Send + Sync>;

pub async fn run(
    client: &Client,
    headers: Vec<(String, String)>,
    concurrency: usize,
    duration: Duration,
    make: MakeRequest,
) -> Stats {
    let started = Instant::now();
    let deadline = started + duration;
    let headers = Arc::new(headers);
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (client, make, headers) = (client.clone(), make.clone(), headers.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            let mut i = w;
            while Instant::now() < deadline {
                let (method, url, body) = make(i);
                i += concurrency;
                let mut req = client.request(method, url);
                for (k, v) in headers.iter() {
                    req = req.header(k, v);
                }
                if let Some(b) = body {
                    req = req.json(&b);
                }
                let t = Instant::now();
                match req.send().await {
                    Ok(resp) if resp.status().is_success() => {
                        let _ = resp.bytes().await;
                        latencies.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await.expect("worker");
        all.extend(l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    summarize(all, errors, seconds)
}

pub fn summarize(mut latencies: Vec<Duration>, errors: usize, seconds: f64) -> Stats {
    latencies.sort();
    let pct = |p: f64| {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let idx = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[idx].as_secs_f64() * 1000.0
    };
    Stats {
        requests: latencies.len(),
        errors,
        seconds,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

/// Sequential latency of `n` calls.
pub async fn sequential<F, Fut>(n: usize, mut call: F) -> Stats
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(n);
    let mut errors = 0;
    for i in 0..n {
        let t = Instant::now();
        if call(i).await {
            latencies.push(t.elapsed());
        } else {
            errors += 1;
        }
    }
    summarize(latencies, errors, started.elapsed().as_secs_f64())
}
