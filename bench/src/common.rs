//! What the parts share: the bench's secrets, HTTP helpers, orgs with admins,
//! and synthetic tickets for bulk imports.

use reqwest::Client;
use serde_json::{Value, json};
use ticketing::domain::{AdminId, Email, OrgId, Status, Ticket, TicketId, Timestamp};

pub const JWT_SECRET: &str = "bench-jwt-secret-0123456789abcdef0123456789";
pub const PASSWORD: &str = "bench password 123";

/// An org signed up over HTTP, with its admins and the first admin's token.
pub struct Org {
    pub id: String,
    pub secret: String,
    pub jwt: String,
    pub admin_ids: Vec<String>,
}

/// POSTs `body` as JSON; a non-2xx answer is an error carrying the body.
pub async fn post(client: &Client, url: String, auth: Option<&str>, body: Value) -> anyhow::Result<Value> {
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

/// The string field `key` of a JSON answer.
pub fn field(body: &Value, key: &str) -> anyhow::Result<String> {
    body[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no string {key:?} in {body}"))
}

/// A unique domain, so runs against a shared backend (moto) never collide.
pub fn unique_domain(name: &str) -> String {
    format!("{name}-{}.example.com", TicketId::new().0.simple())
}

pub async fn new_org(client: &Client, base: &str, name: &str, admins: usize) -> anyhow::Result<Org> {
    let domain = unique_domain(name);
    let org = post(
        client,
        format!("{base}/auth/org/signup"),
        None,
        json!({"name": name, "domain": domain}),
    )
    .await?;
    let secret = field(&org, "secret")?;
    let mut admin_ids = Vec::new();
    for i in 0..admins {
        let admin = post(
            client,
            format!("{base}/auth/admin/signup"),
            None,
            json!({"firstName": "B", "lastName": "Ench", "email": format!("admin{i}@{domain}"), "password": PASSWORD, "secret": secret}),
        )
        .await?;
        admin_ids.push(field(&admin, "id")?);
    }
    let signin = post(
        client,
        format!("{base}/auth/admin/signin"),
        None,
        json!({"email": format!("admin0@{domain}"), "password": PASSWORD}),
    )
    .await?;
    Ok(Org {
        id: field(&org, "id")?,
        secret,
        jwt: field(&signin, "jwt")?,
        admin_ids,
    })
}

/// `n` tickets of `org`, spread over its admins, 50 customers and the three
/// statuses, one second apart, newest last.
pub fn synthetic_tickets(org: &Org, n: usize) -> anyhow::Result<Vec<Ticket>> {
    let org_id: OrgId = org.id.parse()?;
    let admins = org
        .admin_ids
        .iter()
        .map(|a| a.parse())
        .collect::<Result<Vec<AdminId>, _>>()?;
    anyhow::ensure!(!admins.is_empty(), "synthetic tickets need an admin");
    let t0 = Timestamp::now().millis() - n as i64 * 1000;
    (0..n)
        .map(|i| {
            let at = Timestamp::from_millis(t0 + i as i64 * 1000);
            let status = [Status::Open, Status::Open, Status::Responded, Status::Closed][i % 4];
            Ok(Ticket {
                id: TicketId::new(),
                org_id,
                title: format!("Imported ticket {i}"),
                description: "Synthetic ticket for the benchmark.".into(),
                added_by: Email::parse("addedBy", &format!("customer{}@example.org", i % 50))?,
                admin_id: Some(admins[i % admins.len()]),
                status,
                created_at: at,
                updated_at: at,
                responded_at: (status != Status::Open).then_some(at),
                closed_at: (status == Status::Closed).then_some(at),
                auto_close_at: None,
                version: 1,
                follow_up_of: None,
            })
        })
        .collect()
}
