//! Services assembled by hand for fault tests: the API over chosen ports on a
//! random port, a desk (org, admin, ticket) set up over HTTP, an endpoint
//! that is down until it is brought back, and a clock that runs ahead.

use crate::SentMail;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use ticketing::adapters::aws::AwsSettings;
use ticketing::domain::Timestamp;
use ticketing::ports::{Clock, Ports};
use ticketing::service::{Service, Settings};

/// Serves the full API over `service` on a random port; returns its base URL.
pub async fn serve(service: Service) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = ticketing::http::router(service, &ticketing::http::Endpoint::ALL);
    tokio::spawn(async move { axum_serve(listener, app).await });
    format!("http://{addr}")
}

async fn axum_serve(listener: tokio::net::TcpListener, app: axum::Router) {
    let _ = axum::serve(listener, app).await;
}

/// Fresh names for a fault test's resources.
pub fn fault_settings() -> AwsSettings {
    AwsSettings::local(
        crate::unique("faults-"),
        crate::unique("faults-"),
        "support@faults.example.com",
    )
}

/// Drops a fault test's table: moto copies every live table on each
/// transaction, so a table left behind slows every later test.
pub async fn drop_table(adapters: &ticketing::adapters::aws::AwsAdapters, settings: &AwsSettings) {
    adapters
        .dynamo
        .delete_table()
        .table_name(&settings.table)
        .send()
        .await
        .unwrap();
}

/// The service the fault tests serve, on `ports`.
pub fn fault_service(ports: Ports, mail_from: &str) -> Service {
    let settings = Settings {
        limits: Default::default(),
        jwt_keys: ticketing::service::KeyConfig::Fixed("fault-tests-jwt-secret-0123456789abcdef".into()),
        auto_close_after: Duration::from_secs(86_400),
        reopen_window: ticketing::service::DEFAULT_REOPEN_WINDOW,
        mail_from: mail_from.into(),
        signin: Default::default(),
        inbound: Default::default(),
    };
    Service::new(ports, &settings).expect("a valid secret")
}

pub async fn http(
    method: reqwest::Method,
    url: String,
    auth: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(a) = auth {
        req = req.bearer_auth(a);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("the API answers even when AWS does not");
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.json().await.expect("a JSON body"))
}

/// An org with one signed-in admin on the API at `base`.
pub struct Desk {
    pub base: String,
    pub secret: String,
    pub jwt: String,
}

impl Desk {
    pub async fn open(base: &str) -> Self {
        use reqwest::Method;
        let domain = format!("{}.example.com", crate::unique("d"));
        let (_, _, org) = http(
            Method::POST,
            format!("{base}/auth/org/signup"),
            None,
            Some(json!({"name": "Desk", "domain": domain})),
        )
        .await;
        let secret = org["secret"].as_str().expect("an org secret").to_owned();
        let email = format!("a@{domain}");
        let password = "correct horse battery";
        http(
            Method::POST,
            format!("{base}/auth/admin/signup"),
            None,
            Some(json!({"firstName": "A", "lastName": "B", "email": email, "password": password, "secret": secret})),
        )
        .await;
        let (_, _, signin) = http(
            Method::POST,
            format!("{base}/auth/admin/signin"),
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await;
        Self {
            base: base.to_owned(),
            secret,
            jwt: signin["jwt"].as_str().expect("a token").to_owned(),
        }
    }

    /// Files a ticket from `customer`; returns its id.
    pub async fn file_ticket(&self, customer: &str) -> String {
        let (status, _, t) = http(
            reqwest::Method::POST,
            format!("{}/tickets", self.base),
            None,
            Some(json!({"title": "t", "description": "d", "addedBy": customer, "secret": self.secret})),
        )
        .await;
        assert_eq!(status, 201, "{t}");
        t["id"].as_str().unwrap().to_owned()
    }

    /// Registers an endpoint at `url` for `events`; returns the 201 body (with its secret).
    pub async fn create_webhook(&self, url: &str, events: &[&str]) -> Value {
        let (status, _, hook) = http(
            reqwest::Method::POST,
            format!("{}/webhooks", self.base),
            Some(&self.jwt),
            Some(json!({ "url": url, "events": events })),
        )
        .await;
        assert_eq!(status, 201, "{hook}");
        hook
    }

    pub async fn respond(&self, ticket: &str, message: &str) -> (u16, Value) {
        let (status, _, r) = http(
            reqwest::Method::POST,
            format!("{}/tickets/{ticket}/respond", self.base),
            Some(&self.jwt),
            Some(json!({ "message": message })),
        )
        .await;
        (status, r)
    }

    pub async fn ticket(&self, ticket: &str) -> Value {
        let (status, _, t) = http(
            reqwest::Method::GET,
            format!("{}/tickets/{ticket}", self.base),
            Some(&self.jwt),
            None,
        )
        .await;
        assert_eq!(status, 200, "{t}");
        t
    }
}

/// A local address where nothing listens (connections are refused) until
/// [`DownEndpoint::bring_back`] relays it to a live one.
pub struct DownEndpoint {
    addr: std::net::SocketAddr,
    relay: Option<tokio::task::JoinHandle<()>>,
}

impl DownEndpoint {
    pub fn new() -> Self {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        Self { addr, relay: None }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, connections reach `target` (`host:port`).
    pub async fn bring_back(&mut self, target: String) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("the port is still free");
        self.relay = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }
}

impl Default for DownEndpoint {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for DownEndpoint {
    fn drop(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
    }
}

/// The system clock, `ahead` in the future: a sweeper running that much later.
pub struct ClockAhead(pub Duration);

impl Clock for ClockAhead {
    fn now(&self) -> Timestamp {
        Timestamp::now().plus(self.0)
    }
}

/// `ports` as seen `ahead` in the future.
pub fn later(mut ports: Ports, ahead: Duration) -> Ports {
    ports.clock = Arc::new(ClockAhead(ahead));
    ports
}

/// The mails moto's SES recorded for `to`, oldest first.
pub async fn moto_mails_to(to: &str) -> anyhow::Result<Vec<SentMail>> {
    let data: Value = reqwest::Client::new()
        .get(format!("{}/moto-api/data.json", crate::aws::moto_mail_endpoint()))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == to))
        })
        .map(|m| SentMail {
            to: to.to_owned(),
            subject: m["subject"].as_str().unwrap_or_default().into(),
            text: m["body"].as_str().unwrap_or_default().into(),
            reply_to: None,
        })
        .collect())
}
