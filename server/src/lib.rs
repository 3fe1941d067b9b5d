//! `ticketd`: the whole ticketing API in one process on the embedded parts
//! (SQLite, an outbox, a local close-job runner), plus a jobs dashboard.

mod dashboard;
mod inbound;
pub mod keys;
pub mod log_text;
mod reconcile;
mod serve;

use anyhow::Context;
use axum::Json;
use axum::routing::get;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use ticketing::adapters::embedded::Embedded;
use ticketing::http::client_ip::TrustedProxies;
use ticketing::http::{self, Endpoint};
use ticketing::ports::SystemClock;
use ticketing::service::{self, Service};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const DB_FILE: &str = "ticketing.db";
pub use keys::{JWT_KEYS_FILE, JWT_SECRET_FILE};
pub const DEFAULT_MAIL_FROM: &str = "Support <support@ticketing.localhost>";

/// The routes `ticketd` serves beside the API endpoints. The router is built
/// from this list (an exhaustive match gives each its handler), and the spec
/// test reads it: nothing to keep in step by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalRoute {
    Health,
    Dashboard,
    DashboardJobs,
    DashboardMail,
    /// `POST /inbound/email`: only with an inbound token (and domain).
    InboundEmail,
}

impl LocalRoute {
    pub const ALL: [LocalRoute; 5] = [
        LocalRoute::Health,
        LocalRoute::Dashboard,
        LocalRoute::DashboardJobs,
        LocalRoute::DashboardMail,
        LocalRoute::InboundEmail,
    ];

    pub fn method(self) -> axum::http::Method {
        match self {
            LocalRoute::InboundEmail => axum::http::Method::POST,
            _ => axum::http::Method::GET,
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            LocalRoute::Health => "/health",
            LocalRoute::Dashboard => "/dashboard",
            LocalRoute::DashboardJobs => "/dashboard/api/jobs",
            LocalRoute::DashboardMail => "/dashboard/api/mail",
            LocalRoute::InboundEmail => "/inbound/email",
        }
    }
}

/// The local routes, each with its handler; the dashboard's only with a
/// dashboard, the inbound route only with its token.
fn local_routes(dashboard: Option<dashboard::Dashboard>, inbound_token: Option<Arc<str>>) -> axum::Router<Service> {
    let dashboard = dashboard.map(Arc::new);
    LocalRoute::ALL.into_iter().fold(axum::Router::new(), |router, route| {
        let handler = match (route, &dashboard) {
            (LocalRoute::Health, _) => get(health),
            (LocalRoute::Dashboard, Some(d)) => dashboard::page(d.clone()),
            (LocalRoute::DashboardJobs, Some(d)) => dashboard::jobs(d.clone()),
            (LocalRoute::DashboardMail, Some(d)) => dashboard::mail(d.clone()),
            (LocalRoute::InboundEmail, _) => match &inbound_token {
                Some(token) => inbound::route(token.clone()),
                None => return router,
            },
            (_, None) => return router,
        };
        router.route(route.path(), handler)
    })
}

/// Which adapter set serves the API.
// Built once per process: the AWS variant's size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, outbox, local job runner: the default.
    Embedded,
    /// DynamoDB, SES, EventBridge Scheduler (built with feature `aws`).
    #[cfg(feature = "aws")]
    Aws {
        settings: ticketing::adapters::aws::AwsSettings,
        /// Create the table and schedule group when missing (e.g. on a fresh moto).
        create_resources: bool,
        /// One endpoint for every AWS service (tests put a fault-injecting
        /// proxy here); `None`: the SDK's usual sources.
        endpoint_url: Option<String>,
        /// The time budget of one AWS call; `None`: `TICKETING_AWS_TIMEOUT`
        /// or its default. Tests on moto give more (it serves one request at
        /// a time and copies its table for each item of a transaction).
        call_timeout: Option<std::time::Duration>,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub backend: Backend,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub auto_close_after: Duration,
    pub reopen_window: Duration,
    /// A fixed signing key. When absent, the key ring in the data dir
    /// (generated on first start, rotated by `ticketd rotate-jwt-key`), or
    /// on the AWS backend the Secrets Manager secret of the settings.
    pub jwt_secret: Option<String>,
    pub mail_from: String,
    /// The token every dashboard request carries (at least
    /// [`MIN_TOKEN_LEN`] characters); without one, one is generated at start.
    pub dashboard_token: Option<String>,
    /// Host names the dashboard answers to beside `localhost` and IP
    /// literals (`--dashboard-host`, e.g. a name the operator reaches it by).
    pub dashboard_hosts: Vec<String>,
    pub signin: service::SigninLimit,
    /// Proxies whose `X-Forwarded-For` names the client (for sign-in
    /// throttling); by default none, and the TCP peer is the client.
    pub trusted_proxies: TrustedProxies,
    /// Inbound email's domain: response mail carries a reply address there
    /// (the reply key: `reply-key` in the data dir, or on AWS its secret).
    pub inbound_domain: Option<String>,
    /// The token `POST /inbound/email` requires; without it (or without an
    /// inbound domain) the route is not served.
    pub inbound_token: Option<String>,
    /// Apply inbound mail whose sender is not authenticated (local use only).
    pub inbound_allow_unauthenticated: bool,
    /// The authserv-id of the MTA's `Authentication-Results` header to trust.
    pub inbound_authserv_id: Option<String>,
    /// Rate limits, notice coalescing and raw mail retention.
    pub limits: ticketing::domain::limits::Limits,
    /// How often due auto-closes are swept (and, on AWS, the table stream
    /// read and failures retried).
    pub reconcile_interval: Duration,
    /// Webhooks may reach private addresses over plain http (local
    /// development and tests only).
    pub allow_private_webhooks: bool,
    /// How long a client may take to send a request's header (the
    /// connection is closed after it).
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body once its header
    /// is in (answered 408 after it).
    pub body_read_timeout: Duration,
}

/// The shortest `--dashboard-token` or `--inbound-token` taken: guessing
/// one of 32 random characters is out of reach.
pub const MIN_TOKEN_LEN: usize = 32;
/// `--header-read-timeout`'s default.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// `--body-read-timeout`'s default: 10 MiB of inbound mail at ~350 KB/s.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// `--reconcile-interval`'s default: a missed auto-close closes at most this late.
pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(60);

impl Config {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            backend: Backend::Embedded,
            listen,
            data_dir,
            auto_close_after: Duration::from_secs(30 * 86_400),
            reopen_window: ticketing::service::DEFAULT_REOPEN_WINDOW,
            jwt_secret: None,
            mail_from: DEFAULT_MAIL_FROM.into(),
            dashboard_token: None,
            dashboard_hosts: Vec::new(),
            signin: service::SigninLimit::default(),
            trusted_proxies: TrustedProxies::default(),
            reconcile_interval: DEFAULT_RECONCILE_INTERVAL,
            inbound_domain: None,
            inbound_token: None,
            inbound_allow_unauthenticated: false,
            inbound_authserv_id: None,
            limits: Default::default(),
            allow_private_webhooks: false,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
        }
    }

    /// Refuses settings that would weaken the server: short tokens.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (flag, token) in [
            ("--dashboard-token", &self.dashboard_token),
            ("--inbound-token", &self.inbound_token),
        ] {
            // Empty: not given (an unset variable in some deployments).
            if let Some(t) = token
                && !t.is_empty()
                && t.chars().count() < MIN_TOKEN_LEN
            {
                anyhow::bail!("{flag} must be at least {MIN_TOKEN_LEN} characters (e.g. `openssl rand -hex 32`)");
            }
        }
        Ok(())
    }
}

/// A running `ticketd`.
pub struct Server {
    pub addr: SocketAddr,
    pub dashboard_enabled: bool,
    /// The dashboard's token, when a dashboard is served.
    pub dashboard_token: Option<String>,
    /// Whether that token was generated at start (no `--dashboard-token`):
    /// `ticketd` then prints the dashboard's URL with it, once, on stderr.
    pub dashboard_token_generated: bool,
    /// The service behind the routes (tests drive close jobs through it).
    pub service: Service,
    /// The embedded database, when serving on it (bulk imports, benchmarks).
    pub db: Option<Arc<ticketing::adapters::embedded::Db>>,
    /// The AWS adapters, when serving on them.
    #[cfg(feature = "aws")]
    pub aws: Option<ticketing::adapters::aws::AwsAdapters>,
    shutdown: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    /// Background tasks: the embedded close-job runner, the reconcile loop.
    background: Vec<JoinHandle<()>>,
}

impl Server {
    /// Stops accepting, lets in-flight requests finish, stops the job runner.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.wait().await
    }

    /// Waits until the server stops (after [`Server::shutdown`] or a signal).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.http.await??;
        for task in self.background {
            task.await?;
        }
        Ok(())
    }

    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Opens the storage, binds, and serves until shut down.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    config.validate()?;
    match &config.backend {
        Backend::Embedded => start_embedded(config).await,
        #[cfg(feature = "aws")]
        Backend::Aws {
            settings,
            create_resources,
            endpoint_url,
            call_timeout,
        } => {
            start_aws(
                config.clone(),
                settings.clone(),
                *create_resources,
                endpoint_url.clone(),
                *call_timeout,
            )
            .await
        }
    }
}

/// What the service is configured with, on either backend.
fn service_settings(
    config: &Config,
    jwt_keys: service::KeyConfig,
    mail_from: String,
    reply_key: service::ReplyKeyConfig,
) -> service::Settings {
    service::Settings {
        jwt_keys,
        auto_close_after: config.auto_close_after,
        reopen_window: config.reopen_window,
        mail_from,
        signin: config.signin,
        inbound: service::InboundSettings {
            domain: config.inbound_domain.clone(),
            reply_key,
            allow_unauthenticated: config.inbound_allow_unauthenticated,
            trusted_authserv_id: config.inbound_authserv_id.clone(),
        },
        limits: config.limits.clone(),
    }
}

/// The inbound route's token, when inbound email is configured.
fn inbound_token(config: &Config) -> Option<Arc<str>> {
    config.inbound_domain.as_ref()?;
    config.inbound_token.as_deref().filter(|t| !t.is_empty()).map(Arc::from)
}

async fn start_embedded(config: Config) -> anyhow::Result<Server> {
    make_private_dir(&config.data_dir)?;
    let jwt_keys = fixed_or_file_keys(&config)?;
    let db_path = config.data_dir.join(DB_FILE);
    let mut embedded = Embedded::open(&db_path, Arc::new(SystemClock))
        .with_context(|| format!("cannot open database {}", db_path.display()))?;
    if config.allow_private_webhooks {
        tracing::warn!("webhooks may reach private addresses (--allow-private-webhooks): development only");
        embedded = embedded.allow_private_webhooks();
    }
    let reply_key = match &config.inbound_domain {
        Some(_) => service::ReplyKeyConfig::Fixed(keys::reply_key(&config.data_dir)?),
        None => service::ReplyKeyConfig::None,
    };
    let service = Service::new(
        embedded.ports(),
        &service_settings(&config, jwt_keys, config.mail_from.clone(), reply_key),
    )?;
    let given = config.dashboard_token.clone().filter(|t| !t.is_empty());
    let generated = given.is_none();
    let token = given.unwrap_or_else(ticketing::auth::secret::generate_secret);
    let dashboard = dashboard::Dashboard {
        db: embedded.db.clone(),
        token: token.clone(),
        hosts: config.dashboard_hosts.clone(),
    };
    let routes = http::routes(&Endpoint::ALL).merge(local_routes(Some(dashboard), inbound_token(&config)));
    let runner = embedded.job_runner();
    let dispatcher = embedded.webhook_dispatcher();
    let interval = config.reconcile_interval;
    let storage = format!("data in {}", db_path.display());
    let background: Vec<Background> = vec![
        Box::new(move |service, stop| tokio::spawn(runner.run(service, stop))),
        Box::new(move |service, stop| tokio::spawn(dispatcher.run(service, stop))),
        Box::new(move |service, stop| tokio::spawn(reconcile::embedded(service, interval, stop))),
    ];
    let mut server = serve(config, service, routes, storage, true, background).await?;
    server.db = Some(embedded.db.clone());
    server.dashboard_token = Some(token);
    server.dashboard_token_generated = generated;
    Ok(server)
}

#[cfg(feature = "aws")]
async fn start_aws(
    config: Config,
    settings: ticketing::adapters::aws::AwsSettings,
    create_resources: bool,
    endpoint_url: Option<String>,
    call_timeout: Option<std::time::Duration>,
) -> anyhow::Result<Server> {
    use ticketing::adapters::aws;
    let endpoint = endpoint_url.or_else(|| aws::endpoint_override(|k| std::env::var(k).ok()));
    let sdk = aws::sdk_config_with(endpoint.as_deref(), call_timeout).await;
    let mut settings = settings;
    if config.inbound_domain.is_some() {
        settings.inbound_domain = config.inbound_domain.clone();
    }
    let mut adapters = aws::AwsAdapters::new(&sdk, &settings);
    if config.allow_private_webhooks {
        tracing::warn!("webhooks may reach private addresses (--allow-private-webhooks): development only");
        adapters = adapters.allow_private_webhooks();
    }
    if create_resources {
        aws::create_missing_resources(&adapters, &settings).await?;
    }
    // As a function does: the keys in the secret, unless a fixed one is given.
    let jwt_keys = match (&config.jwt_secret, &settings.jwt_secret_arn) {
        (None, Some(_)) => adapters.jwt_keys(&settings),
        _ => fixed_or_file_keys(&config)?,
    };
    let reply_key = match &config.inbound_domain {
        Some(_) => adapters.reply_keys(&settings),
        None => service::ReplyKeyConfig::None,
    };
    let service_settings = service_settings(&config, jwt_keys, settings.mail_from.clone(), reply_key);
    let service = Service::new(adapters.ports(), &service_settings)?;
    let routes = http::routes(&Endpoint::ALL).merge(local_routes(None, inbound_token(&config)));
    let storage = format!(
        "DynamoDB table {}, schedule group {} (schedules invoke {}); no dashboard on AWS: see the Scheduler console",
        settings.table, settings.schedule_group, settings.close_function_arn
    );
    let reconciler = aws::Reconciler::new(service.clone(), adapters.clone(), &settings);
    let interval = config.reconcile_interval;
    let background: Vec<Background> = vec![Box::new(move |_, stop| {
        tokio::spawn(reconcile::aws(reconciler, interval, stop))
    })];
    let mut server = serve(config, service, routes, storage, false, background).await?;
    server.aws = Some(adapters);
    Ok(server)
}

/// A task that runs beside the server until the shutdown future resolves.
type Background =
    Box<dyn FnOnce(Service, std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> JoinHandle<()> + Send>;

/// Binds and serves `routes`, with the `background` tasks running beside the server until shutdown.
async fn serve(
    config: Config,
    service: Service,
    routes: axum::Router<Service>,
    storage: String,
    dashboard_enabled: bool,
    background: Vec<Background>,
) -> anyhow::Result<Server> {
    // The fallback hash makes unknown-email sign-ins as slow as real ones; compute it now.
    tokio::task::spawn_blocking(ticketing::auth::password::warm_up).await?;
    // The peer address and the trusted proxies tell sign-in throttling who the client is.
    let app = http::finish(routes, service.clone()).layer(axum::Extension(config.trusted_proxies.clone()));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let background = background
        .into_iter()
        .map(|start| start(service.clone(), Box::pin(wait_for(shutdown_rx.clone()))))
        .collect();
    let timeouts = serve::Timeouts {
        header: config.header_read_timeout,
        body: config.body_read_timeout,
    };
    let http = tokio::spawn(serve::run(listener, app, timeouts, wait_for(shutdown_rx)));
    let dashboard = if dashboard_enabled {
        format!("dashboard at http://{addr}/dashboard (with its token)")
    } else {
        "no dashboard".to_owned()
    };
    tracing::info!(
        "ticketd listening on http://{addr}; {storage}; {dashboard}; tickets auto-close {} after a response",
        ticketing::domain::duration::format_duration(config.auto_close_after),
    );
    Ok(Server {
        addr,
        dashboard_enabled,
        dashboard_token: None,
        dashboard_token_generated: false,
        service,
        db: None,
        #[cfg(feature = "aws")]
        aws: None,
        shutdown,
        http,
        background,
    })
}

async fn wait_for(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Takes no query parameters: like every route, an unknown one is a 400.
async fn health(_: http::extract::NoQuery) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Creates the data dir if needed and makes it owner-only (0700), whatever the
/// umask and whatever mode an older version left: it holds the database (with
/// password and secret hashes) and the JWT secret.
fn make_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create data dir {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .with_context(|| format!("cannot read data dir {}", dir.display()))?
            .permissions()
            .mode()
            & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot make data dir {} private (mode 0700)", dir.display()))?;
            tracing::info!(dir = ?dir, was = format!("{mode:o}"), "data dir made private: mode 0700");
        }
    }
    Ok(())
}

/// The fixed `--jwt-secret`, else the data dir's key file (created or
/// migrated now, then re-read as it changes).
fn fixed_or_file_keys(config: &Config) -> anyhow::Result<service::KeyConfig> {
    Ok(match &config.jwt_secret {
        Some(secret) => service::KeyConfig::Fixed(secret.clone()),
        None => {
            make_private_dir(&config.data_dir)?;
            let ring = keys::load_or_create(&config.data_dir)?;
            tracing::info!(kid = %ring.current.kid, "JWT keys from the data dir");
            service::KeyConfig::Source(Arc::new(keys::KeyFile::new(config.data_dir.join(JWT_KEYS_FILE))))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data dir, the database and its WAL files are owner-only, both when
    /// ticketd creates them and when an earlier run left them readable.
    #[cfg(unix)]
    #[tokio::test]
    async fn data_dir_and_database_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let set = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let files = ["", "-wal", "-shm"].map(|s| dir.join(format!("{DB_FILE}{s}")));
        for round in ["fresh", "left open by an earlier run"] {
            let server = start(Config::new("127.0.0.1:0".parse().unwrap(), dir.clone()))
                .await
                .unwrap();
            // While serving, the WAL files exist.
            assert_eq!(mode(&dir), 0o700, "{round}: data dir");
            for f in &files {
                assert_eq!(mode(f), 0o600, "{round}: {}", f.display());
            }
            server.shutdown().await.unwrap();
            set(&dir, 0o755);
            for f in &files {
                if !f.exists() {
                    std::fs::write(f, b"").unwrap();
                }
                set(f, 0o644);
            }
        }
    }
}
