//! `Idempotency-Key` (issue 10): a retried POST is applied once and answered
//! as the first time; a reused key is refused; concurrent twins apply once.

use reqwest::Method;
use serde_json::{Value, json};
use ticketing_tests::client::{OrgHandle, PASSWORD, Reply, customer};
use ticketing_tests::{AdapterSet, TestApp, TestConfig};

async fn post_with_key(app: &TestApp, path: &str, auth: Option<&str>, key: &str, body: &Value) -> Reply {
    let bearer = auth.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json"), ("idempotency-key", key)];
    if let Some(b) = &bearer {
        headers.push(("authorization", b));
    }
    app.raw(Method::POST, path, &headers, Some(body.to_string().into_bytes()))
        .await
}

fn ticket_body(org: &OrgHandle, who: &str, title: &str) -> Value {
    json!({"title": title, "description": "d", "addedBy": who, "secret": org.secret})
}

async fn tickets_of(app: &TestApp, jwt: &str, who: &str) -> Vec<Value> {
    app.get(&format!("/tickets?customerEmail={who}"), Some(jwt))
        .await
        .expect(200)["tickets"]
        .as_array()
        .unwrap()
        .clone()
}

/// A retried create is answered with the first answer and files nothing
/// more; the key with another body is a 422; a bad key a 400; another
/// credential's key of the same name is its own.
pub async fn a_retried_post_is_applied_once_and_answered_again(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let who = customer();
    let body = ticket_body(&org, &who, "Export fails");

    let first = post_with_key(&app, "/tickets", None, "create-1", &body).await;
    assert!(first.headers.get("idempotent-replayed").is_none());
    let first = first.expect(201);
    let again = post_with_key(&app, "/tickets", None, "create-1", &body).await;
    assert_eq!(
        again.headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(again.expect(201), first, "the first answer, again");
    assert_eq!(tickets_of(&app, &admin.jwt, &who).await.len(), 1, "one ticket");

    post_with_key(&app, "/tickets", None, "create-1", &ticket_body(&org, &who, "Other"))
        .await
        .expect_error(422, "idempotency_key_reused", None);
    post_with_key(&app, "/tickets", None, &"k".repeat(256), &body)
        .await
        .expect_error(400, "invalid_request", Some("Idempotency-Key"));
    post_with_key(&app, "/tickets", None, "tab\tkey", &body)
        .await
        .expect_error(400, "invalid_request", Some("Idempotency-Key"));

    // The same key under another credential is another key.
    let other = app.new_org().await;
    let _other_admin = app.new_admin(&other).await;
    post_with_key(
        &app,
        "/tickets",
        None,
        "create-1",
        &ticket_body(&other, &who, "Export fails"),
    )
    .await
    .expect(201);

    // JWT routes: scoped to the admin. A respond retried sends one email.
    let id = first["id"].as_str().unwrap();
    let respond = json!({"message": "Fixed"});
    let path = format!("/tickets/{id}/respond");
    let r1 = post_with_key(&app, &path, Some(&admin.jwt), "respond-1", &respond)
        .await
        .expect(201);
    let r2 = post_with_key(&app, &path, Some(&admin.jwt), "respond-1", &respond)
        .await
        .expect(201);
    assert_eq!(r1["id"], r2["id"], "one response");
    let t = app.ticket(&admin.jwt, id).await;
    assert_eq!(t["responses"].as_array().map(Vec::len), Some(1), "{t}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.mails_to(&who).await.len(), 1, "one email");

    // A failed request (4xx) is kept too: the same answer again.
    let closed = format!("/tickets/{id}/change_status");
    post_with_key(&app, &closed, Some(&admin.jwt), "bad-1", &json!({"status": "LATER"}))
        .await
        .expect_error(400, "invalid_request", Some("status"));
    let replayed = post_with_key(&app, &closed, Some(&admin.jwt), "bad-1", &json!({"status": "LATER"})).await;
    assert_eq!(
        replayed.headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()),
        Some("true")
    );
    replayed.expect_error(400, "invalid_request", Some("status"));
    app.stop().await;
}

/// Twenty identical creates at once with one key file one ticket; twenty
/// identical responds at once make one response and one email. Every twin
/// is answered with the first answer or told the key is in use.
pub async fn concurrent_twins_with_one_key_apply_once(set: &dyn AdapterSet) {
    let app = std::sync::Arc::new(TestApp::start(set, TestConfig::default()).await);
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let who = customer();
    let body = ticket_body(&org, &who, "Twins");
    let receiver = ticketing_tests::Receiver::start().await;
    let hook = app
        .create_webhook(&admin.jwt, &receiver.url(), &["ticket.created", "ticket.responded"])
        .await
        .expect(201);
    receiver.trust(hook["secret"].as_str().unwrap());

    let twins = (0..20).map(|_| {
        let (app, body) = (app.clone(), body.clone());
        tokio::spawn(async move { post_with_key(&app, "/tickets", None, "twin-create", &body).await })
    });
    let mut created = 0;
    for reply in futures_util::future::join_all(twins).await {
        let reply = reply.unwrap();
        match reply.status {
            201 => created += 1,
            409 => reply.expect_error(409, "idempotency_key_in_use", None),
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert!(created >= 1);
    let tickets = tickets_of(&app, &admin.jwt, &who).await;
    assert_eq!(tickets.len(), 1, "exactly one ticket: {tickets:?}");
    let mine = app
        .get(&format!("/tickets?adminEmail={}", admin.email), Some(&admin.jwt))
        .await
        .expect(200);
    assert_eq!(mine["tickets"].as_array().map(Vec::len), Some(1), "one assignment");

    let id = tickets[0]["id"].as_str().unwrap().to_owned();
    let path = format!("/tickets/{id}/respond");
    let twins = (0..20).map(|_| {
        let (app, path, jwt) = (app.clone(), path.clone(), admin.jwt.clone());
        tokio::spawn(async move {
            post_with_key(&app, &path, Some(&jwt), "twin-respond", &json!({"message": "Once"})).await
        })
    });
    for reply in futures_util::future::join_all(twins).await {
        let reply = reply.unwrap();
        assert!([201, 409].contains(&reply.status), "{}: {}", reply.status, reply.body);
    }
    let t = app.ticket(&admin.jwt, &id).await;
    assert_eq!(t["responses"].as_array().map(Vec::len), Some(1), "one response: {t}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.mails_to(&who).await.len(), 1, "one email");
    // One webhook delivery of each: the replays committed no second event.
    let wait = std::time::Duration::from_secs(45);
    receiver
        .wait_until(wait, |g| {
            g.iter().filter(|r| r.body["type"] == "ticket.responded").count() >= 1
        })
        .await;
    // A second tick (or dispatch round) would have sent any twin by now.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let got = receiver.received();
    assert_eq!(
        receiver.accepted_of("ticket.created").len(),
        1,
        "one created delivery: {got:#?}"
    );
    assert_eq!(
        receiver.accepted_of("ticket.responded").len(),
        1,
        "one responded delivery: {got:#?}"
    );
    assert!(got.iter().all(|r| r.verified));
}

/// Answers holding a credential shown once (org signup, sign-in, a new API
/// key, a rotated secret) are never kept: a replay is applied no second
/// time and says why.
pub async fn answers_with_credentials_are_not_kept_for_replays(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let signup = json!({"name": "Acme", "domain": format!("{}.example.com", ticketing_tests::unique("idem"))});
    post_with_key(&app, "/auth/org/signup", None, "signup-1", &signup)
        .await
        .expect(201);
    post_with_key(&app, "/auth/org/signup", None, "signup-1", &signup)
        .await
        .expect_error(409, "idempotent_reply_not_kept", None);

    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let key = json!({"name": "k", "scopes": ["tickets:read"]});
    post_with_key(&app, "/api-keys", Some(&admin.jwt), "key-1", &key)
        .await
        .expect(201);
    post_with_key(&app, "/api-keys", Some(&admin.jwt), "key-1", &key)
        .await
        .expect_error(409, "idempotent_reply_not_kept", None);
    let keys = app.get("/api-keys", Some(&admin.jwt)).await.expect(200);
    assert_eq!(keys["apiKeys"].as_array().map(Vec::len), Some(1), "one key: {keys}");
    app.stop().await;
}

fn replayed(r: &Reply) -> bool {
    r.headers.get("idempotent-replayed").is_some()
}

/// Callers without a credential share no idempotency record: a POST
/// without credentials is answered by its handler each time (401), never
/// with another client's kept answer; org signup, the one POST needing no
/// credential, keeps its keys per client address.
pub async fn requests_without_a_credential_share_no_idempotency_record(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let (first, second) = (
        std::net::IpAddr::from([127, 0, 0, 41]),
        std::net::IpAddr::from([127, 0, 0, 42]),
    );
    let no_secret = json!({"title": "t", "description": "d", "addedBy": customer()}).to_string();
    let headers = [("content-type", "application/json"), ("idempotency-key", "anon-1")];
    for from in [first, second, first] {
        let r = app
            .raw_from(
                from,
                Method::POST,
                "/tickets",
                &headers,
                Some(no_secret.clone().into_bytes()),
            )
            .await;
        assert!(!replayed(&r), "{:?}", r.headers);
        r.expect_error(401, "unauthorized", None);
    }

    let domain = format!("{}.example.com", ticketing_tests::unique("idem"));
    let signup = json!({"name": "Idem", "domain": domain}).to_string().into_bytes();
    let org_headers = [("content-type", "application/json"), ("idempotency-key", "org-1")];
    app.raw_from(
        first,
        Method::POST,
        "/auth/org/signup",
        &org_headers,
        Some(signup.clone()),
    )
    .await
    .expect(201);
    // The same client's retry is recognised (its answer held the secret: not kept)...
    app.raw_from(
        first,
        Method::POST,
        "/auth/org/signup",
        &org_headers,
        Some(signup.clone()),
    )
    .await
    .expect_error(409, "idempotent_reply_not_kept", None);
    // ...another client's request with that key is its own, and runs.
    let other = app
        .raw_from(second, Method::POST, "/auth/org/signup", &org_headers, Some(signup))
        .await;
    assert!(!replayed(&other));
    other.expect_error(409, "conflict", None);
    app.stop().await;
}

/// Sign-in ignores `Idempotency-Key`: re-sending someone's key with a
/// guessed body is never compared with their request (no 409/422 oracle),
/// and a throttled client stays throttled whatever key it sends.
pub async fn signin_ignores_idempotency_keys(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let signin = |password: &str| {
        json!({"email": admin.email, "password": password})
            .to_string()
            .into_bytes()
    };
    let headers = [("content-type", "application/json"), ("idempotency-key", "signin-1")];
    let owner = app
        .raw(Method::POST, "/auth/admin/signin", &headers, Some(signin(PASSWORD)))
        .await;
    assert!(!replayed(&owner));
    owner.expect(200);
    // The owner's retry signs in again.
    app.raw(Method::POST, "/auth/admin/signin", &headers, Some(signin(PASSWORD)))
        .await
        .expect(200);

    let attacker = std::net::IpAddr::from([127, 0, 0, 43]);
    let wrong = app
        .raw_from(
            attacker,
            Method::POST,
            "/auth/admin/signin",
            &headers,
            Some(signin("a guess!")),
        )
        .await;
    assert!(!replayed(&wrong));
    wrong.expect_error(401, "unauthorized", None);
    for _ in 0..4 {
        app.signin_from(attacker, &admin.email, "another guess")
            .await
            .expect_error(401, "unauthorized", None);
    }
    for body in [signin("a guess!"), signin(PASSWORD)] {
        app.raw_from(attacker, Method::POST, "/auth/admin/signin", &headers, Some(body))
            .await
            .expect_error(429, "too_many_requests", None);
    }
    app.stop().await;
}

/// A body `secret` written with JSON escapes is the same secret to the
/// idempotency layer as to the handler: its keys belong to that org (two
/// orgs using one key name are apart), and a retry is replayed.
pub async fn an_escaped_body_secret_keys_under_its_own_org(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let escaped = |org: &OrgHandle, title: &str| {
        let secret: String = org.secret.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
        format!(
            r#"{{"title": "{title}", "description": "d", "addedBy": "{}", "secret": "{secret}"}}"#,
            customer()
        )
        .into_bytes()
    };
    let headers = [("content-type", "application/json"), ("idempotency-key", "escaped-1")];
    let (one, two) = (app.new_org().await, app.new_org().await);
    let body = escaped(&one, "First");
    let first = app.raw(Method::POST, "/tickets", &headers, Some(body.clone())).await;
    assert!(!replayed(&first));
    let first = first.expect(201);
    let again = app.raw(Method::POST, "/tickets", &headers, Some(body)).await;
    assert!(replayed(&again));
    assert_eq!(again.expect(201)["id"], first["id"]);
    // Another org's request with the same key name is its own.
    let theirs = app
        .raw(Method::POST, "/tickets", &headers, Some(escaped(&two, "Second")))
        .await;
    assert!(!replayed(&theirs));
    assert_ne!(theirs.expect(201)["id"], first["id"]);
    app.stop().await;
}
