//! Test harness: an "adapter set" starts the whole API over a real socket on
//! some set of adapters; the contract cases run unchanged against each.

mod aws;
pub mod client;
mod embedded;
pub mod fault_proxy;
pub mod faults;
pub mod inbound;
pub mod receiver;

pub use aws::{AwsHandle, AwsSet, MotoSchedule, moto_endpoint, moto_mail_endpoint};
pub use client::{Reply, TestApp};
pub use embedded::EmbeddedSet;
pub use fault_proxy::FaultyAws;
pub use receiver::Receiver;

use async_trait::async_trait;
use std::time::Duration;

/// The seed of the deployments' ES256 signing key (kid
/// [`ticketing::auth::keyring::FIXED_KID`]), known to the tests so they can
/// forge tokens (expired, tampered...).
pub const JWT_SECRET: &str = "contract-tests-jwt-secret-0123456789abcdef";

/// The key ring every test deployment signs with.
pub fn jwt_ring() -> ticketing::auth::KeyRing {
    use ticketing::auth::{KeyRing, SigningKey, keyring::FIXED_KID};
    KeyRing::single(SigningKey::new(FIXED_KID, JWT_SECRET).expect("a valid seed"))
}

/// `claims` signed ES256 with the key derived from `seed`, under the
/// deployments' kid: with [`JWT_SECRET`], a token the server's key signed.
pub fn sign_token(seed: &str, claims: &serde_json::Value) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    use ticketing::auth::{SigningKey, keyring::FIXED_KID};
    let key = SigningKey::new(FIXED_KID, seed).expect("a valid seed");
    let header = Header {
        kid: Some(FIXED_KID.into()),
        ..Header::new(Algorithm::ES256)
    };
    encode(&header, claims, &EncodingKey::from_ec_der(key.pkcs8_der())).expect("ES256 signs")
}

/// `claims` signed with the deployments' key.
pub fn forge_token(claims: &serde_json::Value) -> String {
    sign_token(JWT_SECRET, claims)
}

/// The deployments' public key (uncompressed SEC1), as every verifier holds it.
pub fn jwt_public_key() -> Vec<u8> {
    jwt_ring().current.verify_key().public_key().to_vec()
}

#[derive(Debug, Clone)]
pub struct TestConfig {
    pub auto_close_after: Duration,
    /// `--reopen-window`: how long after closing a reply reopens a ticket.
    pub reopen_window: Duration,
    pub signin: ticketing::service::SigninLimit,
    /// ticketd's `--reconcile-interval`: short, so the nets act within a
    /// test; not shorter, since on AWS each tick makes a handful of calls to
    /// the one (serial) moto that every running test shares. Tests that wait
    /// on a tick set their own.
    pub reconcile_interval: Duration,
    /// AWS set only: the endpoint for every AWS call (a [`FaultyAws`]).
    pub aws_endpoint: Option<String>,
    /// `--inbound-domain` and `--inbound-token`: inbound email on.
    pub inbound: Option<(String, String)>,
    /// `--allow-private-webhooks`: on, so the tests' receiver on loopback
    /// gets deliveries; the SSRF cases turn it off.
    pub allow_private_webhooks: bool,
    /// ticketd's `--limit`s, `--reply-notice-every` and `--inbound-retention`.
    pub limits: ticketing::domain::limits::Limits,
}

impl Default for TestConfig {
    fn default() -> Self {
        Self {
            auto_close_after: Duration::from_secs(30 * 86_400),
            reopen_window: ticketing::service::DEFAULT_REOPEN_WINDOW,
            signin: Default::default(),
            reconcile_interval: Duration::from_secs(5),
            aws_endpoint: None,
            inbound: None,
            allow_private_webhooks: true,
            limits: Default::default(),
        }
    }
}

/// A mail as the customer would receive it.
#[derive(Debug, Clone)]
pub struct SentMail {
    pub to: String,
    pub subject: String,
    pub text: String,
    /// Its `Reply-To`, where the adapter set shows it (moto's SES keeps none).
    pub reply_to: Option<String>,
}

#[async_trait]
pub trait AdapterSet: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn start(&self, config: TestConfig) -> anyhow::Result<Box<dyn Deployment>>;
}

/// One running deployment of the API.
#[async_trait]
pub trait Deployment: Send + Sync {
    fn base_url(&self) -> String;
    /// Mails delivered to `to`, oldest first.
    async fn mails_to(&self, to: &str) -> anyhow::Result<Vec<SentMail>>;
    /// Each admin's stored count of non-closed tickets, as assignment sees it.
    /// The reply key response mail is rendered with (inbound email on).
    async fn reply_key(&self) -> anyhow::Result<ticketing::auth::ReplyKey>;
    async fn open_ticket_counts(&self, org_id: &str) -> anyhow::Result<std::collections::HashMap<String, i64>>;
    /// Stops everything (as a crash or deploy would), waits `downtime`, starts
    /// again on the same storage.
    async fn restart(&mut self, downtime: Duration) -> anyhow::Result<()>;
    async fn stop(self: Box<Self>) -> anyhow::Result<()>;
}

/// A name no other test (or earlier run against shared storage) has used.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}
