//! Sign-in when one email has accounts in several orgs, and sign-in
//! throttling that counts per client (issue 11, holes 2 and 3).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::time::Duration;
use ticketing_tests::client::{OrgHandle, PASSWORD, customer};
use ticketing_tests::{AdapterSet, TestApp, TestConfig, unique};

/// The org a sign-in's token is for.
fn token_org(reply: &Value) -> String {
    let jwt = reply["jwt"].as_str().expect("a token");
    let payload = jwt.split('.').nth(1).expect("three parts");
    let claims: Value = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
    claims["org"].as_str().unwrap().to_owned()
}

async fn signup(app: &TestApp, org: &OrgHandle, email: &str, password: &str) -> ticketing_tests::Reply {
    app.post(
        "/auth/admin/signup",
        None,
        json!({"firstName": "Bo", "lastName": "Ss", "email": email, "password": password, "secret": org.secret}),
    )
    .await
}

/// Another org signing up `boss@<your domain>` first neither blocks you nor
/// tells you: the owner signs up and signs into their own org, the squatter
/// into theirs. A password that fits accounts in several orgs needs
/// `orgDomain` (409 says so); with it, only that org's account is checked.
pub async fn an_email_taken_in_another_org_blocks_and_reveals_nothing(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let owner = app.new_org().await;
    let squatter = app.new_org().await;
    let boss = format!("{}@{}", unique("boss"), owner.domain);
    let squatted = signup(&app, &squatter, &boss, "squatter's password").await.expect(201);
    let real = signup(&app, &owner, &boss.to_uppercase(), PASSWORD).await.expect(201);
    assert_ne!(real["id"], squatted["id"]);
    signup(&app, &owner, &boss, "another password")
        .await
        .expect_error(409, "conflict", None);

    let signed_in = app.signin(&boss, PASSWORD).await.expect(200);
    assert_eq!(token_org(&signed_in), owner.id);
    let theirs = app.signin(&boss, "squatter's password").await.expect(200);
    assert_eq!(token_org(&theirs), squatter.id);
    app.signin(&boss, "nobody's password")
        .await
        .expect_error(401, "unauthorized", None);

    // Filtering by that email finds the caller's own org's admin only.
    let ours = app.new_ticket(&owner, &customer()).await;
    let other = app.new_ticket(&squatter, &customer()).await;
    for (reply, ticket, admin) in [(&signed_in, &ours, &real), (&theirs, &other, &squatted)] {
        let list = app
            .get(&format!("/tickets?adminEmail={boss}"), reply["jwt"].as_str())
            .await
            .expect(200);
        let ids: Vec<&Value> = list["tickets"].as_array().unwrap().iter().map(|t| &t["id"]).collect();
        assert_eq!(ids, vec![&ticket["id"]]);
        assert_eq!(list["tickets"][0]["adminId"], admin["id"]);
    }

    // Same email and password in a third org: the password no longer picks one.
    let third = app.new_org().await;
    signup(&app, &third, &boss, PASSWORD).await.expect(201);
    let ambiguous = app.signin(&boss, PASSWORD).await;
    assert!(
        ambiguous.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("orgDomain"),
        "{}",
        ambiguous.body
    );
    ambiguous.expect_error(409, "conflict", None);
    let chosen = app.signin_to(&boss, PASSWORD, &owner.domain).await.expect(200);
    assert_eq!(token_org(&chosen), owner.id);
    let chosen = app
        .signin_to(&boss, PASSWORD, &third.domain.to_uppercase())
        .await
        .expect(200);
    assert_eq!(token_org(&chosen), third.id);
    // Only the named org's account is checked.
    app.signin_to(&boss, "squatter's password", &owner.domain)
        .await
        .expect_error(401, "unauthorized", None);
    let unrelated = app.new_org().await;
    app.signin_to(&boss, PASSWORD, &unrelated.domain)
        .await
        .expect_error(401, "unauthorized", None);
    app.signin_to(&boss, PASSWORD, "not a domain")
        .await
        .expect_error(400, "invalid_request", Some("orgDomain"));
    app.stop().await;
}

/// An email with accounts in more orgs than one sign-in checks (5): the
/// password is checked against the oldest orgs' accounts, and a wrong one is
/// the same 401 as ever (no "too many accounts" answer before any check);
/// an account past the cap is reached with `orgDomain`, as the 401 says.
pub async fn an_email_in_many_orgs_signs_in_with_its_org_domain(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let email = format!("{}@shared.example.com", unique("many"));
    let mut orgs = Vec::new();
    for _ in 0..6 {
        let org = app.new_org().await;
        signup(&app, &org, &email, &format!("{PASSWORD} {}", orgs.len()))
            .await
            .expect(201);
        orgs.push(org);
    }
    let third = app.signin(&email, &format!("{PASSWORD} 3")).await.expect(200);
    assert_eq!(token_org(&third), orgs[3].id);
    let past_the_cap = app.signin(&email, &format!("{PASSWORD} 5")).await;
    assert!(
        past_the_cap.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("orgDomain"),
        "{}",
        past_the_cap.body
    );
    past_the_cap.expect_error(401, "unauthorized", None);
    let ok = app
        .signin_to(&email, &format!("{PASSWORD} 5"), &orgs[5].domain)
        .await
        .expect(200);
    assert_eq!(token_org(&ok), orgs[5].id);
    app.stop().await;
}

/// Squatters (strangers who sign up `boss@<your domain>` as admin of orgs of
/// their own, before and after you) learn nothing and lock nobody out: a
/// wrong password is the same 401 whether or not the victim has an account,
/// counted by the throttle like any failure (the old "more than 5 accounts"
/// 409 came before any check, unthrottled); the owner signs in with email
/// and password alone (their org holds the email's domain, so its account is
/// checked first); only a password that fits several accounts gets 409.
pub async fn squatted_emails_give_no_oracle_and_the_owner_signs_in(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let owner_domain = format!("{}.example.com", unique("corp"));
    let boss = format!("boss@{owner_domain}");
    let ghost = format!("ghost@{owner_domain}");
    // Squatting before the owner's org exists, with more accounts than one
    // sign-in checks; the ghost (no owner account ever) gets as many.
    let mut squats = Vec::new();
    for i in 0..6 {
        let org = app.new_org().await;
        signup(&app, &org, &boss, &format!("squatter {i}")).await.expect(201);
        signup(&app, &org, &ghost, &format!("squatter {i}")).await.expect(201);
        squats.push(org);
    }
    let owner = app
        .post(
            "/auth/org/signup",
            None,
            json!({"name": "Corp", "domain": owner_domain}),
        )
        .await
        .expect(201);
    let owner_org = OrgHandle {
        id: owner["id"].as_str().unwrap().into(),
        domain: owner_domain.clone(),
        secret: owner["secret"].as_str().unwrap().into(),
    };
    signup(&app, &owner_org, &boss, PASSWORD).await.expect(201);
    // More squatters after the owner.
    for i in 6..8 {
        let org = app.new_org().await;
        signup(&app, &org, &boss, &format!("squatter {i}")).await.expect(201);
        squats.push(org);
    }

    // The owner: email and password alone.
    let signed_in = app.signin(&boss, PASSWORD).await.expect(200);
    assert_eq!(token_org(&signed_in), owner_org.id);

    // The attacker, from its own client: the victim's email and the ghost's
    // answer alike, and each guess counts.
    let attacker = loopback(21);
    let victim = app.signin_from(attacker, &boss, "a wrong guess").await;
    let nobody = app.signin_from(attacker, &ghost, "a wrong guess").await;
    assert_eq!((victim.status, &victim.body), (nobody.status, &nobody.body));
    victim.expect_error(401, "unauthorized", None);
    for _ in 0..4 {
        app.signin_from(attacker, &boss, "another guess")
            .await
            .expect_error(401, "unauthorized", None);
    }
    app.signin_from(attacker, &boss, "a sixth guess")
        .await
        .expect_error(429, "too_many_requests", None);
    // A squatter's own password opens its own (oldest) org's account.
    let theirs = app.signin(&boss, "squatter 0").await.expect(200);
    assert_eq!(token_org(&theirs), squats[0].id);
    // A password that fits two accounts asks for orgDomain (and says nothing
    // about any other account).
    signup(&app, &squats[0], &format!("twin@{owner_domain}"), "twin password")
        .await
        .expect(201);
    signup(&app, &squats[1], &format!("twin@{owner_domain}"), "twin password")
        .await
        .expect(201);
    app.signin(&format!("twin@{owner_domain}"), "twin password")
        .await
        .expect_error(409, "conflict", None);
    app.stop().await;
}

/// Sign-in attempts take their throttle slot before the password is
/// checked: 64 concurrent wrong passwords for one email from one client get
/// at most the limit (5) of password checks and 401s, the rest 429; 64
/// concurrent unknown emails from one client at most the client's limit (20).
/// The owner, from elsewhere, still signs in.
pub async fn concurrent_guesses_get_no_more_checks_than_the_limit(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let target = app.new_admin(&org).await;
    let (guesser, sprayer) = (loopback(31), loopback(32));

    let burst = |email: Option<&str>, from: IpAddr| {
        let app = &app;
        let email = email.map(str::to_owned);
        async move {
            let tries = (0..64).map(|i| {
                let email = email
                    .clone()
                    .unwrap_or_else(|| format!("{}@x.io", unique(&format!("ghost{i}"))));
                async move { app.signin_from(from, &email, "Winter2026!").await }
            });
            futures_util::future::join_all(tries).await
        }
    };
    let count = |replies: &[ticketing_tests::Reply], status: u16| replies.iter().filter(|r| r.status == status).count();

    let before = ticketing::auth::password::verifies_started();
    let guesses = burst(Some(&target.email), guesser).await;
    let checked = ticketing::auth::password::verifies_started() - before;
    assert_eq!(count(&guesses, 401) + count(&guesses, 429), 64, "{guesses:?}");
    // At most one 401 per slot; fewer when a slot holder meets the client's
    // window transiently full of the burst's own (then given back) slots.
    assert!((1..=5).contains(&count(&guesses, 401)), "{guesses:?}");
    assert!(checked <= 5, "{checked} password checks for 5 slots");
    let refused = guesses.iter().find(|r| r.status == 429).expect("a 429");
    assert!(refused.headers.contains_key("retry-after"));

    let before = ticketing::auth::password::verifies_started();
    let sprayed = burst(None, sprayer).await;
    let checked = ticketing::auth::password::verifies_started() - before;
    assert_eq!(count(&sprayed, 401) + count(&sprayed, 429), 64, "{sprayed:?}");
    assert_eq!(count(&sprayed, 401), 20, "the client's limit");
    assert!(checked <= 20, "{checked} password checks for 20 slots");

    app.signin(&target.email, PASSWORD).await.expect(200);
    app.stop().await;
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Failures count per client and email, plus per client across emails: a
/// client guessing one admin's password is locked out (429 + `Retry-After`)
/// while the admin signs in from elsewhere, and a client spraying many emails
/// is stopped after its own budget, which costs nobody else anything.
pub async fn signin_throttling_stops_the_guessing_client_not_the_owner(set: &dyn AdapterSet) {
    let signin = ticketing::service::SigninLimit {
        max_failures: 3,
        max_client_failures: 6,
        window: Duration::from_secs(60),
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
    let (guesser, sprayer) = (loopback(2), loopback(3));
    for _ in 0..3 {
        app.signin_from(guesser, &target.email, "wrong password")
            .await
            .expect_error(401, "unauthorized", None);
    }
    let locked = app.signin_from(guesser, &target.email, PASSWORD).await;
    assert!(locked.headers.contains_key("retry-after"), "{:?}", locked.headers);
    locked.expect_error(429, "too_many_requests", None);
    // The owner, from their own client, is not locked out.
    app.signin(&target.email, PASSWORD).await.expect(200);
    app.signin_from(sprayer, &target.email, PASSWORD).await.expect(200);

    // Spraying: one guess each at many emails, some real.
    let mut emails: Vec<String> = (0..4).map(|_| format!("{}@x.io", unique("ghost"))).collect();
    emails.push(app.new_admin(&org).await.email);
    emails.push(app.new_admin(&org).await.email);
    for email in &emails {
        app.signin_from(sprayer, email, "Winter2026!")
            .await
            .expect_error(401, "unauthorized", None);
    }
    let stopped = app
        .signin_from(sprayer, &format!("{}@x.io", unique("next")), "Winter2026!")
        .await;
    let retry_after: u64 = stopped.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    stopped.expect_error(429, "too_many_requests", None);
    app.signin_from(sprayer, &target.email, PASSWORD)
        .await
        .expect_error(429, "too_many_requests", None);
    // Everyone else still signs in, the sprayed admins included.
    app.signin(&target.email, PASSWORD).await.expect(200);
    app.signin(&emails[5], PASSWORD).await.expect(200);
    app.signin_from(loopback(4), &emails[4], PASSWORD).await.expect(200);
    app.stop().await;
}
