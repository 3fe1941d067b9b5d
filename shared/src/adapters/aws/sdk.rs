//! The AWS SDK's shared configuration: bounded timeouts and retries, and an
//! HTTPS client that trusts only the roots AWS endpoints chain to.

use super::budgets::CallLimits;
use super::settings::{ENV_AWS_ENDPOINT_URL, ENV_AWS_TIMEOUT, ENV_TLS_NATIVE_ROOTS};
use crate::domain::duration::parse_duration;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig, retry::RetryConfig};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// An SDK client built on first use, then shared by every clone; derefs to
/// the client. Building a client costs cold-start time (bench part d) that a
/// function which never calls that service should not pay.
pub struct LazyClient<C>(Arc<LazyLock<C, Box<dyn FnOnce() -> C + Send>>>);

impl<C> LazyClient<C> {
    pub fn new(build: impl FnOnce() -> C + Send + 'static) -> Self {
        Self(Arc::new(LazyLock::new(Box::new(build))))
    }
}

impl<C> Clone for LazyClient<C> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// A client built already (tests point one at a fault proxy).
impl<C: Send + 'static> From<C> for LazyClient<C> {
    fn from(client: C) -> Self {
        Self::new(move || client)
    }
}

impl<C> std::ops::Deref for LazyClient<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.0
    }
}

/// The root certificates compiled in, by file name: AWS endpoints chain to the
/// Amazon Trust Services roots (and Starfield Services G2).
pub const ROOTS: [(&str, &[u8]); 5] = [
    ("Amazon_Root_CA_1.pem", include_bytes!("roots/Amazon_Root_CA_1.pem")),
    ("Amazon_Root_CA_2.pem", include_bytes!("roots/Amazon_Root_CA_2.pem")),
    ("Amazon_Root_CA_3.pem", include_bytes!("roots/Amazon_Root_CA_3.pem")),
    ("Amazon_Root_CA_4.pem", include_bytes!("roots/Amazon_Root_CA_4.pem")),
    (
        "Starfield_Services_Root_Certificate_Authority_-_G2.pem",
        include_bytes!("roots/Starfield_Services_Root_Certificate_Authority_-_G2.pem"),
    ),
];

/// The time budget of one AWS call when `TICKETING_AWS_TIMEOUT` is unset
/// (ticketd, tests); template.yaml sets the functions' own, shorter one.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(4);

/// The limits of one AWS call, from `TICKETING_AWS_TIMEOUT` as `get` reads it
/// (the process environment, or template.yaml in the budget test).
pub fn call_limits(get: impl Fn(&str) -> Option<String>) -> CallLimits {
    let operation = get(ENV_AWS_TIMEOUT)
        .and_then(|v| parse_duration(&v).ok())
        .unwrap_or(DEFAULT_CALL_TIMEOUT);
    CallLimits::for_operation(operation)
}

/// The SDK configuration: region, credentials and endpoint from the usual
/// sources (`AWS_ENDPOINT_URL` points it at moto, and so does a non-empty
/// [`ENV_AWS_ENDPOINT_URL`]), with bounded timeouts and retries so a dead
/// dependency is a quick 503, never a hang.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_at(endpoint_override(|k| std::env::var(k).ok()).as_deref()).await
}

/// The [`ENV_AWS_ENDPOINT_URL`] override, if set to something.
pub fn endpoint_override(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    get(ENV_AWS_ENDPOINT_URL)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// [`sdk_config`], with every service's endpoint overridden (a private moto).
pub async fn sdk_config_at(endpoint_url: Option<&str>) -> SdkConfig {
    sdk_config_with(endpoint_url, None).await
}

/// [`sdk_config_at`], with the time budget of one call given rather than
/// read from `TICKETING_AWS_TIMEOUT` (a test on a slow stand-in).
pub async fn sdk_config_with(endpoint_url: Option<&str>, call_timeout: Option<Duration>) -> SdkConfig {
    // Per call; raise it for slow stand-ins (moto copies whole tables per transaction).
    let limits = match call_timeout {
        Some(t) => CallLimits::for_operation(t),
        None => call_limits(|k| std::env::var(k).ok()),
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(limits.connect)
                .operation_attempt_timeout(limits.attempt)
                .operation_timeout(limits.operation)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(limits.max_attempts)
                .with_max_backoff(limits.max_backoff),
        );
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    from_env_when_there(loader, |k| std::env::var(k).ok()).load().await
}

/// Region and credentials from the environment when it holds them (always on
/// Lambda): the default chains look there first and would take them, so this
/// changes nothing but the cost; building the rest of both chains (profile,
/// SSO, web identity, container and IMDS providers) took ~0.3 ms of each
/// function's init (bench part d, timed step by step).
fn from_env_when_there(
    mut loader: aws_config::ConfigLoader,
    get: impl Fn(&str) -> Option<String>,
) -> aws_config::ConfigLoader {
    use aws_config::environment::{EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider};
    if get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")).is_some() {
        loader = loader.region(EnvironmentVariableRegionProvider::new());
    }
    let set = |k: &str| get(k).is_some_and(|v| !v.trim().is_empty());
    if set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY") {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    loader
}

/// The HTTPS client for AWS calls, trusting only [`ROOTS`]: parsing the
/// system's whole CA bundle took more than half of a function's cold start.
/// `TICKETING_TLS_NATIVE_ROOTS=true` trusts the system bundle instead (e.g.
/// behind a TLS-inspecting proxy).
fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    let native = std::env::var(ENV_TLS_NATIVE_ROOTS).is_ok_and(|v| v == "true" || v == "1");
    let trust = ROOTS
        .iter()
        .fold(TrustStore::empty().with_native_roots(native), |t, (_, pem)| {
            t.with_pem_certificate(*pem)
        });
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("static TLS settings are valid");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

#[cfg(test)]
mod tests {
    use super::{ENV_AWS_ENDPOINT_URL, LazyClient, endpoint_override};
    use base64::Engine;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_lazy_client_is_built_on_first_use_once_for_all_its_clones() {
        let builds = Arc::new(AtomicUsize::new(0));
        let counter = builds.clone();
        let client = LazyClient::new(move || counter.fetch_add(1, Ordering::SeqCst) + 100);
        let clone = client.clone();
        assert_eq!(builds.load(Ordering::SeqCst), 0, "nothing built before use");
        assert_eq!(*clone, 100);
        assert_eq!(*client, 100);
        assert_eq!(builds.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_endpoint_override_applies_only_when_set_to_something() {
        let with = |v: &'static str| move |k: &str| (k == ENV_AWS_ENDPOINT_URL).then(|| v.to_owned());
        assert_eq!(endpoint_override(|_| None), None);
        assert_eq!(endpoint_override(with("")), None);
        assert_eq!(endpoint_override(with("  ")), None);
        assert_eq!(
            endpoint_override(with("http://host.docker.internal:5000")).as_deref(),
            Some("http://host.docker.internal:5000")
        );
    }

    /// Every compiled-in root is a well-formed certificate (a bad one would
    /// only show as failed TLS handshakes against real AWS), and every file in
    /// `roots/` is compiled in.
    #[test]
    fn compiled_in_roots_are_der_certificates_and_all_of_roots_dir() {
        for (name, pem) in super::ROOTS {
            let pem = std::str::from_utf8(pem).expect("PEM is text");
            let body: String = pem
                .lines()
                .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
                .skip(1)
                .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
                .collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            // A DER SEQUENCE whose long-form length covers exactly the rest.
            assert_eq!(der[0], 0x30, "{name}");
            let len_bytes = usize::from(der[1] & 0x7f);
            let len = der[2..2 + len_bytes]
                .iter()
                .fold(0usize, |n, b| (n << 8) | usize::from(*b));
            assert_eq!(len + 2 + len_bytes, der.len(), "{name}");
        }
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/adapters/aws/roots");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("roots dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut compiled: Vec<String> = super::ROOTS.iter().map(|(n, _)| n.to_string()).collect();
        compiled.sort();
        assert_eq!(on_disk, compiled);
    }
}
