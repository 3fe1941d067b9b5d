//! The reply key and inbound domain the service renders reply addresses and
//! reads inbound mail with: fixed (ticketd's key file), or read once from a
//! key source (a Secrets Manager secret) on first use and kept: it never
//! rotates, so there is nothing to re-read.

use crate::auth::ReplyKey;
use crate::error::{Error, Result};
use crate::ports::ReplyKeySource;
use std::sync::Arc;

/// Where the reply key comes from.
#[derive(Clone, Default)]
pub enum ReplyKeyConfig {
    /// No inbound email: response mail has no reply address.
    #[default]
    None,
    Fixed(ReplyKey),
    Source(Arc<dyn ReplyKeySource>),
}

impl std::fmt::Debug for ReplyKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReplyKeyConfig::None => "ReplyKeyConfig::None",
            ReplyKeyConfig::Fixed(_) => "ReplyKeyConfig::Fixed(..)",
            ReplyKeyConfig::Source(_) => "ReplyKeyConfig::Source(..)",
        })
    }
}

/// Inbound email's configuration: on when both are set.
#[derive(Debug, Clone, Default)]
pub struct InboundSettings {
    /// The domain reply addresses are at (`--inbound-domain`, `TICKETING_INBOUND_DOMAIN`).
    pub domain: Option<String>,
    pub reply_key: ReplyKeyConfig,
    /// Apply mail whose `From` domain is not authenticated (no SPF or DKIM
    /// pass, or a DMARC fail): for local use only, off by default
    /// (`--inbound-allow-unauthenticated`, `TICKETING_INBOUND_ALLOW_UNAUTHENTICATED`).
    pub allow_unauthenticated: bool,
    /// ticketd: the authserv-id of the `Authentication-Results` header its
    /// MTA adds (`--inbound-authserv-id`); other such headers are ignored.
    /// On SES the receipt's verdicts are used instead.
    pub trusted_authserv_id: Option<String>,
}

/// How inbound mail's sender is authenticated (from [`InboundSettings`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundAuth {
    pub allow_unauthenticated: bool,
    pub trusted_authserv_id: Option<String>,
}

impl InboundAuth {
    pub fn new(settings: &InboundSettings) -> Self {
        Self {
            allow_unauthenticated: settings.allow_unauthenticated,
            trusted_authserv_id: settings
                .trusted_authserv_id
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        }
    }
}

/// The reply key, cached for the life of the process.
#[derive(Clone, Default)]
pub struct ReplyKeys {
    domain: Option<String>,
    config: ReplyKeyConfig,
    loaded: Arc<tokio::sync::OnceCell<ReplyKey>>,
}

impl ReplyKeys {
    pub fn new(settings: &InboundSettings) -> Self {
        let domain = settings.domain.clone().filter(|d| !d.trim().is_empty());
        // On AWS every function gets the domain and only respond and
        // inbound-email the key: the others need neither, so no warning here.
        Self {
            domain,
            config: settings.reply_key.clone(),
            loaded: Default::default(),
        }
    }

    /// The inbound domain, when inbound email is on.
    pub fn domain(&self) -> Option<&str> {
        match self.config {
            ReplyKeyConfig::None => None,
            _ => self.domain.as_deref(),
        }
    }

    /// The domain and key, when inbound email is on. A source that cannot be
    /// read is an internal error (retried by the next call): a response
    /// mailed without its reply address would tell the customer to reply in vain.
    pub async fn get(&self) -> Result<Option<(&str, &ReplyKey)>> {
        let Some(domain) = self.domain() else {
            return Ok(None);
        };
        let key = match &self.config {
            ReplyKeyConfig::None => return Ok(None),
            ReplyKeyConfig::Fixed(key) => key,
            ReplyKeyConfig::Source(source) => self
                .loaded
                .get_or_try_init(|| async {
                    let key = source.load().await?;
                    tracing::info!("reply key read");
                    anyhow::Ok(key)
                })
                .await
                .map_err(|e| Error::internal(e.context("reading the reply key")))?,
        };
        Ok(Some((domain, key)))
    }
}
