//! The JWT keys as the functions use them: read from the Secrets Manager
//! secret (on moto), rotated with two keys live, and absent from the
//! functions that have no JWT route.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use lambda_http::{Body, Request};
use serde_json::{Value, json};
use std::time::Duration;
use ticketing::adapters::aws::{self, AwsAdapters, AwsSettings, SecretsManagerKeys};
use ticketing::http::Endpoint;
use ticketing::service::{self, Service};
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery";

/// Fresh resources, and a key secret created as the stack creates it (one generated key, kid "1").
async fn deployment(with_keys: bool) -> (AwsAdapters, AwsSettings) {
    std::env::var("AWS_ENDPOINT_URL").expect("needs moto: run ./scripts/test");
    let id = ticketing::domain::TicketId::new().0.simple().to_string();
    let settings = AwsSettings {
        jwt_secret_arn: with_keys.then(|| format!("jwt-keys-{id}")),
        ..AwsSettings::local(format!("keys-{id}"), format!("keys-{id}"), "support@keys.example.com")
    };
    let adapters = AwsAdapters::new(&aws::sdk_config().await, &settings);
    aws::create_missing_resources(&adapters, &settings)
        .await
        .expect("resources on moto");
    (adapters, settings)
}

/// A cold function: a service that has read no keys yet.
fn cold_function(adapters: &AwsAdapters, settings: &AwsSettings) -> Service {
    let service_settings = service::Settings {
        limits: Default::default(),
        jwt_keys: adapters.jwt_keys(settings),
        auto_close_after: Duration::from_secs(30 * 86_400),
        reopen_window: ticketing::service::DEFAULT_REOPEN_WINDOW,
        mail_from: settings.mail_from.clone(),
        signin: Default::default(),
        inbound: Default::default(),
    };
    Service::new(adapters.ports(), &service_settings).expect("no fixed key to check")
}

/// One request to `endpoint`'s function.
async fn call(service: &Service, endpoint: Endpoint, path: &str, body: Value, jwt: Option<&str>) -> (u16, Value) {
    let mut req = Request::new(if body.is_null() {
        Body::Empty
    } else {
        Body::Text(body.to_string())
    });
    *req.method_mut() = endpoint.method();
    *req.uri_mut() = path.parse().unwrap();
    req.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    if let Some(jwt) = jwt {
        req.headers_mut()
            .insert("authorization", format!("Bearer {jwt}").parse().unwrap());
    }
    let response = ticketing_functions::app(service.clone(), endpoint)
        .oneshot(req)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// An org with one admin and two tickets; returns the org secret.
async fn org_with_tickets(service: &Service, email: &str) -> String {
    let domain = format!("{}.example.com", ticketing::domain::TicketId::new().0.simple());
    let (s, org) = call(
        service,
        Endpoint::OrgSignup,
        "/auth/org/signup",
        json!({"name": "K", "domain": domain}),
        None,
    )
    .await;
    assert_eq!(s, 201, "{org}");
    let secret = org["secret"].as_str().unwrap().to_owned();
    let admin = json!({"firstName": "A", "lastName": "B", "email": email, "password": PASSWORD, "secret": secret});
    let (s, body) = call(service, Endpoint::AdminSignup, "/auth/admin/signup", admin, None).await;
    assert_eq!(s, 201, "{body}");
    for title in ["first", "second"] {
        let ticket = json!({"title": title, "description": "d", "addedBy": "c@x.io", "secret": secret});
        let (s, body) = call(service, Endpoint::CreateTicket, "/tickets", ticket, None).await;
        assert_eq!(s, 201, "{body}");
    }
    secret
}

async fn signin(function: &Service, email: &str) -> String {
    let (s, body) = call(
        function,
        Endpoint::AdminSignin,
        "/auth/admin/signin",
        json!({"email": email, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    body["jwt"].as_str().unwrap().to_owned()
}

fn kid(jwt: &str) -> String {
    let header: Value = serde_json::from_slice(&B64.decode(jwt.split('.').next().unwrap()).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn list_status(function: &Service, jwt: &str, query: &str) -> (u16, Value) {
    call(
        function,
        Endpoint::ListTickets,
        &format!("/tickets{query}"),
        Value::Null,
        Some(jwt),
    )
    .await
}

/// Rotating logs nobody out: a warm function accepts the tokens of the
/// previous key and learns the new key from its first token; a cursor from
/// before the rotation still pages. Two rotations later a token of the first
/// key is refused (401), while the second key's tokens still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_logs_nobody_out_and_the_key_two_rotations_old_is_refused() {
    let (adapters, settings) = deployment(true).await;
    let email = "ana@keys.example.com";
    org_with_tickets(&cold_function(&adapters, &settings), email).await;
    let first = signin(&cold_function(&adapters, &settings), email).await;
    assert_eq!(kid(&first), ticketing::auth::keyring::INITIAL_KID);
    let warm = cold_function(&adapters, &settings);
    let (s, page) = list_status(&warm, &first, "?limit=1").await;
    assert_eq!(s, 200, "{page}");
    let cursor = page["nextCursor"].as_str().expect("a second page").to_owned();

    let keys = SecretsManagerKeys::new(adapters.secrets().clone(), settings.jwt_secret_arn.clone().unwrap());
    let rotated = keys.rotate().await.unwrap();
    let second = signin(&cold_function(&adapters, &settings), email).await;
    assert_eq!(
        kid(&second),
        rotated.current.kid,
        "a cold function signs with the new key"
    );
    assert_eq!(list_status(&warm, &first, "").await.0, 200, "the previous key verifies");
    assert_eq!(
        list_status(&warm, &second, "").await.0,
        200,
        "the new kid is read on first sight"
    );
    let (s, rest) = list_status(&warm, &second, &format!("?limit=1&cursor={cursor}")).await;
    assert_eq!((s, rest["tickets"].as_array().map(Vec::len)), (200, Some(1)), "{rest}");

    let rotated_again = keys.rotate().await.unwrap();
    let cold = cold_function(&adapters, &settings);
    let (s, body) = list_status(&cold, &first, "").await;
    assert_eq!(s, 401, "the first key is retired: {body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(list_status(&cold, &second, "").await.0, 200);
    let third = signin(&cold, email).await;
    assert_eq!(kid(&third), rotated_again.current.kid);
    assert_eq!(list_status(&cold, &third, "").await.0, 200);
}

/// A function without the key secret (org-signup, admin-signup,
/// create-ticket) serves its route; routed a JWT request anyway, it answers
/// 500 with nothing about why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_without_keys_serves_its_route_and_a_jwt_route_is_a_bare_500() {
    let (adapters, settings) = deployment(false).await;
    let function = cold_function(&adapters, &settings);
    let email = "bo@keys.example.com";
    org_with_tickets(&function, email).await;
    let (s, body) = call(
        &function,
        Endpoint::AdminSignin,
        "/auth/admin/signin",
        json!({"email": email, "password": PASSWORD}),
        None,
    )
    .await;
    let (s2, body2) = list_status(&function, "a.b.c", "").await;
    for (s, body) in [(s, body), (s2, body2)] {
        assert_eq!(s, 500, "{body}");
        assert_eq!(body["error"]["code"], "internal", "{body}");
        let text = body.to_string().to_lowercase();
        assert!(
            !text.contains("jwt") && !text.contains("key") && !text.contains("template"),
            "{body}"
        );
    }
}
