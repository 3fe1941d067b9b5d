//! `ticketd`: the whole ticketing API in one process on the embedded parts
//! (SQLite, an outbox, a local close-job runner), plus a jobs dashboard.

mod dashboard;
#[cfg(feature = "aws")]
mod mail_loop;

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
pub const JWT_SECRET_FILE: &str = "jwt-secret";
pub const DEFAULT_MAIL_FROM: &str = "Support <support@ticketing.localhost>";
/// How often `ticketd --backend aws` retries due mail and reads SES's reports.
#[cfg(feature = "aws")]
pub const MAIL_INTERVAL: Duration = Duration::from_secs(60);

/// The routes `ticketd` serves beside the API endpoints. The router is built
/// from this list (an exhaustive match gives each its handler), and the spec
/// test reads it: nothing to keep in step by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalRoute {
    Health,
    Dashboard,
    DashboardJobs,
    DashboardMail,
}

impl LocalRoute {
    pub const ALL: [LocalRoute; 4] = [
        LocalRoute::Health,
        LocalRoute::Dashboard,
        LocalRoute::DashboardJobs,
        LocalRoute::DashboardMail,
    ];

    /// All are GET.
    pub fn method(self) -> axum::http::Method {
        axum::http::Method::GET
    }

    pub fn path(self) -> &'static str {
        match self {
            LocalRoute::Health => "/health",
            LocalRoute::Dashboard => "/dashboard",
            LocalRoute::DashboardJobs => "/dashboard/api/jobs",
            LocalRoute::DashboardMail => "/dashboard/api/mail",
        }
    }
}

/// The local routes, each with its handler; the dashboard's only with a dashboard.
fn local_routes(dashboard: Option<dashboard::Dashboard>) -> axum::Router<Service> {
    let dashboard = dashboard.map(Arc::new);
    LocalRoute::ALL.into_iter().fold(axum::Router::new(), |router, route| {
        let handler = match (route, &dashboard) {
            (LocalRoute::Health, _) => get(health),
            (LocalRoute::Dashboard, Some(d)) => dashboard::page(d.clone()),
            (LocalRoute::DashboardJobs, Some(d)) => dashboard::jobs(d.clone()),
            (LocalRoute::DashboardMail, Some(d)) => dashboard::mail(d.clone()),
            (_, None) => return router,
        };
        router.route(route.path(), handler)
    })
}

/// Which adapter set serves the API.
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
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub backend: Backend,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub auto_close_after: Duration,
    /// When absent, one is generated once and kept in the data dir.
    pub jwt_secret: Option<String>,
    pub mail_from: String,
    pub dashboard_token: Option<String>,
    pub signin: service::SigninLimit,
    /// Proxies whose `X-Forwarded-For` names the client (for sign-in
    /// throttling); by default none, and the TCP peer is the client.
    pub trusted_proxies: TrustedProxies,
}

impl Config {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            backend: Backend::Embedded,
            listen,
            data_dir,
            auto_close_after: Duration::from_secs(30 * 86_400),
            jwt_secret: None,
            mail_from: DEFAULT_MAIL_FROM.into(),
            dashboard_token: None,
            signin: service::SigninLimit::default(),
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// A running `ticketd`.
pub struct Server {
    pub addr: SocketAddr,
    pub dashboard_enabled: bool,
    /// The service behind the routes (tests drive close jobs through it).
    pub service: Service,
    /// The embedded database, when serving on it (bulk imports, benchmarks).
    pub db: Option<Arc<ticketing::adapters::embedded::Db>>,
    /// The AWS adapters, when serving on them.
    #[cfg(feature = "aws")]
    pub aws: Option<ticketing::adapters::aws::AwsAdapters>,
    shutdown: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    /// The embedded job runner (close jobs, due mail), or on AWS the mail loop.
    runner: Option<JoinHandle<()>>,
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
        if let Some(runner) = self.runner {
            runner.await?;
        }
        Ok(())
    }

    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Opens the storage, binds, and serves until shut down.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    match &config.backend {
        Backend::Embedded => start_embedded(config).await,
        #[cfg(feature = "aws")]
        Backend::Aws {
            settings,
            create_resources,
        } => start_aws(config.clone(), settings.clone(), *create_resources).await,
    }
}

/// What the service is configured with, on either backend.
fn service_settings(config: &Config, jwt_secret: String, mail_from: String) -> service::Settings {
    service::Settings {
        jwt_secret,
        auto_close_after: config.auto_close_after,
        mail_from,
        signin: config.signin,
    }
}

async fn start_embedded(config: Config) -> anyhow::Result<Server> {
    make_private_dir(&config.data_dir)?;
    let jwt_secret = match &config.jwt_secret {
        Some(s) => s.clone(),
        None => load_or_create_jwt_secret(&config.data_dir)?,
    };
    let db_path = config.data_dir.join(DB_FILE);
    let embedded = Embedded::open(&db_path, Arc::new(SystemClock))
        .with_context(|| format!("cannot open database {}", db_path.display()))?;
    let service = Service::new(
        embedded.ports(),
        &service_settings(&config, jwt_secret, config.mail_from.clone()),
    )?;
    let dashboard_enabled = config.listen.ip().is_loopback() || config.dashboard_token.is_some();
    let dashboard = dashboard_enabled.then(|| dashboard::Dashboard {
        db: embedded.db.clone(),
        token: config.dashboard_token.clone(),
    });
    let routes = http::routes(&Endpoint::ALL).merge(local_routes(dashboard));
    let runner = embedded.job_runner();
    let storage = format!("data in {}", db_path.display());
    let mut server = serve(
        config,
        service,
        routes,
        storage,
        dashboard_enabled,
        Some(Box::new(move |service, stop| tokio::spawn(runner.run(service, stop)))),
    )
    .await?;
    server.db = Some(embedded.db.clone());
    Ok(server)
}

#[cfg(feature = "aws")]
async fn start_aws(
    config: Config,
    settings: ticketing::adapters::aws::AwsSettings,
    create_resources: bool,
) -> anyhow::Result<Server> {
    use ticketing::adapters::aws;
    // As on the embedded backend: generated once and kept in the data dir when not given.
    let jwt_secret = match &config.jwt_secret {
        Some(s) => s.clone(),
        None => {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
            load_or_create_jwt_secret(&config.data_dir)?
        }
    };
    let service_settings = service_settings(&config, jwt_secret, settings.mail_from.clone());
    let adapters = aws::AwsAdapters::new(&aws::sdk_config().await, &settings);
    if create_resources {
        aws::create_missing_resources(&adapters, &settings).await?;
    }
    let service = Service::new(adapters.ports(), &service_settings)?;
    let routes = http::routes(&Endpoint::ALL).merge(local_routes(None));
    let storage = format!(
        "DynamoDB table {}, schedule group {} (schedules invoke {}); no dashboard on AWS: see the Scheduler console",
        settings.table, settings.schedule_group, settings.close_function_arn
    );
    let queue = aws::mail_events_queue_url(&adapters, &settings).await;
    if queue.is_none() {
        tracing::warn!("no mail-events queue (set TICKETING_MAIL_EVENTS_QUEUE_URL): deliveries stay `sent`");
    }
    let aws = adapters.clone();
    let background: Background =
        Box::new(move |service, stop| tokio::spawn(mail_loop::run(service, aws, queue, MAIL_INTERVAL, stop)));
    let mut server = serve(config, service, routes, storage, false, Some(background)).await?;
    server.aws = Some(adapters);
    Ok(server)
}

/// A task that runs beside the server until the shutdown future resolves.
type Background =
    Box<dyn FnOnce(Service, std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> JoinHandle<()> + Send>;

/// Binds and serves `routes`, with `background` (if any) running beside the server until shutdown.
async fn serve(
    config: Config,
    service: Service,
    routes: axum::Router<Service>,
    storage: String,
    dashboard_enabled: bool,
    background: Option<Background>,
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
    let runner = background.map(|start| start(service.clone(), Box::pin(wait_for(shutdown_rx.clone()))));
    let http = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(wait_for(shutdown_rx))
            .await
    });
    let dashboard = if dashboard_enabled {
        format!("dashboard at http://{addr}/dashboard")
    } else {
        "dashboard off (listening beyond loopback without --dashboard-token)".to_owned()
    };
    tracing::info!(
        "ticketd listening on http://{addr}; {storage}; {dashboard}; tickets auto-close {} after a response",
        ticketing::domain::duration::format_duration(config.auto_close_after),
    );
    Ok(Server {
        addr,
        dashboard_enabled,
        service,
        db: None,
        #[cfg(feature = "aws")]
        aws: None,
        shutdown,
        http,
        runner,
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

/// Reads the JWT secret kept in the data dir, or creates it (mode 0600).
fn load_or_create_jwt_secret(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(JWT_SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
        Ok(_) => anyhow::bail!("{} is empty: delete it or set TICKETING_JWT_SECRET", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let secret = ticketing::auth::generate_secret() + &ticketing::auth::generate_secret();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write;
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    tracing::warn!(
        "no JWT secret configured: generated one and saved it to {} (mode 0600); set TICKETING_JWT_SECRET to choose your own",
        path.display()
    );
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_jwt_secret_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_jwt_secret(dir.path()).unwrap();
        assert!(first.len() >= 64);
        assert_eq!(load_or_create_jwt_secret(dir.path()).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(JWT_SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

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
