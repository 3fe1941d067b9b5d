//! Inbound email (issue 9) through ticketd's `POST /inbound/email`, on each
//! adapter set: the fixture messages (tests/fixtures/inbound) as an MTA
//! would pipe them, applied once, dropped or rejected as the rules say.

use serde_json::Value;
use ticketing_tests::client::customer;
use ticketing_tests::inbound::{Vars, fixture, post_mail};
use ticketing_tests::{AdapterSet, TestApp, TestConfig, unique};

const TOKEN: &str = "inbound-token-for-tests-0123456789";

fn replies(ticket: &Value) -> Vec<String> {
    ticket["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["kind"] == "reply")
        .map(|m| m["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Each fixture lands as the rules say: client replies join the ticket with
/// their quoted history cut (reopening it first), a redelivered Message-ID
/// is applied once, auto-replies, bounces and spam are dropped, a forged
/// address or another sender is refused; a reply found only through
/// `In-Reply-To` still lands. The route wants its token and content type.
pub async fn inbound_email_fixtures_reach_their_ticket_once(set: &dyn AdapterSet) {
    let domain = format!("in.{}.example", unique("d"));
    let config = TestConfig {
        inbound: Some((domain.clone(), TOKEN.into())),
        ..TestConfig::default()
    };
    let app = TestApp::start(set, config).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let who = customer();
    let id = app.new_ticket_id(&org, &who).await;
    let (response, _) = app
        .respond_and_send(&admin.jwt, &id, "Have you tried turning it off and on again?")
        .await;

    let key = app.deployment.reply_key().await.expect("the reply key");
    let ticket_id = id.parse().expect("a ticket id");
    let address = key.address(ticket_id, &domain);
    let message_id = key.message_id(ticket_id, response["id"].as_str().unwrap().parse().unwrap(), &domain);
    let mails = app.mails_to(&who).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].text.contains("reply to this email within"),
        "{:?}",
        mails[0].text
    );
    if let Some(reply_to) = &mails[0].reply_to {
        assert_eq!(reply_to, &address);
    }

    let vars = Vars {
        to: &address,
        from: &who.to_uppercase(),
        ticket: &id,
        in_reply_to: &message_id,
    };
    let send = |name: &'static str| {
        let raw = fixture(name, &vars);
        let app = &app;
        async move { post_mail(app, TOKEN, raw).await.expect(200)["outcome"].clone() }
    };
    assert_eq!(send("gmail-reply.eml").await, "applied");
    let t = app.ticket(&admin.jwt, &id).await;
    assert_eq!(t["status"], "OPEN", "the reply reopened the RESPONDED ticket: {t}");
    assert_eq!(
        replies(&t),
        ["No, it is still broken \u{2014} the tray jams after two pages.\n\nCarla"]
    );
    assert_eq!(send("duplicate-message-id.eml").await, "duplicate");
    assert_eq!(send("gmail-reply.eml").await, "duplicate", "a redelivery");
    for name in [
        "outlook-reply.eml",
        "apple-mail-reply.eml",
        "html-only.eml",
        "iso-8859-1.eml",
        "in-reply-to-only.eml",
    ] {
        assert_eq!(send(name).await, "applied", "{name}");
    }
    assert_eq!(send("out-of-office.eml").await, "dropped:auto_reply");
    assert_eq!(send("dsn-bounce.eml").await, "dropped:bounce");
    assert_eq!(send("spam-verdict.eml").await, "dropped:spam");
    assert_eq!(send("forged-token.eml").await, "rejected:forged_address");
    assert_eq!(send("wrong-sender.eml").await, "rejected:wrong_sender");
    let history = app
        .get(&format!("/tickets/{id}/events?limit=100"), Some(&admin.jwt))
        .await
        .expect(200);
    let rejected: Vec<_> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "inboundRejected")
        .collect();
    assert_eq!(rejected.len(), 1, "the wrong sender is in the history: {history}");
    assert_eq!(rejected[0]["reason"], "wrong_sender");
    let replied = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "replied")
        .count();
    assert_eq!(replied, 6, "each applied email once: {history}");

    let t = app.ticket(&admin.jwt, &id).await;
    let got = replies(&t);
    assert_eq!(got.len(), 6, "{got:#?}");
    assert_eq!(
        got[1],
        "Hi,\n\nIt worked after the reset, thanks. You can close it.\n\nRegards,\nCarla"
    );
    assert_eq!(got[2], "Which model number do you need? It says LX-200 on the back.");
    assert_eq!(
        got[3],
        "The new toner & drum did not help.\n\nIt still prints grey stripes."
    );
    assert!(
        got[4].starts_with("Bonjour,\n\nLe probl\u{e8}me est r\u{e9}solu"),
        "{}",
        got[4]
    );
    assert!(got[5].starts_with("My client dropped the reply address"), "{}", got[5]);

    // Token and content type.
    let raw = fixture("gmail-reply.eml", &vars);
    let r = post_mail(&app, "wrong-token", raw.clone()).await;
    r.expect_error(401, "unauthorized", None);
    let r = app
        .raw(
            reqwest::Method::POST,
            "/inbound/email",
            &[("content-type", "text/plain"), ("x-inbound-token", TOKEN)],
            Some(raw),
        )
        .await;
    r.expect_error(400, "invalid_request", Some("Content-Type"));
    app.stop().await;
}

/// Without an inbound domain and token the route is not there, and response
/// mail says how else to follow up, instead of inviting a reply that would
/// go nowhere.
pub async fn without_inbound_email_mail_says_how_to_follow_up(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let who = customer();
    let id = app.new_ticket_id(&org, &who).await;
    app.respond_and_send(&admin.jwt, &id, "Fixed.").await;
    let mails = app.mails_to(&who).await;
    assert!(
        mails[0].text.contains("Replies to this email are not read"),
        "{:?}",
        mails[0].text
    );
    assert!(mails[0].text.contains(&id));
    assert_eq!(mails[0].reply_to, None);
    let raw = b"From: a@b.example\r\n\r\nhi\r\n".to_vec();
    post_mail(&app, TOKEN, raw).await.expect_error(404, "not_found", None);
    app.stop().await;
}

/// A ticket with a response mailed, and what a reply to it is addressed with.
struct Thread {
    app: TestApp,
    admin: ticketing_tests::client::AdminHandle,
    id: String,
    who: String,
    address: String,
    in_reply_to: String,
}

impl Thread {
    async fn start(set: &dyn AdapterSet, limits: ticketing::domain::limits::Limits) -> Self {
        let domain = format!("in.{}.example", unique("d"));
        let config = TestConfig {
            inbound: Some((domain.clone(), TOKEN.into())),
            limits,
            ..TestConfig::default()
        };
        let app = TestApp::start(set, config).await;
        let org = app.new_org().await;
        let admin = app.new_admin(&org).await;
        let who = customer();
        let id = app.new_ticket_id(&org, &who).await;
        let response = app.respond(&admin.jwt, &id, "Turn it off and on.").await.expect(201);
        let key = app.deployment.reply_key().await.expect("the reply key");
        let ticket_id = id.parse().expect("a ticket id");
        let response_id = response["id"].as_str().unwrap().parse().unwrap();
        Self {
            address: key.address(ticket_id, &domain),
            in_reply_to: key.message_id(ticket_id, response_id, &domain),
            app,
            admin,
            id,
            who,
        }
    }

    /// Posts the fixture as the MTA would; the outcome.
    async fn send(&self, name: &str) -> Value {
        self.send_raw(self.raw(name)).await
    }

    fn raw(&self, name: &str) -> Vec<u8> {
        let vars = Vars {
            to: &self.address,
            from: &self.who,
            ticket: &self.id,
            in_reply_to: &self.in_reply_to,
        };
        fixture(name, &vars)
    }

    async fn send_raw(&self, raw: Vec<u8>) -> Value {
        post_mail(&self.app, TOKEN, raw).await.expect(200)["outcome"].clone()
    }

    async fn events(&self, kind: &str) -> Vec<Value> {
        let history = self
            .app
            .get(&format!("/tickets/{}/events?limit=100", self.id), Some(&self.admin.jwt))
            .await
            .expect(200);
        history["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == kind)
            .cloned()
            .collect()
    }
}

/// The dedupe of emailed replies is keyed by ticket, checked sender and
/// Message-ID: a stranger who sends the customer's Message-ID first is
/// refused as the wrong sender and takes nothing from the real reply.
pub async fn a_strangers_message_id_cannot_preempt_the_customers_reply(set: &dyn AdapterSet) {
    let t = Thread::start(set, Default::default()).await;
    assert_eq!(t.send("stranger-first.eml").await, "rejected:wrong_sender");
    assert_eq!(t.send("gmail-reply.eml").await, "applied", "the customer's own reply");
    assert_eq!(t.send("duplicate-message-id.eml").await, "duplicate", "its redelivery");
    let ticket = t.app.ticket(&t.admin.jwt, &t.id).await;
    assert_eq!(replies(&ticket).len(), 1, "{ticket}");
    t.app.stop().await;
}

/// Mail whose `From` domain is not authenticated by the trusted MTA's
/// `Authentication-Results` (SPF or DKIM pass, DMARC not failing) is refused;
/// refusals reach the history once per hour, however many; the applied
/// reply records how its sender was authenticated.
pub async fn unauthenticated_senders_are_refused_and_recorded_once(set: &dyn AdapterSet) {
    let t = Thread::start(set, Default::default()).await;
    for name in ["spf-fail.eml", "dmarc-fail.eml", "forged-auth-results.eml"] {
        assert_eq!(t.send(name).await, "rejected:unauthenticated", "{name}");
    }
    for n in 0..3 {
        // Each a new message (other bytes), from a stranger.
        let mut raw = format!("X-Attempt: {n}\r\n").into_bytes();
        raw.extend(t.raw("wrong-sender.eml"));
        assert_eq!(t.send_raw(raw).await, "rejected:wrong_sender");
    }
    let refused = t.events("inboundRejected").await;
    assert_eq!(refused.len(), 1, "six refusals, one history event: {refused:?}");
    assert_eq!(refused[0]["reason"], "unauthenticated");
    assert_eq!(t.send("gmail-reply.eml").await, "applied");
    let replied = t.events("replied").await;
    assert_eq!(replied.len(), 1, "{replied:?}");
    assert_eq!(replied[0]["senderAuth"], "dmarc", "{replied:?}");
    t.app.stop().await;
}

/// An emailed reply that a limit refuses is kept on the ticket (held: it
/// does not reopen it) with a `replyHeld` event, never dropped.
pub async fn emailed_replies_past_a_limit_are_held_on_the_ticket(set: &dyn AdapterSet) {
    let limits = ticketing::domain::limits::Limits {
        reopens_per_ticket: ticketing::domain::limits::Rate::new(1, std::time::Duration::from_secs(3600)),
        ..Default::default()
    };
    let t = Thread::start(set, limits).await;
    assert_eq!(t.send("gmail-reply.eml").await, "applied", "the first reopen");
    t.app
        .respond(&t.admin.jwt, &t.id, "Try this instead.")
        .await
        .expect(201);
    assert_eq!(t.send("outlook-reply.eml").await, "held:reopens_per_ticket");
    assert_eq!(
        t.send("outlook-reply.eml").await,
        "duplicate",
        "a redelivery of the held one"
    );
    let ticket = t.app.ticket(&t.admin.jwt, &t.id).await;
    assert_eq!(ticket["status"], "RESPONDED", "held: not reopened: {ticket}");
    let kept = replies(&ticket);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept[1].starts_with("Hi,"), "{kept:?}");
    let held = t.events("replyHeld").await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["reason"], "reopens_per_ticket");
    t.app.stop().await;
}
