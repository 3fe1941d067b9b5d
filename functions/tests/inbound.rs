//! The inbound-email function's handler on moto: SES's receipt event (the
//! sample in `events/`) names a message stored in S3, as the receipt rule's
//! S3 action leaves it; the fixtures (tests/fixtures/inbound) land as the
//! rules say, once.

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use ticketing::adapters::aws::inbound_mail::{InboundBucket, SesReceiptEvent};
use ticketing::adapters::aws::{self, AwsAdapters, AwsSettings};
use ticketing::http::Endpoint;
use ticketing::service::{self, Service};
use tower::ServiceExt;

fn id() -> String {
    ticketing::domain::TicketId::new().0.simple().to_string()
}

/// The service with inbound email on, over fresh resources and a fresh bucket.
/// Also the reply key secret's name.
async fn wiring(domain: &str) -> (Service, AwsAdapters, InboundBucket, String) {
    std::env::var("AWS_ENDPOINT_URL").expect("needs moto: run ./scripts/test");
    let id = id();
    let settings = AwsSettings {
        inbound_domain: Some(domain.to_owned()),
        reply_key_secret_arn: Some(format!("reply-key-{id}")),
        ..AwsSettings::local(
            format!("inbound-{id}"),
            format!("inbound-{id}"),
            "support@ticketing.example.com",
        )
    };
    let adapters = AwsAdapters::new(&aws::sdk_config().await, &settings);
    aws::create_missing_resources(&adapters, &settings)
        .await
        .expect("resources on moto");
    let bucket = InboundBucket {
        bucket: format!("inbound-{id}"),
        prefix: "inbound/".into(),
    };
    adapters
        .s3()
        .create_bucket()
        .bucket(&bucket.bucket)
        .send()
        .await
        .expect("a bucket on moto");
    let service_settings = service::Settings {
        limits: Default::default(),
        jwt_keys: adapters.jwt_keys(&settings),
        auto_close_after: std::time::Duration::from_secs(30 * 86_400),
        reopen_window: service::DEFAULT_REOPEN_WINDOW,
        mail_from: settings.mail_from.clone(),
        signin: Default::default(),
        inbound: service::InboundSettings {
            domain: Some(domain.to_owned()),
            reply_key: adapters.reply_keys(&settings),
            ..Default::default()
        },
    };
    let service = Service::new(adapters.ports(), &service_settings).expect("valid settings");
    let secret = settings.reply_key_secret_arn.clone().expect("set above");
    (service, adapters, bucket, secret)
}

async fn call(service: &Service, method: &str, path: &str, auth: Option<&str>, body: Value) -> Value {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(jwt) = auth {
        req = req.header("authorization", format!("Bearer {jwt}"));
    }
    let body = if method == "GET" {
        Body::empty()
    } else {
        Body::from(body.to_string())
    };
    let response = ticketing::http::router(service.clone(), &Endpoint::ALL)
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    assert!(status.is_success(), "{method} {path}: {status} {value}");
    value
}

/// A fixture with its placeholders filled and CRLF line ends.
fn fixture(name: &str, vars: &[(&str, &str)]) -> Vec<u8> {
    let path = format!("{}/../tests/fixtures/inbound/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for (k, v) in vars {
        raw = replace(&raw, k.as_bytes(), v.as_bytes());
    }
    replace(&replace(&raw, b"\r\n", b"\n"), b"\n", b"\r\n")
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let (mut out, mut i) = (Vec::with_capacity(hay.len()), 0);
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// Stores `raw` where SES's S3 action would, then invokes the handler with
/// the sample receipt event naming it; the outcome.
async fn deliver(
    service: &Service,
    adapters: &AwsAdapters,
    bucket: &InboundBucket,
    raw: Vec<u8>,
    recipient: &str,
    spam: &str,
    [spf, dkim, dmarc]: [&str; 3],
) -> String {
    let ses_id = id();
    adapters
        .s3()
        .put_object()
        .bucket(&bucket.bucket)
        .key(format!("{}{ses_id}", bucket.prefix))
        .body(raw.into())
        .send()
        .await
        .expect("stored in moto's S3");
    let event_path = format!("{}/../events/inbound-email.json", env!("CARGO_MANIFEST_DIR"));
    let event = std::fs::read_to_string(event_path)
        .unwrap()
        .replace("<SES_MESSAGE_ID>", &ses_id)
        .replace("<RECIPIENT>", recipient)
        .replace("<SPAM_VERDICT>", spam)
        .replace(
            r#""spfVerdict": { "status": "PASS" }"#,
            &format!(r#""spfVerdict": {{ "status": "{spf}" }}"#),
        )
        .replace(
            r#""dkimVerdict": { "status": "PASS" }"#,
            &format!(r#""dkimVerdict": {{ "status": "{dkim}" }}"#),
        )
        .replace(
            r#""dmarcVerdict": { "status": "PASS" }"#,
            &format!(r#""dmarcVerdict": {{ "status": "{dmarc}" }}"#),
        );
    let event: SesReceiptEvent = serde_json::from_str(&event).expect("the sample event parses");
    let out = ticketing_functions::inbound_email(service, adapters.s3(), bucket, event)
        .await
        .expect("handled");
    out["outcomes"][0].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ses_stored_replies_reach_their_ticket_once_and_loops_are_dropped() {
    let domain = format!("in-{}.example", id());
    let (service, adapters, bucket, secret_name) = wiring(&domain).await;
    let org_domain = format!("o{}.example.com", id());
    let org = call(
        &service,
        "POST",
        "/auth/org/signup",
        None,
        json!({"name": "Acme", "domain": org_domain}),
    )
    .await;
    let secret = org["secret"].as_str().unwrap();
    let email = format!("ana@{org_domain}");
    let password = "correct horse battery";
    call(
        &service,
        "POST",
        "/auth/admin/signup",
        None,
        json!({"firstName": "Ana", "lastName": "A", "email": email, "password": password, "secret": secret}),
    )
    .await;
    let jwt = call(
        &service,
        "POST",
        "/auth/admin/signin",
        None,
        json!({"email": email, "password": password}),
    )
    .await["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    let customer = "carla@customer.example";
    let ticket = call(
        &service,
        "POST",
        "/tickets",
        None,
        json!({"title": "Printer on fire", "description": "Smoke.", "addedBy": customer, "secret": secret}),
    )
    .await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    let response = call(
        &service,
        "POST",
        &format!("/tickets/{id}/respond"),
        Some(&jwt),
        json!({"message": "Turn it off."}),
    )
    .await;

    use ticketing::ports::ReplyKeySource;
    let key = aws::SecretsManagerReplyKey::new(adapters.secrets().clone(), secret_name)
        .load()
        .await
        .expect("the reply key, as inbound-email reads it");
    let ticket_id = id.parse().unwrap();
    let address = key.address(ticket_id, &domain);
    let message_id = key.message_id(ticket_id, response["id"].as_str().unwrap().parse().unwrap(), &domain);
    let vars = [
        ("{{to}}", address.as_str()),
        ("{{from}}", customer),
        ("{{ticket}}", id.as_str()),
        ("{{domain}}", domain.as_str()),
        ("{{in_reply_to}}", message_id.as_str()),
    ];
    // SES's envelope recipient is the address the message really went to.
    let forged = format!("reply+{id}.0123456789abcdef0123@{domain}");
    let send_as = |name: &'static str, spam: &'static str, auth: [&'static str; 3]| {
        let raw = fixture(name, &vars);
        let to = if name == "forged-token.eml" {
            forged.clone()
        } else {
            address.clone()
        };
        let (service, adapters, bucket) = (&service, &adapters, &bucket);
        async move { deliver(service, adapters, bucket, raw, &to, spam, auth).await }
    };
    let send = |name: &'static str, spam: &'static str| send_as(name, spam, ["PASS", "PASS", "PASS"]);
    // A stranger sending the customer's Message-ID first pre-empts nothing.
    assert_eq!(send("stranger-first.eml", "PASS").await, "rejected:wrong_sender");
    assert_eq!(send("gmail-reply.eml", "PASS").await, "applied");
    assert_eq!(
        send("gmail-reply.eml", "PASS").await,
        "duplicate",
        "SES delivered it again"
    );
    assert_eq!(send("duplicate-message-id.eml", "PASS").await, "duplicate");
    assert_eq!(
        send("outlook-reply.eml", "FAIL").await,
        "dropped:spam",
        "the receipt's verdict"
    );
    assert_eq!(send("out-of-office.eml", "PASS").await, "dropped:auto_reply");
    assert_eq!(send("dsn-bounce.eml", "PASS").await, "dropped:bounce");
    assert_eq!(send("forged-token.eml", "PASS").await, "rejected:forged_address");
    assert_eq!(send("wrong-sender.eml", "PASS").await, "rejected:wrong_sender");
    assert_eq!(send("iso-8859-1.eml", "PASS").await, "applied");
    // The sender check reads SES's SPF, DKIM and DMARC verdicts.
    assert_eq!(
        send_as("apple-mail-reply.eml", "PASS", ["FAIL", "FAIL", "GRAY"]).await,
        "rejected:unauthenticated"
    );
    assert_eq!(
        send_as("in-reply-to-only.eml", "PASS", ["PASS", "PASS", "FAIL"]).await,
        "rejected:unauthenticated",
        "DMARC failed for the From domain"
    );
    assert_eq!(
        send_as("html-only.eml", "PASS", ["PASS", "FAIL", "GRAY"]).await,
        "applied",
        "SPF passed and the domain publishes no DMARC policy"
    );

    let t = call(&service, "GET", &format!("/tickets/{id}"), Some(&jwt), Value::Null).await;
    assert_eq!(t["status"], "OPEN", "{t}");
    let replies: Vec<&str> = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "reply")
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(replies.len(), 3, "{replies:?}");
    assert_eq!(
        replies[0],
        "No, it is still broken \u{2014} the tray jams after two pages.\n\nCarla"
    );
    assert!(replies[1].starts_with("Bonjour,"), "{}", replies[1]);
}
