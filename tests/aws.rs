//! AWS-specific behaviour against moto: the schedules and mail as stored, the
//! close handler, and what each endpoint costs in DynamoDB calls.

use serde_json::json;
use std::collections::BTreeMap;
use ticketing::adapters::aws::{CloseEvent, at_expression, handle_close_event};
use ticketing::domain::Timestamp;
use ticketing::service::CloseOutcome;
use ticketing_tests::client::customer;
use ticketing_tests::{AwsHandle, AwsSet, MotoSchedule, TestApp, TestConfig};

async fn start() -> (TestApp, AwsHandle) {
    let (deployment, handle) = AwsSet
        .start_with_handle(TestConfig::default())
        .await
        .expect("starts on moto");
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
    let id = app.new_ticket(&org, &customer()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(schedule(&h, &id).await.is_none());

    let first = app
        .post(
            &format!("/tickets/{id}/respond"),
            Some(&admin.jwt),
            json!({"message": "one"}),
        )
        .await
        .expect(201);
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
    let second = app
        .post(
            &format!("/tickets/{id}/respond"),
            Some(&admin.jwt),
            json!({"message": "two"}),
        )
        .await
        .expect(201);
    let s2 = schedule(&h, &id).await.expect("still scheduled");
    assert_eq!(s2.input["respondedAt"], second["ticket"]["respondedAt"]);
    assert_ne!(s2.expression, s.expression);

    // Leaving RESPONDED deletes it, by change_status or by update.
    app.post(
        &format!("/tickets/{id}/change_status"),
        Some(&admin.jwt),
        json!({"status": "OPEN"}),
    )
    .await
    .expect(200);
    assert!(schedule(&h, &id).await.is_none(), "gone after reopening");
    app.post(
        &format!("/tickets/{id}"),
        Some(&admin.jwt),
        json!({"status": "RESPONDED"}),
    )
    .await
    .expect(200);
    assert!(
        schedule(&h, &id).await.is_some(),
        "entering RESPONDED by update schedules too"
    );
    app.post(&format!("/tickets/{id}"), Some(&admin.jwt), json!({"status": "CLOSED"}))
        .await
        .expect(200);
    assert!(schedule(&h, &id).await.is_none(), "gone after closing");
    app.stop().await;
}

async fn respond(app: &TestApp, jwt: &str, id: &str) -> CloseEvent {
    let r = app
        .post(&format!("/tickets/{id}/respond"), Some(jwt), json!({"message": "m"}))
        .await
        .expect(201);
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
    let still = app.new_ticket(&org, &customer()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
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

    let reopened = app.new_ticket(&org, &customer()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let event = respond(&app, &admin.jwt, &reopened).await;
    app.post(
        &format!("/tickets/{reopened}/change_status"),
        Some(&admin.jwt),
        json!({"status": "OPEN"}),
    )
    .await
    .expect(200);
    assert!(matches!(
        handle_close_event(&h.service, event).await.unwrap(),
        CloseOutcome::Skipped(_)
    ));
    assert_eq!(app.ticket(&admin.jwt, &reopened).await["status"], "OPEN");

    let again = app.new_ticket(&org, &customer()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
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
/// anywhere, and a ticket create takes at most 3 calls.
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
    app.post(&format!("/tickets/{id}"), Some(&admin.jwt), json!({"title": "new"}))
        .await
        .expect(200);
    table.insert("POST /tickets/{id}", calls.take());
    app.post(
        &format!("/tickets/{id}/respond"),
        Some(&admin.jwt),
        json!({"message": "m"}),
    )
    .await
    .expect(201);
    table.insert("POST /tickets/{id}/respond", calls.take());
    app.post(
        &format!("/tickets/{id}/change_status"),
        Some(&admin.jwt),
        json!({"status": "CLOSED"}),
    )
    .await
    .expect(200);
    table.insert("POST /tickets/{id}/change_status", calls.take());

    for (endpoint, ops) in &table {
        println!("{endpoint}: {ops:?}");
        assert!(!ops.is_empty(), "{endpoint}: no calls counted");
        assert!(!ops.contains_key("Scan"), "{endpoint} scanned: {ops:?}");
        assert!(
            ops.keys()
                .all(|op| ["GetItem", "Query", "PutItem", "UpdateItem", "TransactWriteItems"].contains(&op.as_str())),
            "{endpoint}: {ops:?}"
        );
    }
    let create: u64 = table["POST /tickets"].values().sum();
    assert!(create <= 3, "create took {create} calls: {:?}", table["POST /tickets"]);
    assert_eq!(table["GET /tickets"].get("Query"), Some(&1));
    app.stop().await;
}

/// A response whose email SES rejects (unverified sender) is kept, its
/// failed delivery recorded and shown, and the caller told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_mail_keeps_the_response_and_records_the_failure() {
    let (app, h) = start().await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let cust = customer();
    let id = app.new_ticket(&org, &cust).await["id"].as_str().unwrap().to_owned();
    // Un-verify the sender: SES now rejects every send, as real SES does.
    h.adapters
        .ses
        .delete_identity()
        .identity(&h.settings.mail_from)
        .send()
        .await
        .unwrap();
    let r = app
        .post(
            &format!("/tickets/{id}/respond"),
            Some(&admin.jwt),
            json!({"message": "kept"}),
        )
        .await
        .expect(201);
    assert_eq!(r["delivery"]["state"], "failed", "{r}");
    assert!(
        r["delivery"]["reason"].as_str().unwrap().contains("MessageRejected"),
        "{r}"
    );
    let t = app.ticket(&admin.jwt, &id).await;
    assert_eq!(t["status"], "RESPONDED");
    assert_eq!(t["responses"][0]["message"], "kept");
    assert_eq!(t["responses"][0]["delivery"]["state"], "failed");
    assert!(app.mails_to(&cust).await.is_empty());
    app.stop().await;
}
