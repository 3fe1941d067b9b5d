//! Part e, DynamoDB access: the calls each endpoint makes (counted by an SDK
//! interceptor, so what real DynamoDB would see) and what each list filter reads.

use crate::Args;
use crate::common::{JWT_SECRET, PASSWORD, field, new_org, post, synthetic_tickets, unique_domain};
use crate::part_d::service_env;
use anyhow::Context;
use reqwest::Client;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use ticketing::adapters::aws::AwsSettings;
use ticketing::domain::{AdminId, Email, OrgId, PageRequest, Status, TicketFilter, TicketId};

/// The DynamoDB calls one request made, by operation.
pub struct EndpointCalls {
    pub endpoint: &'static str,
    pub calls: BTreeMap<String, u64>,
}

/// One list filter combination: items DynamoDB read and items it returned.
pub struct FilterRow {
    pub filter: String,
    pub scanned: i32,
    pub count: i32,
    /// How many filters are combined (0 to 3).
    pub combined: u32,
}

pub struct DynamoAccess {
    pub endpoints: Vec<EndpointCalls>,
    pub filters: Vec<FilterRow>,
    pub key_reads: KeyReads,
}

/// Reading the JWT keys from Secrets Manager (`GetSecretValue` and parsing),
/// what a JWT function does once per cold start.
pub struct KeyReads {
    /// On a new client: TCP connect included, as in a cold container.
    pub first: std::time::Duration,
    /// Later reads on the same client (a stale or unknown-kid re-read).
    pub median: std::time::Duration,
    pub samples: usize,
}

/// Times `samples` + 1 reads of the key secret, the first on a new client.
async fn time_key_reads(secret: &str, samples: usize) -> anyhow::Result<KeyReads> {
    use ticketing::adapters::aws::{SecretsClient, SecretsManagerVerifyKeys, sdk_config};
    use ticketing::ports::KeySource;
    // The verify keys: what every JWT function but admin-signin reads.
    let keys = SecretsManagerVerifyKeys::new(SecretsClient::new(&sdk_config().await), secret);
    let t = Instant::now();
    keys.load().await?;
    let first = t.elapsed();
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        keys.load().await?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(KeyReads {
        first,
        median: times[samples / 2],
        samples,
    })
}

/// Runs `request` and takes the calls it made.
async fn counted<F: std::future::Future<Output = anyhow::Result<Value>>>(
    calls: &ticketing::adapters::aws::DynamoCalls,
    endpoints: &mut Vec<EndpointCalls>,
    endpoint: &'static str,
    request: F,
) -> anyhow::Result<Value> {
    calls.take();
    let body = request.await.with_context(|| endpoint.to_owned())?;
    endpoints.push(EndpointCalls {
        endpoint,
        calls: calls.take(),
    });
    Ok(body)
}

async fn get(client: &Client, url: String, jwt: &str) -> anyhow::Result<Value> {
    Ok(client
        .get(url)
        .bearer_auth(jwt)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// `None` without a DynamoDB endpoint (scripts/bench starts moto).
pub async fn run(args: &Args, client: &Client) -> anyhow::Result<Option<DynamoAccess>> {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        eprintln!("e. skipped: AWS_ENDPOINT_URL not set (make bench starts moto)");
        return Ok(None);
    }
    eprintln!("e. DynamoDB access on moto with {} tickets", args.dynamo_tickets);
    let unique = TicketId::new().0.simple().to_string();
    let env: HashMap<&str, String> = service_env(&unique).into_iter().collect();
    let settings = AwsSettings::from_lookup(|k| env.get(k).cloned())?;
    let table = settings.table.clone();
    let key_secret = settings
        .jwt_secret_arn
        .clone()
        .context("service_env names a key secret")?;
    let mut config = ticketd::Config::new("127.0.0.1:0".parse()?, std::env::temp_dir());
    config.backend = ticketd::Backend::Aws {
        settings,
        create_resources: true,
        endpoint_url: None,
        call_timeout: None,
    };
    config.jwt_secret = Some(JWT_SECRET.into());
    // Only the first reconcile tick (at start, before counting): part e counts
    // the calls requests make, and the loop's reads would show up in them.
    config.reconcile_interval = Duration::from_secs(3600);
    let server = ticketd::start(config).await?;
    let base = format!("http://{}", server.addr);
    let aws = server.aws.clone().context("aws adapters")?;
    let org = new_org(client, &base, "dynamo", 3).await?;
    let t = Instant::now();
    aws.store
        .bulk_import_tickets(&synthetic_tickets(&org, args.dynamo_tickets)?)
        .await?;
    eprintln!("   imported in {:.1}s", t.elapsed().as_secs_f64());

    let (calls, mut endpoints) = (aws.dynamo_calls.clone(), Vec::new());
    let e = &mut endpoints;
    let domain = unique_domain("other");
    let (jwt, secret) = (org.jwt.as_str(), org.secret.as_str());
    let org_signup = json!({"name": "o", "domain": domain});
    counted(
        &calls,
        e,
        "POST /auth/org/signup",
        post(client, format!("{base}/auth/org/signup"), None, org_signup),
    )
    .await?;
    let email = format!("x@{domain}");
    let admin = json!({"firstName": "A", "lastName": "B", "email": email, "password": PASSWORD, "secret": secret});
    counted(
        &calls,
        e,
        "POST /auth/admin/signup",
        post(client, format!("{base}/auth/admin/signup"), None, admin),
    )
    .await?;
    let signin = json!({"email": email, "password": PASSWORD});
    counted(
        &calls,
        e,
        "POST /auth/admin/signin",
        post(client, format!("{base}/auth/admin/signin"), None, signin),
    )
    .await?;
    let ticket = json!({"title": "t", "description": "d", "addedBy": "c@example.org", "secret": secret});
    let ticket = counted(
        &calls,
        e,
        "POST /tickets",
        post(client, format!("{base}/tickets"), None, ticket),
    )
    .await?;
    let id = field(&ticket, "id")?;
    counted(
        &calls,
        e,
        "GET /tickets/{id}",
        get(client, format!("{base}/tickets/{id}"), jwt),
    )
    .await?;
    let list = format!("{base}/tickets?status=OPEN&limit=50");
    counted(&calls, e, "GET /tickets?status=OPEN&limit=50", get(client, list, jwt)).await?;
    let update = post(client, format!("{base}/tickets/{id}"), Some(jwt), json!({"title": "u"}));
    counted(&calls, e, "POST /tickets/{id}", update).await?;
    let respond = post(
        client,
        format!("{base}/tickets/{id}/respond"),
        Some(jwt),
        json!({"message": "m"}),
    );
    counted(&calls, e, "POST /tickets/{id}/respond", respond).await?;
    let close = post(
        client,
        format!("{base}/tickets/{id}/change_status"),
        Some(jwt),
        json!({"status": "CLOSED"}),
    );
    counted(&calls, e, "POST /tickets/{id}/change_status", close).await?;

    let org_id: OrgId = org.id.parse()?;
    let admin: AdminId = org.admin_ids[1].parse()?;
    let customer = Email::parse("customerEmail", "customer7@example.org")?;
    let mut filters = Vec::new();
    for mask in 0..8u8 {
        let filter = TicketFilter {
            admin_id: (mask & 1 != 0).then_some(admin),
            status: (mask & 2 != 0).then_some(Status::Open),
            customer: (mask & 4 != 0).then(|| customer.clone()),
        };
        let (_, stats) = aws
            .store
            .list_tickets_measured(org_id, &filter, PageRequest { limit: 50, after: None })
            .await?;
        let names: Vec<&str> = [(1, "adminEmail"), (2, "status"), (4, "customerEmail")]
            .into_iter()
            .filter(|(bit, _)| mask & bit != 0)
            .map(|(_, name)| name)
            .collect();
        filters.push(FilterRow {
            filter: if names.is_empty() {
                "(none)".to_owned()
            } else {
                names.join(" + ")
            },
            scanned: stats.scanned,
            count: stats.count,
            combined: mask.count_ones(),
        });
    }
    // The secret create_missing_resources made, as the stack's is.
    let key_reads = time_key_reads(&key_secret, 20).await?;
    server.shutdown().await?;
    aws.dynamo.delete_table().table_name(table).send().await.ok();
    aws.secrets()
        .delete_secret()
        .secret_id(&key_secret)
        .force_delete_without_recovery(true)
        .send()
        .await
        .ok();
    Ok(Some(DynamoAccess {
        endpoints,
        filters,
        key_reads,
    }))
}
