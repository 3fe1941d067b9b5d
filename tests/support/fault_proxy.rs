//! A fault-injecting proxy in front of moto: every AWS call of a deployment
//! goes through it, and a test can make one service fail (HTTP 503, as an
//! overloaded or unreachable AWS service answers) while the others work, then
//! heal it. The real SDK clients retry and give up exactly as they would
//! against AWS.

use super::aws::{moto_endpoint, moto_mail_endpoint};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// The services a test can break, by the name the proxy tells them apart by.
pub const DYNAMODB: &str = "dynamodb";
pub const STREAMS: &str = "streams";
pub const SCHEDULER: &str = "scheduler";
pub const SES: &str = "ses";
pub const SQS: &str = "sqs";

#[derive(Clone)]
struct Proxy {
    failing: Arc<Mutex<HashSet<&'static str>>>,
    http: reqwest::Client,
    /// Calls answered with the injected fault, per service.
    refused: Arc<Mutex<Vec<&'static str>>>,
}

pub struct FaultyAws {
    pub url: String,
    proxy: Proxy,
    task: JoinHandle<()>,
}

impl FaultyAws {
    pub async fn start() -> Self {
        let proxy = Proxy {
            failing: Default::default(),
            http: reqwest::Client::new(),
            refused: Default::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new().fallback(forward).with_state(proxy.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, proxy, task }
    }

    /// From now on, every call to `service` fails.
    pub fn fail(&self, service: &'static str) {
        self.proxy.failing.lock().expect("lock").insert(service);
    }

    pub fn heal(&self, service: &'static str) {
        self.proxy.failing.lock().expect("lock").remove(service);
    }

    /// How many calls to `service` were refused so far.
    pub fn refused(&self, service: &str) -> usize {
        self.proxy
            .refused
            .lock()
            .expect("lock")
            .iter()
            .filter(|s| **s == service)
            .count()
    }
}

impl Drop for FaultyAws {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Which service a signed request is for: the SigV4 credential scope names
/// it; DynamoDB Streams signs as `dynamodb` and differs by its target.
fn service_of(headers: &HeaderMap) -> &'static str {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    if target.starts_with("DynamoDBStreams") {
        return STREAMS;
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let scope = auth.split("Credential=").nth(1).unwrap_or("");
    match scope.split('/').nth(3).unwrap_or("") {
        "dynamodb" => DYNAMODB,
        "scheduler" => SCHEDULER,
        "ses" | "email" => SES,
        "sqs" => SQS,
        _ => "other",
    }
}

async fn forward(State(proxy): State<Proxy>, req: Request) -> Response {
    let service = service_of(req.headers());
    if proxy.failing.lock().expect("lock").contains(service) {
        proxy.refused.lock().expect("lock").push(service);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "application/x-amz-json-1.0")],
            r#"{"__type":"ServiceUnavailable","message":"injected fault"}"#,
        )
            .into_response();
    }
    // Scheduler and SES live on the mail moto (see scripts/test).
    let upstream = match service {
        SCHEDULER | SES => moto_mail_endpoint(),
        _ => moto_endpoint(),
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut headers = parts.headers.clone();
    headers.remove("host");
    let sent = proxy
        .http
        .request(parts.method, format!("{upstream}{path}"))
        .headers(headers)
        .body(bytes)
        .send()
        .await;
    let Ok(resp) = sent else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap_or_default();
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    for (k, v) in &headers {
        if k != "transfer-encoding" && k != "content-length" && k != "connection" {
            out.headers_mut().append(k, v.clone());
        }
    }
    out
}
