//! Part b, scale: list page latency in a small and a large org sharing one database.

use crate::Args;
use crate::common::{new_org, synthetic_tickets};
use crate::load::{self, Stats};
use anyhow::Context;
use reqwest::Client;
use serde_json::Value;
use std::time::Instant;

/// One list query's sequential latency in each org.
pub struct ScaleRow {
    pub query: &'static str,
    pub small: Stats,
    pub large: Stats,
}

impl ScaleRow {
    pub fn p50_ratio(&self) -> f64 {
        self.large.p50_ms / self.small.p50_ms
    }
}

const QUERIES: [&str; 3] = [
    "/tickets?limit=50",
    "/tickets?status=OPEN&limit=50",
    "/tickets?customerEmail=customer7@example.org&limit=20",
];

pub async fn run(args: &Args, client: &Client, base: &str, server: &ticketd::Server) -> anyhow::Result<Vec<ScaleRow>> {
    eprintln!("b. list latency, {} vs {} tickets in the org", args.small, args.large);
    let small = new_org(client, base, "small", 3).await?;
    let large = new_org(client, base, "large", 3).await?;
    // Straight into SQLite: filing 100,000 tickets over HTTP would take minutes
    // and measure nothing more.
    let store = ticketing::adapters::embedded::SqliteStore::new(server.db.clone().context("embedded db")?);
    let t = Instant::now();
    store
        .bulk_import_tickets(synthetic_tickets(&small, args.small)?)
        .await?;
    store
        .bulk_import_tickets(synthetic_tickets(&large, args.large)?)
        .await?;
    eprintln!("   imported in {:.1}s", t.elapsed().as_secs_f64());
    let mut rows = Vec::new();
    for query in QUERIES {
        // Interleaved, so drift on a shared machine hits both alike.
        let (mut small_lat, mut large_lat) = (Vec::new(), Vec::new());
        for i in 0..args.list_samples * 2 {
            let org = if i % 2 == 0 { &small } else { &large };
            let t = Instant::now();
            let resp = client
                .get(format!("{base}{query}"))
                .bearer_auth(&org.jwt)
                .send()
                .await?;
            anyhow::ensure!(resp.status().is_success(), "{query}: {}", resp.status());
            let body: Value = resp.json().await?;
            anyhow::ensure!(
                body["tickets"].as_array().is_some_and(|a| !a.is_empty()),
                "{query}: empty page"
            );
            if i % 2 == 0 {
                small_lat.push(t.elapsed());
            } else {
                large_lat.push(t.elapsed());
            }
        }
        let row = ScaleRow {
            query,
            small: load::summarize(small_lat, 0, 0.0),
            large: load::summarize(large_lat, 0, 0.0),
        };
        eprintln!(
            "   {query}: p50 {:.3} ms vs {:.3} ms",
            row.small.p50_ms, row.large.p50_ms
        );
        rows.push(row);
    }
    Ok(rows)
}
