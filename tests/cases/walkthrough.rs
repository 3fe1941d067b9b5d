use serde_json::{Value, json};
use std::collections::HashMap;
use ticketing_tests::client::{PASSWORD, customer};
use ticketing_tests::{AdapterSet, TestApp, TestConfig};

/// The seed's flow: org → admins → sign-in → tickets spread over admins →
/// respond → email → list filters → update → change status.
pub async fn seed_walkthrough_end_to_end(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    assert_eq!(org.secret.len(), 48);
    assert!(org.secret.chars().all(|c| c.is_ascii_alphanumeric()));
    let admins = [
        app.new_admin(&org).await,
        app.new_admin(&org).await,
        app.new_admin(&org).await,
    ];
    let alice = customer();

    let mut tickets = Vec::new();
    for _ in 0..6 {
        let t = app.new_ticket_seen_by(&admins[0].jwt, &org, &alice).await;
        assert_eq!(t["status"], "OPEN");
        assert_eq!(t["orgId"], org.id.as_str());
        assert_eq!(t["addedBy"], alice.as_str());
        tickets.push(t);
    }
    let mut per_admin: HashMap<String, usize> = HashMap::new();
    for t in &tickets {
        *per_admin
            .entry(t["adminId"].as_str().expect("assigned").to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_admin.len(), 3, "{per_admin:?}");
    assert!(per_admin.values().all(|n| *n == 2), "{per_admin:?}");

    // The assignee responds; the ticket moves to RESPONDED and the customer is mailed.
    let first = &tickets[0];
    let id = first["id"].as_str().unwrap();
    let assignee = admins
        .iter()
        .find(|a| a.id == first["adminId"].as_str().unwrap())
        .unwrap();
    let (reply, _) = app.respond_and_send(&assignee.jwt, id, "We fixed the total.").await;
    assert_eq!(reply["message"], "We fixed the total.");
    assert_eq!(reply["adminId"], assignee.id.as_str());
    assert_eq!(reply["ticket"]["status"], "RESPONDED");
    assert!(reply["ticket"]["respondedAt"].is_string());
    assert!(reply["ticket"]["autoCloseAt"].is_string());

    let mails = app.mails_to(&alice).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].subject.contains(id), "{:?}", mails[0]);
    assert!(mails[0].text.contains("We fixed the total."), "{:?}", mails[0]);
    assert!(mails[0].text.contains("RESPONDED"), "{:?}", mails[0]);

    let full = app.ticket(&assignee.jwt, id).await;
    assert_eq!(full["status"], "RESPONDED");
    assert_eq!(full["responses"].as_array().unwrap().len(), 1);
    assert_eq!(full["responses"][0]["delivery"]["state"], "sent");

    // Lists and filters.
    let all = app.get("/tickets", Some(&admins[0].jwt)).await.expect(200);
    assert_eq!(all["tickets"].as_array().unwrap().len(), 6);
    let responded = app
        .get("/tickets?status=RESPONDED", Some(&admins[0].jwt))
        .await
        .expect(200);
    assert_eq!(ids(&responded), vec![id.to_owned()]);
    let mine = app
        .get(&format!("/tickets?adminEmail={}", assignee.email), Some(&admins[0].jwt))
        .await
        .expect(200);
    assert_eq!(mine["tickets"].as_array().unwrap().len(), 2);
    assert!(
        mine["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["adminId"] == assignee.id.as_str())
    );
    let by_customer = app
        .get(
            &format!("/tickets?customerEmail={alice}&status=OPEN"),
            Some(&admins[0].jwt),
        )
        .await
        .expect(200);
    assert_eq!(by_customer["tickets"].as_array().unwrap().len(), 5);

    // Update: title and reassignment.
    let other = admins.iter().find(|a| a.id != assignee.id).unwrap();
    let updated = app
        .update(
            &assignee.jwt,
            id,
            json!({"title": "Invoice total fixed", "adminId": other.id}),
        )
        .await
        .expect(200);
    assert_eq!(updated["title"], "Invoice total fixed");
    assert_eq!(updated["adminId"], other.id.as_str());
    assert_eq!(updated["status"], "RESPONDED");

    // Change status: CLOSED, then reopened.
    let closed = app.change_status(&other.jwt, id, "CLOSED").await.expect(200);
    assert_eq!(closed["status"], "CLOSED");
    assert!(closed["closedAt"].is_string());
    assert!(closed["autoCloseAt"].is_null());
    let reopened = app.change_status(&other.jwt, id, "OPEN").await.expect(200);
    assert_eq!(reopened["status"], "OPEN");
    assert!(reopened["closedAt"].is_null());
    app.stop().await;
}

pub fn ids(list: &Value) -> Vec<String> {
    list["tickets"]
        .as_array()
        .expect("tickets array")
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Assignment goes to the least-loaded admin; closing a ticket frees its admin;
/// an org with no admin gets unassigned tickets.
pub async fn tickets_spread_evenly_over_admins_and_unassigned_without_admins(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let lonely = app.new_org().await;
    let id = app.new_ticket_id(&lonely, &customer()).await;
    // An admin who is away (so takes nothing) reads it: unassigned.
    let away = format!("away@{}", lonely.domain);
    app.post(
        "/auth/admin/signup",
        None,
        json!({"firstName": "A", "lastName": "Way", "email": away, "password": PASSWORD,
               "secret": lonely.secret, "available": false}),
    )
    .await
    .expect(201);
    let jwt = app.signin(&away, PASSWORD).await.expect(200)["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = app.ticket(&jwt, &id).await;
    assert!(t["adminId"].is_null(), "{t}");

    let org = app.new_org().await;
    let a = app.new_admin(&org).await;
    let b = app.new_admin(&org).await;
    let t1 = app.new_ticket_seen_by(&a.jwt, &org, &customer()).await;
    let t2 = app.new_ticket_seen_by(&a.jwt, &org, &customer()).await;
    assert_ne!(
        t1["adminId"], t2["adminId"],
        "second ticket goes to the admin with none"
    );
    // Close the one assigned to `a`: `a` now has fewer open tickets and gets the next one.
    let (a_ticket, _) = if t1["adminId"] == a.id.as_str() {
        (&t1, &t2)
    } else {
        (&t2, &t1)
    };
    app.post(
        &format!("/tickets/{}/change_status", a_ticket["id"].as_str().unwrap()),
        Some(&a.jwt),
        json!({"status": "CLOSED"}),
    )
    .await
    .expect(200);
    let t3 = app.new_ticket_seen_by(&a.jwt, &org, &customer()).await;
    assert_eq!(t3["adminId"], a.id.as_str());
    // Tie (one each): goes to the one assigned least recently, which is `b`.
    let t4 = app.new_ticket_seen_by(&a.jwt, &org, &customer()).await;
    assert_eq!(t4["adminId"], b.id.as_str());
    app.stop().await;
}
