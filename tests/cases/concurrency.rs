use futures_util::future::join_all;
use serde_json::json;
use std::collections::HashMap;
use ticketing_tests::client::{PASSWORD, customer};
use ticketing_tests::{AdapterSet, TestApp, TestConfig, unique};

/// 200 simultaneous creates over 3 admins: all assigned, spread within one,
/// and each admin's stored count equals its real open tickets.
pub async fn concurrent_creates_are_assigned_evenly_with_exact_counts(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let mut admins = Vec::new();
    for _ in 0..3 {
        admins.push(app.new_admin(&org).await);
    }
    let cust = customer();
    join_all((0..200).map(|_| app.new_ticket(&org, &cust))).await;
    // Filing answers the customer's view: the assignees are read as an admin.
    let mut tickets = Vec::new();
    let mut path = "/tickets?limit=100".to_owned();
    loop {
        let page = app.get(&path, Some(&admins[0].jwt)).await.expect(200);
        tickets.extend(page["tickets"].as_array().unwrap().clone());
        match page["nextCursor"].as_str() {
            Some(c) => path = format!("/tickets?limit=100&cursor={c}"),
            None => break,
        }
    }
    let mut per_admin: HashMap<String, i64> = HashMap::new();
    for t in &tickets {
        *per_admin
            .entry(t["adminId"].as_str().expect("every ticket assigned").to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_admin.values().sum::<i64>(), 200);
    let (min, max) = (per_admin.values().min().unwrap(), per_admin.values().max().unwrap());
    assert!(max - min <= 1, "spread {per_admin:?}");
    let stored = app.deployment.open_ticket_counts(&org.id).await.unwrap();
    assert_eq!(stored, per_admin);
    app.stop().await;
}

/// 50 simultaneous updates of one ticket: each is applied or a 409, and the
/// final version counts exactly the applied ones.
pub async fn concurrent_updates_are_applied_or_conflict_never_lost(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let t = app.new_ticket(&org, &customer()).await;
    let path = format!("/tickets/{}", t["id"].as_str().unwrap());
    let replies =
        join_all((0..50).map(|i| app.post(&path, Some(&admin.jwt), json!({"title": format!("title {i}")})))).await;
    let mut applied = Vec::new();
    for (i, r) in replies.into_iter().enumerate() {
        match r.status {
            200 => applied.push((r.body["version"].as_i64().unwrap(), format!("title {i}"))),
            409 => assert_eq!(r.body["error"]["code"], "conflict"),
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert!(!applied.is_empty());
    applied.sort();
    let versions: Vec<i64> = applied.iter().map(|(v, _)| *v).collect();
    assert_eq!(
        versions,
        (2..2 + applied.len() as i64).collect::<Vec<_>>(),
        "each applied update has its own version"
    );
    let last = app.ticket(&admin.jwt, t["id"].as_str().unwrap()).await;
    assert_eq!(last["version"].as_i64().unwrap(), 1 + applied.len() as i64);
    assert_eq!(
        last["title"],
        applied.last().unwrap().1.as_str(),
        "the last applied update wins"
    );
    app.stop().await;
}

/// 20 simultaneous signups of one domain, and of one admin email: one 201, the rest 409.
pub async fn concurrent_signups_with_one_domain_or_email_create_exactly_one(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let domain = format!("{}.example.com", unique("race"));
    let orgs =
        join_all((0..20).map(|_| app.post("/auth/org/signup", None, json!({"name": "Race", "domain": domain})))).await;
    let statuses: Vec<u16> = orgs.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 19, "{statuses:?}");

    let org = app.new_org().await;
    let email = format!("{}@{}", unique("race"), org.domain);
    let admins = join_all((0..20).map(|_| {
        app.post(
            "/auth/admin/signup",
            None,
            json!({"firstName": "R", "lastName": "R", "email": email, "password": PASSWORD, "secret": org.secret}),
        )
    }))
    .await;
    let statuses: Vec<u16> = admins.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 19, "{statuses:?}");
    app.signin(&email, PASSWORD).await.expect(200);
    app.stop().await;
}
