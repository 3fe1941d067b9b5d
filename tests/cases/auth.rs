use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::Method;
use serde_json::{Value, json};
use ticketing_tests::client::{PASSWORD, customer};
use ticketing_tests::{AdapterSet, TestApp, TestConfig, forge_token, jwt_public_key, sign_token, unique};

/// Every endpoint that takes a JWT, with a valid body for it.
pub fn jwt_endpoints(ticket: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, format!("/tickets/{ticket}"), None),
        (Method::GET, "/tickets".into(), None),
        (
            Method::POST,
            format!("/tickets/{ticket}"),
            Some(json!({"title": "changed"})),
        ),
        (
            Method::POST,
            format!("/tickets/{ticket}/change_status"),
            Some(json!({"status": "CLOSED"})),
        ),
        (
            Method::POST,
            format!("/tickets/{ticket}/respond"),
            Some(json!({"message": "hello"})),
        ),
    ]
}

pub async fn call_with_token(
    app: &TestApp,
    method: Method,
    path: &str,
    body: &Option<Value>,
    authorization: Option<&str>,
) -> ticketing_tests::Reply {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = authorization {
        headers.push(("authorization", a));
    }
    app.raw(
        method,
        path,
        &headers,
        body.as_ref().map(|b| b.to_string().into_bytes()),
    )
    .await
}

/// The org secret works in `X-Api-Key` or the body; missing or wrong, it is a 401.
pub async fn org_secret_accepted_in_header_or_body_and_rejected_otherwise(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let ticket = json!({"title": "t", "description": "d", "addedBy": customer()});
    let body = ticket.to_string().into_bytes();
    let header_ok = app
        .raw(
            Method::POST,
            "/tickets",
            &[("content-type", "application/json"), ("x-api-key", &org.secret)],
            Some(body.clone()),
        )
        .await;
    assert_eq!(header_ok.status, 201, "{}", header_ok.body);
    let mut with_secret = ticket.clone();
    with_secret["secret"] = json!(org.secret);
    app.post("/tickets", None, with_secret).await.expect(201);

    app.post("/tickets", None, ticket.clone())
        .await
        .expect_error(401, "unauthorized", None);
    let mut wrong = ticket.clone();
    wrong["secret"] = json!("x".repeat(48));
    app.post("/tickets", None, wrong)
        .await
        .expect_error(401, "unauthorized", None);
    let wrong_header = app
        .raw(
            Method::POST,
            "/tickets",
            &[("content-type", "application/json"), ("x-api-key", "nope")],
            Some(body),
        )
        .await;
    wrong_header.expect_error(401, "unauthorized", None);
    let admin =
        json!({"firstName": "A", "lastName": "B", "email": format!("{}@x.io", unique("a")), "password": PASSWORD});
    app.post("/auth/admin/signup", None, admin.clone())
        .await
        .expect_error(401, "unauthorized", None);
    let mut admin_wrong = admin;
    admin_wrong["secret"] = json!("wrong");
    app.post("/auth/admin/signup", None, admin_wrong)
        .await
        .expect_error(401, "unauthorized", None);
    app.stop().await;
}

/// A taken domain, or an email already taken in the same org, is a 409,
/// whatever its letter case. (Another org may use the email: see signin.rs.)
pub async fn duplicate_domain_and_same_org_email_are_conflicts(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    app.post(
        "/auth/org/signup",
        None,
        json!({"name": "Copycat", "domain": org.domain.to_uppercase()}),
    )
    .await
    .expect_error(409, "conflict", None);
    let admin = app.new_admin(&org).await;
    app.post(
        "/auth/admin/signup",
        None,
        json!({"firstName": "A", "lastName": "B", "email": admin.email.to_uppercase(), "password": PASSWORD, "secret": org.secret}),
    )
    .await
    .expect_error(409, "conflict", None);
    app.stop().await;
}

/// Wrong password and unknown email get the same 401; a password outside 8..128 is refused at signup.
pub async fn signin_rejects_wrong_password_and_unknown_email_alike(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let wrong = app.signin(&admin.email, "wrong password").await;
    let unknown = app.signin(&format!("{}@x.io", unique("ghost")), PASSWORD).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body, unknown.body, "no hint which part was wrong");
    let ok = app.signin(&admin.email.to_uppercase(), PASSWORD).await.expect(200);
    assert!(ok["jwt"].as_str().unwrap().split('.').count() == 3);
    assert!(ok["expiresAt"].is_string());
    app.signin(&admin.email, &"p".repeat(5000))
        .await
        .expect_error(401, "unauthorized", None);
    for password in ["short", &"p".repeat(129)] {
        app.post(
            "/auth/admin/signup",
            None,
            json!({"firstName": "A", "lastName": "B", "email": format!("{}@x.io", unique("a")), "password": password, "secret": org.secret}),
        )
        .await
        .expect_error(400, "invalid_request", Some("password"));
    }
    app.stop().await;
}

/// `claims` under an HMAC algorithm with `secret`, naming the server's kid.
fn hmac_forge(alg: Algorithm, claims: &Value, secret: &[u8]) -> String {
    let header = Header {
        kid: Some(ticketing::auth::keyring::FIXED_KID.into()),
        ..Header::new(alg)
    };
    encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// No token, garbage, `alg: none`, a wrong key, an expired token, a tampered
/// payload, a wrong scheme, HS256 keyed with the server's public key (alg
/// confusion), or a well-signed token whose admin is not an admin of its
/// org: 401 on every JWT endpoint, and nothing changes.
pub async fn bad_tokens_are_unauthorized_on_every_jwt_endpoint(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let other = app.new_org().await;
    let ticket = app.new_ticket_seen_by(&admin.jwt, &org, &customer()).await;
    let id = ticket["id"].as_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": admin.id, "org": org.id, "iat": now, "exp": now + 3600});
    let none_header = B64.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let none_with_kid = B64.encode(r#"{"alg":"none","typ":"JWT","kid":"0"}"#);
    let public = jwt_public_key();
    let payload = B64.encode(claims.to_string());
    let (h, _, s) = {
        let parts: Vec<&str> = admin.jwt.split('.').collect();
        (parts[0].to_owned(), parts[1].to_owned(), parts[2].to_owned())
    };
    let other_org = json!({"sub": admin.id, "org": unique(""), "iat": now, "exp": now + 3600});
    let bad: Vec<Option<String>> = vec![
        None,
        Some("Bearer".into()),
        Some("Bearer garbage".into()),
        Some(format!("Basic {}", admin.jwt)),
        Some(format!("Bearer {none_header}.{payload}.")),
        Some(format!("Bearer {none_with_kid}.{payload}.")),
        Some(format!(
            "Bearer {}",
            sign_token("not-the-server-key-not-the-server-key", &claims)
        )),
        Some(format!("Bearer {}", hmac_forge(Algorithm::HS256, &claims, &public))),
        Some(format!(
            "Bearer {}",
            hmac_forge(Algorithm::HS256, &claims, B64.encode(&public).as_bytes())
        )),
        Some(format!(
            "Bearer {}",
            forge_token(&json!({"sub": admin.id, "org": org.id, "iat": now - 80_000, "exp": now - 3600}))
        )),
        Some(format!("Bearer {h}.{}.{s}", B64.encode(other_org.to_string()))),
        // Signed with the server's key, but the admin is not one of that org's.
        Some(format!(
            "Bearer {}",
            forge_token(&json!({"sub": admin.id, "org": other.id, "iat": now, "exp": now + 3600}))
        )),
        Some(format!(
            "Bearer {}",
            forge_token(&json!({"sub": uuid::Uuid::now_v7(), "org": org.id, "iat": now, "exp": now + 3600}))
        )),
        Some(format!("Bearer {}x", admin.jwt)),
    ];
    for (method, path, body) in jwt_endpoints(id) {
        for auth in &bad {
            let r = call_with_token(&app, method.clone(), &path, &body, auth.as_deref()).await;
            assert_eq!(r.status, 401, "{method} {path} with {auth:?}: {}", r.body);
            assert_eq!(r.body["error"]["code"], "unauthorized");
            assert!(r.body.get("tickets").is_none() && r.body.get("id").is_none());
        }
    }
    let unchanged = app.ticket(&admin.jwt, id).await;
    assert_eq!(unchanged["version"], ticket["version"]);
    assert_eq!(unchanged["title"], ticket["title"]);
    app.stop().await;
}

/// No response anywhere carries a password, a hash, or (after signup) the org secret.
pub async fn passwords_hashes_and_secrets_are_never_returned(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let email = format!("{}@{}", unique("admin"), org.domain);
    let admin = app
        .post(
            "/auth/admin/signup",
            None,
            json!({"firstName": "A", "lastName": "B", "email": email, "password": PASSWORD, "secret": org.secret}),
        )
        .await
        .expect(201);
    let jwt = app.signin(&email, PASSWORD).await.expect(200)["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = app.new_ticket(&org, &customer()).await;
    let id = t["id"].as_str().unwrap();
    let r = app.respond(&jwt, id, "m").await.expect(201);
    let list = app.get("/tickets", Some(&jwt)).await.expect(200);
    let one = app.ticket(&jwt, id).await;
    for body in [&admin, &t, &r, &list, &one] {
        let text = body.to_string();
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(!text.contains("$argon2"), "{text}");
        assert!(!text.contains(&org.secret), "{text}");
        assert!(!text.to_lowercase().contains("password"), "{text}");
    }
    app.stop().await;
}

/// Repeated failed sign-ins for one email from one client are throttled with
/// 429 and `Retry-After` (even with the right password); after the window the
/// right password works again. Other emails are unaffected.
pub async fn repeated_signin_failures_are_throttled_until_the_window_ends(set: &dyn AdapterSet) {
    let signin = ticketing::service::SigninLimit {
        max_failures: 3,
        window: std::time::Duration::from_secs(2),
        ..Default::default()
    };
    let app = TestApp::start(
        set,
        TestConfig {
            signin,
            ..Default::default()
        },
    )
    .await;
    let org = app.new_org().await;
    let target = app.new_admin(&org).await;
    let bystander = app.new_admin(&org).await;
    for _ in 0..3 {
        app.signin(&target.email, "wrong password")
            .await
            .expect_error(401, "unauthorized", None);
    }
    let locked = app.signin(&target.email, PASSWORD).await;
    let retry_after: u64 = locked.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    locked.expect_error(429, "too_many_requests", None);
    app.signin(&target.email, "wrong password")
        .await
        .expect_error(429, "too_many_requests", None);
    app.signin(&bystander.email, PASSWORD).await.expect(200);
    // Unknown emails are throttled the same way (no hint which exist).
    let ghost = format!("{}@x.io", unique("ghost"));
    for _ in 0..3 {
        app.signin(&ghost, "wrong password")
            .await
            .expect_error(401, "unauthorized", None);
    }
    app.signin(&ghost, "wrong password")
        .await
        .expect_error(429, "too_many_requests", None);

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    app.signin(&target.email, PASSWORD).await.expect(200);
    // A success clears the count: two more failures do not lock.
    for _ in 0..2 {
        app.signin(&target.email, "wrong password")
            .await
            .expect_error(401, "unauthorized", None);
    }
    app.signin(&target.email, PASSWORD).await.expect(200);
    app.stop().await;
}

/// Filing a ticket with an org credential (the org secret, or an API key)
/// answers the customer's view, as `GET /tickets/{id}` does for that
/// credential: no `adminId`, `orgId` or `version`, which are the admins'.
pub async fn a_filed_ticket_is_answered_in_the_customer_view(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let key = app
        .create_api_key(&admin.jwt, "widget", &["tickets:create", "tickets:read"])
        .await
        .expect(201);
    let with_key = ticketing_tests::client::OrgHandle {
        secret: key["key"].as_str().unwrap().to_owned(),
        ..org.clone()
    };
    for credential in [&org, &with_key] {
        let filed = app.new_ticket(credential, &customer()).await;
        for hidden in ["adminId", "orgId", "version"] {
            assert!(filed.get(hidden).is_none(), "{hidden} in {filed}");
        }
        let id = filed["id"].as_str().unwrap();
        let read = app.get_as_org(credential, &format!("/tickets/{id}")).await.expect(200);
        assert_eq!(filed, read, "the same view");
        // The admins still see who has it.
        assert_eq!(app.ticket(&admin.jwt, id).await["adminId"], admin.id.as_str());
    }
    app.stop().await;
}
