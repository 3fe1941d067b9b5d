//! Webhooks (issue 10): signed deliveries of each subscribed event, at least
//! once through a failing, refusing or vanished endpoint; secrets rotate;
//! endpoints answering 410 are disabled and their admins told; URLs that
//! reach private addresses are refused.

use serde_json::{Value, json};
use std::time::Duration;
use ticketing_tests::client::customer;
use ticketing_tests::receiver::Received;
use ticketing_tests::{AdapterSet, Receiver, TestApp, TestConfig};

const ALL: [&str; 7] = [
    "ticket.created",
    "ticket.assigned",
    "ticket.updated",
    "ticket.status_changed",
    "ticket.responded",
    "ticket.auto_closed",
    "ticket.replied",
];

/// Long enough for a delivery through the AWS set's reconcile ticks (5 s)
/// and a first retry (10 s, plus jitter).
const DELIVERY_WAIT: Duration = Duration::from_secs(45);

fn of<'a>(got: &'a [Received], kind: &str) -> Vec<&'a Received> {
    got.iter().filter(|r| r.body["type"] == kind).collect()
}

/// Every event type arrives, signed, in the documented shape, with the
/// ticket's version ordering them; the list shows no secret; a rotated
/// secret signs from then on; another org's tickets never arrive; a
/// deleted endpoint gets nothing more.
pub async fn webhooks_deliver_each_subscribed_event_signed(set: &dyn AdapterSet) {
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
    let receiver = Receiver::start().await;
    let only_responses = Receiver::start().await;
    let hook = app.create_webhook(&admin.jwt, &receiver.url(), &ALL).await.expect(201);
    let secret = hook["secret"].as_str().expect("the secret, shown once");
    assert!(secret.starts_with("whsec_"), "{hook}");
    assert_eq!(hook["enabled"], true);
    assert_eq!(hook["events"].as_array().unwrap().len(), ALL.len());
    receiver.trust(secret);
    let narrow = app
        .create_webhook(&admin.jwt, &only_responses.url(), &["ticket.responded"])
        .await
        .expect(201);
    only_responses.trust(narrow["secret"].as_str().unwrap());
    let listed = app.get("/webhooks", Some(&admin.jwt)).await.expect(200);
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains("whsec_"), "a listed secret: {listed}");

    // Another org's tickets never reach this org's endpoints.
    let other = app.new_org().await;
    app.new_admin(&other).await;
    app.new_ticket_id(&other, &customer()).await;

    let who = customer();
    let id = app.new_ticket_id(&org, &who).await;
    app.update(&admin.jwt, &id, json!({"title": "renamed"}))
        .await
        .expect(200);
    app.respond(&admin.jwt, &id, "try turning it off and on")
        .await
        .expect(201);
    receiver
        .wait_until(DELIVERY_WAIT, |g| !of(g, "ticket.auto_closed").is_empty())
        .await;
    app.reply(&org, &id, &who, "still broken").await.expect(201);
    let got = receiver
        .wait_until(DELIVERY_WAIT, |g| of(g, "ticket.replied").len() == 1 && g.len() >= 9)
        .await;

    for kind in ALL {
        let these = of(&got, kind);
        assert!(!these.is_empty(), "no {kind}: {got:#?}");
    }
    for r in &got {
        assert!(r.verified, "unsigned or badly signed: {r:?}");
        assert_eq!(r.body["id"], r.id, "body id and webhook-id differ");
        assert_eq!(r.body["orgId"], org.id);
        assert_eq!(
            r.body["data"]["ticket"]["id"],
            id.as_str(),
            "another org's ticket: {r:?}"
        );
        assert!(r.body["createdAt"].is_string() && r.body["data"]["ticket"]["version"].is_u64());
        assert!((r.timestamp - chrono::Utc::now().timestamp()).abs() < 300);
    }
    let mut ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "a message delivered twice though answered 200");
    let version = |kind: &str| of(&got, kind)[0].body["data"]["ticket"]["version"].as_u64().unwrap();
    assert!(version("ticket.created") < version("ticket.updated"));
    assert!(version("ticket.updated") < version("ticket.responded"));
    assert!(version("ticket.responded") < version("ticket.auto_closed"));
    assert!(version("ticket.auto_closed") < version("ticket.replied"));
    assert_eq!(
        of(&got, "ticket.auto_closed")[0].body["data"]["ticket"]["status"],
        "CLOSED"
    );
    assert!(of(&got, "ticket.responded")[0].body["data"]["messageId"].is_string());
    // The narrow endpoint got the response only.
    let narrow_got = only_responses.wait_until(DELIVERY_WAIT, |g| !g.is_empty()).await;
    assert_eq!(narrow_got.len(), 1, "{narrow_got:#?}");
    assert_eq!(narrow_got[0].body["type"], "ticket.responded");
    assert!(narrow_got[0].verified);

    // Each delivery is listed with its attempt.
    let hook_id = hook["id"].as_str().unwrap();
    let deliveries = app
        .get(&format!("/webhooks/{hook_id}/deliveries"), Some(&admin.jwt))
        .await
        .expect(200);
    let list = deliveries["deliveries"].as_array().unwrap();
    assert_eq!(list.len(), got.len(), "{deliveries}");
    for d in list {
        assert_eq!(d["state"], "succeeded", "{d}");
        let attempt = &d["attempts"][0];
        assert_eq!(attempt["statusCode"], 200, "{d}");
        assert!(attempt["latencyMs"].is_u64() && attempt["at"].is_string(), "{d}");
        assert!(d.get("body").is_none() && d.get("secret").is_none(), "{d}");
    }

    // A rotated secret signs what comes next; the old one no longer does.
    let rotated = app
        .post(
            &format!("/webhooks/{hook_id}/rotate_secret"),
            Some(&admin.jwt),
            json!({}),
        )
        .await
        .expect(200);
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    receiver.trust_only(new_secret);
    let before = receiver.received().len();
    app.update(&admin.jwt, &id, json!({"title": "again"})).await.expect(200);
    let got = receiver.wait_until(DELIVERY_WAIT, |g| g.len() > before).await;
    let fresh = &got[before..];
    assert!(!fresh.is_empty() && fresh.iter().all(|r| r.verified), "{fresh:#?}");

    // A deleted endpoint gets nothing more; a second delete is a 404.
    app.delete(&format!("/webhooks/{hook_id}"), Some(&admin.jwt))
        .await
        .expect(204);
    app.delete(&format!("/webhooks/{hook_id}"), Some(&admin.jwt))
        .await
        .expect_error(404, "not_found", None);
    let before = receiver.received().len();
    app.update(&admin.jwt, &id, json!({"title": "after delete"}))
        .await
        .expect(200);
    // The narrow endpoint is still there: wait on a second response reaching it.
    app.respond(&admin.jwt, &id, "one more").await.expect(201);
    only_responses.wait_until(DELIVERY_WAIT, |g| g.len() == 2).await;
    assert_eq!(receiver.received().len(), before, "a deleted endpoint got a delivery");
    app.stop().await;
}

/// A 500 then 200 is delivered on the retry; an endpoint down then up
/// gets it after; a 410 disables the endpoint and mails its org's admins;
/// a redelivery makes a finished delivery due again.
pub async fn webhook_failures_are_retried_and_gone_endpoints_disabled(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let mut receiver = Receiver::start().await;
    let hook = app
        .create_webhook(&admin.jwt, &receiver.url(), &["ticket.created"])
        .await
        .expect(201);
    receiver.trust(hook["secret"].as_str().unwrap());
    let hook_id = hook["id"].as_str().unwrap().to_owned();

    // 500, then 200 on the first retry (10 s, within 30 s).
    receiver.answer(&[500]);
    let first = app.new_ticket_id(&org, &customer()).await;
    let got = receiver
        .wait_until(DELIVERY_WAIT, |g| g.iter().any(|r| r.answered == 200))
        .await;
    let tries: Vec<&Received> = got
        .iter()
        .filter(|r| r.body["data"]["ticket"]["id"] == first.as_str())
        .collect();
    assert_eq!(
        tries.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 200],
        "{got:#?}"
    );
    assert_eq!(tries[0].id, tries[1].id, "a retry keeps its webhook-id");
    assert!(tries.iter().all(|r| r.verified));
    let gap = tries[1].timestamp - tries[0].timestamp;
    assert!((9..=30).contains(&gap), "first retry {gap} s after the first attempt");

    // Down, then up: delivered once it listens again.
    receiver.down().await;
    let second = app.new_ticket_id(&org, &customer()).await;
    let deliveries = format!("/webhooks/{hook_id}/deliveries");
    let failed_once = app
        .wait_for(DELIVERY_WAIT, || async {
            let list = app.get(&deliveries, Some(&admin.jwt)).await.expect(200);
            let d = list["deliveries"]
                .as_array()?
                .iter()
                .find(|d| d["attempts"].as_array().is_some_and(|a| !a.is_empty()) && d["state"] == "pending")?
                .clone();
            Some(d)
        })
        .await
        .expect("a failed first attempt is recorded while the endpoint is down");
    assert!(failed_once["attempts"][0]["statusCode"].is_null(), "{failed_once}");
    assert!(failed_once["attempts"][0]["error"].is_string(), "{failed_once}");
    assert!(failed_once["nextAttemptAt"].is_string(), "{failed_once}");
    receiver.up().await;
    let got = receiver
        .wait_until(DELIVERY_WAIT, |g| {
            g.iter().any(|r| r.body["data"]["ticket"]["id"] == second.as_str())
        })
        .await;
    assert!(
        got.iter()
            .any(|r| r.body["data"]["ticket"]["id"] == second.as_str() && r.verified),
        "not delivered after the endpoint came back: {got:#?}"
    );

    // Redeliver a succeeded delivery: it is attempted again, same id.
    let list = app.get(&deliveries, Some(&admin.jwt)).await.expect(200);
    let done = list["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["state"] == "succeeded")
        .expect("a succeeded delivery")
        .clone();
    let delivery_id = done["id"].as_str().unwrap();
    let before = receiver.received().len();
    let again = app
        .post(
            &format!("/webhooks/{hook_id}/deliveries/{delivery_id}/redeliver"),
            Some(&admin.jwt),
            json!({}),
        )
        .await
        .expect(202);
    assert_eq!(again["state"], "pending");
    let got = receiver.wait_until(DELIVERY_WAIT, |g| g.len() > before).await;
    assert_eq!(got.last().map(|r| r.id.as_str()), Some(delivery_id), "{got:#?}");
    app.post(
        &format!("/webhooks/{hook_id}/deliveries/msg_{}/redeliver", uuid::Uuid::now_v7()),
        Some(&admin.jwt),
        json!({}),
    )
    .await
    .expect_error(404, "not_found", None);

    // 410: disabled at once, no retry, the admins told.
    receiver.answer(&[410]);
    let before = receiver.received().len();
    app.new_ticket_id(&org, &customer()).await;
    receiver.wait_until(DELIVERY_WAIT, |g| g.len() > before).await;
    let disabled = app
        .wait_for(DELIVERY_WAIT, || async {
            let list = app.get("/webhooks", Some(&admin.jwt)).await.expect(200);
            let h = list["webhooks"][0].clone();
            (h["enabled"] == false).then_some(h)
        })
        .await
        .expect("the endpoint is disabled after a 410");
    assert_eq!(disabled["disabledReason"], "gone", "{disabled}");
    let notice = app
        .wait_for(DELIVERY_WAIT, || async {
            app.mails_to(&admin.email)
                .await
                .into_iter()
                .find(|m| m.subject.contains("webhook"))
        })
        .await
        .expect("the admin is emailed");
    assert!(notice.text.contains(&hook_id), "{}", notice.text);
    let count = receiver.received().len();
    app.new_ticket_id(&org, &customer()).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(receiver.received().len(), count, "a disabled endpoint got a delivery");
    app.post(
        &format!("/webhooks/{hook_id}/deliveries/{delivery_id}/redeliver"),
        Some(&admin.jwt),
        json!({}),
    )
    .await
    .expect_error(409, "conflict", None);
    app.stop().await;
}

/// URLs that are not https, or that name or resolve to loopback, private
/// or link-local addresses, are refused when private addresses are not
/// allowed (as in production); bad bodies and ids get JSON errors naming
/// the field; another org's endpoint is a 404.
pub async fn webhook_requests_are_validated_and_private_targets_refused(set: &dyn AdapterSet) {
    let app = TestApp::start(
        set,
        TestConfig {
            allow_private_webhooks: false,
            ..Default::default()
        },
    )
    .await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let receiver = Receiver::start().await;
    let port = receiver.addr.port();
    for url in [
        receiver.url(),
        format!("https://127.0.0.1:{port}/hook"),
        format!("https://localhost:{port}/hook"),
        "https://10.1.2.3/hook".to_owned(),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        "https://[::1]/hook".to_owned(),
        "https://[fd12::1]/hook".to_owned(),
        "https://user:pw@example.com/hook".to_owned(),
        "not a url".to_owned(),
    ] {
        app.create_webhook(&admin.jwt, &url, &["ticket.created"])
            .await
            .expect_error(400, "invalid_request", Some("url"));
    }
    assert!(receiver.received().is_empty());
    let reply = app.get("/webhooks", Some(&admin.jwt)).await.expect(200);
    assert_eq!(reply["webhooks"], json!([]));

    for (body, field) in [
        (json!({"url": "https://example.com/h", "events": []}), "events"),
        (
            json!({"url": "https://example.com/h", "events": ["ticket.exploded"]}),
            "events",
        ),
        (json!({"url": "https://example.com/h"}), "events"),
        (json!({"events": ["ticket.created"]}), "url"),
        (
            json!({"url": "https://example.com/h", "events": ["ticket.created"], "extra": 1}),
            "extra",
        ),
    ] {
        let r = app.post("/webhooks", Some(&admin.jwt), body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
        assert_eq!(r.body["error"]["field"], field, "{body}: {}", r.body);
    }
    app.post(
        "/webhooks",
        None,
        json!({"url": "https://example.com/h", "events": ["ticket.created"]}),
    )
    .await
    .expect_error(401, "unauthorized", None);
    app.get("/webhooks/not-an-id/deliveries", Some(&admin.jwt))
        .await
        .expect_error(400, "invalid_request", Some("id"));
    let unknown = uuid::Uuid::now_v7();
    app.get(&format!("/webhooks/{unknown}/deliveries"), Some(&admin.jwt))
        .await
        .expect_error(404, "not_found", None);
    app.post(
        &format!("/webhooks/{unknown}/deliveries/nope/redeliver"),
        Some(&admin.jwt),
        json!({}),
    )
    .await
    .expect_error(400, "invalid_request", Some("deliveryId"));
    app.stop().await;
}

/// Another org's admin sees none of an org's endpoints: 404 on each route.
pub async fn webhooks_are_tenant_scoped(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let other = app.new_org().await;
    let intruder = app.new_admin(&other).await;
    let receiver = Receiver::start().await;
    let hook: Value = app
        .create_webhook(&admin.jwt, &receiver.url(), &["ticket.created"])
        .await
        .expect(201);
    let id = hook["id"].as_str().unwrap();
    let listed = app.get("/webhooks", Some(&intruder.jwt)).await.expect(200);
    assert_eq!(listed["webhooks"], json!([]));
    app.get(&format!("/webhooks/{id}/deliveries"), Some(&intruder.jwt))
        .await
        .expect_error(404, "not_found", None);
    app.post(&format!("/webhooks/{id}/rotate_secret"), Some(&intruder.jwt), json!({}))
        .await
        .expect_error(404, "not_found", None);
    app.delete(&format!("/webhooks/{id}"), Some(&intruder.jwt))
        .await
        .expect_error(404, "not_found", None);
    // Still there for its own org.
    let listed = app.get("/webhooks", Some(&admin.jwt)).await.expect(200);
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1);
    app.stop().await;
}

/// A refused write between two changes (here a second signup of a taken
/// domain, a cancelled DynamoDB transaction) does not stop the events after
/// it: the AWS set's stream reader once held a shard iterator that moto's
/// transaction rollback orphaned, and every later webhook was lost.
pub async fn webhooks_keep_flowing_after_a_refused_write(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let receiver = Receiver::start().await;
    let hook = app
        .create_webhook(&admin.jwt, &receiver.url(), &["ticket.created"])
        .await
        .expect(201);
    receiver.trust(hook["secret"].as_str().unwrap());
    let first = app.new_ticket_id(&org, &customer()).await;
    receiver.wait_until(DELIVERY_WAIT, |g| g.len() == 1).await;
    app.post("/auth/org/signup", None, json!({"name": "Again", "domain": org.domain}))
        .await
        .expect_error(409, "conflict", None);
    let second = app.new_ticket_id(&org, &customer()).await;
    let got = receiver.wait_until(DELIVERY_WAIT, |g| g.len() >= 2).await;
    let tickets: Vec<&str> = got
        .iter()
        .filter(|r| r.verified)
        .filter_map(|r| r.body["data"]["ticket"]["id"].as_str())
        .collect();
    assert_eq!(tickets, [first.as_str(), second.as_str()], "{got:#?}");
    app.stop().await;
}

/// An endpoint that accepts connections and never answers (a tar pit),
/// with a backlog of 40 deliveries from one org, holds up only its own
/// deliveries: another org's delivery arrives within 2 s of its ticket on
/// ticketd's dispatcher (which looks every second), within one reconcile
/// tick plus 2 s on the AWS set (where ticketd reads the stream each tick).
pub async fn a_slow_endpoint_never_delays_another_orgs_delivery(set: &dyn AdapterSet) {
    let tick = Duration::from_secs(1);
    let app = TestApp::start(
        set,
        TestConfig {
            reconcile_interval: tick,
            ..Default::default()
        },
    )
    .await;
    let tar_pit = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pit = tar_pit.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let held = {
        let accepted = accepted.clone();
        tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((conn, _)) = tar_pit.accept().await {
                accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                open.push(conn);
            }
        })
    };
    let slow_org = app.new_org().await;
    let slow_admin = app.new_admin(&slow_org).await;
    app.create_webhook(&slow_admin.jwt, &format!("http://{pit}/hook"), &["ticket.created"])
        .await
        .expect(201);
    for _ in 0..40 {
        app.new_ticket_id(&slow_org, &customer()).await;
    }
    // The backlog is under way: the pit holds attempts.
    let deadline = tokio::time::Instant::now() + DELIVERY_WAIT;
    while accepted.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the tar pit got no attempt");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let receiver = Receiver::start().await;
    let hook = app
        .create_webhook(&admin.jwt, &receiver.url(), &["ticket.created"])
        .await
        .expect(201);
    receiver.trust(hook["secret"].as_str().unwrap());
    let filed = std::time::Instant::now();
    let ticket = app.new_ticket_id(&org, &customer()).await;
    // Long enough to see how late it comes when it is held up.
    let wait = Duration::from_secs(150);
    let got = receiver.wait_until(wait, |g| !g.is_empty()).await;
    let waited = filed.elapsed();
    assert!(
        got.iter()
            .any(|r| r.verified && r.body["data"]["ticket"]["id"] == ticket.as_str()),
        "not delivered within {wait:?}: {got:#?}"
    );
    let bound = match set.name() {
        "aws" => tick + Duration::from_secs(2),
        _ => Duration::from_secs(2),
    };
    eprintln!(
        "{}: another org's delivery took {waited:?} behind a tar pit's backlog (the pit accepted {})",
        set.name(),
        accepted.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(
        waited <= bound,
        "another org's delivery took {waited:?} (bound {bound:?})"
    );
    held.abort();
    app.stop().await;
}
