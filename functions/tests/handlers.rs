//! Each function's handler, fed its sample event from `events/` through
//! `lambda_http`'s own event parsing, against the AWS adapters on moto.

mod common;

use aws_lambda_events::sqs::SqsEvent;
use common::{event, invoke};
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
    wiring(Duration::from_secs(30 * 86_400)).await.0
}

/// The service on fresh resources, with its adapters and settings.
async fn wiring(auto_close_after: Duration) -> (Service, AwsAdapters, AwsSettings) {
    std::env::var("AWS_ENDPOINT_URL").expect("needs moto: run ./scripts/test");
    let settings = settings();
    let adapters = AwsAdapters::new(&aws::sdk_config().await, &settings);
    aws::create_missing_resources(&adapters, &settings)
        .await
        .expect("resources on moto");
    let service = service_on(adapters.ports(), &adapters, &settings, auto_close_after);
    (service, adapters, settings)
}

/// The service over `ports`; its keys from the (moto) secret, as a deployed
/// function reads them.
fn service_on(
    ports: ticketing::ports::Ports,
    adapters: &AwsAdapters,
    settings: &AwsSettings,
    auto_close_after: Duration,
) -> Service {
    let service_settings = service::Settings {
        limits: Default::default(),
        jwt_keys: adapters.jwt_keys(settings),
        auto_close_after,
        reopen_window: ticketing::service::DEFAULT_REOPEN_WINDOW,
        mail_from: settings.mail_from.clone(),
        signin: Default::default(),
        inbound: Default::default(),
    };
    Service::new(ports, &service_settings).expect("a valid secret")
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
        (Endpoint::TicketEvents, "ticket-events", 200),
        (Endpoint::ListAdmins, "list-admins", 200),
    ] {
        let (status, body) = invoke(&service, endpoint, &event(name, &fill)).await;
        assert_eq!(status, expected, "{name}: {body}");
    }
    // Issue 9 (H): the admin listed first sets itself unavailable.
    let (_, admins) = invoke(&service, Endpoint::ListAdmins, &event("list-admins", &fill)).await;
    let admin = admins["admins"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = invoke(
        &service,
        Endpoint::SetAvailability,
        &event(
            "set-availability",
            &[("<JWT>", jwt.as_str()), ("<ADMIN_ID>", admin.as_str())],
        ),
    )
    .await;
    assert_eq!((status, &body["available"]), (200, &serde_json::json!(false)), "{body}");
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

/// Drops a test's table: moto copies every live table on each transaction,
/// so leftovers slow every later test.
async fn drop_table(adapters: &AwsAdapters, settings: &AwsSettings) {
    let _ = adapters.dynamo.delete_table().table_name(&settings.table).send().await;
}

/// An org, an admin's token and an OPEN ticket, through the service's router.
async fn open_ticket(service: &Service) -> (String, String) {
    let all = ticketing::http::router(service.clone(), &Endpoint::ALL);
    let call = |path: &'static str, body: serde_json::Value| {
        let all = all.clone();
        async move {
            let resp = all
                .oneshot(http_request("POST", path, &body.to_string()))
                .await
                .unwrap();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        }
    };
    let domain = format!("{}.example.com", uuid_like());
    let secret = call("/auth/org/signup", serde_json::json!({"name": "R", "domain": domain})).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let email = format!("a@{domain}");
    call("/auth/admin/signup", serde_json::json!({"firstName": "A", "lastName": "B", "email": email, "password": "correct horse battery", "secret": secret})).await;
    let jwt = call(
        "/auth/admin/signin",
        serde_json::json!({"email": email, "password": "correct horse battery"}),
    )
    .await["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = call(
        "/tickets",
        serde_json::json!({"title": "t", "description": "d", "addedBy": "c@x.io", "secret": secret}),
    )
    .await;
    (t["id"].as_str().unwrap().to_owned(), jwt)
}

/// The reconcile function, given the stream record of a ticket that entered
/// RESPONDED while the eager schedule failed: with Scheduler still down it
/// reports the record (Lambda retries from it); once Scheduler answers it
/// creates the schedule at the stored `autoCloseAt`, and a redelivery
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_function_creates_the_schedule_the_request_failed_to() {
    let (service, adapters, settings) = wiring(Duration::from_secs(30 * 86_400)).await;
    // The same service with Scheduler where nothing listens.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dead_sdk = aws::sdk_config_at(Some(&format!("http://{dead}"))).await;
    let mut down = adapters.ports();
    down.scheduler = std::sync::Arc::new(aws::EventBridgeScheduler::new(
        aws_sdk_scheduler::Client::new(&dead_sdk),
        settings.schedule_group.clone(),
        settings.close_function_arn.clone(),
        settings.scheduler_role_arn.clone(),
        settings.dead_letter_arn.clone(),
    ));
    let down = service_on(down, &adapters, &settings, Duration::from_secs(30 * 86_400));

    let (id, jwt) = open_ticket(&down).await;
    let (status, body) = invoke(
        &down,
        Endpoint::Respond,
        &event("respond", &[("<TICKET_ID>", &id), ("<JWT>", &jwt)]),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let get = || {
        adapters
            .schedules
            .get_schedule()
            .group_name(&settings.schedule_group)
            .name(&id)
            .send()
    };
    assert!(get().await.is_err(), "the eager schedule failed");

    let ticket = ticketing::ports::Store::ticket(adapters.store.as_ref(), id.parse().unwrap())
        .await
        .unwrap()
        .expect("the ticket");
    let stored = |ms: Option<ticketing::domain::Timestamp>| ms.unwrap().millis().to_string();
    let sample = event(
        "reconcile",
        &[
            ("<TICKET_ID>", &id),
            ("<ORG_ID>", &ticket.org_id.to_string()),
            ("1796009645139", &stored(ticket.responded_at)),
            ("1798601645139", &stored(ticket.auto_close_at)),
        ],
    );
    let batch = || serde_json::from_str::<aws::stream::StreamEvent>(&sample).expect("the sample parses");
    let failed = ticketing_functions::reconcile(&down, aws::stream::Effects::new(&adapters, None), batch()).await;
    assert_eq!(
        failed,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "111100000000012345678901"}]})
    );
    for _ in 0..2 {
        let done = ticketing_functions::reconcile(&service, aws::stream::Effects::new(&adapters, None), batch()).await;
        assert_eq!(done, serde_json::json!({"batchItemFailures": []}));
        let s = get().await.expect("the schedule exists");
        assert_eq!(
            s.schedule_expression(),
            Some(aws::at_expression(ticket.auto_close_at.unwrap()).as_str())
        );
    }
    drop_table(&adapters, &settings).await;
}

/// The sweeper function's work: a RESPONDED ticket past `autoCloseAt` whose
/// schedule never fired is closed; one not yet due is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeper_function_closes_overdue_tickets_only() {
    let (service, adapters, settings) = wiring(Duration::from_secs(1)).await;
    let (due, jwt) = open_ticket(&service).await;
    invoke(
        &service,
        Endpoint::Respond,
        &event("respond", &[("<TICKET_ID>", &due), ("<JWT>", &jwt)]),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let (not_due, jwt2) = open_ticket(&service).await;
    let sweeper = aws::Sweeper::new(service.clone(), adapters.clone(), &settings);
    let (sweep, drained) = sweeper.run(aws::budgets::SWEEP_WINDOW).await;
    assert_eq!(sweep.closed, 1, "{sweep:?}");
    assert_eq!(drained.retried + drained.kept, 0);
    let get = |id: String, jwt: String| {
        let service = service.clone();
        async move {
            invoke(
                &service,
                Endpoint::GetTicket,
                &event("get-ticket", &[("<TICKET_ID>", &id), ("<JWT>", &jwt)]),
            )
            .await
            .1
        }
    };
    assert_eq!(get(due, jwt).await["status"], "CLOSED");
    assert_eq!(get(not_due, jwt2).await["status"], "OPEN");
    assert_eq!(
        sweeper.run(aws::budgets::SWEEP_WINDOW).await.0,
        Default::default(),
        "nothing left to do"
    );
    drop_table(&adapters, &settings).await;
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
