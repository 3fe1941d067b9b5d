//! Rate limits on what the platform does for an org: mail it sends
//! (responses per org and per recipient, reply notices coalesced per
//! ticket), webhook redeliveries and availability changes. Each refusal is a
//! 429 `rate_limited` naming its limit, with `Retry-After`.

use super::wait_for_mail;
use serde_json::json;
use std::time::Duration;
use ticketing::domain::limits::{Limits, Rate};
use ticketing_tests::client::customer;
use ticketing_tests::{AdapterSet, TestApp, TestConfig};

const HOUR: Duration = Duration::from_secs(3600);

fn with(limits: Limits) -> TestConfig {
    TestConfig {
        limits,
        ..TestConfig::default()
    }
}

/// An org's responses are mail from the platform's sender to any address:
/// limited per org and per recipient; a refused response stores nothing.
pub async fn response_mail_is_limited_per_org_and_per_recipient(set: &dyn AdapterSet) {
    let limits = Limits {
        mail_per_org: Rate::new(3, HOUR),
        mail_per_recipient: Rate::new(2, HOUR),
        ..Limits::default()
    };
    let app = TestApp::start(set, with(limits)).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let outsider = customer();
    let victim = app.new_ticket_id(&org, &outsider).await;
    for text in ["Verify now", "Verify again"] {
        app.respond(&admin.jwt, &victim, text).await.expect(201);
    }
    app.respond(&admin.jwt, &victim, "And again")
        .await
        .expect_limited("mail_per_recipient");
    let other = app.new_ticket_id(&org, &customer()).await;
    app.respond(&admin.jwt, &other, "Hello").await.expect(201);
    let third = app.new_ticket_id(&org, &customer()).await;
    app.respond(&admin.jwt, &third, "Hello")
        .await
        .expect_limited("mail_per_org");
    let t = app.ticket(&admin.jwt, &victim).await;
    assert_eq!(
        t["responses"].as_array().map(Vec::len),
        Some(2),
        "the refused one is not stored: {t}"
    );
    let t = app.ticket(&admin.jwt, &third).await;
    assert_eq!(t["status"], "OPEN", "{t}");
    // Another org's budget is its own.
    let org2 = app.new_org().await;
    let admin2 = app.new_admin(&org2).await;
    let theirs = app.new_ticket_id(&org2, &customer()).await;
    app.respond(&admin2.jwt, &theirs, "Hello").await.expect(201);
    app.stop().await;
}

/// Thirty replies are not thirty mails: the assignee is told of a ticket's
/// replies once per notice interval, with the count; every reply is kept.
pub async fn assignee_notices_of_replies_are_coalesced(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let who = customer();
    let id = app.new_ticket_id(&org, &who).await;
    for n in 0..10 {
        app.reply(&org, &id, &who, &format!("detail {n}")).await.expect(201);
    }
    let mails = wait_for_mail(&app, &admin.email, 1).await;
    assert!(mails[0].text.contains("detail 0"), "{:?}", mails[0]);
    assert!(mails[0].text.contains("not mailed one by one"), "{:?}", mails[0]);
    // Every reply is stored; mails that would follow are not there.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.mails_to(&admin.email).await.len(), 1, "one notice for ten replies");
    let t = app.ticket(&admin.jwt, &id).await;
    let replies = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "reply")
        .count();
    assert_eq!(replies, 10, "{t}");
    // Another ticket's reply is news of its own.
    let other = app.new_ticket_id(&org, &who).await;
    app.reply(&org, &other, &who, "elsewhere").await.expect(201);
    wait_for_mail(&app, &admin.email, 2).await;
    app.stop().await;
}

/// Redeliveries (per org) and availability changes (per admin) are limited.
pub async fn redeliveries_and_availability_changes_are_limited(set: &dyn AdapterSet) {
    let limits = Limits {
        redeliveries_per_org: Rate::new(1, HOUR),
        availability_per_admin: Rate::new(2, HOUR),
        ..Limits::default()
    };
    let app = TestApp::start(set, with(limits)).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let hook = app
        .create_webhook(&admin.jwt, "http://127.0.0.1:9/hook", &["ticket.created"])
        .await
        .expect(201);
    let hook_id = hook["id"].as_str().unwrap();
    let redeliver = format!("/webhooks/{hook_id}/deliveries/msg_{}/redeliver", uuid::Uuid::now_v7());
    app.post(&redeliver, Some(&admin.jwt), json!({}))
        .await
        .expect_error(404, "not_found", None);
    app.post(&redeliver, Some(&admin.jwt), json!({}))
        .await
        .expect_limited("redeliveries_per_org");
    let availability = format!("/admins/{}/availability", admin.id);
    for available in [false, true] {
        app.post(&availability, Some(&admin.jwt), json!({ "available": available }))
            .await
            .expect(200);
    }
    app.post(&availability, Some(&admin.jwt), json!({ "available": false }))
        .await
        .expect_limited("availability_per_admin");
    let colleague = app.new_admin(&org).await;
    app.post(
        &format!("/admins/{}/availability", colleague.id),
        Some(&admin.jwt),
        json!({ "available": false }),
    )
    .await
    .expect(200);
    app.stop().await;
}
