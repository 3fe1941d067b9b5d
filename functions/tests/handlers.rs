//! Each function's handler, fed its sample event from `events/` through
//! `lambda_http`'s own event parsing, against the AWS adapters on moto.

use aws_lambda_events::sqs::SqsEvent;
use lambda_http::{Body, Request};
use std::time::Duration;
use ticketing::adapters::aws::{self, AwsAdapters, AwsSettings, CloseEvent};
use ticketing::http::Endpoint;
use ticketing::service::{self, Service};
use tower::ServiceExt;

fn settings() -> AwsSettings {
    let id = uuid_like();
    AwsSettings::local(
        format!("handlers-{id}"),
        format!("handlers-{id}"),
        "support@ticketing.example.com",
    )
}

fn uuid_like() -> String {
    ticketing::domain::TicketId::new().0.simple().to_string()
}

async fn service() -> Service {
    std::env::var("AWS_ENDPOINT_URL").expect("needs moto: run ./scripts/test");
    let settings = settings();
    let adapters = AwsAdapters::new(&aws::sdk_config().await, &settings);
    aws::create_missing_resources(&adapters, &settings)
        .await
        .expect("resources on moto");
    let service_settings = service::Settings {
        jwt_secret: "handler-tests-jwt-secret-0123456789abcdef".into(),
        auto_close_after: Duration::from_secs(30 * 86_400),
        mail_from: settings.mail_from,
        signin: Default::default(),
    };
    Service::new(adapters.ports(), &service_settings).expect("a valid secret")
}

/// The sample event for `name`, placeholders filled.
fn event(name: &str, fill: &[(&str, &str)]) -> String {
    let path = format!("{}/../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{path} missing"));
    for (placeholder, value) in fill {
        text = text.replace(placeholder, value);
    }
    text
}

async fn invoke(service: &Service, endpoint: Endpoint, event_json: &str) -> (u16, serde_json::Value) {
    let request: Request = lambda_http::request::from_str(event_json).expect("lambda_http parses the event");
    let response = ticketing_functions::app(service.clone(), endpoint)
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_answers_its_sample_event_with_the_expected_status() {
    let service = service().await;

    let (status, org) = invoke(&service, Endpoint::OrgSignup, &event("org-signup", &[])).await;
    assert_eq!(status, 201, "{org}");
    let secret = org["secret"].as_str().unwrap().to_owned();

    // The sign-in event's admin, made through the full API.
    let ana = serde_json::json!({"firstName": "Ana", "lastName": "Admin", "email": "ana@growfin.ai", "password": "correct horse battery", "secret": secret});
    let all = ticketing::http::router(service.clone(), &Endpoint::ALL);
    let made = all
        .oneshot(http_request("POST", "/auth/admin/signup", &ana.to_string()))
        .await
        .unwrap();
    assert_eq!(made.status(), 201);

    let cases: Vec<(Endpoint, &str, u16)> = vec![
        (Endpoint::AdminSignup, "admin-signup", 201),
        (Endpoint::AdminSignin, "admin-signin", 200),
        (Endpoint::CreateTicket, "create-ticket", 201),
    ];
    let mut jwt = String::new();
    let mut ticket = String::new();
    for (endpoint, name, expected) in cases {
        let (status, body) = invoke(&service, endpoint, &event(name, &[("<ORG_SECRET>", &secret)])).await;
        assert_eq!(status, expected, "{name}: {body}");
        if endpoint == Endpoint::AdminSignin {
            jwt = body["jwt"].as_str().unwrap().to_owned();
        }
        if endpoint == Endpoint::CreateTicket {
            ticket = body["id"].as_str().unwrap().to_owned();
        }
    }
    let fill = [("<JWT>", jwt.as_str()), ("<TICKET_ID>", ticket.as_str())];
    for (endpoint, name, expected) in [
        (Endpoint::GetTicket, "get-ticket", 200),
        (Endpoint::ListTickets, "list-tickets", 200),
        (Endpoint::UpdateTicket, "update-ticket", 200),
        (Endpoint::Respond, "respond", 201),
        (Endpoint::ChangeStatus, "change-status", 200),
    ] {
        let (status, body) = invoke(&service, endpoint, &event(name, &fill)).await;
        assert_eq!(status, expected, "{name}: {body}");
    }
    let (_, closed) = invoke(&service, Endpoint::GetTicket, &event("get-ticket", &fill)).await;
    assert_eq!(closed["status"], "CLOSED");
    assert_eq!(closed["title"], "Invoice total fixed");
    assert_eq!(closed["responses"][0]["delivery"]["state"], "sent");

    // The close function's sample input: the ticket moved on (it was closed by hand), so nothing changes.
    let responded_at = closed["respondedAt"].as_str().unwrap();
    let input = event("close-ticket", &[("<TICKET_ID>", &ticket)]).replace("2026-11-28T03:34:05.139Z", responded_at);
    let close: CloseEvent = serde_json::from_str(&input).expect("schedule input parses");
    let out = ticketing_functions::close_ticket(&service, close).await.unwrap();
    assert!(out["outcome"].as_str().unwrap().starts_with("skipped"), "{out}");

    // The mail-events function's sample: SES reports the response's mail delivered.
    let response = &closed["responses"][0];
    let mail_fill = [
        ("<TICKET_ID>", ticket.as_str()),
        ("<RESPONSE_ID>", response["id"].as_str().unwrap()),
        ("<MESSAGE_ID>", response["delivery"]["messageId"].as_str().unwrap()),
    ];
    let mut batch: SqsEvent = serde_json::from_str(&event("mail-events", &mail_fill)).expect("an SQS event");
    // Beside it, a message that is no SES report: only it goes back to SQS for a retry.
    let mut garbage = batch.records[0].clone();
    garbage.message_id = Some("not-a-report".into());
    garbage.body = Some("{\"what\": 1}".into());
    batch.records.push(garbage);
    let out = ticketing_functions::mail_events(&service, batch).await;
    let failed: Vec<&str> = out
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["not-a-report"]);
    let (_, after) = invoke(&service, Endpoint::GetTicket, &event("get-ticket", &fill)).await;
    assert_eq!(after["responses"][0]["delivery"]["state"], "delivered", "{after}");
}

/// Sign-in throttling on Lambda counts per the `sourceIp` API Gateway saw,
/// not per `X-Forwarded-For` (which the client writes): a client locked out
/// of an admin's account does not lock the admin out from another address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signin_throttling_counts_per_api_gateway_source_ip() {
    let service = service().await;
    let (status, org) = invoke(&service, Endpoint::OrgSignup, &event("org-signup", &[])).await;
    assert_eq!(status, 201, "{org}");
    let ana = serde_json::json!({"firstName": "Ana", "lastName": "Admin", "email": "ana@growfin.ai", "password": "correct horse battery", "secret": org["secret"]});
    let all = ticketing::http::router(service.clone(), &Endpoint::ALL);
    let made = all
        .oneshot(http_request("POST", "/auth/admin/signup", &ana.to_string()))
        .await
        .unwrap();
    assert_eq!(made.status(), 201);

    let right = event("admin-signin", &[]);
    let wrong = right.replace("correct horse battery", "wrong horse battery");
    let max_failures = service::SigninLimit::default().max_failures;
    for _ in 0..max_failures {
        assert_eq!(invoke(&service, Endpoint::AdminSignin, &wrong).await.0, 401);
    }
    assert_eq!(invoke(&service, Endpoint::AdminSignin, &right).await.0, 429);
    let forged = right.replace(
        r#""x-forwarded-for": "203.0.113.7""#,
        r#""x-forwarded-for": "198.51.100.20""#,
    );
    assert_ne!(forged, right);
    assert_eq!(invoke(&service, Endpoint::AdminSignin, &forged).await.0, 429);
    let elsewhere = right.replace(r#""sourceIp": "203.0.113.7""#, r#""sourceIp": "198.51.100.20""#);
    assert_ne!(elsewhere, right);
    let (status, body) = invoke(&service, Endpoint::AdminSignin, &elsewhere).await;
    assert_eq!(status, 200, "{body}");
}

/// A function serves its own route only: anything else is a JSON 404 or 405.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_serves_only_its_own_route() {
    let service = service().await;
    let (status, body) = invoke(&service, Endpoint::GetTicket, &event("org-signup", &[])).await;
    assert!(status == 404 || status == 405, "{status}");
    assert!(body["error"]["code"].is_string(), "{body}");
    let (status, _) = invoke(&service, Endpoint::OrgSignup, &event("org-signup", &[])).await;
    assert_eq!(status, 201);
}

/// The close function, given a schedule's input for a ticket still
/// RESPONDED, closes it; a second delivery of the same input changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_function_closes_a_responded_ticket_once() {
    let service = service().await;
    let all = ticketing::http::router(service.clone(), &Endpoint::ALL);
    let call = |method: &'static str, path: String, body: serde_json::Value, auth: Option<String>| {
        let all = all.clone();
        async move {
            let mut req = http_request(method, &path, &body.to_string());
            if let Some(a) = auth {
                req.headers_mut()
                    .insert("authorization", format!("Bearer {a}").parse().unwrap());
            }
            let resp = all.oneshot(req).await.unwrap();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        }
    };
    let org = call(
        "POST",
        "/auth/org/signup".into(),
        serde_json::json!({"name": "G", "domain": "g.example.com"}),
        None,
    )
    .await;
    let secret = org["secret"].as_str().unwrap();
    call("POST", "/auth/admin/signup".into(), serde_json::json!({"firstName": "A", "lastName": "B", "email": "a@g.example.com", "password": "correct horse battery", "secret": secret}), None).await;
    let jwt = call(
        "POST",
        "/auth/admin/signin".into(),
        serde_json::json!({"email": "a@g.example.com", "password": "correct horse battery"}),
        None,
    )
    .await["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = call(
        "POST",
        "/tickets".into(),
        serde_json::json!({"title": "t", "description": "d", "addedBy": "c@x.io", "secret": secret}),
        None,
    )
    .await;
    let id = t["id"].as_str().unwrap().to_owned();
    let r = call(
        "POST",
        format!("/tickets/{id}/respond"),
        serde_json::json!({"message": "m"}),
        Some(jwt.clone()),
    )
    .await;
    let input = event("close-ticket", &[("<TICKET_ID>", &id)])
        .replace("2026-11-28T03:34:05.139Z", r["ticket"]["respondedAt"].as_str().unwrap());
    let close: CloseEvent = serde_json::from_str(&input).unwrap();
    assert_eq!(
        ticketing_functions::close_ticket(&service, close).await.unwrap()["outcome"],
        "closed"
    );
    assert!(
        ticketing_functions::close_ticket(&service, close).await.unwrap()["outcome"]
            .as_str()
            .unwrap()
            .starts_with("skipped")
    );
    let after = call("GET", format!("/tickets/{id}"), serde_json::Value::Null, Some(jwt)).await;
    assert_eq!(after["status"], "CLOSED");
}

fn http_request(method: &str, path: &str, body: &str) -> Request {
    let mut req = Request::new(if method == "GET" {
        Body::Empty
    } else {
        Body::Text(body.to_owned())
    });
    *req.method_mut() = method.parse().unwrap();
    *req.uri_mut() = path.parse().unwrap();
    req.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    req
}
