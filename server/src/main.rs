use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use ticketing::domain::duration::parse_duration;
use ticketing::http::client_ip::TrustedProxies;
use tracing_subscriber::EnvFilter;

/// The ticketing API in one process, on SQLite, a mail outbox and a local job runner.
#[derive(Parser, Debug)]
#[command(name = "ticketd", version)]
struct Cli {
    /// Adapter set: `embedded` (SQLite, outbox, local jobs) or `aws` (DynamoDB, SES,
    /// EventBridge Scheduler; needs a build with `--features aws` and the TICKETING_* variables of template.yaml).
    #[arg(long, env = "TICKETD_BACKEND", value_enum, default_value_t = BackendArg::Embedded)]
    backend: BackendArg,
    /// With `--backend aws`: create the table and schedule group when missing (e.g. on a fresh moto).
    #[arg(long)]
    create_aws_resources: bool,
    /// Address to listen on.
    #[arg(long, env = "TICKETD_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the database and the generated JWT secret live.
    #[arg(long, env = "TICKETD_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// How long a RESPONDED ticket waits before it closes itself (e.g. 5s, 10m, 30d).
    #[arg(long, env = "TICKETING_AUTO_CLOSE_AFTER", default_value = "30d", value_parser = parse_duration)]
    auto_close_after: Duration,
    /// HS256 signing key for admin tokens (at least 32 characters). Generated and kept in the data dir if absent.
    #[arg(long, env = "TICKETING_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Sender of response emails.
    #[arg(long, env = "TICKETING_MAIL_FROM", default_value = ticketd::DEFAULT_MAIL_FROM)]
    mail_from: String,
    /// Token required by /dashboard. Without one, the dashboard is served only on loopback addresses.
    #[arg(long, env = "TICKETD_DASHBOARD_TOKEN", hide_env_values = true)]
    dashboard_token: Option<String>,
    /// Failed sign-ins allowed per email from one client within --signin-window before that client is locked out of that email (429).
    #[arg(long, env = "TICKETING_SIGNIN_MAX_FAILURES", default_value_t = 5)]
    signin_max_failures: u32,
    /// Failed sign-ins allowed per client, whatever the emails, within --signin-window before the client is locked out (429).
    #[arg(long, env = "TICKETING_SIGNIN_MAX_CLIENT_FAILURES", default_value_t = 20)]
    signin_max_client_failures: u32,
    /// The sign-in throttle window (e.g. 15m).
    #[arg(long, env = "TICKETING_SIGNIN_WINDOW", default_value = "15m", value_parser = parse_duration)]
    signin_window: Duration,
    /// Proxies (comma-separated IPs or CIDRs) whose X-Forwarded-For names the client; by default none, and the TCP peer is the client.
    #[arg(long, env = "TICKETD_TRUSTED_PROXIES", default_value = "", value_parser = TrustedProxies::parse)]
    trusted_proxies: TrustedProxies,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BackendArg {
    Embedded,
    Aws,
}

fn backend(cli: &Cli) -> anyhow::Result<ticketd::Backend> {
    match cli.backend {
        BackendArg::Embedded => Ok(ticketd::Backend::Embedded),
        #[cfg(feature = "aws")]
        BackendArg::Aws => {
            use ticketing::adapters::aws::AwsSettings;
            // The sender comes from --mail-from like on the embedded backend.
            let mail_from = cli.mail_from.clone();
            let settings = AwsSettings::from_lookup(|k| {
                if k == ticketing::adapters::aws::ENV_MAIL_FROM {
                    Some(mail_from.clone())
                } else {
                    std::env::var(k).ok()
                }
            })?;
            Ok(ticketd::Backend::Aws {
                settings,
                create_resources: cli.create_aws_resources,
            })
        }
        #[cfg(not(feature = "aws"))]
        BackendArg::Aws => anyhow::bail!(
            "this ticketd was built without AWS support: run `cargo run -p ticketd --features aws -- --backend aws`"
        ),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let cli = Cli::parse();
    let signalled = shutdown_signal();
    let server = ticketd::start(ticketd::Config {
        backend: backend(&cli)?,
        listen: cli.listen,
        data_dir: cli.data_dir,
        auto_close_after: cli.auto_close_after,
        jwt_secret: cli.jwt_secret,
        mail_from: cli.mail_from,
        dashboard_token: cli.dashboard_token,
        signin: ticketing::service::SigninLimit {
            max_failures: cli.signin_max_failures,
            max_client_failures: cli.signin_max_client_failures,
            window: cli.signin_window,
        },
        trusted_proxies: cli.trusted_proxies,
    })
    .await?;
    let stop = server.shutdown_handle();
    tokio::spawn(async move {
        signalled.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop.send(true);
    });
    server.wait().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when it is first polled, so a signal that arrives during
/// start-up is not lost (or fatal).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
        async move {
            match streams {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
