//! Part a, request cost: each ticketd route under closed-loop load, against a
//! bare axum route measured the same way before and after.

use crate::Args;
use crate::common::{Org, field, new_org, post};
use crate::load::{self, MakeRequest, Stats};
use reqwest::{Client, Method};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// One target's figures under load.
pub struct LoadRow {
    pub target: &'static str,
    pub stats: Stats,
}

/// The first and last rows are the bare route; the rest are ticketd's.
pub struct RequestCost {
    pub rows: Vec<LoadRow>,
}

pub const BARE_FIRST: &str = "bare axum route (first)";
pub const BARE_LAST: &str = "bare axum route (again, last)";
pub const GET_TICKET: &str = "GET /tickets/{id}";

impl RequestCost {
    /// The baseline: the mean throughput of the two bare runs.
    pub fn bare(&self) -> f64 {
        let bare: Vec<f64> = self
            .rows
            .iter()
            .filter(|r| r.target == BARE_FIRST || r.target == BARE_LAST)
            .map(|r| r.stats.throughput())
            .collect();
        bare.iter().sum::<f64>() / bare.len().max(1) as f64
    }

    pub fn get_ratio(&self) -> f64 {
        self.rows
            .iter()
            .find(|r| r.target == GET_TICKET)
            .map_or(0.0, |r| r.stats.throughput() / self.bare())
    }
}

/// 200 tickets to read and answer, filed over HTTP.
async fn seed(client: &Client, base: &str, org: &Org) -> anyhow::Result<Arc<Vec<String>>> {
    let mut ids = Vec::new();
    for i in 0..200 {
        let ticket = post(
            client,
            format!("{base}/tickets"),
            None,
            json!({"title": format!("seed {i}"), "description": "d", "addedBy": "customer@example.org", "secret": org.secret}),
        )
        .await?;
        ids.push(field(&ticket, "id")?);
    }
    Ok(Arc::new(ids))
}

/// A bare axum route returning a constant JSON body, in this process: the baseline.
async fn bare_route() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/bare", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/bare",
        axum::routing::get(|| async { axum::Json(json!({"status": "ok", "service": "bare", "items": [1, 2, 3]})) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

pub async fn run(args: &Args, client: &Client, base: &str) -> anyhow::Result<RequestCost> {
    eprintln!(
        "a. request cost at {} connections, {}s per run",
        args.concurrency, args.duration
    );
    let org = new_org(client, base, "load", 3).await?;
    let ids = seed(client, base, &org).await?;
    let bare_url = bare_route().await?;
    let auth = vec![("authorization".to_owned(), format!("Bearer {}", org.jwt))];
    let duration = Duration::from_secs(args.duration);

    let bare = || -> MakeRequest {
        let url = bare_url.clone();
        Arc::new(move |_| (Method::GET, url.clone(), None))
    };
    let get: MakeRequest = {
        let (base, ids) = (base.to_owned(), ids.clone());
        Arc::new(move |i| (Method::GET, format!("{base}/tickets/{}", ids[i % ids.len()]), None))
    };
    let list: MakeRequest = {
        let base = base.to_owned();
        Arc::new(move |_| (Method::GET, format!("{base}/tickets?status=OPEN&limit=50"), None))
    };
    let create: MakeRequest = {
        let (base, secret) = (base.to_owned(), org.secret.clone());
        Arc::new(move |i| {
            let body = json!({"title": format!("load {i}"), "description": "d", "addedBy": "load@example.org", "secret": secret});
            (Method::POST, format!("{base}/tickets"), Some(body))
        })
    };
    let respond: MakeRequest = {
        let (base, ids) = (base.to_owned(), ids.clone());
        Arc::new(move |i| {
            let body = json!({"message": format!("reply {i}")});
            (
                Method::POST,
                format!("{base}/tickets/{}/respond", ids[i % ids.len()]),
                Some(body),
            )
        })
    };
    let plan: [(&'static str, bool, MakeRequest); 6] = [
        (BARE_FIRST, false, bare()),
        (GET_TICKET, true, get),
        ("GET /tickets?status=OPEN&limit=50", true, list),
        ("POST /tickets", false, create),
        ("POST /tickets/{id}/respond", true, respond),
        (BARE_LAST, false, bare()),
    ];
    let mut rows = Vec::new();
    for (target, signed_in, make) in plan {
        let headers = if signed_in { auth.clone() } else { Vec::new() };
        let stats = load::run(client, headers, args.concurrency, duration, make).await;
        eprintln!(
            "   {target}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            stats.throughput(),
            stats.p50_ms,
            stats.p99_ms,
            stats.errors
        );
        rows.push(LoadRow { target, stats });
    }
    Ok(RequestCost { rows })
}
