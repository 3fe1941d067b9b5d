//! The benchmark: every figure measured side by side in one run on this
//! machine, reported as ratios against a baseline measured the same way.
//! Writes bench/RESULTS.md and prints it. See `make bench`.

mod load;

use anyhow::Context;
use clap::Parser;
use reqwest::{Client, Method};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ticketing::domain::{AdminId, Email, OrgId, Status, Ticket, TicketFilter, TicketId, Timestamp};

#[derive(Parser, Debug, Clone)]
#[command(about = "ticketing benchmarks; writes bench/RESULTS.md")]
struct Args {
    /// Seconds per load run in part a.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Tickets in the small and the large org (part b).
    #[arg(long, default_value_t = 1_000)]
    small: usize,
    #[arg(long, default_value_t = 100_000)]
    large: usize,
    /// Sequential requests per list latency sample (part b) and sign-ins (part c).
    #[arg(long, default_value_t = 300)]
    list_samples: usize,
    #[arg(long, default_value_t = 40)]
    signins: usize,
    /// Where cargo-lambda put the bootstraps (part d); skipped if absent.
    #[arg(long, default_value = "target/lambda")]
    lambda_dir: PathBuf,
    /// Spawns per bootstrap for the init-time median (part d).
    #[arg(long, default_value_t = 10)]
    spawns: usize,
    /// Tickets in DynamoDB (moto) for part e; part e is skipped without AWS_ENDPOINT_URL.
    #[arg(long, default_value_t = 10_000)]
    dynamo_tickets: usize,
    #[arg(long, default_value = "bench/RESULTS.md")]
    out: PathBuf,
}

const JWT_SECRET: &str = "bench-jwt-secret-0123456789abcdef0123456789";
const PASSWORD: &str = "bench password 123";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let mut report = Report::default();
    let client = Client::builder().pool_max_idle_per_host(256).build()?;

    let dir = tempfile::tempdir()?;
    let mut config = ticketd::Config::new("127.0.0.1:0".parse()?, dir.path().join("data"));
    config.jwt_secret = Some(JWT_SECRET.into());
    // Unknown-email sign-ins are measured many times from one client: no throttling.
    config.signin.max_failures = u32::MAX;
    config.signin.max_client_failures = u32::MAX;
    let server = ticketd::start(config).await?;
    let base = format!("http://{}", server.addr);
    eprintln!("ticketd (embedded, release) on {base}");

    part_a(&args, &client, &base, &mut report).await?;
    part_b(&args, &client, &base, &server, &mut report).await?;
    part_c(&args, &client, &base, &mut report).await?;
    server.shutdown().await?;
    part_d(&args, &mut report).await?;
    part_e(&args, &client, &mut report).await?;

    let text = report.render(&args, started.elapsed());
    std::fs::write(&args.out, &text).with_context(|| format!("writing {}", args.out.display()))?;
    println!("{text}");
    Ok(())
}

// ---------------------------------------------------------------- helpers

struct Org {
    id: String,
    secret: String,
    jwt: String,
    admin_ids: Vec<String>,
}

async fn post(client: &Client, url: String, auth: Option<&str>, body: Value) -> anyhow::Result<Value> {
    let mut req = client.post(url).json(&body);
    if let Some(a) = auth {
        req = req.bearer_auth(a);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    anyhow::ensure!(status.is_success(), "{status}: {body}");
    Ok(body)
}

async fn new_org(client: &Client, base: &str, name: &str, admins: usize) -> anyhow::Result<Org> {
    let domain = format!("{name}-{}.example.com", TicketId::new().0.simple());
    let org = post(
        client,
        format!("{base}/auth/org/signup"),
        None,
        json!({"name": name, "domain": domain}),
    )
    .await?;
    let secret = org["secret"].as_str().unwrap().to_owned();
    let mut admin_ids = Vec::new();
    let mut first_email = String::new();
    for i in 0..admins {
        let email = format!("admin{i}@{domain}");
        let a = post(
            client,
            format!("{base}/auth/admin/signup"),
            None,
            json!({"firstName": "B", "lastName": "Ench", "email": email, "password": PASSWORD, "secret": secret}),
        )
        .await?;
        admin_ids.push(a["id"].as_str().unwrap().to_owned());
        if i == 0 {
            first_email = email;
        }
    }
    let jwt = post(
        client,
        format!("{base}/auth/admin/signin"),
        None,
        json!({"email": first_email, "password": PASSWORD}),
    )
    .await?["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    Ok(Org {
        id: org["id"].as_str().unwrap().to_owned(),
        secret,
        jwt,
        admin_ids,
    })
}

/// `n` tickets of `org`, spread over its admins, 50 customers and the three
/// statuses, one second apart, newest last.
fn synthetic_tickets(org: &Org, n: usize) -> Vec<Ticket> {
    let org_id: OrgId = org.id.parse().unwrap();
    let admins: Vec<AdminId> = org.admin_ids.iter().map(|a| a.parse().unwrap()).collect();
    let t0 = Timestamp::now().millis() - n as i64 * 1000;
    (0..n)
        .map(|i| {
            let at = Timestamp::from_millis(t0 + i as i64 * 1000);
            let status = [Status::Open, Status::Open, Status::Responded, Status::Closed][i % 4];
            Ticket {
                id: TicketId::new(),
                org_id,
                title: format!("Imported ticket {i}"),
                description: "Synthetic ticket for the benchmark.".into(),
                added_by: Email::parse("addedBy", &format!("customer{}@example.org", i % 50)).unwrap(),
                admin_id: Some(admins[i % admins.len()]),
                status,
                created_at: at,
                updated_at: at,
                responded_at: (status != Status::Open).then_some(at),
                closed_at: (status == Status::Closed).then_some(at),
                auto_close_at: None,
                version: 1,
            }
        })
        .collect()
}

// ---------------------------------------------------------------- a. request cost

async fn part_a(args: &Args, client: &Client, base: &str, report: &mut Report) -> anyhow::Result<()> {
    eprintln!(
        "a. request cost at {} connections, {}s per run",
        args.concurrency, args.duration
    );
    let org = new_org(client, base, "load", 3).await?;
    let mut ids = Vec::new();
    for i in 0..200 {
        let t = post(
            client,
            format!("{base}/tickets"),
            None,
            json!({"title": format!("seed {i}"), "description": "d", "addedBy": "customer@example.org", "secret": org.secret}),
        )
        .await?;
        ids.push(t["id"].as_str().unwrap().to_owned());
    }
    let ids = Arc::new(ids);

    // The baseline: a bare axum route returning a constant JSON body, same process, same generator.
    let bare = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let bare_url = format!("http://{}/bare", bare.local_addr()?);
    let app = axum::Router::new().route(
        "/bare",
        axum::routing::get(|| async { axum::Json(json!({"status": "ok", "service": "bare", "items": [1, 2, 3]})) }),
    );
    tokio::spawn(async move { axum::serve(bare, app).await });

    let duration = Duration::from_secs(args.duration);
    let auth = vec![("authorization".to_owned(), format!("Bearer {}", org.jwt))];
    let run = |name: &'static str, headers: Vec<(String, String)>, make: load::MakeRequest| {
        let client = client.clone();
        async move {
            let stats = load::run(&client, headers, args.concurrency, duration, make).await;
            eprintln!(
                "   {name}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
                stats.throughput(),
                stats.p50_ms,
                stats.p99_ms,
                stats.errors
            );
            (name, stats)
        }
    };
    let u = bare_url.clone();
    let bare_first = run(
        "bare axum route (first)",
        vec![],
        Arc::new(move |_| (Method::GET, u.clone(), None)),
    )
    .await;
    let (b, i2) = (base.to_owned(), ids.clone());
    let get = run(
        "GET /tickets/{id}",
        auth.clone(),
        Arc::new(move |i| (Method::GET, format!("{b}/tickets/{}", i2[i % i2.len()]), None)),
    )
    .await;
    let b = base.to_owned();
    let list = run(
        "GET /tickets?status=OPEN&limit=50",
        auth.clone(),
        Arc::new(move |_| (Method::GET, format!("{b}/tickets?status=OPEN&limit=50"), None)),
    )
    .await;
    let (b, secret) = (base.to_owned(), org.secret.clone());
    let create = run(
        "POST /tickets",
        vec![],
        Arc::new(move |i| {
            (Method::POST, format!("{b}/tickets"), Some(json!({"title": format!("load {i}"), "description": "d", "addedBy": "load@example.org", "secret": secret})))
        }),
    )
    .await;
    let (b, i2) = (base.to_owned(), ids.clone());
    let respond = run(
        "POST /tickets/{id}/respond",
        auth.clone(),
        Arc::new(move |i| {
            (
                Method::POST,
                format!("{b}/tickets/{}/respond", i2[i % i2.len()]),
                Some(json!({"message": format!("reply {i}")})),
            )
        }),
    )
    .await;
    let u = bare_url.clone();
    let bare_last = run(
        "bare axum route (again, last)",
        vec![],
        Arc::new(move |_| (Method::GET, u.clone(), None)),
    )
    .await;
    report.a = vec![bare_first, get, list, create, respond, bare_last];
    Ok(())
}

// ---------------------------------------------------------------- b. scale

async fn part_b(
    args: &Args,
    client: &Client,
    base: &str,
    server: &ticketd::Server,
    report: &mut Report,
) -> anyhow::Result<()> {
    eprintln!("b. list latency, {} vs {} tickets in the org", args.small, args.large);
    let small = new_org(client, base, "small", 3).await?;
    let large = new_org(client, base, "large", 3).await?;
    let store = ticketing::adapters::embedded::SqliteStore::new(server.db.clone().context("embedded db")?);
    let t = Instant::now();
    store.bulk_import_tickets(synthetic_tickets(&small, args.small)).await?;
    store.bulk_import_tickets(synthetic_tickets(&large, args.large)).await?;
    eprintln!("   imported in {:.1}s", t.elapsed().as_secs_f64());
    let mut rows = Vec::new();
    for query in [
        "/tickets?limit=50",
        "/tickets?status=OPEN&limit=50",
        "/tickets?customerEmail=customer7@example.org&limit=20",
    ] {
        // Interleaved, so drift on a shared machine hits both alike.
        let mut s_lat = Vec::new();
        let mut l_lat = Vec::new();
        for i in 0..args.list_samples * 2 {
            let org = if i % 2 == 0 { &small } else { &large };
            let t = Instant::now();
            let resp = client
                .get(format!("{base}{query}"))
                .bearer_auth(&org.jwt)
                .send()
                .await?;
            anyhow::ensure!(resp.status().is_success(), "list failed");
            let body: Value = resp.json().await?;
            anyhow::ensure!(body["tickets"].as_array().is_some_and(|a| !a.is_empty()), "empty page");
            if i % 2 == 0 {
                s_lat.push(t.elapsed())
            } else {
                l_lat.push(t.elapsed())
            }
        }
        let s = load::summarize(s_lat, 0, 0.0);
        let l = load::summarize(l_lat, 0, 0.0);
        eprintln!("   {query}: p50 {:.3} ms vs {:.3} ms", s.p50_ms, l.p50_ms);
        rows.push((query.to_owned(), s, l));
    }
    report.b = rows;
    Ok(())
}

// ---------------------------------------------------------------- c. sign-in

async fn part_c(args: &Args, client: &Client, base: &str, report: &mut Report) -> anyhow::Result<()> {
    eprintln!("c. sign-in latency ({} sequential)", args.signins);
    let domain = format!("signin-{}.example.com", TicketId::new().0.simple());
    let org = post(
        client,
        format!("{base}/auth/org/signup"),
        None,
        json!({"name": "s", "domain": domain}),
    )
    .await?;
    let email = format!("a@{domain}");
    post(
        client,
        format!("{base}/auth/admin/signup"),
        None,
        json!({"firstName": "S", "lastName": "I", "email": email, "password": PASSWORD, "secret": org["secret"]}),
    )
    .await?;
    let ok = load::sequential(args.signins, |_| {
        let (client, email) = (client.clone(), email.clone());
        async move {
            client
                .post(format!("{base}/auth/admin/signin"))
                .json(&json!({"email": email, "password": PASSWORD}))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    let unknown = load::sequential(args.signins, |i| {
        let (client, domain) = (client.clone(), domain.clone());
        async move {
            client
                .post(format!("{base}/auth/admin/signin"))
                .json(&json!({"email": format!("nobody{i}@{domain}"), "password": PASSWORD}))
                .send()
                .await
                .is_ok_and(|r| r.status() == 401)
        }
    })
    .await;
    eprintln!("   known p50 {:.1} ms, unknown p50 {:.1} ms", ok.p50_ms, unknown.p50_ms);
    report.c = Some((ok, unknown));
    Ok(())
}

// ---------------------------------------------------------------- d. Lambda cold start

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

fn lambda_env(api: &str) -> Vec<(&'static str, String)> {
    vec![
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
        ("TICKETING_TABLE", "bench".into()),
        ("TICKETING_MAIL_FROM", "support@example.com".into()),
        ("TICKETING_SCHEDULE_GROUP", "bench".into()),
        (
            "TICKETING_CLOSE_FUNCTION_ARN",
            "arn:aws:lambda:us-east-1:123456789012:function:close".into(),
        ),
        (
            "TICKETING_SCHEDULER_ROLE_ARN",
            "arn:aws:iam::123456789012:role/scheduler".into(),
        ),
        (
            "TICKETING_SCHEDULE_DLQ_ARN",
            "arn:aws:sqs:us-east-1:123456789012:dlq".into(),
        ),
        ("TICKETING_JWT_SECRET", JWT_SECRET.into()),
        ("TICKETING_AUTO_CLOSE_AFTER", "30d".into()),
        ("RUST_LOG", "error".into()),
    ]
}

async fn init_times(bootstrap: &Path, spawns: usize) -> anyhow::Result<Vec<Duration>> {
    let (api, mut rx) = runtime_api().await?;
    let mut times = Vec::new();
    for _ in 0..spawns {
        while rx.try_recv().is_ok() {}
        let t0 = Instant::now();
        let mut child = tokio::process::Command::new(bootstrap)
            .env_clear()
            .envs(lambda_env(&api))
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
        times.push(at - t0);
    }
    times.sort();
    Ok(times)
}

fn deflated_size(path: &Path) -> anyhow::Result<u64> {
    let zip = path.with_file_name("bootstrap.zip");
    if let Ok(meta) = std::fs::metadata(&zip) {
        return Ok(meta.len());
    }
    let bytes = std::fs::read(path)?;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &bytes)?;
    Ok(enc.finish()?.len() as u64)
}

async fn part_d(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(&args.lambda_dir) else {
        eprintln!(
            "d. skipped: no {} (run scripts/build-lambdas first)",
            args.lambda_dir.display()
        );
        return Ok(());
    };
    eprintln!(
        "d. Lambda bootstraps in {}, {} spawns each, round-robin",
        args.lambda_dir.display(),
        args.spawns
    );
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("bootstrap").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // Round-robin: each round spawns every bootstrap (hello included) once, so
    // drift on a shared machine hits them all alike.
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for _ in 0..args.spawns {
        for (i, name) in names.iter().enumerate() {
            times[i].extend(init_times(&args.lambda_dir.join(name).join("bootstrap"), 1).await?);
        }
    }
    let mut rows = Vec::new();
    for (name, mut t) in names.into_iter().zip(times) {
        let path = args.lambda_dir.join(&name).join("bootstrap");
        t.sort();
        let median = t[t.len() / 2];
        let (raw, zipped) = (std::fs::metadata(&path)?.len(), deflated_size(&path)?);
        eprintln!(
            "   {name}: {:.1} MB raw, {:.2} MB zipped, init median {:.2} ms",
            raw as f64 / 1e6,
            zipped as f64 / 1e6,
            median.as_secs_f64() * 1e3
        );
        rows.push((name, raw, zipped, median));
    }
    report.d = rows;
    Ok(())
}

// ---------------------------------------------------------------- e. DynamoDB access

async fn part_e(args: &Args, client: &Client, report: &mut Report) -> anyhow::Result<()> {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        eprintln!("e. skipped: AWS_ENDPOINT_URL not set (make bench starts moto)");
        return Ok(());
    }
    eprintln!("e. DynamoDB access on moto with {} tickets", args.dynamo_tickets);
    let unique = TicketId::new().0.simple().to_string();
    let settings = ticketing::adapters::aws::AwsSettings::local(
        format!("bench-{unique}"),
        format!("bench-{unique}"),
        format!("bench-{unique}@example.com"),
    );
    let mut config = ticketd::Config::new("127.0.0.1:0".parse()?, std::env::temp_dir());
    config.backend = ticketd::Backend::Aws {
        settings,
        create_resources: true,
    };
    config.jwt_secret = Some(JWT_SECRET.into());
    let server = ticketd::start(config).await?;
    let base = format!("http://{}", server.addr);
    let aws = server.aws.clone().context("aws adapters")?;
    let org = new_org(client, &base, "dynamo", 3).await?;
    let t = Instant::now();
    aws.store
        .bulk_import_tickets(&synthetic_tickets(&org, args.dynamo_tickets))
        .await?;
    eprintln!("   imported in {:.1}s", t.elapsed().as_secs_f64());

    let calls = aws.dynamo_calls.clone();
    let mut per_endpoint = Vec::new();
    calls.take();
    let domain = format!("other-{unique}.example.com");
    post(
        client,
        format!("{base}/auth/org/signup"),
        None,
        json!({"name": "o", "domain": domain}),
    )
    .await?;
    per_endpoint.push(("POST /auth/org/signup", calls.take()));
    post(client, format!("{base}/auth/admin/signup"), None, json!({"firstName": "A", "lastName": "B", "email": format!("x@{domain}"), "password": PASSWORD, "secret": org.secret})).await?;
    per_endpoint.push(("POST /auth/admin/signup", calls.take()));
    post(
        client,
        format!("{base}/auth/admin/signin"),
        None,
        json!({"email": format!("x@{domain}"), "password": PASSWORD}),
    )
    .await?;
    per_endpoint.push(("POST /auth/admin/signin", calls.take()));
    let ticket = post(
        client,
        format!("{base}/tickets"),
        None,
        json!({"title": "t", "description": "d", "addedBy": "c@example.org", "secret": org.secret}),
    )
    .await?;
    per_endpoint.push(("POST /tickets", calls.take()));
    let id = ticket["id"].as_str().unwrap();
    client
        .get(format!("{base}/tickets/{id}"))
        .bearer_auth(&org.jwt)
        .send()
        .await?
        .error_for_status()?;
    per_endpoint.push(("GET /tickets/{id}", calls.take()));
    client
        .get(format!("{base}/tickets?status=OPEN&limit=50"))
        .bearer_auth(&org.jwt)
        .send()
        .await?
        .error_for_status()?;
    per_endpoint.push(("GET /tickets?status=OPEN&limit=50", calls.take()));
    post(
        client,
        format!("{base}/tickets/{id}"),
        Some(&org.jwt),
        json!({"title": "u"}),
    )
    .await?;
    per_endpoint.push(("POST /tickets/{id}", calls.take()));
    post(
        client,
        format!("{base}/tickets/{id}/respond"),
        Some(&org.jwt),
        json!({"message": "m"}),
    )
    .await?;
    per_endpoint.push(("POST /tickets/{id}/respond", calls.take()));
    post(
        client,
        format!("{base}/tickets/{id}/change_status"),
        Some(&org.jwt),
        json!({"status": "CLOSED"}),
    )
    .await?;
    per_endpoint.push(("POST /tickets/{id}/change_status", calls.take()));

    let org_id: OrgId = org.id.parse()?;
    let admin: AdminId = org.admin_ids[1].parse()?;
    let customer = Email::parse("c", "customer7@example.org").unwrap();
    let mut filters = Vec::new();
    for mask in 0..8u8 {
        let f = TicketFilter {
            admin_id: (mask & 1 != 0).then_some(admin),
            status: (mask & 2 != 0).then_some(Status::Open),
            customer: (mask & 4 != 0).then(|| customer.clone()),
        };
        let (_, stats) = aws
            .store
            .list_tickets_measured(org_id, &f, ticketing::domain::PageRequest { limit: 50, after: None })
            .await?;
        let name = [
            (mask & 1 != 0, "adminEmail"),
            (mask & 2 != 0, "status"),
            (mask & 4 != 0, "customerEmail"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(" + ");
        filters.push((
            if name.is_empty() { "(none)".to_owned() } else { name },
            stats.scanned,
            stats.count,
            mask.count_ones(),
        ));
    }
    server.shutdown().await?;
    aws.dynamo
        .delete_table()
        .table_name(format!("bench-{unique}"))
        .send()
        .await
        .ok();
    report.e = Some((per_endpoint, filters));
    Ok(())
}

// ---------------------------------------------------------------- report

type CallCounts = std::collections::BTreeMap<String, u64>;
type EndpointCalls = (&'static str, CallCounts);
/// (filter, ScannedCount, Count, number of filters combined)
type FilterStats = (String, i32, i32, u32);

#[derive(Default)]
struct Report {
    a: Vec<(&'static str, load::Stats)>,
    b: Vec<(String, load::Stats, load::Stats)>,
    c: Option<(load::Stats, load::Stats)>,
    d: Vec<(String, u64, u64, Duration)>,
    e: Option<(Vec<EndpointCalls>, Vec<FilterStats>)>,
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0))
        })
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1048576.0))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {mem} memory, {} {}; {rustc}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

impl Report {
    fn render(&self, args: &Args, took: Duration) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Benchmark results\n");
        let _ = writeln!(s, "- date: {}", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"));
        let _ = writeln!(s, "- machine: {}", machine());
        let _ = writeln!(
            s,
            "- command: `make bench` (= `scripts/bench`: release builds, then `target/release/bench {}`)",
            std::env::args().skip(1).collect::<Vec<_>>().join(" ")
        );
        let _ = writeln!(s, "- run time: {:.0} s (excluding compilation)", took.as_secs_f64());
        let _ = writeln!(
            s,
            "- every figure below comes from this one run; ratios compare figures measured side by side, so machine noise hits both sides\n"
        );

        if !self.a.is_empty() {
            let bare = (self.a[0].1.throughput() + self.a[self.a.len() - 1].1.throughput()) / 2.0;
            let _ = writeln!(s, "## a. Request cost on ticketd (embedded backend)\n");
            let _ = writeln!(
                s,
                "{} concurrent connections, closed loop, {} s per row, one load generator (reqwest, in the same process as both servers). The bare route runs first and last; the baseline is their mean ({bare:.0} req/s).\n",
                args.concurrency, args.duration
            );
            let _ = writeln!(
                s,
                "| target | req/s | × bare | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|---:|"
            );
            for (name, st) in &self.a {
                let _ = writeln!(
                    s,
                    "| {name} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
                    st.throughput(),
                    st.throughput() / bare,
                    st.p50_ms,
                    st.p99_ms,
                    st.errors
                );
            }
            let get = self
                .a
                .iter()
                .find(|(n, _)| n.starts_with("GET /tickets/{id}"))
                .map(|(_, s)| s.throughput() / bare)
                .unwrap_or(0.0);
            let _ = writeln!(
                s,
                "\nGoal: GET ticket throughput ≥ 0.5 × bare. Measured: {get:.2} × — {}.\n",
                verdict(get >= 0.5)
            );
        }
        if !self.b.is_empty() {
            let _ = writeln!(
                s,
                "## b. Scale: list page latency, {} vs {} tickets in the org\n",
                args.small, args.large
            );
            let _ = writeln!(
                s,
                "Both orgs in one database; {} sequential requests each, interleaved; pages of 50.\n",
                args.list_samples
            );
            let _ = writeln!(
                s,
                "| query | p50 small ms | p50 large ms | ratio p50 | p99 small ms | p99 large ms |\n|---|---:|---:|---:|---:|---:|"
            );
            let mut worst: f64 = 0.0;
            for (q, sm, lg) in &self.b {
                let r = lg.p50_ms / sm.p50_ms;
                worst = worst.max(r);
                let _ = writeln!(
                    s,
                    "| `{q}` | {:.3} | {:.3} | {r:.2} | {:.3} | {:.3} |",
                    sm.p50_ms, lg.p50_ms, sm.p99_ms, lg.p99_ms
                );
            }
            let _ = writeln!(
                s,
                "\nGoal: ratio ≤ 1.5. Worst p50 ratio: {worst:.2} — {}.\n",
                verdict(worst <= 1.5)
            );
        }
        if let Some((ok, unknown)) = &self.c {
            let _ = writeln!(s, "## c. Sign-in (Argon2id, m=19 MiB, t=2, p=1)\n");
            let _ = writeln!(s, "| case | n | p50 ms | p99 ms |\n|---|---:|---:|---:|");
            let _ = writeln!(
                s,
                "| known email, right password | {} | {:.1} | {:.1} |",
                ok.requests, ok.p50_ms, ok.p99_ms
            );
            let _ = writeln!(
                s,
                "| unknown email (fallback hash) | {} | {:.1} | {:.1} |",
                unknown.requests, unknown.p50_ms, unknown.p99_ms
            );
            let _ = writeln!(
                s,
                "\nGoal: p50 ≤ 60 ms. Measured {:.1} ms — {}. Unknown/known p50 ratio {:.2} (1.0 means timing reveals nothing).\n",
                ok.p50_ms,
                verdict(ok.p50_ms <= 60.0),
                unknown.p50_ms / ok.p50_ms
            );
        }
        if !self.d.is_empty() {
            let hello = self.d.iter().find(|(n, ..)| n == "hello-lambda").map(|(_, _, _, m)| *m);
            let _ = writeln!(s, "## d. Lambda cold start (x86-64 bootstraps, profile `lambda`)\n");
            let _ = writeln!(
                s,
                "Init = from spawning the bootstrap to its first `GET /2018-06-01/runtime/invocation/next` on an emulated Runtime API in this process; median of {} spawns. Zipped = cargo-lambda's `bootstrap.zip`.\n",
                args.spawns
            );
            let _ = writeln!(
                s,
                "| function | raw MB | zipped MB | init median ms | × hello |\n|---|---:|---:|---:|---:|"
            );
            let mut max_zip = 0u64;
            let mut max_ratio: f64 = 0.0;
            for (name, raw, zipped, median) in &self.d {
                let ratio = hello
                    .map(|h| median.as_secs_f64() / h.as_secs_f64())
                    .unwrap_or(f64::NAN);
                if name != "hello-lambda" {
                    max_zip = max_zip.max(*zipped);
                    max_ratio = max_ratio.max(ratio);
                }
                let _ = writeln!(
                    s,
                    "| {name} | {:.2} | {:.2} | {:.2} | {ratio:.2} |",
                    *raw as f64 / 1e6,
                    *zipped as f64 / 1e6,
                    median.as_secs_f64() * 1e3
                );
            }
            let _ = writeln!(
                s,
                "\nGoals: zipped ≤ 5 MB — largest {:.2} MB, {}; init ≤ 2 × hello — worst {max_ratio:.2} ×, {}.\n",
                max_zip as f64 / 1e6,
                verdict(max_zip <= 5_000_000),
                verdict(max_ratio <= 2.0)
            );
        }
        if let Some((calls, filters)) = &self.e {
            let _ = writeln!(
                s,
                "## e. DynamoDB access (moto, {} tickets in the org)\n",
                args.dynamo_tickets
            );
            let _ = writeln!(s, "Calls counted by an SDK interceptor on the DynamoDB client.\n");
            let _ = writeln!(s, "| endpoint | calls | by operation |\n|---|---:|---|");
            let mut scans = 0;
            let mut create = 0;
            for (name, ops) in calls {
                let total: u64 = ops.values().sum();
                scans += ops.get("Scan").copied().unwrap_or(0);
                if *name == "POST /tickets" {
                    create = total;
                }
                let _ = writeln!(
                    s,
                    "| {name} | {total} | {} |",
                    ops.iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let _ = writeln!(s, "\n| list filter | ScannedCount | Count |\n|---|---:|---:|");
            let mut single_ok = true;
            for (name, scanned, count, n) in filters {
                if *n <= 1 && scanned != count {
                    single_ok = false;
                }
                let _ = writeln!(s, "| {name} | {scanned} | {count} |");
            }
            let _ = writeln!(
                s,
                "\nGoals: no Scan — {} ({scans} scans); create ≤ 3 calls — {create}, {}; ScannedCount = Count for single-filter lists — {}.\n",
                verdict(scans == 0),
                verdict(create <= 3),
                verdict(single_ok)
            );
        }
        s
    }
}
