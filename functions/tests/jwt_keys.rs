//! The JWT keys as the functions use them (on moto): admin-signin reads the
//! signing secret and publishes its verify keys, every other JWT function
//! reads only the verify keys; rotated with two keys live; absent from the
//! functions that have no JWT route.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use lambda_http::{Body, Request};
use serde_json::{Value, json};
use std::time::Duration;
use ticketing::adapters::aws::{self, AwsAdapters, AwsSettings, SecretsManagerKeys, SecretsManagerVerifyKeys};
use ticketing::http::Endpoint;
use ticketing::service::{self, Service};
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery";

/// Fresh resources, and the key secrets created as the stack creates them:
/// the signing ring with one generated key (kid "1"), the verify keys empty.
async fn deployment(with_keys: bool) -> (AwsAdapters, AwsSettings) {
    std::env::var("AWS_ENDPOINT_URL").expect("needs moto: run ./scripts/test");
    let id = ticketing::domain::TicketId::new().0.simple().to_string();
    let settings = AwsSettings {
        jwt_secret_arn: with_keys.then(|| format!("jwt-keys-{id}")),
        jwt_signing_secret_arn: with_keys.then(|| format!("jwt-signing-keys-{id}")),
        ..AwsSettings::local(format!("keys-{id}"), format!("keys-{id}"), "support@keys.example.com")
    };
    let adapters = AwsAdapters::new(&aws::sdk_config().await, &settings);
    aws::create_missing_resources(&adapters, &settings)
        .await
        .expect("resources on moto");
    (adapters, settings)
}

/// A cold admin-signin: a service that has read no keys yet, given the
/// signing secret as template.yaml gives it to admin-signin only.
fn cold_signin(adapters: &AwsAdapters, settings: &AwsSettings) -> Service {
    function_with(adapters, settings)
}

/// A cold function of any other JWT route: the verify keys only.
fn cold_function(adapters: &AwsAdapters, settings: &AwsSettings) -> Service {
    let verifier = AwsSettings {
        jwt_signing_secret_arn: None,
        ..settings.clone()
    };
    function_with(adapters, &verifier)
}

fn function_with(adapters: &AwsAdapters, settings: &AwsSettings) -> Service {
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

fn signing_keys(adapters: &AwsAdapters, settings: &AwsSettings, publish: bool) -> SecretsManagerKeys {
    SecretsManagerKeys::new(
        adapters.secrets().clone(),
        settings.jwt_signing_secret_arn.clone().unwrap(),
        settings.jwt_secret_arn.clone().filter(|_| publish),
    )
}

fn verify_keys(adapters: &AwsAdapters, settings: &AwsSettings) -> SecretsManagerVerifyKeys {
    SecretsManagerVerifyKeys::new(adapters.secrets().clone(), settings.jwt_secret_arn.clone().unwrap())
}

/// scripts/rotate-jwt-key on the signing secret, as an operator runs it;
/// the ring it wrote.
async fn rotate_with_the_script(adapters: &AwsAdapters, settings: &AwsSettings) -> ticketing::auth::KeyRing {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = root.join(".venv/bin/python");
    let python = if venv.exists() { venv } else { "python3".into() };
    let out = std::process::Command::new(python)
        .arg(root.join("scripts/rotate-jwt-key"))
        .arg(settings.jwt_signing_secret_arn.as_deref().unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let ring = signing_keys(adapters, settings, false).read().await.unwrap();
    assert!(
        stdout.contains(&ring.current.kid) && !stdout.contains("current\""),
        "{stdout}"
    );
    ring
}

/// A fresh stack's verify keys are empty: a token is refused (401, not 500)
/// until admin-signin's first read publishes its public key; what it
/// publishes holds no signing seed, and a verifier cannot sign (500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_signin_publishes_the_verify_keys_and_verifiers_cannot_sign() {
    let (adapters, settings) = deployment(true).await;
    let email = "cy@keys.example.com";
    org_with_tickets(&cold_function(&adapters, &settings), email).await;
    assert!(verify_keys(&adapters, &settings).read().await.unwrap().is_empty());
    // Well-formed ES256 under the stack's first kid, signed by a key it never had.
    let stranger = ticketing::auth::KeyRing::single(ticketing::auth::SigningKey::generate("1").unwrap());
    let (forged, _) = ticketing::auth::JwtKeys::new(
        &ticketing::auth::KeySet::Signing(stranger),
        ticketing::auth::DEFAULT_TOKEN_LIFETIME,
    )
    .issue(
        ticketing::domain::AdminId::new(),
        ticketing::domain::OrgId::new(),
        ticketing::domain::Timestamp::now(),
    )
    .unwrap();
    let (s, body) = list_status(&cold_function(&adapters, &settings), &forged, "").await;
    assert_eq!(s, 401, "nothing published yet: {body}");

    let jwt = signin(&cold_signin(&adapters, &settings), email).await;
    let ring = signing_keys(&adapters, &settings, false).read().await.unwrap();
    let published = verify_keys(&adapters, &settings).read().await.unwrap();
    assert!(published.serve(&ring));
    assert_eq!(list_status(&cold_function(&adapters, &settings), &jwt, "").await.0, 200);
    let text = published.to_json();
    let seeds = ring.to_json();
    let seed: Value = serde_json::from_str(&seeds).unwrap();
    assert!(
        !text.contains(seed["current"].as_str().unwrap()),
        "no seed in the verify keys"
    );

    let (s, body) = call(
        &cold_function(&adapters, &settings),
        Endpoint::AdminSignin,
        "/auth/admin/signin",
        json!({"email": email, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!((s, body["error"]["code"].as_str()), (500, Some("internal")), "{body}");
}

/// Rotating logs nobody out: a warm function accepts the tokens of the
/// previous key and learns the new key from its first token; a cursor from
/// before the rotation still pages. Two rotations later a token of the first
/// key is refused (401), while the second key's tokens still work. The first
/// rotation writes both secrets (`ticketd rotate-jwt-key`); the second only
/// the signing secret (`scripts/rotate-jwt-key`), published by admin-signin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_logs_nobody_out_and_the_key_two_rotations_old_is_refused() {
    let (adapters, settings) = deployment(true).await;
    let email = "ana@keys.example.com";
    org_with_tickets(&cold_function(&adapters, &settings), email).await;
    let first = signin(&cold_signin(&adapters, &settings), email).await;
    assert_eq!(kid(&first), ticketing::auth::keyring::INITIAL_KID);
    let warm = cold_function(&adapters, &settings);
    let (s, page) = list_status(&warm, &first, "?limit=1").await;
    assert_eq!(s, 200, "{page}");
    let cursor = page["nextCursor"].as_str().expect("a second page").to_owned();

    let rotated = signing_keys(&adapters, &settings, true).rotate().await.unwrap();
    let second = signin(&cold_signin(&adapters, &settings), email).await;
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

    let rotated_again = rotate_with_the_script(&adapters, &settings).await;
    assert!(
        !verify_keys(&adapters, &settings)
            .read()
            .await
            .unwrap()
            .serve(&rotated_again)
    );
    let third = signin(&cold_signin(&adapters, &settings), email).await;
    assert_eq!(kid(&third), rotated_again.current.kid);
    assert!(
        verify_keys(&adapters, &settings)
            .read()
            .await
            .unwrap()
            .serve(&rotated_again),
        "published"
    );
    let cold = cold_function(&adapters, &settings);
    let (s, body) = list_status(&cold, &first, "").await;
    assert_eq!(s, 401, "the first key is retired: {body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(list_status(&cold, &second, "").await.0, 200);
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
