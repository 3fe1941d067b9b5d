//! `ticketd`: the whole ticketing API in one process on the embedded parts
//! (SQLite, an outbox, a local close-job runner), plus a jobs dashboard.

mod dashboard;

use anyhow::Context;
use axum::Json;
use axum::routing::get;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use ticketing::adapters::embedded::Embedded;
use ticketing::http::{self, Endpoint};
use ticketing::ports::SystemClock;
use ticketing::service::{self, Service};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const DB_FILE: &str = "ticketing.db";
pub const JWT_SECRET_FILE: &str = "jwt-secret";
/// Routes `ticketd` serves beside the API endpoints (all GET).
pub const EXTRA_ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/dashboard"),
    ("GET", "/dashboard/api/jobs"),
    ("GET", "/dashboard/api/mail"),
];
pub const DEFAULT_MAIL_FROM: &str = "Support <support@ticketing.localhost>";

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
    runner: JoinHandle<()>,
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
        self.runner.await?;
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

fn check_jwt_secret(secret: &str) -> anyhow::Result<()> {
    if secret.len() < 32 {
        anyhow::bail!("the JWT secret must be at least 32 characters");
    }
    Ok(())
}

async fn start_embedded(config: Config) -> anyhow::Result<Server> {
    make_private_dir(&config.data_dir)?;
    let jwt_secret = match &config.jwt_secret {
        Some(s) => s.clone(),
        None => load_or_create_jwt_secret(&config.data_dir)?,
    };
    check_jwt_secret(&jwt_secret)?;
    let db_path = config.data_dir.join(DB_FILE);
    let embedded = Embedded::open(&db_path, Arc::new(SystemClock))
        .with_context(|| format!("cannot open database {}", db_path.display()))?;
    let service = Service::new(
        embedded.ports(),
        service::Config::new(jwt_secret.as_bytes(), config.auto_close_after, config.mail_from.clone())
            .with_signin_limit(config.signin),
    );
    let dashboard_enabled = config.listen.ip().is_loopback() || config.dashboard_token.is_some();
    let mut routes = http::routes(&Endpoint::ALL).route("/health", get(health));
    if dashboard_enabled {
        routes = routes.merge(dashboard::routes(dashboard::Dashboard {
            db: embedded.db.clone(),
            token: config.dashboard_token.clone(),
        }));
    }
    let dashboard = if dashboard_enabled {
        "dashboard at http://{addr}/dashboard".to_owned()
    } else {
        "dashboard off (listening beyond loopback without --dashboard-token)".into()
    };
    let runner = embedded.job_runner();
    let storage = format!("data in {}", db_path.display());
    let mut server = serve(config, service, routes, storage, dashboard, move |service, stop| {
        tokio::spawn(runner.run(service, stop))
    })
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
    let jwt_secret = config
        .jwt_secret
        .clone()
        .context("--backend aws needs a JWT secret (--jwt-secret or TICKETING_JWT_SECRET)")?;
    check_jwt_secret(&jwt_secret)?;
    let adapters = aws::AwsAdapters::new(&aws::sdk_config().await, &settings);
    if create_resources {
        aws::create_missing_resources(&adapters, &settings).await?;
    }
    let service = Service::new(
        adapters.ports(),
        service::Config::new(
            jwt_secret.as_bytes(),
            config.auto_close_after,
            settings.mail_from.clone(),
        )
        .with_signin_limit(config.signin),
    );
    let routes = http::routes(&Endpoint::ALL).route("/health", get(health));
    let storage = format!(
        "DynamoDB table {}, schedule group {} (schedules invoke {})",
        settings.table, settings.schedule_group, settings.close_function_arn
    );
    let mut server = serve(
        config,
        service,
        routes,
        storage,
        "no dashboard on AWS: see the Scheduler console".into(),
        |_, stop| tokio::spawn(stop),
    )
    .await?;
    server.aws = Some(adapters);
    Ok(server)
}

/// Binds and serves `routes`, with `background` running beside the server until shutdown.
async fn serve(
    config: Config,
    service: Service,
    routes: axum::Router<Service>,
    storage: String,
    dashboard: String,
    background: impl FnOnce(Service, std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> JoinHandle<()>,
) -> anyhow::Result<Server> {
    // The fallback hash makes unknown-email sign-ins as slow as real ones; compute it now.
    tokio::task::spawn_blocking(ticketing::auth::password::warm_up).await?;
    let app = http::finish(routes, service.clone());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let runner = background(service.clone(), Box::pin(wait_for(shutdown_rx.clone())));
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(wait_for(shutdown_rx))
            .await
    });
    let dashboard = dashboard.replace("{addr}", &addr.to_string());
    tracing::info!(
        "ticketd listening on http://{addr}; {storage}; {dashboard}; tickets auto-close {} after a response",
        ticketing::domain::duration::format_duration(config.auto_close_after),
    );
    Ok(Server {
        addr,
        dashboard_enabled: dashboard.starts_with("dashboard at"),
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
