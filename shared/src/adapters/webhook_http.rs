//! The [`WebhookClient`] port over hyper, shared by both adapter sets: one
//! attempt with the 10 s timeout, HTTP/1.1 over rustls (the aws-lc-rs
//! provider the AWS SDK links already) with the system's roots, no redirect
//! followed (hyper follows none), no proxy, and (unless private addresses are
//! allowed) a resolver that refuses any name resolving to an address
//! deliveries may never reach, on every attempt, so a name re-pointed after
//! creation (DNS rebinding) is refused too. hyper rather than reqwest: a
//! rustls-enabled reqwest panics wherever a client is built before a process
//! provider is installed, and every reqwest client in the workspace would get it.

use crate::domain::webhooks::{DELIVERY_TIMEOUT, WebhookUrl, is_public};
use crate::ports::WebhookClient;
use async_trait::async_trait;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

/// Why a name was refused; found again in the error chain.
#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REFUSED)
    }
}

impl std::error::Error for Refused {}

const REFUSED: &str = "refused: the host resolves to a loopback, private, link-local or reserved address";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Resolves with the system resolver; unless private addresses are allowed,
/// refuses the whole name if any of its addresses is not public (a mixed
/// answer could be raced to the bad one).
#[derive(Clone, Copy)]
struct Resolver {
    allow_private: bool,
}

impl tower::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if !allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
                return Err(Box::new(Refused) as BoxError);
            }
            Ok(addrs.into_iter())
        })
    }
}

type Https = hyper_rustls::HttpsConnector<HttpConnector<Resolver>>;

/// Built on first use: loading the system's root certificates takes ~3.5 ms
/// (bench part d), which no function that never delivers should pay at init.
pub struct HttpWebhookClient {
    client: OnceLock<Result<Client<Https, Full<bytes::Bytes>>, String>>,
    allow_private: bool,
}

impl HttpWebhookClient {
    /// `allow_private`: reach any address, plain `http` too (`ticketd
    /// --allow-private-webhooks`, for local development and tests only).
    pub fn new(allow_private: bool) -> Arc<Self> {
        Arc::new(Self {
            client: OnceLock::new(),
            allow_private,
        })
    }

    fn client(&self) -> Result<&Client<Https, Full<bytes::Bytes>>, String> {
        self.client
            .get_or_init(|| {
                let mut http = HttpConnector::new_with_resolver(Resolver {
                    allow_private: self.allow_private,
                });
                http.enforce_http(false);
                http.set_connect_timeout(Some(DELIVERY_TIMEOUT));
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                let builder = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_native_roots(provider)
                    .map_err(|e| {
                        tracing::error!(error = %e, "no root certificates for webhook delivery");
                        "the webhook HTTP client cannot be built".to_owned()
                    })?;
                let https = if self.allow_private {
                    builder.https_or_http().enable_http1().wrap_connector(http)
                } else {
                    builder.https_only().enable_http1().wrap_connector(http)
                };
                Ok(Client::builder(TokioExecutor::new()).build(https))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The URL's host as an address, when it is one (the resolver never sees those).
    fn literal(url: &WebhookUrl) -> Option<IpAddr> {
        let (host, _) = url.host_port()?;
        host.trim_start_matches('[').trim_end_matches(']').parse().ok()
    }
}

/// A failed request as the delivery log shows it: what kind of failure,
/// never the library's text (it can quote the URL).
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if s.is::<Refused>() {
            return REFUSED.to_owned();
        }
        source = s.source();
    }
    if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    }
}

#[async_trait]
impl WebhookClient for HttpWebhookClient {
    async fn post(&self, url: &WebhookUrl, headers: &[(&'static str, String)], body: &str) -> Result<u16, String> {
        self.check_literal(url)?;
        let client = self.client()?;
        let mut request = hyper::Request::post(url.as_str())
            .header("content-type", "application/json")
            .header("user-agent", concat!("ticketing-webhooks/", env!("CARGO_PKG_VERSION")));
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let request = request
            .body(Full::new(bytes::Bytes::from(body.to_owned())))
            .map_err(|_| "the request could not be built".to_owned())?;
        // The whole attempt, connection and answer, within the timeout; the
        // answer's body is never read (only its status counts).
        match tokio::time::timeout(DELIVERY_TIMEOUT, client.request(request)).await {
            Err(_) => Err("timed out after 10 s".to_owned()),
            Ok(Err(e)) => Err(describe(&e)),
            Ok(Ok(reply)) => Ok(reply.status().as_u16()),
        }
    }

    async fn check(&self, url: &WebhookUrl) -> Result<(), String> {
        if self.allow_private {
            return Ok(());
        }
        self.check_literal(url)?;
        if Self::literal(url).is_some() {
            return Ok(());
        }
        let (host, port) = url.host_port().ok_or("the URL names no host")?;
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| "the host does not resolve".to_owned())?
            .collect();
        if addrs.is_empty() {
            return Err("the host does not resolve".to_owned());
        }
        if addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(REFUSED.to_owned());
        }
        Ok(())
    }

    fn allows_private(&self) -> bool {
        self.allow_private
    }
}

impl HttpWebhookClient {
    fn check_literal(&self, url: &WebhookUrl) -> Result<(), String> {
        match Self::literal(url) {
            Some(ip) if !self.allow_private && !is_public(ip) => Err(REFUSED.to_owned()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn private_targets_are_refused_before_any_connection() {
        let client = HttpWebhookClient::new(false);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        for url in [
            format!("https://localhost:{port}/hook"),
            format!("https://127.0.0.1:{port}/hook"),
            "https://169.254.169.254/latest/meta-data".to_owned(),
            "https://10.0.0.1/hook".to_owned(),
        ] {
            let url = WebhookUrl::from_trusted(url);
            assert_eq!(client.post(&url, &[], "{}").await, Err(REFUSED.to_owned()), "{url:?}");
            assert!(client.check(&url).await.is_err(), "{url:?}");
        }
        // Nothing reached the listener.
        let accepted = tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "a refused delivery connected");
    }

    #[tokio::test]
    async fn allowed_private_targets_are_reached() {
        let client = HttpWebhookClient::new(true);
        let url = WebhookUrl::from_trusted("http://127.0.0.1:9/hook".into());
        assert!(client.check(&url).await.is_ok());
        // Port 9 (discard) is closed here: a connection error, not a refusal.
        assert_eq!(client.post(&url, &[], "{}").await, Err("could not connect".to_owned()));
    }
}
