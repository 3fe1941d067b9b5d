//! The conversation (issue 9): customer replies through the API, internal
//! notes, the customer's views, the reopen window and follow-up tickets.

use serde_json::Value;
use std::time::Duration;
use ticketing::domain::limits::{Limits, Rate};
use ticketing_tests::client::customer;
use ticketing_tests::{AdapterSet, TestApp, TestConfig};

fn kinds(ticket: &Value) -> Vec<&str> {
    ticket["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["kind"].as_str().expect("a kind"))
        .collect()
}

/// A reply to a RESPONDED ticket reopens it, cancels its auto-close, joins
/// the admin's view after the response, and its assignee is emailed.
pub async fn a_customer_reply_reopens_the_ticket_and_emails_its_assignee(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let who = customer();
    let id = app.new_ticket_id(&org, &who).await;
    app.respond_and_send(&admin.jwt, &id, "Try turning it off and on.")
        .await;

    let r = app
        .reply(&org, &id, &who.to_uppercase(), "Still broken,\nsorry.")
        .await
        .expect(201);
    assert_eq!(r["outcome"], "added", "{r}");
    assert_eq!(r["ticket"]["id"], id.as_str());
    assert_eq!(r["ticket"]["status"], "OPEN", "RESPONDED -> OPEN");
    assert!(r["ticket"]["autoCloseAt"].is_null(), "the auto-close is cancelled");
    assert_eq!(r["reply"]["kind"], "reply");
    assert_eq!(r["reply"]["from"], "customer");
    assert_eq!(r["reply"]["message"], "Still broken,\nsorry.");

    let t = app.ticket(&admin.jwt, &id).await;
    assert_eq!(kinds(&t), ["response", "reply"], "{t}");
    let reply = &t["messages"][1];
    assert_eq!(reply["author"]["kind"], "customer");
    assert_eq!(reply["author"]["email"], who.as_str());
    assert_eq!(
        t["responses"].as_array().map(Vec::len),
        Some(1),
        "responses stay as they were"
    );
    assert_eq!(t["messages"][0]["author"]["adminId"], admin.id.as_str());

    let mails = wait_for_mail(&app, &admin.email, 1).await;
    assert!(mails[0].text.contains("Still broken,\nsorry."), "{:?}", mails[0]);
    assert!(mails[0].subject.contains(&id), "{:?}", mails[0]);
    let t = app
        .wait_for_ticket(&admin.jwt, &id, Duration::from_secs(15), |t| {
            t["messages"][1]["delivery"]["state"] == "sent"
        })
        .await;
    assert_eq!(t["messages"][1]["delivery"]["state"], "sent", "{t}");
    app.stop().await;
}

/// Who may reply: only the ticket's customer, only through its own org.
pub async fn replies_are_checked_for_sender_org_and_input(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let other = app.new_org().await;
    let who = customer();
    let id = app.new_ticket_id(&org, &who).await;

    app.reply(&org, &id, &customer(), "hi")
        .await
        .expect_error(403, "forbidden", None);
    app.reply(&other, &id, &who, "hi")
        .await
        .expect_error(404, "not_found", None);
    app.reply(&org, &id, "not-an-email", "hi")
        .await
        .expect_error(400, "invalid_request", Some("from"));
    app.reply(&org, &id, &who, "  ")
        .await
        .expect_error(400, "invalid_request", Some("message"));
    let no_secret = app
        .post(
            &format!("/tickets/{id}/replies"),
            None,
            serde_json::json!({"from": who, "message": "hi"}),
        )
        .await;
    no_secret.expect_error(401, "unauthorized", None);
    // The body's `secret` works as it does for filing a ticket.
    app.post(
        &format!("/tickets/{id}/replies"),
        None,
        serde_json::json!({"from": who, "message": "hi", "secret": org.secret}),
    )
    .await
    .expect(201);
    app.stop().await;
}

/// CLOSED within the reopen window: the reply reopens it. After the window:
/// a new ticket follows up on it, and the old one stays CLOSED.
pub async fn replies_reopen_within_the_window_and_follow_up_after(set: &dyn AdapterSet) {
    let window = Duration::from_secs(2);
    let app = TestApp::start(
        set,
        TestConfig {
            reopen_window: window,
            ..TestConfig::default()
        },
    )
    .await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let who = customer();
    let id = app.new_ticket_id(&org, &who).await;

    app.change_status(&admin.jwt, &id, "CLOSED").await.expect(200);
    let r = app.reply(&org, &id, &who, "One more thing").await.expect(201);
    assert_eq!(r["outcome"], "added");
    assert_eq!(r["ticket"]["status"], "OPEN", "reopened within the window");
    assert!(r["ticket"]["closedAt"].is_null());

    app.change_status(&admin.jwt, &id, "CLOSED").await.expect(200);
    tokio::time::sleep(window + Duration::from_millis(500)).await;
    let f = app.reply(&org, &id, &who, "It broke again").await.expect(201);
    assert_eq!(f["outcome"], "followUp", "{f}");
    let new_id = f["ticket"]["id"].as_str().expect("an id").to_owned();
    assert_ne!(new_id, id);
    assert_eq!(f["ticket"]["followUpOf"], id.as_str());
    assert_eq!(f["ticket"]["status"], "OPEN");
    assert_eq!(f["ticket"]["description"], "It broke again");
    assert_eq!(f["ticket"]["addedBy"], who.as_str());

    let old = app.ticket(&admin.jwt, &id).await;
    assert_eq!(old["status"], "CLOSED", "the old ticket is left closed");
    assert_eq!(kinds(&old), ["reply"], "the late reply is not on the old ticket");
    let new = app.ticket(&admin.jwt, &new_id).await;
    assert_eq!(new["adminId"], admin.id.as_str(), "assigned by the usual rule");
    assert_eq!(new["followUpOf"], id.as_str());
    assert_eq!(kinds(&new), ["reply"]);
    wait_for_mail(&app, &admin.email, 2).await;
    app.stop().await;
}

/// A note is internal: in the admin's view, never emailed, never in the
/// customer's view, which shows no admin id or email either.
pub async fn notes_are_internal_and_the_customer_view_hides_admins(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let who = customer();
    let id = app.new_ticket_id(&org, &who).await;
    app.respond_and_send(&admin.jwt, &id, "Looking into it").await;
    let before = app.ticket(&admin.jwt, &id).await;

    let n = app
        .note(&admin.jwt, &id, "Customer is on the legacy plan")
        .await
        .expect(201);
    assert_eq!(n["kind"], "note");
    assert_eq!(n["author"]["adminId"], admin.id.as_str());
    assert!(n.get("delivery").is_none(), "a note has no email: {n}");
    app.note(&admin.jwt, &id, " ")
        .await
        .expect_error(400, "invalid_request", Some("message"));

    let t = app.ticket(&admin.jwt, &id).await;
    assert_eq!(kinds(&t), ["response", "note"]);
    assert_eq!(t["status"], "RESPONDED", "a note changes no status");
    assert_eq!(
        t["updatedAt"], before["updatedAt"],
        "a note is not news to the customer"
    );
    assert_eq!(app.mails_to(&who).await.len(), 1, "only the response was emailed");

    let view = app.get_as_org(&org, &format!("/tickets/{id}")).await.expect(200);
    assert_eq!(kinds(&view), ["response"], "{view}");
    assert_eq!(view["messages"][0]["from"], "support");
    let text = view.to_string();
    assert!(!text.contains(&admin.id) && !text.contains(&admin.email), "{text}");
    assert!(!text.contains("legacy plan"), "{text}");
    assert!(view.get("adminId").is_none() && view.get("version").is_none(), "{view}");

    let other = app.new_org().await;
    app.get_as_org(&other, &format!("/tickets/{id}"))
        .await
        .expect_error(404, "not_found", None);
    let stranger = app.new_admin(&other).await;
    app.note(&stranger.jwt, &id, "not my org's ticket")
        .await
        .expect_error(404, "not_found", None);
    assert_eq!(
        kinds(&app.ticket(&admin.jwt, &id).await),
        ["response", "note"],
        "nothing added"
    );
    app.get(&format!("/tickets/{id}"), None)
        .await
        .expect_error(401, "unauthorized", None);
    app.stop().await;
}

/// With the org secret, a customer's tickets: newest first, in pages,
/// `customerEmail` required, no admin filter, only the org's own.
pub async fn a_customers_tickets_are_listed_with_the_org_secret(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let _admin = app.new_admin(&org).await;
    let who = customer();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.new_ticket_id(&org, &who).await);
    }
    app.new_ticket_id(&org, &customer()).await;
    ids.reverse();

    let path = format!("/tickets?customerEmail={who}&limit=2");
    let first = app.get_as_org(&org, &path).await.expect(200);
    let page: Vec<&str> = first["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(page, [ids[0].as_str(), ids[1].as_str()], "newest first");
    assert!(first["tickets"][0].get("adminId").is_none(), "{first}");
    let cursor = first["nextCursor"].as_str().expect("another page");
    let second = app
        .get_as_org(&org, &format!("{path}&cursor={cursor}"))
        .await
        .expect(200);
    assert_eq!(second["tickets"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["tickets"][0]["id"], ids[2].as_str());
    assert!(second["nextCursor"].is_null());

    app.get_as_org(&org, "/tickets")
        .await
        .expect_error(400, "invalid_request", Some("customerEmail"));
    app.get_as_org(&org, &format!("/tickets?customerEmail={who}&adminEmail=a@b.example"))
        .await
        .expect_error(400, "invalid_request", Some("adminEmail"));
    let other = app.new_org().await;
    let none = app
        .get_as_org(&other, &format!("/tickets?customerEmail={who}"))
        .await
        .expect(200);
    assert_eq!(
        none["tickets"].as_array().map(Vec::len),
        Some(0),
        "another org's customer: nothing"
    );
    app.stop().await;
}

/// Replies that keep reopening a ticket (two mail systems answering each
/// other) are refused past the hourly limit.
pub async fn reopening_replies_are_limited_per_hour(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let who = customer();
    let id = app.new_ticket_id(&org, &who).await;
    for n in 0..Limits::default().reopens_per_ticket.limit {
        app.change_status(&admin.jwt, &id, "RESPONDED").await.expect(200);
        app.reply(&org, &id, &who, &format!("reply {n}")).await.expect(201);
    }
    // Replies to an OPEN ticket reopen nothing: not limited.
    app.reply(&org, &id, &who, "and another").await.expect(201);
    app.change_status(&admin.jwt, &id, "RESPONDED").await.expect(200);
    app.reply(&org, &id, &who, "once more")
        .await
        .expect_limited("reopens_per_ticket");
    let t = app.ticket(&admin.jwt, &id).await;
    assert_eq!(t["status"], "RESPONDED", "the refused reply changed nothing");
    app.stop().await;
}

/// The reopen limit counts reopens, not replies: a customer who adds details
/// while the ticket is OPEN (or a key holder who pre-fills replies) uses
/// none of it, and still reopens the ticket by answering the response.
pub async fn replies_while_open_never_use_up_the_reopen_limit(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let who = customer();
    let id = app.new_ticket_id(&org, &who).await;
    for n in 0..=Limits::default().reopens_per_ticket.limit {
        app.reply(&org, &id, &who, &format!("detail {n}")).await.expect(201);
    }
    app.respond(&admin.jwt, &id, "Here is the fix.").await.expect(201);
    let r = app.reply(&org, &id, &who, "Thanks, that fixed it").await.expect(201);
    assert_eq!(
        (r["outcome"].as_str(), r["ticket"]["status"].as_str()),
        (Some("added"), Some("OPEN")),
        "{r}"
    );
    app.stop().await;
}

/// Replies to a ticket closed past the reopen window go to one follow-up
/// ticket (the first opens it, the next join it), and the org's follow-ups
/// are limited: past the limit, 429 with `Retry-After`.
pub async fn follow_ups_are_one_per_closed_ticket_and_limited_per_org(set: &dyn AdapterSet) {
    let window = Duration::from_secs(1);
    let limits = Limits {
        follow_ups_per_org: Rate::new(1, Duration::from_secs(3600)),
        ..Limits::default()
    };
    let app = TestApp::start(
        set,
        TestConfig {
            reopen_window: window,
            limits,
            ..TestConfig::default()
        },
    )
    .await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let who = customer();
    let first = app.new_ticket_id(&org, &who).await;
    let second = app.new_ticket_id(&org, &who).await;
    for id in [&first, &second] {
        app.change_status(&admin.jwt, id, "CLOSED").await.expect(200);
    }
    tokio::time::sleep(window + Duration::from_millis(500)).await;
    let mut follow_ups = Vec::new();
    for n in 0..3 {
        let f = app.reply(&org, &first, &who, &format!("late {n}")).await.expect(201);
        assert_eq!(f["outcome"], "followUp", "{f}");
        follow_ups.push(f["ticket"]["id"].as_str().expect("an id").to_owned());
    }
    assert!(
        follow_ups.iter().all(|f| *f == follow_ups[0]),
        "one follow-up: {follow_ups:?}"
    );
    let f = app.ticket(&admin.jwt, &follow_ups[0]).await;
    assert_eq!(kinds(&f), ["reply", "reply", "reply"], "{f}");
    app.reply(&org, &second, &who, "late too")
        .await
        .expect_limited("follow_ups_per_org");
    let listed = app.get("/tickets?limit=100", Some(&admin.jwt)).await.expect(200);
    assert_eq!(
        listed["tickets"].as_array().map(Vec::len),
        Some(3),
        "two tickets, one follow-up: {listed}"
    );
    app.stop().await;
}

/// Waits until `to` has at least `n` mails, for at most 15 s.
pub async fn wait_for_mail(app: &TestApp, to: &str, n: usize) -> Vec<ticketing_tests::SentMail> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let mails = app.mails_to(to).await;
        if mails.len() >= n || tokio::time::Instant::now() >= deadline {
            assert!(mails.len() >= n, "{} of {n} mails to {to}", mails.len());
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
