//! What an operator reads: the functions' JSON log lines, captured while an
//! org signs up, an admin signs up and in, and a ticket is filed, answered and
//! read through the Lambda handlers (on moto). One line per request with its
//! id, route template, status, latency and org; no secret, token, hash or
//! mail text anywhere.

mod common;

use common::{event, invoke};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing::adapters::aws::{self, AwsAdapters, AwsSettings};
use ticketing::auth::SecretHash;
use ticketing::http::Endpoint;
use ticketing::service::{self, Service};
use ticketing_functions::{LogFormat, log_filter, log_subscriber};

/// Everything the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("UTF-8 logs")
    }
}

async fn service() -> Service {
    std::env::var("AWS_ENDPOINT_URL").expect("needs moto: run ./scripts/test");
    let id = ticketing::domain::TicketId::new().0.simple().to_string();
    let settings = AwsSettings::local(
        format!("logs-{id}"),
        format!("logs-{id}"),
        "support@ticketing.example.com",
    );
    let adapters = AwsAdapters::new(&aws::sdk_config().await, &settings);
    aws::create_missing_resources(&adapters, &settings)
        .await
        .expect("resources on moto");
    let service_settings = service::Settings {
        limits: Default::default(),
        jwt_keys: adapters.jwt_keys(&settings),
        auto_close_after: Duration::from_secs(30 * 86_400),
        reopen_window: ticketing::service::DEFAULT_REOPEN_WINDOW,
        mail_from: settings.mail_from,
        signin: Default::default(),
        inbound: Default::default(),
    };
    Service::new(adapters.ports(), &service_settings).expect("a valid secret")
}

/// Single-threaded, so every line the handlers log reaches this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn each_request_logs_one_json_line_with_route_status_latency_and_org_and_no_secrets() {
    let service = service().await;
    let captured = Captured::default();
    let sink = captured.clone();
    let env = |k: &str| (k == "AWS_LAMBDA_LOG_FORMAT").then(|| "JSON".to_owned());
    assert_eq!(LogFormat::from_env(env), LogFormat::Json);
    let _logging = tracing::subscriber::set_default(log_subscriber(
        LogFormat::from_env(env),
        log_filter(|_| None),
        move || sink.clone(),
    ));

    let (_, org) = invoke(&service, Endpoint::OrgSignup, &event("org-signup", &[])).await;
    let secret = org["secret"].as_str().expect("an org secret").to_owned();
    let org_id = org["id"].as_str().unwrap().to_owned();
    let signup = event("admin-signup", &[("<ORG_SECRET>", &secret)]);
    let (status, _) = invoke(&service, Endpoint::AdminSignup, &signup).await;
    assert_eq!(status, 201);
    let signin = event("admin-signin", &[]).replace("ana@", "bob@");
    let (status, body) = invoke(&service, Endpoint::AdminSignin, &signin).await;
    assert_eq!(status, 200, "{body}");
    let jwt = body["jwt"].as_str().unwrap().to_owned();
    let (status, ticket) = invoke(
        &service,
        Endpoint::CreateTicket,
        &event("create-ticket", &[("<ORG_SECRET>", &secret)]),
    )
    .await;
    assert_eq!(status, 201);
    let fill = [("<JWT>", jwt.as_str()), ("<TICKET_ID>", ticket["id"].as_str().unwrap())];
    let message = "Fixed: the total now includes VAT.";
    let (status, _) = invoke(&service, Endpoint::Respond, &event("respond", &fill)).await;
    assert_eq!(status, 201);
    let (status, _) = invoke(&service, Endpoint::GetTicket, &event("get-ticket", &fill)).await;
    assert_eq!(status, 200);
    let wrong_secret = event("create-ticket", &[("<ORG_SECRET>", "not-the-secret")]);
    let (status, _) = invoke(&service, Endpoint::CreateTicket, &wrong_secret).await;
    assert_eq!(status, 401);

    let text = captured.text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let requests: Vec<&serde_json::Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    let routes: Vec<(&str, u64)> = requests
        .iter()
        .map(|l| (l["route"].as_str().unwrap(), l["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        routes,
        [
            ("/auth/org/signup", 201),
            ("/auth/admin/signup", 201),
            ("/auth/admin/signin", 200),
            ("/tickets", 201),
            ("/tickets/{id}/respond", 201),
            ("/tickets/{id}", 200),
            ("/tickets", 401),
        ],
        "one line per request, by route template: {text}"
    );
    for line in &requests {
        assert_eq!(line["level"], "INFO", "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
        assert!(line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{line}");
        let id = line["request_id"].as_str().unwrap_or_default();
        assert_eq!(id.len(), 36, "a request id (UUID): {line}");
    }
    let orgs: Vec<Option<&str>> = requests.iter().map(|l| l["org"].as_str()).collect();
    let known = Some(org_id.as_str());
    // Sign-in names no org until it succeeds, and its reply names none; a wrong secret names none.
    assert_eq!(orgs, [known, known, None, known, known, known, None], "{text}");
    // What the service logs while handling a request carries that request's id.
    let created = lines
        .iter()
        .find(|l| l["message"] == "ticket created")
        .expect("a create line");
    let span = created["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|s| s["name"] == "request"))
        .unwrap_or_else(|| panic!("in the request span: {created}"));
    assert_eq!(span["request_id"], requests[3]["request_id"], "{created}");
    // Business metrics: an Embedded Metric Format object after each line
    // that counts one (the ticket created, the response; its mail may still
    // be sending).
    let metrics: Vec<&str> = lines
        .iter()
        .filter_map(|l| {
            let directive = &l["_aws"]["CloudWatchMetrics"][0];
            assert!(
                directive.is_null() || directive["Namespace"] == ticketing_functions::emf::NAMESPACE,
                "{l}"
            );
            directive["Metrics"][0]["Name"].as_str()
        })
        .collect();
    for metric in ["TicketsCreated", "Responses"] {
        assert_eq!(metrics.iter().filter(|m| **m == metric).count(), 1, "{metric}: {text}");
    }

    let hash = SecretHash::of(&secret).0;
    let signature = jwt.rsplit('.').next().unwrap().to_owned();
    for (what, needle) in [
        ("org secret", secret.as_str()),
        ("secret hash", hash.as_str()),
        ("password", "correct horse battery"),
        ("JWT", jwt.as_str()),
        ("JWT signature", signature.as_str()),
        ("mail text", message),
        ("password hash", "$argon2"),
    ] {
        assert!(!text.contains(needle), "the logs hold the {what}: {text}");
    }
}

#[test]
fn lambda_log_settings_choose_format_and_level() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    };
    assert_eq!(LogFormat::from_env(env(&[])), LogFormat::Text);
    assert_eq!(
        LogFormat::from_env(env(&[("AWS_LAMBDA_LOG_FORMAT", "Text")])),
        LogFormat::Text
    );
    assert_eq!(
        LogFormat::from_env(env(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")])),
        LogFormat::Json
    );
    assert_eq!(log_filter(env(&[])).to_string(), "info");
    assert_eq!(log_filter(env(&[("AWS_LAMBDA_LOG_LEVEL", "WARN")])).to_string(), "warn");
    assert_eq!(
        log_filter(env(&[("AWS_LAMBDA_LOG_LEVEL", "WARN"), ("RUST_LOG", "debug")])).to_string(),
        "debug"
    );
}
