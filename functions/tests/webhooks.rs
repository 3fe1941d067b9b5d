//! The webhook path of the Lambda deployment on moto: a ticket write's event
//! item, as the stream delivers it, through `reconcile` (fan-out, queued on
//! a real SQS queue) and the `webhook-sender` handler to a receiver, with a
//! failed attempt's retry queued with its delay.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use axum::http::{HeaderMap, StatusCode};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing::adapters::aws::{self, AwsAdapters, AwsSettings, items};
use ticketing::domain::webhooks::sign;
use ticketing::domain::{Change, TicketId};
use ticketing::http::Endpoint;
use ticketing::ports::Store;
use ticketing::service::{self, Service};
use tower::ServiceExt;

/// What the receiver got: (webhook-id, signature valid under the secret once set, body).
type Got = Arc<Mutex<Vec<(String, String, String, String)>>>;

/// A receiver on loopback answering `statuses` in turn, then 200.
async fn receiver(statuses: Vec<u16>) -> (String, Got) {
    let got: Got = Arc::default();
    let script = Arc::new(Mutex::new(statuses.into_iter()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (seen, script) = (seen.clone(), script.clone());
            async move {
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                seen.lock()
                    .unwrap()
                    .push((h("webhook-id"), h("webhook-timestamp"), h("webhook-signature"), body));
                StatusCode::from_u16(script.lock().unwrap().next().unwrap_or(200)).unwrap()
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

async fn call(
    service: &Service,
    method: &str,
    path: &str,
    jwt: Option<&str>,
    body: serde_json::Value,
) -> serde_json::Value {
    let mut req = lambda_http::Request::new(lambda_http::Body::Text(body.to_string()));
    *req.method_mut() = method.parse().unwrap();
    *req.uri_mut() = path.parse().unwrap();
    req.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    if let Some(jwt) = jwt {
        req.headers_mut()
            .insert("authorization", format!("Bearer {jwt}").parse().unwrap());
    }
    let resp = ticketing::http::router(service.clone(), &Endpoint::ALL)
        .oneshot(req)
        .await
        .unwrap();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap_or_default()
}

/// The queue's messages as the SQS event source hands them to the function
/// (waiting up to `wait` for the first).
async fn receive(adapters: &AwsAdapters, url: &str, wait: Duration) -> SqsEvent {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let out = adapters
            .sqs()
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if !messages.is_empty() || tokio::time::Instant::now() >= deadline {
            let records = messages
                .into_iter()
                .map(|m| {
                    let mut r = SqsMessage::default();
                    r.message_id = m.message_id;
                    r.body = m.body;
                    r
                })
                .collect();
            let mut event = SqsEvent::default();
            event.records = records;
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_change_reaches_the_endpoint_through_reconcile_the_queue_and_the_sender() {
    std::env::var("AWS_ENDPOINT_URL").expect("needs moto: run ./scripts/test");
    let id = TicketId::new().0.simple().to_string();
    let mut settings = AwsSettings::local(
        format!("hooks-{id}"),
        format!("hooks-{id}"),
        "support@ticketing.example.com",
    );
    // Loopback receiver: private addresses allowed, as only tests do.
    let adapters = AwsAdapters::new(&aws::sdk_config().await, &settings).allow_private_webhooks();
    aws::create_missing_resources(&adapters, &settings).await.unwrap();
    let queue_url = adapters
        .sqs()
        .create_queue()
        .queue_name(format!("hooks-{id}"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    settings.webhook_queue_url = Some(queue_url.clone());
    let queue = adapters.webhook_queue(&settings).expect("a queue");
    let service = Service::new(
        adapters.ports(),
        &service::Settings {
            limits: Default::default(),
            jwt_keys: adapters.jwt_keys(&settings),
            auto_close_after: Duration::from_secs(30 * 86_400),
            reopen_window: service::DEFAULT_REOPEN_WINDOW,
            mail_from: settings.mail_from.clone(),
            signin: Default::default(),
            inbound: Default::default(),
        },
    )
    .unwrap();

    // An org, its admin, an endpoint answering 500 once, a ticket renamed.
    let domain = format!("{id}.example.com");
    let secret = call(
        &service,
        "POST",
        "/auth/org/signup",
        None,
        serde_json::json!({"name": "H", "domain": domain}),
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let email = format!("a@{domain}");
    let password = "correct horse battery";
    call(
        &service,
        "POST",
        "/auth/admin/signup",
        None,
        serde_json::json!({"firstName": "A", "lastName": "B", "email": email, "password": password, "secret": secret}),
    )
    .await;
    let jwt = call(
        &service,
        "POST",
        "/auth/admin/signin",
        None,
        serde_json::json!({"email": email, "password": password}),
    )
    .await["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    let (url, got) = receiver(vec![500]).await;
    let hook = call(
        &service,
        "POST",
        "/webhooks",
        Some(&jwt),
        serde_json::json!({"url": url, "events": ["ticket.updated"]}),
    )
    .await;
    let signing = hook["secret"].as_str().expect("created").to_owned();
    let ticket = call(
        &service,
        "POST",
        "/tickets",
        None,
        serde_json::json!({"title": "t", "description": "d", "addedBy": "c@customer.example.org", "secret": secret}),
    )
    .await;
    let ticket_id: TicketId = ticket["id"].as_str().unwrap().parse().unwrap();
    call(
        &service,
        "POST",
        &format!("/tickets/{ticket_id}"),
        Some(&jwt),
        serde_json::json!({"title": "renamed"}),
    )
    .await;

    // The event item the stream carries (INSERT, new image), read back.
    let events = adapters.store.ticket_events(ticket_id, None, 50).await.unwrap();
    let updated = events
        .iter()
        .find(|e| matches!(e.change, Change::FieldsUpdated { .. }))
        .expect("the rename's event");
    let key = items::event_key(ticket_id, updated.id);
    let image = adapters
        .dynamo
        .get_item()
        .table_name(&settings.table)
        .set_key(Some(key.clone()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the event item");
    assert!(
        image.contains_key(items::webhooks::MESSAGE_ATTR),
        "the outbox message rides on the event"
    );
    let mark = |item: &items::Item| item.get(items::DUE_PK).and_then(|v| v.as_s().ok()).cloned();
    assert!(
        mark(&image).is_some_and(|p| p.starts_with(&format!("{}#", items::webhooks::DUE_OUTBOX))),
        "marked for the sweep until fanned out: {:?}",
        mark(&image)
    );
    let record = aws::stream::Record {
        event_name: "INSERT".into(),
        sequence_number: "1".into(),
        keys: key,
        old_image: Default::default(),
        new_image: image,
    };
    for _ in 0..2 {
        // A redelivered record fans out nothing twice.
        assert_eq!(
            aws::stream::apply_records(
                &service,
                aws::stream::Effects::new(&adapters, Some(&queue)),
                std::slice::from_ref(&record),
                None
            )
            .await,
            None
        );
    }
    let after = adapters
        .dynamo
        .get_item()
        .table_name(&settings.table)
        .set_key(Some(record.keys.clone()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the event item");
    assert_eq!(mark(&after), None, "the fan-out cleared the mark");
    assert!(after.contains_key(items::webhooks::MESSAGE_ATTR));

    // The sender: the first attempt gets the 500 and queues the retry.
    let jobs = receive(&adapters, &queue_url, Duration::from_secs(5)).await;
    assert_eq!(jobs.records.len(), 1, "one job for one delivery");
    let failures = ticketing_functions::webhook_sender(&service, &queue, jobs).await;
    assert!(failures.batch_item_failures.is_empty());
    assert_eq!(got.lock().unwrap().len(), 1);
    let early = receive(&adapters, &queue_url, Duration::from_secs(2)).await;
    assert!(early.records.is_empty(), "the retry waits out its delay");
    let retry = receive(&adapters, &queue_url, Duration::from_secs(20)).await;
    assert_eq!(retry.records.len(), 1, "the retry arrives after its delay");
    ticketing_functions::webhook_sender(&service, &queue, retry).await;

    let got_now = got.lock().unwrap().clone();
    assert_eq!(got_now.len(), 2, "{got_now:?}");
    assert_eq!(got_now[0].0, got_now[1].0, "one webhook-id on every attempt");
    for (msg_id, ts, signature, body) in &got_now {
        assert_eq!(
            sign(&signing, msg_id, ts.parse().unwrap(), body).as_deref(),
            Some(signature.as_str())
        );
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["type"], "ticket.updated");
        assert_eq!(body["data"]["ticket"]["title"], "renamed");
    }
    let delivery = call(
        &service,
        "GET",
        &format!("/webhooks/{}/deliveries", hook["id"].as_str().unwrap()),
        Some(&jwt),
        serde_json::json!({}),
    )
    .await;
    let d = &delivery["deliveries"][0];
    assert_eq!(d["state"], "succeeded", "{delivery}");
    assert_eq!(d["attempts"][0]["statusCode"], 500);
    assert_eq!(d["attempts"][1]["statusCode"], 200);
    // The sample event (events/webhook-sender.json) is such a job: a second
    // run of it finds the delivery done and attempts nothing.
    let path = format!("{}/../events/webhook-sender.json", env!("CARGO_MANIFEST_DIR"));
    let sample = std::fs::read_to_string(path)
        .unwrap()
        .replace("<WEBHOOK_ID>", hook["id"].as_str().unwrap())
        .replace("<DELIVERY_ID>", d["id"].as_str().unwrap());
    let sample: SqsEvent = serde_json::from_str(&sample).expect("the sample parses");
    let failures = ticketing_functions::webhook_sender(&service, &queue, sample).await;
    assert!(failures.batch_item_failures.is_empty());
    assert_eq!(
        got.lock().unwrap().len(),
        2,
        "a finished delivery is not attempted again"
    );
    let _ = adapters.dynamo.delete_table().table_name(&settings.table).send().await;
}
