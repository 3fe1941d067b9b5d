//! Response emails on AWS, against moto: at least once whatever SES does
//! (down, then back; down for good; several senders at once), exactly one
//! copy when it works, and SES's reports (delivery, bounce, complaint)
//! carried back to the response through the mail-events queue.

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ticketing::adapters::aws::{self, AwsAdapters, SesMailer};
use ticketing::domain::MailRetry;
use ticketing::service::{MAIL_LEASE, Service};
use ticketing_tests::client::customer;
use ticketing_tests::faults::{Desk, DownEndpoint, fault_service, fault_settings, later, moto_mails_to, serve};
use ticketing_tests::{AwsSet, TestApp, TestConfig, moto_mail_endpoint};

/// A fault-test service whose SES is at `ses`, on tables of its own in moto.
struct Faulty {
    service: Service,
    ports: ticketing::ports::Ports,
    settings: aws::AwsSettings,
    adapters: AwsAdapters,
}

impl Faulty {
    async fn with_ses_at(ses: &DownEndpoint) -> Self {
        let settings = fault_settings();
        let adapters = AwsAdapters::new(&aws::sdk_config().await, &settings);
        aws::create_missing_resources(&adapters, &settings).await.unwrap();
        let ses_config = aws::sdk_config_at(Some(&ses.url())).await;
        let mut ports = adapters.ports();
        ports.mailer = Arc::new(SesMailer::new(
            aws_sdk_ses::Client::new(&ses_config),
            &settings.configuration_set,
        ));
        Self {
            service: fault_service(ports.clone(), &settings.mail_from),
            ports,
            settings,
            adapters,
        }
    }

    async fn drop_table(self) {
        ticketing_tests::faults::drop_table(&self.adapters, &self.settings).await;
    }
}

/// The ticket's first response's delivery, once `done` holds (the inline
/// send may still be recording when respond answers).
async fn delivery_when(desk: &Desk, ticket: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let d = desk.ticket(ticket).await["responses"][0]["delivery"].clone();
        if done(&d) || Instant::now() > deadline {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SES unreachable during respond: the response is stored and answered fast
/// with `pending`; the failed attempt is recorded with its reason and a
/// backoff. When SES is back, eight senders at once (the stream handler, the
/// sweeper, ticketd's loop...) deliver it: `sent`, and moto holds exactly one copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ses_down_during_respond_leaves_the_mail_pending_then_it_is_sent_exactly_once() {
    let mut ses = DownEndpoint::new();
    let f = Faulty::with_ses_at(&ses).await;
    let (service, ports, mail_from) = (f.service.clone(), f.ports.clone(), f.settings.mail_from.clone());
    let desk = Desk::open(&serve(service.clone()).await).await;
    let cust = customer();
    let id = desk.file_ticket(&cust).await;

    let started = Instant::now();
    let (status, r) = desk.respond(&id, "kept").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "respond took {:?}",
        started.elapsed()
    );
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["delivery"]["state"], "pending", "{r}");
    let d = delivery_when(&desk, &id, |d| d["attempts"] == 1).await;
    assert_eq!(d["state"], "pending", "{d}");
    assert_eq!(d["attempts"], 1, "{d}");
    assert_eq!(d["lastError"], "mail service unreachable", "{d}");
    assert!(d["nextAttemptAt"].is_string(), "{d}");

    ses.bring_back(moto_mail_endpoint().trim_start_matches("http://").to_owned())
        .await;
    assert_eq!(
        service.send_due_mail(10).await.unwrap(),
        0,
        "not due before its backoff"
    );
    let sweeper = fault_service(later(ports, MAIL_LEASE + Duration::from_secs(60)), &mail_from);
    let response_id = desk.ticket(&id).await["responses"][0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let ticket_id = id.parse().unwrap();
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let s = sweeper.clone();
            tokio::spawn(async move { s.deliver_mail(ticket_id, response_id).await })
        })
        .collect();
    for s in senders {
        s.await.unwrap().unwrap();
    }
    assert_eq!(sweeper.send_due_mail(10).await.unwrap(), 0, "nothing left to send");

    let d = desk.ticket(&id).await["responses"][0]["delivery"].clone();
    assert_eq!(d["state"], "sent", "{d}");
    assert!(d["messageId"].as_str().is_some_and(|m| !m.is_empty()), "{d}");
    let mails = moto_mails_to(&cust).await.unwrap();
    assert_eq!(mails.len(), 1, "exactly one copy");
    assert!(mails[0].text.starts_with("kept"));
    f.drop_table().await;
}

/// SES unreachable for good: each attempt is recorded, and after the last one
/// the mail is `failed` with the reason; the response and ticket are intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_failing_every_attempt_ends_failed_with_the_reason() {
    let ses = DownEndpoint::new();
    let f = Faulty::with_ses_at(&ses).await;
    // Three attempts, retried at once: the schedule's length is not the point here.
    let service = f.service.clone().with_mail_retry(MailRetry {
        delays: vec![Duration::ZERO; 2],
    });
    let desk = Desk::open(&serve(service.clone()).await).await;
    let cust = customer();
    let id = desk.file_ticket(&cust).await;
    let (status, r) = desk.respond(&id, "kept").await;
    assert_eq!(status, 201, "{r}");
    delivery_when(&desk, &id, |d| d["attempts"] == 1).await;

    assert_eq!(service.send_due_mail(10).await.unwrap(), 1);
    assert_eq!(desk.ticket(&id).await["responses"][0]["delivery"]["attempts"], 2);
    assert_eq!(service.send_due_mail(10).await.unwrap(), 1);
    let t = desk.ticket(&id).await;
    let d = &t["responses"][0]["delivery"];
    assert_eq!(d["state"], "failed", "{t}");
    assert_eq!(d["reason"], "mail service unreachable", "{t}");
    assert_eq!(t["responses"][0]["message"], "kept");
    assert_eq!(t["status"], "RESPONDED");
    assert_eq!(
        service.send_due_mail(10).await.unwrap(),
        0,
        "a failed mail is not retried"
    );
    assert!(moto_mails_to(&cust).await.unwrap().is_empty());
    f.drop_table().await;
}

/// A response whose email SES rejects (unverified sender) is kept, pending
/// with SES's reason, and sent by a later retry once the sender is verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_mail_keeps_the_response_pending_with_the_reason_until_it_is_sent() {
    let (deployment, h) = AwsSet.start_with_handle(quiet()).await.expect("starts on moto");
    let app = TestApp::on(deployment);
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let cust = customer();
    let id = app.new_ticket_id(&org, &cust).await;
    // Un-verify the sender: SES now rejects every send, as real SES does.
    h.adapters
        .ses
        .delete_identity()
        .identity(&h.settings.mail_from)
        .send()
        .await
        .unwrap();
    let r = app.respond(&admin.jwt, &id, "kept").await.expect(201);
    assert_eq!(r["delivery"]["state"], "pending", "{r}");
    assert!(
        r["delivery"]["lastError"].as_str().unwrap().contains("MessageRejected"),
        "{r}"
    );
    let t = app.ticket(&admin.jwt, &id).await;
    assert_eq!(t["status"], "RESPONDED");
    assert_eq!(t["responses"][0]["message"], "kept");
    assert_eq!(t["responses"][0]["delivery"]["state"], "pending");
    assert!(app.mails_to(&cust).await.is_empty());

    h.adapters
        .ses
        .verify_email_identity()
        .email_address(&h.settings.mail_from)
        .send()
        .await
        .unwrap();
    let sweeper = Service::new(
        later(h.adapters.ports(), Duration::from_secs(60)),
        &ticketing::service::Settings {
            limits: Default::default(),
            jwt_keys: ticketing::service::KeyConfig::Fixed(ticketing_tests::JWT_SECRET.into()),
            auto_close_after: Duration::from_secs(86_400),
            reopen_window: ticketing::service::DEFAULT_REOPEN_WINDOW,
            mail_from: h.settings.mail_from.clone(),
            signin: Default::default(),
            inbound: Default::default(),
        },
    )
    .unwrap();
    assert_eq!(sweeper.send_due_mail(10).await.unwrap(), 1);
    let t = app.ticket(&admin.jwt, &id).await;
    assert_eq!(t["responses"][0]["delivery"]["state"], "sent", "{t}");
    assert_eq!(app.mails_to(&cust).await.len(), 1);
    app.stop().await;
}

/// SES's notification for `message_id`, as its event destination publishes it.
fn notice(kind: &str, message_id: &str, ticket: &str, response: &str) -> Value {
    let mut n = json!({
        "eventType": kind,
        "mail": {
            "timestamp": "2026-01-02T03:04:00.000Z",
            "messageId": message_id,
            "tags": {"ticket": [ticket], "response": [response]}
        }
    });
    let at = "2026-01-02T03:04:05.000Z";
    match kind {
        "Bounce" => n["bounce"] = json!({"bounceType": "Permanent", "bounceSubType": "General", "timestamp": at}),
        "Complaint" => n["complaint"] = json!({"timestamp": at}),
        _ => n["delivery"] = json!({"timestamp": at}),
    }
    n
}

/// SES's reports, put into the mail-events queue as SNS puts them (in its
/// envelope, or raw), reach the response: bounced; delivered then
/// complained. A duplicate, or a delivery reported after the bounce, changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ses_reports_move_a_sent_mail_on_and_never_back() {
    let (deployment, h) = AwsSet.start_with_handle(quiet()).await.expect("starts on moto");
    let app = TestApp::on(deployment);
    let queue = aws::mail_events_queue_url(&h.adapters, &h.settings)
        .await
        .expect("the local mail-events queue");
    let put = |body: String| {
        let (sqs, queue) = (h.adapters.sqs().clone(), queue.clone());
        async move {
            sqs.send_message()
                .queue_url(queue)
                .message_body(body)
                .send()
                .await
                .unwrap();
        }
    };
    let via_sns =
        |n: Value| json!({"Type": "Notification", "MessageId": "sns-1", "Message": n.to_string()}).to_string();
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let mut sent = Vec::new();
    for _ in 0..2 {
        let id = app.new_ticket_id(&org, &customer()).await;
        let (r, delivery) = app.respond_and_send(&admin.jwt, &id, "kept").await;
        sent.push((
            id,
            r["id"].as_str().unwrap().to_owned(),
            delivery["messageId"].as_str().unwrap().to_owned(),
        ));
    }
    let (bounced, complained) = (&sent[0], &sent[1]);

    put(via_sns(notice("Bounce", &bounced.2, &bounced.0, &bounced.1))).await;
    assert_eq!(
        aws::poll_mail_events(&h.service, h.adapters.sqs(), &queue)
            .await
            .unwrap(),
        1
    );
    let d = &app.ticket(&admin.jwt, &bounced.0).await["responses"][0]["delivery"];
    assert_eq!(d["state"], "bounced", "{d}");
    assert_eq!(d["reason"], "Permanent: General");
    assert_eq!(d["messageId"], bounced.2.as_str());

    put(via_sns(notice("Bounce", &bounced.2, &bounced.0, &bounced.1))).await;
    put(notice("Delivery", &bounced.2, &bounced.0, &bounced.1).to_string()).await;
    put(notice("Delivery", &complained.2, &complained.0, &complained.1).to_string()).await;
    aws::poll_mail_events(&h.service, h.adapters.sqs(), &queue)
        .await
        .unwrap();
    let d = &app.ticket(&admin.jwt, &bounced.0).await["responses"][0]["delivery"];
    assert_eq!(
        d["state"], "bounced",
        "a repeat or a late delivery changes nothing: {d}"
    );
    let d = &app.ticket(&admin.jwt, &complained.0).await["responses"][0]["delivery"];
    assert_eq!(d["state"], "delivered", "{d}");

    put(notice("Complaint", &complained.2, &complained.0, &complained.1).to_string()).await;
    assert_eq!(
        aws::poll_mail_events(&h.service, h.adapters.sqs(), &queue)
            .await
            .unwrap(),
        1
    );
    let d = &app.ticket(&admin.jwt, &complained.0).await["responses"][0]["delivery"];
    assert_eq!(d["state"], "complained", "{d}");
    assert_eq!(
        aws::poll_mail_events(&h.service, h.adapters.sqs(), &queue)
            .await
            .unwrap(),
        0,
        "every message was taken off the queue"
    );
    app.stop().await;
}

/// A deployment whose reconcile loop runs once, at start: these tests read
/// the mail-events queue and send due mail themselves, and the loop would
/// race them for it.
fn quiet() -> TestConfig {
    TestConfig {
        reconcile_interval: Duration::from_secs(3600),
        ..TestConfig::default()
    }
}

/// Records the body of every SES request the client sends, as it goes on the wire.
#[derive(Debug, Clone, Default)]
struct WireBodies(Arc<std::sync::Mutex<Vec<String>>>);

impl aws_sdk_ses::config::Intercept for WireBodies {
    fn name(&self) -> &'static str {
        "WireBodies"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_ses::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_ses::config::RuntimeComponents,
        _: &mut aws_sdk_ses::config::ConfigBag,
    ) -> Result<(), aws_sdk_ses::error::BoxError> {
        let body = context.request().body().bytes().unwrap_or_default();
        self.0.lock().unwrap().push(String::from_utf8_lossy(body).into_owned());
        Ok(())
    }
}

/// Each response email goes to SES with the configuration set (whose event
/// destination reports on it) and tags naming its ticket and response, so
/// those reports find their way back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ses_sends_with_the_configuration_set_and_tags_naming_the_response() {
    let settings = fault_settings();
    let adapters = AwsAdapters::new(&aws::sdk_config().await, &settings);
    aws::create_missing_resources(&adapters, &settings).await.unwrap();
    let wire = WireBodies::default();
    let ses = aws_sdk_ses::Client::from_conf(
        aws_sdk_ses::config::Builder::from(&aws::sdk_config().await)
            .interceptor(wire.clone())
            .build(),
    );
    let mut ports = adapters.ports();
    ports.mailer = Arc::new(SesMailer::new(ses, &settings.configuration_set));
    let desk = Desk::open(&serve(fault_service(ports, &settings.mail_from)).await).await;
    let id = desk.file_ticket(&customer()).await;
    let (status, r) = desk.respond(&id, "tagged").await;
    assert_eq!(status, 201, "{r}");
    let d = delivery_when(&desk, &id, |d| d["state"] == "sent").await;
    assert_eq!(d["state"], "sent", "{d}");
    let bodies = wire.0.lock().unwrap().clone();
    let send = bodies
        .iter()
        .find(|b| b.contains("Action=SendEmail"))
        .expect("a SendEmail request");
    let response = r["id"].as_str().unwrap();
    for part in [
        format!("ConfigurationSetName={}", settings.configuration_set),
        "Tags.member.1.Name=ticket".to_owned(),
        format!("Tags.member.1.Value={id}"),
        "Tags.member.2.Name=response".to_owned(),
        format!("Tags.member.2.Value={response}"),
    ] {
        assert!(send.split('&').any(|p| p == part), "{part} missing from {send}");
    }
    ticketing_tests::faults::drop_table(&adapters, &settings).await;
}
