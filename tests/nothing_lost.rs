//! Nothing lost: with a dependency broken in the middle of the work (a
//! fault-injecting proxy in front of moto, or a job deleted from SQLite as a
//! crash would lose it), every RESPONDED ticket still ends up with its
//! schedule or closed, through ticketd's reconcile loop and the Lambda
//! handlers' code.

use std::time::{Duration, Instant};
use ticketing::adapters::aws::failures::{self, Failure};
use ticketing::adapters::aws::{CloseEvent, at_expression};
use ticketing::domain::Timestamp;
use ticketing_tests::client::customer;
use ticketing_tests::fault_proxy::{DYNAMODB, SCHEDULER};
use ticketing_tests::{AwsHandle, AwsSet, FaultyAws, MotoSchedule, TestApp, TestConfig};

const INTERVAL: Duration = Duration::from_millis(500);

async fn start_behind(proxy: &FaultyAws, auto_close_after: Duration) -> (TestApp, AwsHandle) {
    let config = TestConfig {
        auto_close_after,
        reconcile_interval: INTERVAL,
        aws_endpoint: Some(proxy.url.clone()),
        ..TestConfig::default()
    };
    let (deployment, handle) = AwsSet.start_with_handle(config).await.expect("starts on moto");
    (TestApp::on(deployment), handle)
}

fn ts(v: &serde_json::Value) -> Timestamp {
    Timestamp::parse_rfc3339(v.as_str().expect("a time")).expect("RFC 3339")
}

async fn schedule(h: &AwsHandle, ticket: &str) -> Option<MotoSchedule> {
    MotoSchedule::get(&h.adapters.schedules, &h.settings.schedule_group, ticket).await
}

/// Polls `check` until it gives a value or `within` passes.
async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Scheduler down while an admin responds: the response is acknowledged, the
/// schedule is missing; once Scheduler is back, the next reconcile ticks
/// create it at the ticket's `autoCloseAt`, and the ticket closes on time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_lost_to_a_scheduler_outage_is_reconciled_and_the_ticket_closes() {
    let proxy = FaultyAws::start().await;
    let (app, h) = start_behind(&proxy, Duration::from_secs(6)).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let id = app.new_ticket_id(&org, &customer()).await;

    proxy.fail(SCHEDULER);
    app.respond(&admin.jwt, &id, "answered during the outage")
        .await
        .expect(201);
    let responded = app.ticket(&admin.jwt, &id).await;
    assert_eq!(responded["status"], "RESPONDED");
    // Several ticks fail meanwhile; the change waits for Scheduler.
    tokio::time::sleep(INTERVAL * 3).await;
    assert!(proxy.refused(SCHEDULER) >= 2, "the respond and the ticks hit the fault");
    assert!(
        schedule(&h, &id).await.is_none(),
        "nothing created while Scheduler was down"
    );
    proxy.heal(SCHEDULER);

    // Within one interval, plus the tick under way when Scheduler came back
    // (its failing call may still be in its SDK retries: up to ~1.5 s).
    let s = eventually(INTERVAL + Duration::from_secs(2), || schedule(&h, &id))
        .await
        .expect("the reconciler created the missing schedule");
    assert_eq!(s.expression, at_expression(ts(&responded["autoCloseAt"])));
    assert_eq!(s.input["ticketId"], id.as_str());

    let closed = eventually(Duration::from_secs(15), || async {
        let t = app.ticket(&admin.jwt, &id).await;
        (t["status"] == "CLOSED").then_some(t)
    })
    .await
    .expect("the ticket closed");
    assert!(ts(&closed["closedAt"]) >= ts(&responded["autoCloseAt"]), "never early");
    app.stop().await;
}

/// The store down when the schedule fires: the close fails, Lambda's
/// on-failure record lands in the failure queue, and once the store is back
/// the sweeper closes the ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_that_fails_lands_in_the_failure_queue_and_the_sweeper_closes_the_ticket() {
    let proxy = FaultyAws::start().await;
    let (app, h) = start_behind(&proxy, Duration::from_secs(4)).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let id = app.new_ticket_id(&org, &customer()).await;
    app.respond(&admin.jwt, &id, "closes in 4 s").await.expect(201);
    let due = ts(&app.ticket(&admin.jwt, &id).await["autoCloseAt"]);
    assert!(schedule(&h, &id).await.is_some());

    proxy.fail(DYNAMODB);
    let url = failures::queue_url(h.adapters.sqs(), &h.settings.failure_queue_arn)
        .await
        .unwrap();
    let in_queue = eventually(Duration::from_secs(12), || async {
        let attrs = h
            .adapters
            .sqs()
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .ok()?;
        let n = |k: aws_sdk_sqs::types::QueueAttributeName| -> usize {
            attrs
                .attributes()
                .and_then(|a| a.get(&k))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let total = n(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            + n(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
        (total > 0).then_some(total)
    })
    .await;
    assert_eq!(in_queue, Some(1), "the failed close is in the failure queue");
    assert!(schedule(&h, &id).await.is_none(), "the schedule is gone (it fired)");
    assert!(Timestamp::now() >= due);
    proxy.heal(DYNAMODB);

    let closed = eventually(Duration::from_secs(10), || async {
        let t = app.ticket(&admin.jwt, &id).await;
        (t["status"] == "CLOSED").then_some(t)
    })
    .await
    .expect("the sweeper closed the ticket once the store was back");
    assert_eq!(closed["responses"].as_array().unwrap().len(), 1);
    app.stop().await;
}

/// The sweeper function's drain, given each kind of failure message: a close
/// retried from Lambda's on-failure record and from Scheduler's dead-letter
/// queue, each closing its ticket once; an unreadable message is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_retries_each_kind_of_failure_message() {
    let proxy = FaultyAws::start().await;
    let (app, h) = start_behind(&proxy, Duration::from_secs(30 * 86_400)).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let (a, b) = (
        app.new_ticket_id(&org, &customer()).await,
        app.new_ticket_id(&org, &customer()).await,
    );
    let mut events = Vec::new();
    for id in [&a, &b] {
        app.respond(&admin.jwt, id, "r").await.expect(201);
        let t = app.ticket(&admin.jwt, id).await;
        events.push(CloseEvent {
            ticket_id: id.parse().unwrap(),
            responded_at: ts(&t["respondedAt"]),
        });
    }
    // A queue of the test's own, so the deployment's reconciler stays out.
    let url = h
        .adapters
        .sqs()
        .create_queue()
        .queue_name(ticketing_tests::unique("drain-"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for body in [
        Failure::async_invoke_record(&events[0], "store unavailable"),
        serde_json::to_string(&events[1]).unwrap(),
        "not a failure we know".to_owned(),
    ] {
        h.adapters
            .sqs()
            .send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let drained = failures::drain(
        &h.service,
        &h.adapters,
        failures::Redrive::default(),
        &url,
        tokio::time::Instant::now() + Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!((drained.retried, drained.kept), (2, 1));
    for id in [&a, &b] {
        assert_eq!(app.ticket(&admin.jwt, id).await["status"], "CLOSED", "{id}");
    }
    app.stop().await;
}

/// Embedded: the process dies between the ticket's commit and the close job's
/// write (played by deleting the job row), and the job runner has nothing to
/// run; the sweep still closes the ticket when it falls due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_job_lost_between_commit_and_scheduling_is_swept_on_embedded() {
    let config = TestConfig {
        auto_close_after: Duration::from_secs(2),
        reconcile_interval: INTERVAL,
        ..TestConfig::default()
    };
    let (deployment, db) = ticketing_tests::EmbeddedSet.start_with_db(config).await.unwrap();
    let app = TestApp::on(deployment);
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let id = app.new_ticket_id(&org, &customer()).await;
    app.respond(&admin.jwt, &id, "r").await.expect(201);
    let due = ts(&app.ticket(&admin.jwt, &id).await["autoCloseAt"]);
    let lost = db
        .write(|tx| Ok(tx.execute("DELETE FROM close_jobs", [])?))
        .await
        .unwrap();
    assert_eq!(lost, 1, "the close job was written, and is now lost");
    let closed = eventually(Duration::from_secs(8), || async {
        let t = app.ticket(&admin.jwt, &id).await;
        (t["status"] == "CLOSED").then_some(t)
    })
    .await
    .expect("the sweep closed the ticket");
    assert!(ts(&closed["closedAt"]) >= due, "never early");
    app.stop().await;
}

/// One row of the fault matrix: what broke, and when.
struct Fault {
    name: &'static str,
    /// Broken while the admin responds (and for a few ticks after).
    during_respond: &'static [&'static str],
    /// Broken from just before the auto-close falls due until after it.
    at_due: &'static [&'static str],
}

/// The fault matrix: for each single failure (and two double ones), three
/// tickets go through respond and auto-close with the dependency broken at
/// the worst moment, then healed. Counted: tickets not closed (lost
/// auto-closes), responses whose customer did not get exactly one email
/// (lost or duplicated), and webhook messages (`ticket.responded`,
/// `ticket.auto_closed`, one each per ticket) the org's endpoint never got.
/// The figures are printed for the record; the goal (and the assertion) is
/// 0 of each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix_loses_no_auto_close_no_email_and_no_webhook() {
    use ticketing_tests::fault_proxy::{SES, SQS, STREAMS};
    const PER_ROW: usize = 3;
    let matrix = [
        Fault {
            name: "none",
            during_respond: &[],
            at_due: &[],
        },
        Fault {
            name: "Scheduler down during respond",
            during_respond: &[SCHEDULER],
            at_due: &[],
        },
        Fault {
            name: "SES down during respond",
            during_respond: &[SES],
            at_due: &[],
        },
        Fault {
            name: "DynamoDB down when the schedule fires",
            during_respond: &[],
            at_due: &[DYNAMODB],
        },
        Fault {
            name: "Scheduler + stream down during respond",
            during_respond: &[SCHEDULER, STREAMS],
            at_due: &[],
        },
        Fault {
            name: "DynamoDB + SQS down when the schedule fires",
            during_respond: &[],
            at_due: &[DYNAMODB, SQS],
        },
    ];
    let auto_close = Duration::from_secs(5);
    let proxy = FaultyAws::start().await;
    let (app, _h) = start_behind(&proxy, auto_close).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let receiver = ticketing_tests::Receiver::start().await;
    let hook = app
        .create_webhook(&admin.jwt, &receiver.url(), &["ticket.responded", "ticket.auto_closed"])
        .await
        .expect(201);
    receiver.trust(hook["secret"].as_str().unwrap());
    // Per ticket, the webhook messages of each type it never got.
    let missing_hooks = |ids: &[String]| {
        let got = receiver.received();
        let mut missing = 0;
        for id in ids {
            for kind in ["ticket.responded", "ticket.auto_closed"] {
                let ok = got.iter().any(|r| {
                    r.verified
                        && r.answered == 200
                        && r.body["type"] == kind
                        && r.body["data"]["ticket"]["id"] == id.as_str()
                });
                missing += usize::from(!ok);
            }
        }
        missing
    };
    let mut report = Vec::new();
    for fault in &matrix {
        let refused_before: usize = [SCHEDULER, SES, DYNAMODB, STREAMS, SQS]
            .iter()
            .map(|s| proxy.refused(s))
            .sum();
        let customers: Vec<String> = (0..PER_ROW).map(|_| customer()).collect();
        let mut ids = Vec::new();
        for c in &customers {
            ids.push(app.new_ticket_id(&org, c).await);
        }
        for s in fault.during_respond {
            proxy.fail(s);
        }
        // When each falls due, from the respond's own answer: under load the
        // first may already be closed by the time a GET could ask.
        let mut due_at = Vec::new();
        for id in &ids {
            let responded = app.respond(&admin.jwt, id, "answered").await.expect(201);
            due_at.push(ts(&responded["ticket"]["autoCloseAt"]));
        }
        tokio::time::sleep(INTERVAL * 3).await;
        for s in fault.during_respond {
            proxy.heal(s);
        }
        if !fault.at_due.is_empty() {
            // Break it just before the first ticket falls due, keep it broken
            // until the last one's schedule has fired.
            tokio::time::sleep(
                Duration::from_millis(Timestamp::now().until(due_at[0]).as_millis() as u64)
                    .saturating_sub(Duration::from_millis(300)),
            )
            .await;
            for s in fault.at_due {
                proxy.fail(s);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            for s in fault.at_due {
                proxy.heal(s);
            }
        }
        // Recovery: the sweeps, the stream's retries, the mail retries (the
        // first comes 30 s after a failed send).
        let settled = eventually(Duration::from_secs(90), || async {
            let mut open = 0;
            for id in &ids {
                open += usize::from(app.ticket(&admin.jwt, id).await["status"] != "CLOSED");
            }
            let mut wrong_mail = 0;
            for c in &customers {
                wrong_mail += usize::from(app.mails_to(c).await.len() != 1);
            }
            (open == 0 && wrong_mail == 0).then_some(())
        })
        .await;
        // Webhook messages: a little longer for the last deliveries.
        eventually(Duration::from_secs(20), || async {
            (missing_hooks(&ids) == 0).then_some(())
        })
        .await;
        let lost_hooks = missing_hooks(&ids);
        let mut lost_closes = 0;
        let mut lost_mails = 0;
        for (id, c) in ids.iter().zip(&customers) {
            lost_closes += usize::from(app.ticket(&admin.jwt, id).await["status"] != "CLOSED");
            lost_mails += usize::from(app.mails_to(c).await.len() != 1);
        }
        let refused = [SCHEDULER, SES, DYNAMODB, STREAMS, SQS]
            .iter()
            .map(|s| proxy.refused(s))
            .sum::<usize>()
            - refused_before;
        let outcome = if settled.is_some() {
            "settled"
        } else {
            "NOT settled in 90 s"
        };
        println!(
            "| {} | {PER_ROW} | {refused} | {lost_closes} | {lost_mails} | {lost_hooks} | {outcome} |",
            fault.name
        );
        // A row whose fault never bit proves nothing.
        assert!(
            fault.during_respond.is_empty() && fault.at_due.is_empty() || refused > 0,
            "{}: no call was refused",
            fault.name
        );
        report.push((fault.name, lost_closes, lost_mails, lost_hooks));
    }
    app.stop().await;
    for (name, closes, mails, hooks) in report {
        assert_eq!(
            (closes, mails, hooks),
            (0, 0, 0),
            "{name}: lost auto-closes, wrong email counts, undelivered webhook messages"
        );
    }
}

/// An endpoint that fails every attempt for 24 hours is disabled at its next
/// failure, and its org's admins are emailed once the notice sweep runs (a
/// clock 25 hours ahead plays the day; embedded ports, the service's own
/// dispatcher round). Its failed delivery is purged 30 days later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_for_a_day_is_disabled_and_its_admins_told() {
    use ticketing::adapters::embedded::{Embedded, recent_mail};
    use ticketing_tests::faults::{Desk, fault_service, http, later, serve};
    let dir = tempfile::tempdir().unwrap();
    let embedded = Embedded::open(
        &dir.path().join("t.db"),
        std::sync::Arc::new(ticketing::ports::SystemClock),
    )
    .unwrap()
    .allow_private_webhooks();
    let service = fault_service(embedded.ports(), "support@faults.example.com");
    let base = serve(service.clone()).await;
    let desk = Desk::open(&base).await;
    let receiver = ticketing_tests::Receiver::start().await;
    receiver.answer(&[503; 20]);
    let hook = desk.create_webhook(&receiver.url(), &["ticket.created"]).await;
    desk.file_ticket(&customer()).await;
    let dispatcher = embedded.webhook_dispatcher();
    assert_eq!(dispatcher.round(&service).await.unwrap(), 1, "the first attempt");
    let (_, _, list) = http(reqwest::Method::GET, format!("{base}/webhooks"), Some(&desk.jwt), None).await;
    assert_eq!(list["webhooks"][0]["enabled"], true, "{list}");
    assert!(list["webhooks"][0]["failingSince"].is_string(), "{list}");

    // A day and an hour later the retry fails too: disabled, admins told.
    let tomorrow = fault_service(
        later(embedded.ports(), Duration::from_secs(25 * 3600)),
        "support@faults.example.com",
    );
    assert_eq!(dispatcher.round(&tomorrow).await.unwrap(), 1, "the retry, due long ago");
    let (_, _, list) = http(reqwest::Method::GET, format!("{base}/webhooks"), Some(&desk.jwt), None).await;
    let disabled = &list["webhooks"][0];
    assert_eq!(disabled["enabled"], false, "{list}");
    assert_eq!(disabled["disabledReason"], "failing", "{list}");
    let hook_id = hook["id"].as_str().unwrap();
    let notices: Vec<_> = recent_mail(&embedded.db, 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.subject.contains("webhook"))
        .collect();
    assert_eq!(notices.len(), 1, "one notice for the one admin");
    assert!(notices[0].text.contains(hook_id));
    assert!(notices[0].to.starts_with("a@"), "{}", notices[0].to);
    // Told once: another round sends no second notice, and nothing is sent to the endpoint.
    let before = receiver.received().len();
    dispatcher.round(&tomorrow).await.unwrap();
    let again = recent_mail(&embedded.db, 50).await.unwrap();
    assert_eq!(again.iter().filter(|m| m.subject.contains("webhook")).count(), 1);
    assert_eq!(receiver.received().len(), before);

    // Deliveries are kept 30 days, then the hourly purge removes the
    // finished ones; a pending one stays until it ends.
    let deliveries = format!("{base}/webhooks/{hook_id}/deliveries");
    let next_month = fault_service(
        later(embedded.ports(), Duration::from_secs(31 * 86_400)),
        "support@faults.example.com",
    );
    assert_eq!(dispatcher.purge(&tomorrow).await.unwrap(), 0, "a day old: kept");
    assert_eq!(dispatcher.purge(&next_month).await.unwrap(), 0, "still pending: kept");
    let (_, _, list) = http(reqwest::Method::GET, deliveries.clone(), Some(&desk.jwt), None).await;
    assert_eq!(list["deliveries"][0]["state"], "pending", "{list}");
    dispatcher.round(&next_month).await.unwrap(); // its next attempt finds the endpoint disabled
    let (_, _, list) = http(reqwest::Method::GET, deliveries.clone(), Some(&desk.jwt), None).await;
    assert_eq!(list["deliveries"][0]["state"], "failed", "{list}");
    assert_eq!(
        dispatcher.purge(&next_month).await.unwrap(),
        1,
        "31 days old and failed: removed"
    );
    let (_, _, list) = http(reqwest::Method::GET, deliveries, Some(&desk.jwt), None).await;
    assert_eq!(list["deliveries"], serde_json::json!([]), "{list}");
}

/// AWS: a webhook message the table stream never fanned out (an outage past
/// its 24 h retention; here, no stream reader at all) keeps its outbox mark,
/// and the sweeper fans it out and delivers it once it is
/// [`MISSED_AFTER`](ticketing::adapters::aws::MISSED_AFTER) old, never before
/// and never twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_message_the_stream_missed_is_fanned_out_by_the_sweeper() {
    use ticketing::adapters::aws::{self, AwsAdapters, MISSED_AFTER, Sweeper};
    use ticketing_tests::faults::{Desk, drop_table, fault_service, fault_settings, later, serve};
    let settings = fault_settings();
    let adapters = AwsAdapters::new(&aws::sdk_config().await, &settings).allow_private_webhooks();
    aws::create_missing_resources(&adapters, &settings).await.unwrap();
    let service = fault_service(adapters.ports(), &settings.mail_from);
    let base = serve(service.clone()).await;
    let desk = Desk::open(&base).await;
    let receiver = ticketing_tests::Receiver::start().await;
    let hook = desk.create_webhook(&receiver.url(), &["ticket.created"]).await;
    receiver.trust(hook["secret"].as_str().unwrap());
    let ticket = desk.file_ticket(&customer()).await;

    // Now: the message is too young to count as missed; nothing is sent.
    let window = Duration::from_secs(30);
    let (now, _) = Sweeper::new(service.clone(), adapters.clone(), &settings)
        .run(window)
        .await;
    assert_eq!((now.missed_messages, now.webhooks_attempted), (0, 0), "{now:?}");
    // Later: fanned out and delivered in the same sweep.
    let later = fault_service(
        later(adapters.ports(), MISSED_AFTER + Duration::from_secs(60)),
        &settings.mail_from,
    );
    let sweeper = Sweeper::new(later, adapters.clone(), &settings);
    let (swept, _) = sweeper.run(window).await;
    // Two messages (the ticket was created and assigned to the one admin);
    // the endpoint subscribed to one of them.
    assert_eq!((swept.missed_messages, swept.webhooks_attempted), (2, 1), "{swept:?}");
    let got = receiver.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].verified && got[0].answered == 200);
    assert_eq!(got[0].body["type"], "ticket.created");
    assert_eq!(got[0].body["data"]["ticket"]["id"], ticket.as_str());
    // Its mark is gone: the next sweep finds nothing.
    let (again, _) = sweeper.run(window).await;
    assert_eq!((again.missed_messages, again.webhooks_attempted), (0, 0), "{again:?}");
    assert_eq!(receiver.received().len(), 1);
    drop_table(&adapters, &settings).await;
}

/// SES's invocation of inbound-email failing for longer than Lambda's
/// retries (the store down throughout): Lambda's on-failure record, the SES
/// receipt event, lands in the failure queue; once the store is back the
/// sweeper's drain reads the raw mail again from S3 and the customer's reply
/// lands on its ticket, once (a late redelivery is a duplicate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_reply_failing_past_its_retries_lands_once_the_store_is_back() {
    use ticketing::adapters::aws::inbound_mail::{InboundBucket, SesReceiptEvent, handle_ses_event};
    use ticketing_tests::inbound::{Vars, fixture};
    let proxy = FaultyAws::start().await;
    let domain = format!("in.{}.example", ticketing_tests::unique("d"));
    let config = TestConfig {
        aws_endpoint: Some(proxy.url.clone()),
        inbound: Some((domain.clone(), "inbound-token-for-tests-0123456789".into())),
        ..TestConfig::default()
    };
    let (deployment, h) = AwsSet.start_with_handle(config).await.expect("starts on moto");
    let app = TestApp::on(deployment);
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let who = customer();
    let id = app.new_ticket_id(&org, &who).await;
    let (response, _) = app.respond_and_send(&admin.jwt, &id, "Try the other tray.").await;
    let key = app.deployment.reply_key().await.expect("the reply key");
    let ticket_id = id.parse().expect("a ticket id");
    let address = key.address(ticket_id, &domain);
    let message_id = key.message_id(ticket_id, response["id"].as_str().unwrap().parse().unwrap(), &domain);
    let raw = fixture(
        "gmail-reply.eml",
        &Vars {
            to: &address,
            from: &who,
            ticket: &id,
            in_reply_to: &message_id,
        },
    );

    // Where SES's S3 action leaves the message, and the receipt event naming it.
    let bucket = InboundBucket {
        bucket: ticketing_tests::unique("inbound-"),
        prefix: "inbound/".into(),
    };
    let s3 = h.adapters.s3();
    s3.create_bucket()
        .bucket(&bucket.bucket)
        .send()
        .await
        .expect("a bucket");
    let ses_id = ticketing_tests::unique("ses");
    s3.put_object()
        .bucket(&bucket.bucket)
        .key(format!("{}{ses_id}", bucket.prefix))
        .body(raw.into())
        .send()
        .await
        .expect("stored");
    let event_json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/inbound-email.json"))
            .unwrap()
            .replace("<SES_MESSAGE_ID>", &ses_id)
            .replace("<RECIPIENT>", &address)
            .replace("<SPAM_VERDICT>", "PASS"),
    )
    .unwrap();
    let event = || serde_json::from_value::<SesReceiptEvent>(event_json.clone()).unwrap();

    // The first invocation and Lambda's two retries, all with the store down.
    proxy.fail(DYNAMODB);
    for attempt in 0..3 {
        let out = handle_ses_event(&h.service, s3, &bucket, event()).await;
        assert!(out.is_err(), "attempt {attempt} cannot apply the mail: {out:?}");
    }
    // Lambda gives up and writes its on-failure record (a queue of the
    // test's own, so the deployment's sweeper, which has no bucket, stays out).
    let url = h
        .adapters
        .sqs()
        .create_queue()
        .queue_name(ticketing_tests::unique("inbound-failures-"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    h.adapters
        .sqs()
        .send_message()
        .queue_url(&url)
        .message_body(Failure::async_invoke_record(&event_json, "store unavailable"))
        .send()
        .await
        .unwrap();
    let replies = |t: &serde_json::Value| {
        t["messages"]
            .as_array()
            .map(|ms| ms.iter().filter(|m| m["kind"] == "reply").count())
            .unwrap_or(0)
    };
    proxy.heal(DYNAMODB);
    assert_eq!(replies(&app.ticket(&admin.jwt, &id).await), 0, "nothing applied yet");

    let redrive = failures::Redrive { inbound: Some(&bucket) };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let drained = failures::drain(&h.service, &h.adapters, redrive, &url, deadline)
        .await
        .unwrap();
    assert_eq!((drained.retried, drained.kept), (1, 0));
    let t = app.ticket(&admin.jwt, &id).await;
    assert_eq!(replies(&t), 1, "the reply landed: {t}");
    assert_eq!(t["status"], "OPEN", "and reopened the RESPONDED ticket");
    // A late redelivery (SES, or a second copy of the record) changes nothing.
    let again = handle_ses_event(&h.service, s3, &bucket, event()).await.unwrap();
    assert_eq!(again[0].name(), "duplicate");
    assert_eq!(replies(&app.ticket(&admin.jwt, &id).await), 1);
    let empty = failures::drain(&h.service, &h.adapters, redrive, &url, deadline)
        .await
        .unwrap();
    assert_eq!((empty.retried, empty.kept), (0, 0), "the record went once handled");
    app.stop().await;
}
