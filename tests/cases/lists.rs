use super::walkthrough::ids;
use serde_json::json;
use ticketing_tests::client::customer;
use ticketing_tests::{AdapterSet, TestApp, TestConfig};

/// Pages come newest first, `nextCursor` walks them all without gaps or
/// repeats, and the last page has no cursor.
pub async fn list_pages_newest_first_with_cursors(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let cust = customer();
    let mut created = Vec::new();
    for _ in 0..7 {
        created.push(app.new_ticket_id(&org, &cust).await);
    }
    created.reverse();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/tickets?limit=3&cursor={c}"),
            None => "/tickets?limit=3".to_owned(),
        };
        let page = app.get(&path, Some(&admin.jwt)).await.expect(200);
        pages += 1;
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 3);
        seen.extend(page_ids);
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10, "cursor loop");
    }
    assert_eq!(seen, created, "all tickets, newest first, once each");
    assert_eq!(pages, 3);

    let default_page = app.get("/tickets", Some(&admin.jwt)).await.expect(200);
    assert_eq!(ids(&default_page), created);
    assert!(default_page["nextCursor"].is_null());
    app.stop().await;
}

/// Every filter and their combinations select exactly the matching tickets.
pub async fn list_filters_combine(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let a = app.new_admin(&org).await;
    let b = app.new_admin(&org).await;
    let (c1, c2) = (customer(), customer());
    let mut all = Vec::new();
    for cust in [&c1, &c2, &c1, &c2, &c1, &c2] {
        all.push(app.new_ticket_seen_by(&a.jwt, &org, cust).await);
    }
    // Respond to two of them.
    for t in &all[..2] {
        app.post(
            &format!("/tickets/{}/respond", t["id"].as_str().unwrap()),
            Some(&a.jwt),
            json!({"message": "hi"}),
        )
        .await
        .expect(201);
    }
    let admin_email = |id: &str| {
        if id == a.id { a.email.clone() } else { b.email.clone() }
    };
    let status_of = |i: usize| if i < 2 { "RESPONDED" } else { "OPEN" };
    for admin in [None, Some(&a), Some(&b)] {
        for status in [None, Some("OPEN"), Some("RESPONDED"), Some("CLOSED")] {
            for cust in [None, Some(&c1), Some(&c2)] {
                let mut q = vec!["limit=100".to_owned()];
                if let Some(x) = admin {
                    q.push(format!("adminEmail={}", x.email));
                }
                if let Some(s) = status {
                    q.push(format!("status={s}"));
                }
                if let Some(c) = cust {
                    q.push(format!("customerEmail={c}"));
                }
                let got = ids(&app
                    .get(&format!("/tickets?{}", q.join("&")), Some(&a.jwt))
                    .await
                    .expect(200));
                let want: Vec<String> = all
                    .iter()
                    .enumerate()
                    .rev()
                    .filter(|(i, t)| {
                        admin.is_none_or(|x| admin_email(t["adminId"].as_str().unwrap()) == x.email)
                            && status.is_none_or(|s| s == status_of(*i))
                            && cust.is_none_or(|c| t["addedBy"] == c.as_str())
                    })
                    .map(|(_, t)| t["id"].as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(got, want, "query {q:?}");
            }
        }
    }
    // An admin email that is not in this org matches nothing.
    let none = app
        .get("/tickets?adminEmail=nobody@nowhere.example.com", Some(&a.jwt))
        .await
        .expect(200);
    assert!(ids(&none).is_empty());
    app.stop().await;
}

/// Bad `limit`, `status`, emails, unknown parameters and forged cursors are 400s naming the parameter.
pub async fn list_rejects_bad_limits_filters_and_cursors(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    for _ in 0..3 {
        app.new_ticket(&org, &customer()).await;
    }
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("status=PENDING", "status"),
        ("adminEmail=not-an-email", "adminEmail"),
        ("customerEmail=@x", "customerEmail"),
        ("cursor=garbage", "cursor"),
        ("colour=blue", "colour"),
    ] {
        app.get(&format!("/tickets?{query}"), Some(&admin.jwt))
            .await
            .expect_error(400, "invalid_request", Some(field));
    }
    // A real cursor does not carry over to another filter.
    let page = app.get("/tickets?limit=1", Some(&admin.jwt)).await.expect(200);
    let cursor = page["nextCursor"].as_str().expect("more pages");
    app.get(
        &format!("/tickets?limit=1&status=CLOSED&cursor={cursor}"),
        Some(&admin.jwt),
    )
    .await
    .expect_error(400, "invalid_request", Some("cursor"));
    // A tampered cursor is rejected.
    let mut tampered = cursor.to_owned();
    let flipped = if tampered.starts_with('e') { "f" } else { "e" };
    tampered.replace_range(0..1, flipped);
    app.get(&format!("/tickets?limit=1&cursor={tampered}"), Some(&admin.jwt))
        .await
        .expect_error(400, "invalid_request", Some("cursor"));
    app.stop().await;
}
