//! API keys and the org secret's rotation (issue 10): scoped keys accepted
//! wherever the org secret is, revoked at once; a rotated secret stops at once.

use serde_json::{Value, json};
use std::time::Duration;
use ticketing_tests::client::{OrgHandle, PASSWORD, customer};
use ticketing_tests::{AdapterSet, TestApp, TestConfig};

/// The org as a client product holding an API key instead of the secret.
fn with_key(org: &OrgHandle, key: &Value) -> OrgHandle {
    OrgHandle {
        secret: key["key"].as_str().expect("the key, shown once").to_owned(),
        ..org.clone()
    }
}

/// A key works within its scopes (403 `insufficient_scope` outside them),
/// in the header or the body, and stops at once when revoked.
pub async fn api_keys_work_within_their_scopes_and_stop_when_revoked(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;

    let filer = app
        .create_api_key(&admin.jwt, "web app", &["tickets:create"])
        .await
        .expect(201);
    let key = filer["key"].as_str().unwrap();
    assert!(
        key.starts_with("tk_") && key.starts_with(filer["prefix"].as_str().unwrap()),
        "{filer}"
    );
    assert_eq!(filer["scopes"], json!(["tickets:create"]));
    assert!(filer["lastUsedAt"].is_null());
    let filer_org = with_key(&org, &filer);

    let who = customer();
    let id = app.new_ticket_id(&filer_org, &who).await;
    app.post(
        "/tickets",
        None,
        json!({"title": "t", "description": "d", "addedBy": who, "secret": key}),
    )
    .await
    .expect(201);
    app.reply(&filer_org, &id, &who, "a reply").await.expect(201);
    let signup = app
        .raw(
            reqwest::Method::POST,
            "/auth/admin/signup",
            &[("content-type", "application/json"), ("x-api-key", key)],
            Some(
                json!({"firstName": "A", "lastName": "B", "email": format!("x@{}", org.domain), "password": PASSWORD})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    signup.expect_error(403, "insufficient_scope", None);
    app.get_as_org(&filer_org, &format!("/tickets/{id}"))
        .await
        .expect_error(403, "insufficient_scope", None);

    let reader = app
        .create_api_key(&admin.jwt, "help widget", &["tickets:read"])
        .await
        .expect(201);
    let reader_org = with_key(&org, &reader);
    let view = app.get_as_org(&reader_org, &format!("/tickets/{id}")).await.expect(200);
    assert_eq!(view["id"], id.as_str());
    app.reply(&reader_org, &id, &who, "no")
        .await
        .expect_error(403, "insufficient_scope", None);

    let list = app.get("/api-keys", Some(&admin.jwt)).await.expect(200);
    let keys = list["apiKeys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{list}");
    assert!(
        keys.iter().all(|k| k.get("key").is_none()),
        "never the key again: {list}"
    );
    let text = list.to_string();
    assert!(!text.contains(key), "{text}");
    // The use is recorded off the request path.
    let used = app
        .wait_for(Duration::from_secs(10), || async {
            let list = app.get("/api-keys", Some(&admin.jwt)).await.expect(200);
            list["apiKeys"][0]["lastUsedAt"].is_string().then_some(list)
        })
        .await;
    assert!(used.is_some(), "lastUsedAt is set after a use");

    let revoke = format!("/api-keys/{}", filer["id"].as_str().unwrap());
    app.delete(&revoke, Some(&admin.jwt)).await.expect(204);
    app.post(
        "/tickets",
        None,
        json!({"title": "t", "description": "d", "addedBy": who, "secret": key}),
    )
    .await
    .expect_error(401, "unauthorized", None);
    app.delete(&revoke, Some(&admin.jwt))
        .await
        .expect_error(404, "not_found", None);

    let other = app.new_org().await;
    let stranger = app.new_admin(&other).await;
    let reader_path = format!("/api-keys/{}", reader["id"].as_str().unwrap());
    app.delete(&reader_path, Some(&stranger.jwt))
        .await
        .expect_error(404, "not_found", None);
    assert_eq!(
        app.get("/api-keys", Some(&stranger.jwt)).await.expect(200)["apiKeys"],
        json!([]),
        "another org's keys are not listed"
    );
    app.get_as_org(&reader_org, &format!("/tickets/{id}")).await.expect(200);
    app.stop().await;
}

/// Bad key requests are 400s naming the field; no JWT is a 401.
pub async fn api_key_requests_are_validated(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    app.create_api_key(&admin.jwt, "k", &[])
        .await
        .expect_error(400, "invalid_request", Some("scopes"));
    app.create_api_key(&admin.jwt, "k", &["tickets:delete"])
        .await
        .expect_error(400, "invalid_request", Some("scopes"));
    app.create_api_key(&admin.jwt, " ", &["tickets:read"])
        .await
        .expect_error(400, "invalid_request", Some("name"));
    app.post("/api-keys", None, json!({"name": "k", "scopes": ["tickets:read"]}))
        .await
        .expect_error(401, "unauthorized", None);
    app.delete("/api-keys/not-a-uuid", Some(&admin.jwt))
        .await
        .expect_error(400, "invalid_request", Some("id"));
    // The org secret is not a JWT: key management is for admins.
    let with_secret = app
        .raw(reqwest::Method::GET, "/api-keys", &[("x-api-key", &org.secret)], None)
        .await;
    with_secret.expect_error(401, "unauthorized", None);
    app.stop().await;
}

/// A rotated org secret: the new one works, the old one is a 401 at once,
/// and API keys are untouched.
pub async fn a_rotated_org_secret_replaces_the_old_one_at_once(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let key = app
        .create_api_key(&admin.jwt, "k", &["tickets:create"])
        .await
        .expect(201);

    let rotated = app
        .post("/auth/org/secret/rotate", Some(&admin.jwt), json!({}))
        .await
        .expect(200);
    let new_secret = rotated["secret"].as_str().expect("the new secret").to_owned();
    assert_ne!(new_secret, org.secret);
    app.post(
        "/tickets",
        None,
        json!({"title": "t", "description": "d", "addedBy": customer(), "secret": org.secret}),
    )
    .await
    .expect_error(401, "unauthorized", None);
    let renewed = OrgHandle {
        secret: new_secret,
        ..org.clone()
    };
    app.new_ticket_id(&renewed, &customer()).await;
    app.new_ticket_id(&with_key(&org, &key), &customer()).await;
    app.post("/auth/org/secret/rotate", None, json!({}))
        .await
        .expect_error(401, "unauthorized", None);
    app.stop().await;
}

/// An `admins:create` key is not a full admin: the admin it signs up is
/// `limited` (tickets and people, but 403 on API keys, the org secret,
/// webhooks and roles) until a full admin grants `full`; admins signed up
/// with the org secret are full. The role is in the signup answer and the
/// admin list, and a grant applies at once.
pub async fn admins_made_with_an_api_key_are_limited_until_granted(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let owner = app.new_admin(&org).await;
    let key = app
        .create_api_key(&owner.jwt, "hr tool", &["admins:create"])
        .await
        .expect(201);
    let email = format!("{}@{}", ticketing_tests::unique("via-key"), org.domain);
    let signup = app
        .post(
            "/auth/admin/signup",
            None,
            json!({"firstName": "Mal", "lastName": "Lory", "email": email, "password": "chosen by the key",
                   "secret": key["key"]}),
        )
        .await
        .expect(201);
    assert_eq!(signup["role"], "limited", "{signup}");
    let limited_id = signup["id"].as_str().unwrap().to_owned();
    let jwt = app.signin(&email, "chosen by the key").await.expect(200)["jwt"]
        .as_str()
        .unwrap()
        .to_owned();

    // The escalation the key would have had: every step refused.
    let role_path = format!("/admins/{limited_id}/role");
    let key_id = format!("/api-keys/{}", key["id"].as_str().unwrap());
    let refused = [
        app.create_api_key(&jwt, "all of it", &["tickets:create", "tickets:read", "admins:create"])
            .await,
        app.get("/api-keys", Some(&jwt)).await,
        app.delete(&key_id, Some(&jwt)).await,
        app.post("/auth/org/secret/rotate", Some(&jwt), json!({})).await,
        app.create_webhook(&jwt, "https://hooks.example.com/x", &["ticket.created"])
            .await,
        app.get("/webhooks", Some(&jwt)).await,
        app.post(&role_path, Some(&jwt), json!({"role": "full"})).await,
    ];
    for r in refused {
        r.expect_error(403, "forbidden", None);
    }
    // Tickets and people are open to it.
    app.get("/tickets", Some(&jwt)).await.expect(200);
    let admins = app.get("/admins", Some(&jwt)).await.expect(200);
    let roles: Vec<(&str, &str)> = admins["admins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), a["role"].as_str().unwrap()))
        .collect();
    assert!(roles.contains(&(owner.id.as_str(), "full")), "{admins}");
    assert!(roles.contains(&(limited_id.as_str(), "limited")), "{admins}");
    // The org secret still works, and the old org secret was not rotated.
    app.new_ticket_id(&org, &customer()).await;

    // Role requests are validated and tenant-scoped.
    app.post(&role_path, Some(&owner.jwt), json!({"role": "owner"}))
        .await
        .expect_error(400, "invalid_request", Some("role"));
    let other = app.new_org().await;
    let stranger = app.new_admin(&other).await;
    app.post(&role_path, Some(&stranger.jwt), json!({"role": "full"}))
        .await
        .expect_error(404, "not_found", None);

    // A full admin grants the role: it applies at once.
    let granted = app
        .post(&role_path, Some(&owner.jwt), json!({"role": "full"}))
        .await
        .expect(200);
    assert_eq!(granted["role"], "full");
    app.create_api_key(&jwt, "now allowed", &["tickets:read"])
        .await
        .expect(201);
    // And withdraws it.
    app.post(&role_path, Some(&owner.jwt), json!({"role": "limited"}))
        .await
        .expect(200);
    app.get("/api-keys", Some(&jwt))
        .await
        .expect_error(403, "forbidden", None);
    app.stop().await;
}
