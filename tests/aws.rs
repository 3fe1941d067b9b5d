//! AWS-specific behaviour against moto: the schedules as stored, the
//! close handler, and what each endpoint costs in DynamoDB calls.

use serde_json::json;
use std::collections::BTreeMap;
use ticketing::adapters::aws::{CloseEvent, at_expression, handle_close_event};
use ticketing::domain::Timestamp;
use ticketing::service::CloseOutcome;
use ticketing_tests::client::customer;
use ticketing_tests::faults::{fault_service, fault_settings, http, serve};
use ticketing_tests::{AwsHandle, AwsSet, MotoSchedule, TestApp, TestConfig};

async fn start() -> (TestApp, AwsHandle) {
    // No reconcile tick after the first during a test: these count DynamoDB
    // calls per request, and the loop's own reads would show up.
    let config = TestConfig {
        reconcile_interval: std::time::Duration::from_secs(3600),
        ..TestConfig::default()
    };
    let (deployment, handle) = AwsSet.start_with_handle(config).await.expect("starts on moto");
    (TestApp::on(deployment), handle)
}

fn ts(v: &serde_json::Value) -> Timestamp {
    Timestamp::parse_rfc3339(v.as_str().expect("a time")).expect("RFC 3339")
}

async fn schedule(h: &AwsHandle, ticket: &str) -> Option<MotoSchedule> {
    MotoSchedule::get(&h.adapters.schedules, &h.settings.schedule_group, ticket).await
}

/// Responding creates a one-off schedule named after the ticket, at
/// respondedAt + delay, invoking the close function with the documented input;
/// responding again moves it; leaving RESPONDED deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responded_ticket_gets_one_schedule_that_moves_and_goes_with_the_status() {
    let (app, h) = start().await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let id = app.new_ticket_id(&org, &customer()).await;
    assert!(schedule(&h, &id).await.is_none());

    let first = app.respond(&admin.jwt, &id, "one").await.expect(201);
    let responded_at = ts(&first["ticket"]["respondedAt"]);
    let s = schedule(&h, &id).await.expect("a schedule named after the ticket");
    assert_eq!(
        s.expression,
        at_expression(responded_at.plus(std::time::Duration::from_secs(30 * 86_400)))
    );
    assert_eq!(s.timezone.as_deref(), Some("UTC"));
    assert_eq!(s.target_arn, h.settings.close_function_arn);
    assert_eq!(s.role_arn, h.settings.scheduler_role_arn);
    assert_eq!(s.dead_letter_arn.as_deref(), Some(h.settings.dead_letter_arn.as_str()));
    assert!(s.max_retries.is_some_and(|n| n > 0));
    assert_eq!(s.action_after_completion.as_deref(), Some("DELETE"));
    assert!(s.flexible_window_off);
    assert_eq!(
        s.input,
        json!({"ticketId": id, "respondedAt": first["ticket"]["respondedAt"]})
    );

    // A second response upserts the same schedule to the new time.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = app.respond(&admin.jwt, &id, "two").await.expect(201);
    let s2 = schedule(&h, &id).await.expect("still scheduled");
    assert_eq!(s2.input["respondedAt"], second["ticket"]["respondedAt"]);
    assert_ne!(s2.expression, s.expression);

    // Leaving RESPONDED deletes it, by change_status or by update.
    app.change_status(&admin.jwt, &id, "OPEN").await.expect(200);
    assert!(schedule(&h, &id).await.is_none(), "gone after reopening");
    app.update(&admin.jwt, &id, json!({"status": "RESPONDED"}))
        .await
        .expect(200);
    assert!(
        schedule(&h, &id).await.is_some(),
        "entering RESPONDED by update schedules too"
    );
    app.update(&admin.jwt, &id, json!({"status": "CLOSED"}))
        .await
        .expect(200);
    assert!(schedule(&h, &id).await.is_none(), "gone after closing");
    app.stop().await;
}

async fn respond(app: &TestApp, jwt: &str, id: &str) -> CloseEvent {
    let r = app.respond(jwt, id, "m").await.expect(201);
    CloseEvent {
        ticket_id: id.parse().unwrap(),
        responded_at: ts(&r["ticket"]["respondedAt"]),
    }
}

/// The close handler, given a schedule's input, closes a ticket still
/// RESPONDED for that response, and leaves alone one that moved on, one
/// responded to again, one already closed, and one that does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_handler_closes_only_a_ticket_still_responded_for_that_response() {
    let (app, h) = start().await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let still = app.new_ticket_id(&org, &customer()).await;
    let event = respond(&app, &admin.jwt, &still).await;
    assert_eq!(
        handle_close_event(&h.service, event).await.unwrap(),
        CloseOutcome::Closed
    );
    let closed = app.ticket(&admin.jwt, &still).await;
    assert_eq!(closed["status"], "CLOSED");
    assert!(
        matches!(
            handle_close_event(&h.service, event).await.unwrap(),
            CloseOutcome::Skipped(_)
        ),
        "idempotent"
    );
    assert_eq!(app.ticket(&admin.jwt, &still).await["version"], closed["version"]);

    let reopened = app.new_ticket_id(&org, &customer()).await;
    let event = respond(&app, &admin.jwt, &reopened).await;
    app.change_status(&admin.jwt, &reopened, "OPEN").await.expect(200);
    assert!(matches!(
        handle_close_event(&h.service, event).await.unwrap(),
        CloseOutcome::Skipped(_)
    ));
    assert_eq!(app.ticket(&admin.jwt, &reopened).await["status"], "OPEN");

    let again = app.new_ticket_id(&org, &customer()).await;
    let stale = respond(&app, &admin.jwt, &again).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let latest = respond(&app, &admin.jwt, &again).await;
    assert!(matches!(
        handle_close_event(&h.service, stale).await.unwrap(),
        CloseOutcome::Skipped(_)
    ));
    assert_eq!(app.ticket(&admin.jwt, &again).await["status"], "RESPONDED");
    assert_eq!(
        handle_close_event(&h.service, latest).await.unwrap(),
        CloseOutcome::Closed
    );

    let ghost = CloseEvent {
        ticket_id: ticketing::domain::TicketId::new(),
        responded_at: Timestamp::now(),
    };
    assert!(matches!(
        handle_close_event(&h.service, ghost).await.unwrap(),
        CloseOutcome::Skipped(_)
    ));
    app.stop().await;
}

/// Every endpoint is served by GetItem, Query and writes only: no Scan
/// anywhere, a ticket create takes at most 3 calls, and checking a token's
/// admin costs one GetItem per process, not one per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_endpoint_scans_and_create_ticket_takes_at_most_three_calls() {
    let (app, h) = start().await;
    let calls = h.adapters.dynamo_calls.clone();
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    app.new_admin(&org).await;
    let cust = customer();
    for _ in 0..5 {
        app.new_ticket(&org, &cust).await;
    }
    let mut table: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
    calls.take();

    app.post(
        "/auth/org/signup",
        None,
        json!({"name": "X", "domain": format!("{}.example.com", ticketing_tests::unique("x"))}),
    )
    .await
    .expect(201);
    table.insert("POST /auth/org/signup", calls.take());
    let t = app.new_ticket(&org, &cust).await;
    table.insert("POST /tickets", calls.take());
    let id = t["id"].as_str().unwrap();
    app.signin(&admin.email, ticketing_tests::client::PASSWORD)
        .await
        .expect(200);
    table.insert("POST /auth/admin/signin", calls.take());
    app.ticket(&admin.jwt, id).await;
    table.insert("GET /tickets/{id}", calls.take());
    app.get("/tickets?limit=3", Some(&admin.jwt)).await.expect(200);
    table.insert("GET /tickets", calls.take());
    app.get(
        &format!("/tickets?adminEmail={}&status=OPEN&customerEmail={cust}", admin.email),
        Some(&admin.jwt),
    )
    .await
    .expect(200);
    table.insert("GET /tickets?adminEmail&status&customerEmail", calls.take());
    app.update(&admin.jwt, id, json!({"title": "new"})).await.expect(200);
    table.insert("POST /tickets/{id}", calls.take());
    app.respond(&admin.jwt, id, "m").await.expect(201);
    table.insert("POST /tickets/{id}/respond", calls.take());
    app.change_status(&admin.jwt, id, "CLOSED").await.expect(200);
    table.insert("POST /tickets/{id}/change_status", calls.take());

    for (endpoint, ops) in &table {
        println!("{endpoint}: {ops:?}");
        assert!(!ops.is_empty(), "{endpoint}: no calls counted");
        assert!(!ops.contains_key("Scan"), "{endpoint} scanned: {ops:?}");
        assert!(
            ops.keys()
                // DeleteItem: a successful sign-in clears its throttle window.
                .all(|op| [
                    "GetItem",
                    "Query",
                    "PutItem",
                    "UpdateItem",
                    "DeleteItem",
                    "TransactWriteItems"
                ]
                .contains(&op.as_str())),
            "{endpoint}: {ops:?}"
        );
    }
    let create: u64 = table["POST /tickets"].values().sum();
    assert!(create <= 3, "create took {create} calls: {:?}", table["POST /tickets"]);
    assert_eq!(table["GET /tickets"].get("Query"), Some(&1));
    // A token's admin is looked up once per process (one GetItem on first
    // use), then known: later calls cost only their own reads.
    assert_eq!(
        table["GET /tickets/{id}"],
        BTreeMap::from([("GetItem".into(), 1), ("Query".into(), 1)])
    );
    assert_eq!(table["GET /tickets"], BTreeMap::from([("Query".into(), 1)]));
    // Sign-in: a slot taken per throttle key before the password is checked
    // (a conditional UpdateItem; where it finds no window, a PutItem opening
    // one, a second UpdateItem and a GetItem), beside the accounts' lookup
    // (GetItem domain marker, Query the email's accounts); on success the
    // client's slot given back (UpdateItem) and the pair's window cleared
    // (DeleteItem).
    assert_eq!(
        table["POST /auth/admin/signin"],
        BTreeMap::from([
            ("DeleteItem".into(), 1),
            ("GetItem".into(), 2),
            ("PutItem".into(), 1),
            ("Query".into(), 1),
            ("UpdateItem".into(), 3)
        ])
    );
    app.stop().await;
}

/// A moto of the test's own, so it can be stopped without disturbing others.
struct PrivateMoto {
    child: std::process::Child,
    url: String,
}

impl PrivateMoto {
    fn start() -> Self {
        let bin = std::env::var("MOTO_SERVER")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/moto_server").to_owned());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let url = format!("http://127.0.0.1:{port}");
        // Owned from here on: Drop kills and reaps it whatever happens.
        let moto = Self { child, url };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("private moto did not start");
    }

    fn signal(&self, sig: &str) {
        assert!(
            std::process::Command::new("kill")
                .args([sig, &self.child.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// With AWS unreachable (moto frozen mid-run) requests fail fast with a JSON
/// 503 and a retry hint, nothing panics or hangs, and service resumes when AWS
/// is back, with every acknowledged write intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_outage_is_a_bounded_503_and_service_resumes_after() {
    use reqwest::Method;
    let moto = PrivateMoto::start();
    let settings = fault_settings();
    let adapters = ticketing::adapters::aws::AwsAdapters::new(
        &ticketing::adapters::aws::sdk_config_at(Some(&moto.url)).await,
        &settings,
    );
    ticketing::adapters::aws::create_missing_resources(&adapters, &settings)
        .await
        .unwrap();
    let service = fault_service(adapters.ports(), &settings.mail_from);
    let base = serve(service).await;
    let (_, _, org) = http(
        Method::POST,
        format!("{base}/auth/org/signup"),
        None,
        Some(json!({"name": "F", "domain": "faults.example.com"})),
    )
    .await;
    let secret = org["secret"].as_str().unwrap().to_owned();
    http(Method::POST, format!("{base}/auth/admin/signup"), None, Some(json!({"firstName": "A", "lastName": "B", "email": "a@faults.example.com", "password": "correct horse battery", "secret": secret}))).await;
    let (_, _, signin) = http(
        Method::POST,
        format!("{base}/auth/admin/signin"),
        None,
        Some(json!({"email": "a@faults.example.com", "password": "correct horse battery"})),
    )
    .await;
    let jwt = signin["jwt"].as_str().unwrap().to_owned();
    let (s, _, t) = http(
        Method::POST,
        format!("{base}/tickets"),
        None,
        Some(json!({"title": "t", "description": "d", "addedBy": "c@x.io", "secret": secret})),
    )
    .await;
    assert_eq!(s, 201);
    let id = t["id"].as_str().unwrap().to_owned();

    moto.signal("-STOP");
    for (method, path, body) in [
        (Method::GET, format!("/tickets/{id}"), None),
        (Method::GET, "/tickets".to_owned(), None),
        (
            Method::POST,
            format!("/tickets/{id}/respond"),
            Some(json!({"message": "during the outage"})),
        ),
    ] {
        let started = std::time::Instant::now();
        let (status, headers, body) = http(method.clone(), format!("{base}{path}"), Some(&jwt), body).await;
        let took = started.elapsed();
        assert_eq!(status, 503, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "unavailable");
        assert!(headers.contains_key("retry-after"), "{method} {path}");
        assert!(
            took < std::time::Duration::from_secs(10),
            "{method} {path} took {took:?}"
        );
        assert!(
            !body.to_string().contains("dispatch") && !body.to_string().contains("moto"),
            "no internals: {body}"
        );
    }
    moto.signal("-CONT");

    let (s, _, after) = http(Method::GET, format!("{base}/tickets/{id}"), Some(&jwt), None).await;
    assert_eq!(s, 200, "{after}");
    assert_eq!(after["status"], "OPEN", "the unacknowledged respond changed nothing");
    assert!(after["responses"].as_array().unwrap().is_empty());
    let (s, _, r) = http(
        Method::POST,
        format!("{base}/tickets/{id}/respond"),
        Some(&jwt),
        Some(json!({"message": "after"})),
    )
    .await;
    assert_eq!(s, 201, "{r}");
}

/// The rate-limit port on DynamoDB: concurrent takes of one key's window
/// never pass the limit (one conditional UpdateItem each), a new window
/// starts over, and each counter item expires by TTL after its window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_slots_are_taken_atomically_on_dynamodb() {
    use std::time::Duration;
    use ticketing::domain::limits::Slot;
    use ticketing::ports::RateLimiter;
    let (app, h) = start().await;
    let key = format!("test:{}", ticketing_tests::unique("k"));
    let minute = Duration::from_secs(60);
    let now = Timestamp::from_millis(1_800_000_030_000);
    let takes = (0..12).map(|_| {
        let limits = h.adapters.limits.clone();
        let key = key.clone();
        tokio::spawn(async move { limits.take(&key, now, minute, 4).await.expect("a take") })
    });
    let got: Vec<Slot> = futures_util::future::join_all(takes)
        .await
        .into_iter()
        .map(|r| r.expect("joined"))
        .collect();
    assert_eq!(got.iter().filter(|s| **s == Slot::Taken).count(), 4, "{got:?}");
    assert!(got.contains(&Slot::RetryAfter(Duration::from_secs(30))), "{got:?}");
    let next = Timestamp::from_millis(1_800_000_060_000);
    assert_eq!(
        h.adapters.limits.take(&key, next, minute, 4).await.unwrap(),
        Slot::Taken
    );
    let item = h
        .adapters
        .dynamo
        .get_item()
        .table_name(&h.settings.table)
        .set_key(Some(ticketing::adapters::aws::items::key(
            format!("LIMIT#{key}#1800000000000"),
            "LIMIT",
        )))
        .send()
        .await
        .expect("read back")
        .item
        .expect("the counter item");
    assert_eq!(item["count"].as_n().unwrap(), "4");
    assert_eq!(
        item["expiresAt"].as_n().unwrap(),
        "1800000120",
        "a minute after the window ends"
    );
    app.stop().await;
}
