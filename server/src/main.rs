use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use ticketing::domain::duration::parse_duration;
use ticketing::http::client_ip::TrustedProxies;
use tracing_subscriber::EnvFilter;

/// The ticketing API in one process, on SQLite, a mail outbox and a local job runner.
#[derive(Parser, Debug)]
#[command(name = "ticketd", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Adapter set: `embedded` (SQLite, outbox, local jobs) or `aws` (DynamoDB, SES,
    /// EventBridge Scheduler; needs a build with `--features aws`; the TICKETING_* variables of template.yaml
    /// override local defaults: table `ticketing`, schedule group `ticketing-auto-close`, placeholder ARNs).
    #[arg(long, env = "TICKETD_BACKEND", value_enum, default_value_t = BackendArg::Embedded)]
    backend: BackendArg,
    /// With `--backend aws`: create the table and schedule group when missing (e.g. on a fresh moto).
    #[arg(long)]
    create_aws_resources: bool,
    /// Address to listen on.
    #[arg(long, env = "TICKETD_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the database and the JWT key file live.
    #[arg(long, env = "TICKETD_DATA_DIR", default_value = "./data", global = true)]
    data_dir: PathBuf,
    /// How long a RESPONDED ticket waits before it closes itself (e.g. 5s, 10m, 30d).
    #[arg(long, env = "TICKETING_AUTO_CLOSE_AFTER", default_value = "30d", value_parser = parse_duration)]
    auto_close_after: Duration,
    /// How long after closing a customer's reply reopens the ticket; a later reply opens a follow-up ticket.
    #[arg(long, env = "TICKETING_REOPEN_WINDOW", default_value = "7d", value_parser = parse_duration)]
    reopen_window: Duration,
    /// A fixed seed (at least 32 characters) from which the ES256 key signing admin tokens is derived, never
    /// rotated. If absent: the rotatable key file in the data dir (generated on first start), or with
    /// `--backend aws` the Secrets Manager secrets TICKETING_JWT_SIGNING_SECRET_ARN (default
    /// `ticketing-jwt-signing-keys`) and TICKETING_JWT_SECRET_ARN (verify keys, default `ticketing-jwt-keys`).
    #[arg(long, env = "TICKETING_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Sender of response emails.
    #[arg(long, env = "TICKETING_MAIL_FROM", default_value = ticketd::DEFAULT_MAIL_FROM)]
    mail_from: String,
    /// Token every /dashboard request carries (?token= or X-Dashboard-Token), at least 32 characters.
    /// Without one, a token is generated at each start and the dashboard's URL with it printed once on stderr.
    #[arg(long, env = "TICKETD_DASHBOARD_TOKEN", hide_env_values = true)]
    dashboard_token: Option<String>,
    /// Host names (comma-separated) the dashboard answers to beside `localhost` and IP addresses: a request
    /// with any other Host header (a DNS name re-pointed at this machine) is refused.
    #[arg(long, env = "TICKETD_DASHBOARD_HOST", value_delimiter = ',')]
    dashboard_host: Vec<String>,
    /// How long a client may take to send a request's header before its connection is closed (e.g. 10s).
    #[arg(long, env = "TICKETD_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    header_read_timeout: Duration,
    /// How long a client may take to send a request's body, once its header is in, before the request is
    /// answered 408 and its connection closed (e.g. 30s).
    #[arg(long, env = "TICKETD_BODY_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    body_read_timeout: Duration,
    /// Failed sign-ins allowed per email from one client within --signin-window before that client is locked out of that email (429).
    #[arg(long, env = "TICKETING_SIGNIN_MAX_FAILURES", default_value_t = 5)]
    signin_max_failures: u32,
    /// Failed sign-ins allowed per client, whatever the emails, within --signin-window before the client is locked out (429).
    #[arg(long, env = "TICKETING_SIGNIN_MAX_CLIENT_FAILURES", default_value_t = 20)]
    signin_max_client_failures: u32,
    /// The sign-in throttle window (e.g. 15m).
    #[arg(long, env = "TICKETING_SIGNIN_WINDOW", default_value = "15m", value_parser = parse_duration)]
    signin_window: Duration,
    /// Password hashes and verifies run at once (sign-in, admin signup); more wait their turn. Default: one per CPU, at least 2.
    #[arg(long, env = "TICKETING_PASSWORD_HASH_CONCURRENCY", value_parser = clap::value_parser!(u16).range(1..=256))]
    password_hash_concurrency: Option<u16>,
    /// How long a request waits for a password-hashing turn before it is answered 503 (busy) with Retry-After.
    #[arg(long, env = "TICKETING_PASSWORD_HASH_WAIT", default_value = "2s", value_parser = parse_duration)]
    password_hash_wait: Duration,
    /// Proxies (comma-separated IPs or CIDRs) whose X-Forwarded-For names the client; by default none, and the TCP peer is the client.
    #[arg(long, env = "TICKETD_TRUSTED_PROXIES", default_value = "", value_parser = TrustedProxies::parse)]
    trusted_proxies: TrustedProxies,
    /// How often ticketd sweeps due auto-closes and (on AWS) reads the table
    /// stream and retries failures (e.g. 30s, 1m).
    // `parse_duration` refuses zero, which would spin.
    #[arg(long, env = "TICKETING_RECONCILE_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    reconcile_interval: Duration,
    /// Inbound email's domain: response mail carries `Reply-To: reply+{ticket}.{token}@<domain>`, and replies
    /// to it reach the ticket (via POST /inbound/email). Without it, response mail says how else to follow up.
    #[arg(long, env = "TICKETING_INBOUND_DOMAIN")]
    inbound_domain: Option<String>,
    /// Token an MTA must send in X-Inbound-Token to POST /inbound/email (at least 32 characters); without it
    /// (or without --inbound-domain) the route is not served (404).
    #[arg(long, env = "TICKETING_INBOUND_TOKEN", hide_env_values = true)]
    inbound_token: Option<String>,
    /// Apply inbound mail whose From domain is not authenticated (no SPF or DKIM pass in the trusted
    /// Authentication-Results header, or a DMARC fail): for local use only.
    #[arg(long, env = "TICKETING_INBOUND_ALLOW_UNAUTHENTICATED")]
    inbound_allow_unauthenticated: bool,
    /// The authserv-id of the Authentication-Results header your MTA adds to each message before piping it to
    /// POST /inbound/email (e.g. mx.example.com); headers with other ids are ignored. Without it (and without
    /// --inbound-allow-unauthenticated) every reply is refused as unauthenticated.
    #[arg(long, env = "TICKETING_INBOUND_AUTHSERV_ID")]
    inbound_authserv_id: Option<String>,
    /// How long raw inbound mail is kept before the job runner deletes it (the reply it became stays).
    #[arg(long, env = "TICKETING_INBOUND_RETENTION", default_value = "30d", value_parser = parse_duration)]
    inbound_retention: Duration,
    /// An assignee is mailed about one ticket's customer replies at most once per this long.
    #[arg(long, env = "TICKETING_REPLY_NOTICE_EVERY", default_value = "10m", value_parser = parse_duration)]
    reply_notice_every: Duration,
    /// A rate limit, as NAME=N/DURATION (repeat, or comma-separate in the variable); see the README for names
    /// and defaults, e.g. mail_per_org=200/1h.
    #[arg(long = "limit", env = "TICKETING_LIMITS", value_delimiter = ',')]
    limits: Vec<String>,
    /// Let webhooks reach loopback, private and link-local addresses over plain http too: for local
    /// development and tests only (never where the API faces the internet: it opens SSRF).
    #[arg(long, env = "TICKETD_ALLOW_PRIVATE_WEBHOOKS")]
    allow_private_webhooks: bool,
    /// Log lines as text, or as one JSON object per line (fields at the top level, as the Lambda functions write).
    #[arg(long, env = "TICKETD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Rotates the JWT signing keys: a new current key signs from now on, the current one becomes the previous
    /// one (its tokens stay valid), and the previous one is retired (its tokens get 401). A running ticketd
    /// picks the change up within a second. Rotate at most once per token lifetime (10 h).
    RotateJwtKey {
        /// Rotate the keys in this Secrets Manager signing-keys secret (ARN or name) instead of the data dir's
        /// key file (needs a build with `--features aws`; AWS_* variables as for `--backend aws`). With
        /// TICKETING_JWT_SECRET_ARN set, the new verify keys are written there first; else admin-signin
        /// publishes them on its next read of the keys.
        #[arg(long)]
        secret_arn: Option<String>,
    },
}

/// `ticketd rotate-jwt-key`: prints the kids (never a key) and exits.
async fn rotate_jwt_key(data_dir: &std::path::Path, secret_arn: Option<String>) -> ExitCode {
    let rotated = match secret_arn {
        None => ticketd::keys::rotate(data_dir),
        #[cfg(feature = "aws")]
        Some(arn) => {
            use ticketing::adapters::aws;
            let client = aws_sdk_secretsmanager_client().await;
            let verify = std::env::var(aws::ENV_JWT_SECRET_ARN).ok().filter(|v| !v.is_empty());
            aws::SecretsManagerKeys::new(client, arn, verify).rotate().await
        }
        #[cfg(not(feature = "aws"))]
        Some(_) => return fail("--secret-arn needs a ticketd built with `--features aws`"),
    };
    match rotated {
        Ok(ring) => {
            let previous = ring.previous.as_ref().map(|k| k.kid.as_str()).unwrap_or("none");
            println!(
                "rotated: new tokens carry kid {}; tokens of kid {previous} stay valid; older kids are refused",
                ring.current.kid
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("cannot rotate the JWT keys: {e:#}")),
    }
}

#[cfg(feature = "aws")]
async fn aws_sdk_secretsmanager_client() -> ticketing::adapters::aws::SecretsClient {
    ticketing::adapters::aws::SecretsClient::new(&ticketing::adapters::aws::sdk_config().await)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BackendArg {
    Embedded,
    Aws,
}

fn backend(cli: &Cli) -> Result<ticketd::Backend, String> {
    match cli.backend {
        BackendArg::Embedded => Ok(ticketd::Backend::Embedded),
        #[cfg(feature = "aws")]
        BackendArg::Aws => {
            use ticketing::adapters::aws::{AwsSettings, LOCAL_SCHEDULE_GROUP, LOCAL_TABLE};
            // Local defaults (moto on a laptop) that the TICKETING_* variables
            // override; the sender comes from --mail-from as on the embedded backend.
            let settings = AwsSettings::local(LOCAL_TABLE, LOCAL_SCHEDULE_GROUP, cli.mail_from.clone())
                .overridden_by(|k| (k != ticketing::adapters::aws::ENV_MAIL_FROM).then(|| std::env::var(k).ok())?);
            Ok(ticketd::Backend::Aws {
                settings,
                create_resources: cli.create_aws_resources,
                endpoint_url: None,
                call_timeout: None,
            })
        }
        #[cfg(not(feature = "aws"))]
        BackendArg::Aws => Err(
            "this ticketd was built without AWS support: run `cargo run -p ticketd --features aws -- --backend aws`"
                .into(),
        ),
    }
}

/// A configuration or start-up error: one line on stderr, exit status 2 (as
/// clap does for bad flags), no error chain or backtrace.
fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("ticketd: {message}");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")));
    match cli.log_format {
        // Every field escaped: no value can forge a line or reach the terminal raw.
        LogFormat::Text => logs.fmt_fields(ticketd::log_text::escaped_fields()).init(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .init(),
    }
    if let Some(Command::RotateJwtKey { secret_arn }) = cli.command {
        return rotate_jwt_key(&cli.data_dir, secret_arn).await;
    }
    let signalled = shutdown_signal();
    let backend = match backend(&cli) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let mut limits = ticketing::domain::limits::Limits {
        reply_notice_every: cli.reply_notice_every,
        inbound_retention: cli.inbound_retention,
        ..Default::default()
    };
    for setting in &cli.limits {
        if let Err(e) = limits.apply(setting) {
            return fail(format!("--limit {e}"));
        }
    }
    let started = ticketd::start(ticketd::Config {
        backend,
        listen: cli.listen,
        data_dir: cli.data_dir,
        auto_close_after: cli.auto_close_after,
        reopen_window: cli.reopen_window,
        jwt_secret: cli.jwt_secret,
        mail_from: cli.mail_from,
        dashboard_token: cli.dashboard_token,
        dashboard_hosts: cli.dashboard_host,
        header_read_timeout: cli.header_read_timeout,
        body_read_timeout: cli.body_read_timeout,
        signin: ticketing::service::SigninLimit {
            max_failures: cli.signin_max_failures,
            max_client_failures: cli.signin_max_client_failures,
            window: cli.signin_window,
            hashes: ticketing::auth::password::HashLimit {
                max_concurrent: cli.password_hash_concurrency.map_or_else(
                    || ticketing::auth::password::HashLimit::default().max_concurrent,
                    usize::from,
                ),
                wait: cli.password_hash_wait,
            },
        },
        trusted_proxies: cli.trusted_proxies,
        reconcile_interval: cli.reconcile_interval,
        inbound_domain: cli.inbound_domain,
        inbound_token: cli.inbound_token,
        inbound_allow_unauthenticated: cli.inbound_allow_unauthenticated,
        inbound_authserv_id: cli.inbound_authserv_id,
        limits,
        allow_private_webhooks: cli.allow_private_webhooks,
    })
    .await;
    let server = match started {
        Ok(s) => s,
        // `{:#}`: what failed and why, on one line ("cannot open database ...: unable to open ...").
        Err(e) => return fail(format!("{e:#}")),
    };
    if server.dashboard_token_generated
        && let Some(token) = &server.dashboard_token
    {
        // On stderr, not in the log stream: the operator's link, printed once.
        eprintln!(
            "ticketd: dashboard at http://{}/dashboard?token={token} (a token made for this run; \
             --dashboard-token sets one)",
            server.addr
        );
    }
    let stop = server.shutdown_handle();
    tokio::spawn(async move {
        signalled.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop.send(true);
    });
    if let Err(e) = server.wait().await {
        eprintln!("ticketd: {e:#}");
        return ExitCode::FAILURE;
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
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
