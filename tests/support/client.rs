//! A small HTTP client for the contract, with the seed flow's steps as helpers.

use super::{AdapterSet, Deployment, SentMail, TestConfig, unique};
use reqwest::Method;
use serde_json::{Value, json};

pub struct TestApp {
    pub deployment: Box<dyn Deployment>,
    http: reqwest::Client,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts the status, showing the body when it is wrong.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        self.body
    }

    /// Asserts a JSON error with this status and code, naming `field` if given.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str, field: Option<&str>) {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        assert_eq!(self.body["error"]["code"], code, "{}", self.body);
        assert!(
            self.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.body
        );
        if let Some(field) = field {
            assert_eq!(self.body["error"]["field"], field, "{}", self.body);
        }
    }
}

impl Reply {
    /// Asserts a 429 `rate_limited` naming `limit`, with a `Retry-After`.
    #[track_caller]
    pub fn expect_limited(self, limit: &str) {
        let retry_after = self
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        assert!(
            retry_after.is_some_and(|s| s >= 1),
            "Retry-After in seconds: {:?}",
            self.headers
        );
        assert_eq!(self.body["error"]["limit"], limit, "{}", self.body);
        self.expect_error(429, "rate_limited", None);
    }
}

/// An org with its secret, as a client product holds it.
#[derive(Debug, Clone)]
pub struct OrgHandle {
    pub id: String,
    pub domain: String,
    pub secret: String,
}

#[derive(Debug, Clone)]
pub struct AdminHandle {
    pub id: String,
    pub email: String,
    pub jwt: String,
}

pub const PASSWORD: &str = "correct horse battery";

impl TestApp {
    pub async fn start(set: &dyn AdapterSet, config: TestConfig) -> Self {
        // TEST_LOG=debug shows the server's logs beside a failing test.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("TEST_LOG").unwrap_or_else(|_| "off".into()))
            .try_init();
        let deployment = set.start(config).await.expect("adapter set starts");
        Self {
            deployment,
            http: reqwest::Client::new(),
        }
    }

    /// A client for an already started deployment (TEST_LOG=warn shows its
    /// server's logs too, as for [`TestApp::start`]).
    pub fn on(deployment: Box<dyn Deployment>) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("TEST_LOG").unwrap_or_else(|_| "off".into()))
            .try_init();
        Self {
            deployment,
            http: reqwest::Client::new(),
        }
    }

    pub async fn stop(self) {
        self.deployment.stop().await.expect("clean stop");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.deployment.base_url())
    }

    /// Sends a raw request: any method, headers and body bytes.
    pub async fn raw(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Reply {
        Self::send(self.http.request(method, self.url(path)), headers, body).await
    }

    /// [`Self::raw`] from another client: a connection from `client`, a
    /// loopback address other than the 127.0.0.1 every other call comes from.
    pub async fn raw_from(
        &self,
        client: std::net::IpAddr,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let http = reqwest::Client::builder()
            .local_address(client)
            .build()
            .expect("a client bound to a loopback address");
        Self::send(http.request(method, self.url(path)), headers, body).await
    }

    async fn send(mut req: reqwest::RequestBuilder, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Reply {
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.expect("request reaches the server");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body is readable");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "status {status}: body is not JSON: {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply { status, headers, body }
    }

    pub async fn post(&self, path: &str, auth: Option<&str>, body: Value) -> Reply {
        let bearer = auth.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(b) = &bearer {
            headers.push(("authorization", b));
        }
        self.raw(Method::POST, path, &headers, Some(body.to_string().into_bytes()))
            .await
    }

    pub async fn get(&self, path: &str, auth: Option<&str>) -> Reply {
        let bearer = auth.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", b.as_str())).collect();
        self.raw(Method::GET, path, &headers, None).await
    }

    pub async fn mails_to(&self, to: &str) -> Vec<SentMail> {
        self.deployment.mails_to(to).await.expect("mail is readable")
    }

    pub async fn new_org(&self) -> OrgHandle {
        let domain = format!("{}.example.com", unique("org"));
        let body = self
            .post("/auth/org/signup", None, json!({"name": "Growfin", "domain": domain}))
            .await
            .expect(201);
        OrgHandle {
            id: body["id"].as_str().unwrap().into(),
            domain,
            secret: body["secret"].as_str().unwrap().into(),
        }
    }

    /// Signs up an admin of `org` and signs it in.
    pub async fn new_admin(&self, org: &OrgHandle) -> AdminHandle {
        let email = format!("{}@{}", unique("admin"), org.domain);
        let admin = self
            .post(
                "/auth/admin/signup",
                None,
                json!({"firstName": "Ada", "lastName": "Admin", "email": email, "password": PASSWORD, "secret": org.secret}),
            )
            .await
            .expect(201);
        let jwt = self.signin(&email, PASSWORD).await.expect(200)["jwt"]
            .as_str()
            .unwrap()
            .to_owned();
        AdminHandle {
            id: admin["id"].as_str().unwrap().into(),
            email,
            jwt,
        }
    }

    pub async fn signin(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/auth/admin/signin",
            None,
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Signs in naming the org (`orgDomain`), for an email with accounts in several orgs.
    pub async fn signin_to(&self, email: &str, password: &str, org_domain: &str) -> Reply {
        self.post(
            "/auth/admin/signin",
            None,
            json!({"email": email, "password": password, "orgDomain": org_domain}),
        )
        .await
    }

    /// Signs in from another client: a connection from `client`, a loopback
    /// address other than the 127.0.0.1 every other call comes from.
    pub async fn signin_from(&self, client: std::net::IpAddr, email: &str, password: &str) -> Reply {
        let http = reqwest::Client::builder()
            .local_address(client)
            .build()
            .expect("a client bound to a loopback address");
        let resp = http
            .post(self.url("/auth/admin/signin"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("request reaches the server");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.json().await.expect("a JSON body");
        Reply { status, headers, body }
    }

    pub async fn new_ticket(&self, org: &OrgHandle, customer: &str) -> Value {
        self.post(
            "/tickets",
            None,
            json!({"title": "Invoice total is wrong", "description": "The March invoice adds up to 0.", "addedBy": customer, "secret": org.secret}),
        )
        .await
        .expect(201)
    }

    /// Files a ticket and reads it back as the admin of `jwt` sees it
    /// (`adminId`, `orgId`, `version`): filing answers the customer's view.
    pub async fn new_ticket_seen_by(&self, jwt: &str, org: &OrgHandle, customer: &str) -> Value {
        let id = self.new_ticket_id(org, customer).await;
        self.ticket(jwt, &id).await
    }

    /// Files a ticket for `customer` and returns its id.
    pub async fn new_ticket_id(&self, org: &OrgHandle, customer: &str) -> String {
        self.new_ticket(org, customer).await["id"]
            .as_str()
            .expect("a ticket id")
            .to_owned()
    }

    /// An admin responds to a ticket (the customer is emailed).
    pub async fn respond(&self, jwt: &str, id: &str, message: &str) -> Reply {
        self.post(
            &format!("/tickets/{id}/respond"),
            Some(jwt),
            json!({ "message": message }),
        )
        .await
    }

    /// Responds, and waits until the response's email is `sent`: respond
    /// answers `sent`, or `pending` when its inline send outlasts its budget
    /// (a loaded machine) and finishes after. Returns the reply and the
    /// delivery the ticket then shows.
    pub async fn respond_and_send(&self, jwt: &str, id: &str, message: &str) -> (Value, Value) {
        let reply = self.respond(jwt, id, message).await.expect(201);
        let state = reply["delivery"]["state"].as_str().unwrap_or_default();
        assert!(state == "sent" || state == "pending", "{reply}");
        let response = reply["id"].clone();
        let delivery = |t: &Value| {
            t["responses"]
                .as_array()
                .and_then(|rs| rs.iter().find(|r| r["id"] == response))
                .map(|r| r["delivery"].clone())
                .unwrap_or_default()
        };
        let t = self
            .wait_for_ticket(jwt, id, std::time::Duration::from_secs(15), |t| {
                delivery(t)["state"] == "sent"
            })
            .await;
        let shown = delivery(&t);
        assert_eq!(shown["state"], "sent", "{t}");
        if state == "sent" {
            assert_eq!(reply["delivery"], shown, "the reply and the ticket agree");
        }
        (reply, shown)
    }

    /// An admin moves a ticket to `status`.
    pub async fn change_status(&self, jwt: &str, id: &str, status: &str) -> Reply {
        self.post(
            &format!("/tickets/{id}/change_status"),
            Some(jwt),
            json!({ "status": status }),
        )
        .await
    }

    /// An admin updates a ticket's fields (`POST /tickets/{id}`).
    pub async fn update(&self, jwt: &str, id: &str, fields: Value) -> Reply {
        self.post(&format!("/tickets/{id}"), Some(jwt), fields).await
    }

    pub async fn delete(&self, path: &str, auth: Option<&str>) -> Reply {
        let bearer = auth.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", b.as_str())).collect();
        self.raw(Method::DELETE, path, &headers, None).await
    }

    /// An admin issues an API key with `scopes`.
    /// Registers a webhook for `events` at `url`.
    pub async fn create_webhook(&self, jwt: &str, url: &str, events: &[&str]) -> Reply {
        self.post("/webhooks", Some(jwt), json!({"url": url, "events": events}))
            .await
    }

    pub async fn create_api_key(&self, jwt: &str, name: &str, scopes: &[&str]) -> Reply {
        self.post("/api-keys", Some(jwt), json!({ "name": name, "scopes": scopes }))
            .await
    }

    /// Polls `check` until it gives a value, for at most `timeout`.
    pub async fn wait_for<T, F, Fut>(&self, timeout: std::time::Duration, check: F) -> Option<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = check().await {
                return Some(v);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// The client product posts its customer's reply (org secret in `X-Api-Key`).
    pub async fn reply(&self, org: &OrgHandle, id: &str, from: &str, message: &str) -> Reply {
        self.raw(
            Method::POST,
            &format!("/tickets/{id}/replies"),
            &[("content-type", "application/json"), ("x-api-key", &org.secret)],
            Some(json!({ "from": from, "message": message }).to_string().into_bytes()),
        )
        .await
    }

    /// An admin adds an internal note.
    pub async fn note(&self, jwt: &str, id: &str, message: &str) -> Reply {
        self.post(
            &format!("/tickets/{id}/notes"),
            Some(jwt),
            json!({ "message": message }),
        )
        .await
    }

    /// A GET with the org secret in `X-Api-Key`: what the client product
    /// shows its customer.
    pub async fn get_as_org(&self, org: &OrgHandle, path: &str) -> Reply {
        self.raw(Method::GET, path, &[("x-api-key", &org.secret)], None).await
    }

    pub async fn ticket(&self, jwt: &str, id: &str) -> Value {
        self.get(&format!("/tickets/{id}"), Some(jwt)).await.expect(200)
    }

    /// Polls `id` until `done` holds, for at most `timeout`.
    pub async fn wait_for_ticket(
        &self,
        jwt: &str,
        id: &str,
        timeout: std::time::Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let t = self.ticket(jwt, id).await;
            if done(&t) || tokio::time::Instant::now() >= deadline {
                return t;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

pub fn customer() -> String {
    format!("{}@customer.example.org", unique("cust"))
}
