//! Part d, Lambda cold start: each bootstrap's size and its init time (spawn
//! to first request for an invocation) against a hello-world function.

use crate::Args;
use anyhow::Context;
use std::path::Path;
use std::time::{Duration, Instant};
use ticketing::adapters::aws::inbound_mail::ENV_INBOUND_BUCKET;
use ticketing::adapters::aws::{
    ENV_AUTO_CLOSE_AFTER, ENV_CLOSE_FUNCTION_ARN, ENV_DEAD_LETTER_ARN, ENV_FAILURE_QUEUE_ARN, ENV_JWT_SECRET_ARN,
    ENV_MAIL_FROM, ENV_SCHEDULE_GROUP, ENV_SCHEDULER_ROLE_ARN, ENV_SES_CONFIGURATION_SET, ENV_TABLE,
    ENV_WEBHOOK_QUEUE_URL,
};

pub const HELLO: &str = "hello-lambda";

/// One bootstrap's size and init time.
pub struct ColdStartRow {
    pub function: String,
    pub raw_bytes: u64,
    pub zipped_bytes: u64,
    pub init_median: Duration,
}

/// The service's own variables, named by the constants the functions read
/// them with, so a renamed or added variable cannot leave the bench behind.
/// `unique` keeps the resources of runs on a shared moto apart (part e).
pub fn service_env(unique: &str) -> Vec<(&'static str, String)> {
    vec![
        (ENV_TABLE, format!("bench-{unique}")),
        (ENV_MAIL_FROM, format!("bench-{unique}@example.com")),
        (ENV_SCHEDULE_GROUP, format!("bench-{unique}")),
        (
            ENV_CLOSE_FUNCTION_ARN,
            "arn:aws:lambda:us-east-1:123456789012:function:close".into(),
        ),
        (
            ENV_SCHEDULER_ROLE_ARN,
            "arn:aws:iam::123456789012:role/scheduler".into(),
        ),
        (ENV_DEAD_LETTER_ARN, "arn:aws:sqs:us-east-1:123456789012:dlq".into()),
        (
            ENV_FAILURE_QUEUE_ARN,
            "arn:aws:sqs:us-east-1:123456789012:failures".into(),
        ),
        // Read on first JWT use, not at init: init makes no call to it.
        (ENV_JWT_SECRET_ARN, format!("bench-{unique}-jwt-keys")),
        (ENV_SES_CONFIGURATION_SET, "ticketing-mail".into()),
        (ENV_AUTO_CLOSE_AFTER, "30d".into()),
        // The webhook sender and inbound-email refuse to start without theirs.
        (
            ENV_WEBHOOK_QUEUE_URL,
            "https://sqs.us-east-1.amazonaws.com/123456789012/webhooks".into(),
        ),
        (ENV_INBOUND_BUCKET, format!("bench-{unique}-inbound")),
    ]
}

/// What the Lambda service and the SDK would set, plus [`service_env`].
fn lambda_env(api: &str) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AWS_LAMBDA_RUNTIME_API", api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", "bench".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("RUST_LOG", "error".into()),
    ];
    env.extend(service_env("cold-start"));
    env
}

/// The Runtime API, as far as init needs it: answers nothing, but notes when
/// the bootstrap first asks for an invocation (its init is done).
async fn runtime_api() -> anyhow::Result<(String, tokio::sync::mpsc::UnboundedReceiver<Instant>)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let app = axum::Router::new().route(
        "/2018-06-01/runtime/invocation/next",
        axum::routing::get(move || {
            let _ = tx.send(Instant::now());
            std::future::pending::<&'static str>()
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, rx))
}

/// Spawns `bootstrap` once and times it until it asks for an invocation.
async fn init_time(
    bootstrap: &Path,
    api: &str,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Instant>,
) -> anyhow::Result<Duration> {
    while rx.try_recv().is_ok() {}
    let t0 = Instant::now();
    let mut child = tokio::process::Command::new(bootstrap)
        .env_clear()
        .envs(lambda_env(api))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawning {}", bootstrap.display()))?;
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
    let _ = child.kill().await;
    let at = first
        .ok()
        .flatten()
        .with_context(|| format!("{} never asked for an invocation", bootstrap.display()))?;
    Ok(at - t0)
}

/// cargo-lambda's `bootstrap.zip` if there, else the bootstrap deflated here.
fn zipped_size(bootstrap: &Path) -> anyhow::Result<u64> {
    let zip = bootstrap.with_file_name("bootstrap.zip");
    if let Ok(meta) = std::fs::metadata(&zip) {
        return Ok(meta.len());
    }
    let bytes = std::fs::read(bootstrap)?;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &bytes)?;
    Ok(enc.finish()?.len() as u64)
}

/// `None` if there are no bootstraps to measure.
pub async fn run(args: &Args) -> anyhow::Result<Option<Vec<ColdStartRow>>> {
    let Ok(entries) = std::fs::read_dir(&args.lambda_dir) else {
        eprintln!(
            "d. skipped: no {} (run scripts/build-lambdas first)",
            args.lambda_dir.display()
        );
        return Ok(None);
    };
    eprintln!(
        "d. Lambda bootstraps in {}, {} spawns each, round-robin",
        args.lambda_dir.display(),
        args.spawns
    );
    anyhow::ensure!(args.spawns > 0, "--spawns must be at least 1");
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("bootstrap").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let (api, mut rx) = runtime_api().await?;
    // Round-robin: each round spawns every bootstrap (hello included) once, so
    // drift on a shared machine hits them all alike.
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for _ in 0..args.spawns {
        for (i, name) in names.iter().enumerate() {
            let bootstrap = args.lambda_dir.join(name).join("bootstrap");
            times[i].push(init_time(&bootstrap, &api, &mut rx).await?);
        }
    }
    let mut rows = Vec::new();
    for (function, mut t) in names.into_iter().zip(times) {
        let bootstrap = args.lambda_dir.join(&function).join("bootstrap");
        t.sort();
        let row = ColdStartRow {
            raw_bytes: std::fs::metadata(&bootstrap)?.len(),
            zipped_bytes: zipped_size(&bootstrap)?,
            init_median: t[t.len() / 2],
            function,
        };
        eprintln!(
            "   {}: {:.1} MB raw, {:.2} MB zipped, init median {:.2} ms",
            row.function,
            row.raw_bytes as f64 / 1e6,
            row.zipped_bytes as f64 / 1e6,
            row.init_median.as_secs_f64() * 1e3
        );
        rows.push(row);
    }
    Ok(Some(rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing::adapters::aws::AwsConfig;

    /// A bootstrap given this environment gets through its configuration
    /// (otherwise init would time a start-up failure, not a start).
    #[test]
    fn the_lambda_environment_is_a_complete_configuration() {
        let env: std::collections::HashMap<_, _> = lambda_env("127.0.0.1:9001").into_iter().collect();
        let config = AwsConfig::from_lookup(|k| env.get(k).cloned());
        assert!(config.is_ok(), "{:?}", config.err());
    }
}
