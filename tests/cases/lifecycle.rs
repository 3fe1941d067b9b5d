use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::time::Duration;
use ticketing_tests::client::{PASSWORD, customer};
use ticketing_tests::{AdapterSet, TestApp, TestConfig};

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {v}"))
        .with_timezone(&Utc)
}

/// The update endpoint changes fields, and applies the same status rules as change_status.
pub async fn update_changes_fields_and_status_timestamps(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let t = app.new_ticket_seen_by(&admin.jwt, &org, &customer()).await;
    let id = t["id"].as_str().unwrap();
    let path = format!("/tickets/{id}");

    let u = app
        .post(
            &path,
            Some(&admin.jwt),
            json!({"title": "  New title ", "description": "More detail", "orgId": org.id}),
        )
        .await
        .expect(200);
    assert_eq!(u["title"], "New title");
    assert_eq!(u["description"], "More detail");
    assert!(time(&u["updatedAt"]) >= time(&t["updatedAt"]));

    let r = app
        .post(&path, Some(&admin.jwt), json!({"status": "RESPONDED"}))
        .await
        .expect(200);
    assert_eq!(r["status"], "RESPONDED");
    let responded_at = time(&r["respondedAt"]);
    assert_eq!(time(&r["autoCloseAt"]) - responded_at, chrono::Duration::days(30));

    let c = app
        .post(&path, Some(&admin.jwt), json!({"status": "closed"}))
        .await
        .expect(200);
    assert_eq!(c["status"], "CLOSED");
    assert!(c["closedAt"].is_string());
    assert!(c["autoCloseAt"].is_null());
    assert_eq!(time(&c["respondedAt"]), responded_at, "respondedAt is history, kept");

    let o = app
        .post(&path, Some(&admin.jwt), json!({"status": "OPEN", "adminId": null}))
        .await
        .expect(200);
    assert_eq!(o["status"], "OPEN");
    assert!(o["closedAt"].is_null());
    assert!(o["adminId"].is_null(), "explicit null unassigns");

    let again = app.ticket(&admin.jwt, id).await;
    assert_eq!(again["title"], "New title");
    assert_eq!(again["status"], "OPEN");
    app.stop().await;
}

/// An empty update, a bad status or an empty title is a 400 that changes nothing.
pub async fn update_requires_a_field_and_valid_values(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let t = app.new_ticket_seen_by(&admin.jwt, &org, &customer()).await;
    let id = t["id"].as_str().unwrap();
    let path = format!("/tickets/{id}");
    app.post(&path, Some(&admin.jwt), json!({}))
        .await
        .expect_error(400, "invalid_request", Some("body"));
    app.post(&path, Some(&admin.jwt), json!({"status": "DONE"}))
        .await
        .expect_error(400, "invalid_request", Some("status"));
    app.post(&path, Some(&admin.jwt), json!({"title": "  ", "status": "CLOSED"}))
        .await
        .expect_error(400, "invalid_request", Some("title"));
    app.post(&path, Some(&admin.jwt), json!({"adminId": "not-a-uuid"}))
        .await
        .expect_error(400, "invalid_request", Some("adminId"));
    app.post(&path, Some(&admin.jwt), json!({"title": "x".repeat(201)}))
        .await
        .expect_error(400, "invalid_request", Some("title"));
    app.change_status(&admin.jwt, id, "NOPE")
        .await
        .expect_error(400, "invalid_request", Some("status"));
    app.respond(&admin.jwt, id, "")
        .await
        .expect_error(400, "invalid_request", Some("message"));
    let after = app.ticket(&admin.jwt, id).await;
    assert_eq!(after["status"], "OPEN");
    assert_eq!(after["title"], t["title"]);
    assert_eq!(after["version"], t["version"]);
    assert_eq!(after["responses"].as_array().unwrap().len(), 0);
    app.stop().await;
}

/// Responding to a CLOSED ticket is a 409; reopened, it takes responses again.
pub async fn respond_to_closed_ticket_is_conflict(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let id = app.new_ticket_id(&org, &customer()).await;
    app.change_status(&admin.jwt, &id, "CLOSED").await.expect(200);
    app.respond(&admin.jwt, &id, "late")
        .await
        .expect_error(409, "conflict", None);
    assert_eq!(
        app.ticket(&admin.jwt, id.as_str()).await["responses"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    app.change_status(&admin.jwt, &id, "OPEN").await.expect(200);
    app.respond(&admin.jwt, &id, "now").await.expect(201);
    app.stop().await;
}

const SHORT: Duration = Duration::from_millis(1500);

/// With a short delay, a RESPONDED ticket closes itself at `autoCloseAt`;
/// a ticket moved back to OPEN before then stays open.
pub async fn responded_ticket_auto_closes_and_reopened_one_does_not(set: &dyn AdapterSet) {
    let app = TestApp::start(
        set,
        TestConfig {
            auto_close_after: SHORT,
            ..Default::default()
        },
    )
    .await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let stays = app.new_ticket_id(&org, &customer()).await;
    let closes = app.new_ticket_id(&org, &customer()).await;
    for id in [&stays, &closes] {
        app.respond(&admin.jwt, id, "done?").await.expect(201);
    }
    let reopened = app.change_status(&admin.jwt, &stays, "OPEN").await.expect(200);
    assert!(reopened["autoCloseAt"].is_null());

    let closed = app
        .wait_for_ticket(&admin.jwt, &closes, Duration::from_secs(15), |t| {
            t["status"] == "CLOSED"
        })
        .await;
    assert_eq!(closed["status"], "CLOSED", "{closed}");
    assert!(time(&closed["closedAt"]) >= time(&closed["respondedAt"]) + chrono::Duration::milliseconds(1500));
    assert!(closed["autoCloseAt"].is_null());

    // Its job has come and gone; the reopened one is untouched.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open = app.ticket(&admin.jwt, &stays).await;
    assert_eq!(open["status"], "OPEN", "{open}");
    assert!(open["closedAt"].is_null());
    app.stop().await;
}

/// Respond, reopen, respond again: the ticket closes only at the last
/// response's time, never by the first (stale) schedule.
pub async fn only_the_latest_response_schedule_closes_the_ticket(set: &dyn AdapterSet) {
    let app = TestApp::start(
        set,
        TestConfig {
            auto_close_after: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let id = app.new_ticket_id(&org, &customer()).await;
    app.respond(&admin.jwt, &id, "first").await.expect(201);
    app.change_status(&admin.jwt, &id, "OPEN").await.expect(200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let second = app.respond(&admin.jwt, &id, "second").await.expect(201);
    let last_due = time(&second["ticket"]["autoCloseAt"]);
    let closed = app
        .wait_for_ticket(&admin.jwt, &id, Duration::from_secs(15), |t| t["status"] == "CLOSED")
        .await;
    assert_eq!(closed["status"], "CLOSED", "{closed}");
    assert!(
        time(&closed["closedAt"]) >= last_due,
        "closed at {} before its due time {last_due}",
        closed["closedAt"]
    );
    app.stop().await;
}

/// Everything acknowledged survives a stop and start on the same storage,
/// tokens stay valid, and a close job that fell due while down runs after the start.
pub async fn data_and_due_jobs_survive_a_restart(set: &dyn AdapterSet) {
    let mut app = TestApp::start(
        set,
        TestConfig {
            auto_close_after: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let cust = customer();
    let open = app.new_ticket_id(&org, &cust).await;
    let due = app.new_ticket_id(&org, &cust).await;
    app.respond(&admin.jwt, &due, "kept").await.expect(201);

    app.deployment
        .restart(Duration::from_millis(1500))
        .await
        .expect("restart");

    let closed = app
        .wait_for_ticket(&admin.jwt, &due, Duration::from_secs(15), |t| t["status"] == "CLOSED")
        .await;
    assert_eq!(closed["status"], "CLOSED", "{closed}");
    assert_eq!(closed["responses"][0]["message"], "kept");
    assert_eq!(app.ticket(&admin.jwt, &open).await["status"], "OPEN");
    let list = app
        .get(&format!("/tickets?customerEmail={cust}"), Some(&admin.jwt))
        .await
        .expect(200);
    assert_eq!(list["tickets"].as_array().unwrap().len(), 2);
    app.signin(&admin.email, PASSWORD).await.expect(200);
    app.post(
        "/tickets",
        None,
        json!({"title": "after restart", "description": "d", "addedBy": cust, "secret": org.secret}),
    )
    .await
    .expect(201);
    assert_eq!(app.mails_to(&cust).await.len(), 1);
    app.stop().await;
}
