//! The ticket's history (`GET /tickets/{id}/events`), admin availability
//! (`POST /admins/{id}/availability`) and the admin list (`GET /admins`).

use serde_json::{Value, json};
use std::time::Duration;
use ticketing_tests::client::{AdminHandle, OrgHandle, customer};
use ticketing_tests::{AdapterSet, TestApp, TestConfig};

/// Every event of a ticket, following the cursors.
async fn all_events(app: &TestApp, jwt: &str, id: &str, limit: usize) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/tickets/{id}/events?limit={limit}&cursor={c}"),
            None => format!("/tickets/{id}/events?limit={limit}"),
        };
        let page = app.get(&path, Some(jwt)).await.expect(200);
        let got = page["events"].as_array().expect("events").clone();
        assert!(got.len() <= limit, "{page}");
        events.extend(got);
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return events,
        }
    }
}

/// The status and assignee the events tell, replayed oldest first.
fn replay(events: &[Value]) -> (Value, Value) {
    let (mut status, mut admin) = (Value::Null, Value::Null);
    for e in events {
        match e["type"].as_str().unwrap_or_default() {
            "created" => status = json!("OPEN"),
            "statusChanged" => status = e["to"].clone(),
            "assigned" => admin = e["to"].clone(),
            _ => {}
        }
    }
    (status, admin)
}

/// Long enough to script the changes before the auto-close fires.
const SHORT: Duration = Duration::from_millis(1500);

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap_or_default()).collect()
}

/// A scripted life of a ticket: every change is in its history, in order,
/// by whom it was made, and replaying the history gives the ticket's status
/// and assignee; pages of two follow each other with nothing lost.
pub async fn history_replays_to_the_tickets_current_status_and_assignee(set: &dyn AdapterSet) {
    let app = TestApp::start(
        set,
        TestConfig {
            auto_close_after: SHORT,
            ..Default::default()
        },
    )
    .await;
    let org = app.new_org().await;
    let ana = app.new_admin(&org).await;
    let ben = app.new_admin(&org).await;
    let who = customer();
    let ticket = app.new_ticket_seen_by(&ana.jwt, &org, &who).await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    let first = ticket["adminId"].as_str().unwrap().to_owned();
    let other = if first == ana.id { &ben.id } else { &ana.id };

    app.update(&ana.jwt, &id, json!({"adminId": other})).await.expect(200);
    app.respond(&ben.jwt, &id, "Fixed, I think").await.expect(201);
    app.change_status(&ana.jwt, &id, "OPEN").await.expect(200);
    app.update(&ana.jwt, &id, json!({"title": "Invoice total is 0"}))
        .await
        .expect(200);
    app.respond(&ana.jwt, &id, "Fixed for sure").await.expect(201);
    let closed = app
        .wait_for_ticket(&ana.jwt, &id, Duration::from_secs(15), |t| t["status"] == "CLOSED")
        .await;
    assert_eq!(closed["status"], "CLOSED", "{closed}");

    let all = all_events(&app, &ana.jwt, &id, 2).await;
    // Each response's email was sent, by the system, between the changes.
    let (mail, events): (Vec<Value>, Vec<Value>) = all.iter().cloned().partition(|e| e["type"] == "deliveryChanged");
    assert_eq!(mail.len(), 2, "{mail:#?}");
    for m in &mail {
        assert_eq!(
            (&m["from"], &m["to"], &m["actor"]),
            (&json!("pending"), &json!("sent"), &json!({"kind": "system"}))
        );
    }
    assert_eq!(
        types(&events),
        [
            "created",
            "assigned",
            "assigned",
            "responded",
            "statusChanged",
            "autoCloseScheduled",
            "statusChanged",
            "autoCloseCancelled",
            "fieldsUpdated",
            "responded",
            "statusChanged",
            "autoCloseScheduled",
            "autoCloseFired",
            "statusChanged",
        ],
        "{events:#?}"
    );
    assert_eq!(replay(&events), (closed["status"].clone(), closed["adminId"].clone()));
    assert_eq!(events[0]["actor"], json!({"kind": "customer", "email": who}));
    assert_eq!((&events[1]["from"], &events[1]["to"]), (&Value::Null, &json!(first)));
    assert_eq!(events[2]["actor"], json!({"kind": "admin", "adminId": ana.id}));
    assert_eq!((&events[2]["from"], &events[2]["to"]), (&json!(first), &json!(other)));
    assert_eq!(events[8]["fields"], json!(["title"]));
    assert_eq!(events[12]["actor"], json!({"kind": "autoClose"}));
    assert_eq!(
        (&events[13]["from"], &events[13]["to"]),
        (&json!("RESPONDED"), &json!("CLOSED"))
    );
    let mut ids: Vec<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let in_order = ids.clone();
    ids.sort();
    assert_eq!(ids, in_order, "oldest first");
    let whole = app
        .get(&format!("/tickets/{id}/events"), Some(&ana.jwt))
        .await
        .expect(200);
    assert_eq!(whole["events"].as_array().unwrap().len(), all.len(), "one default page");
    assert!(whole["nextCursor"].is_null());
    app.stop().await;
}

/// The history is the org's own: another org's admin gets 404, a cursor
/// from another ticket's history is refused, and bad limits are 400s.
pub async fn history_is_tenant_scoped_and_its_cursors_bound_to_the_ticket(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let one = app.new_ticket_id(&org, &customer()).await;
    let two = app.new_ticket_id(&org, &customer()).await;
    let stranger = app.new_admin(&app.new_org().await).await;
    app.get(&format!("/tickets/{one}/events"), Some(&stranger.jwt))
        .await
        .expect_error(404, "not_found", None);
    app.get(&format!("/tickets/{one}/events"), None)
        .await
        .expect_error(401, "unauthorized", None);
    let page = app
        .get(&format!("/tickets/{one}/events?limit=1"), Some(&admin.jwt))
        .await
        .expect(200);
    let cursor = page["nextCursor"].as_str().expect("more than one event").to_owned();
    app.get(&format!("/tickets/{two}/events?cursor={cursor}"), Some(&admin.jwt))
        .await
        .expect_error(400, "invalid_request", Some("cursor"));
    for bad in ["0", "101", "x"] {
        app.get(&format!("/tickets/{one}/events?limit={bad}"), Some(&admin.jwt))
            .await
            .expect_error(400, "invalid_request", Some("limit"));
    }
    app.stop().await;
}

async fn set_available(app: &TestApp, by: &AdminHandle, admin: &str, available: bool) -> Value {
    app.post(
        &format!("/admins/{admin}/availability"),
        Some(&by.jwt),
        json!({ "available": available }),
    )
    .await
    .expect(200)
}

async fn new_tickets(app: &TestApp, org: &OrgHandle, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(app.new_ticket_id(org, &customer()).await);
    }
    ids
}

/// An unavailable admin gets no new tickets; with nobody available tickets
/// wait unassigned; when an admin becomes available the waiting OPEN
/// tickets are theirs, oldest first (a batch at once, the rest by the
/// sweep), each with an `assigned` event by `system`. CLOSED ones stay.
pub async fn an_admin_becoming_available_takes_the_waiting_tickets(set: &dyn AdapterSet) {
    let app = TestApp::start(
        set,
        TestConfig {
            reconcile_interval: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await;
    let org = app.new_org().await;
    let ana = app.new_admin(&org).await;
    let ben = app.new_admin(&org).await;
    let off = set_available(&app, &ana, &ben.id, false).await;
    assert_eq!(
        (off["id"].as_str(), off["available"].as_bool()),
        (Some(ben.id.as_str()), Some(false))
    );
    for t in new_tickets(&app, &org, 2).await {
        assert_eq!(app.ticket(&ana.jwt, &t).await["adminId"], json!(ana.id), "ben is away");
    }
    set_available(&app, &ben, &ana.id, false).await;
    let waiting = new_tickets(&app, &org, 28).await;
    let closed = waiting[0].clone();
    app.change_status(&ana.jwt, &closed, "CLOSED").await.expect(200);
    for t in &waiting {
        assert!(app.ticket(&ana.jwt, t).await["adminId"].is_null(), "nobody available");
    }

    set_available(&app, &ana, &ben.id, true).await;
    // The oldest is assigned in the request (a batch of up to 25, within its
    // time box); the rest by the sweep soon after, still oldest first.
    assert_eq!(app.ticket(&ana.jwt, &waiting[1]).await["adminId"], json!(ben.id));
    let mut assigned_at = Vec::new();
    for t in &waiting[1..] {
        let got = app
            .wait_for_ticket(&ana.jwt, t, Duration::from_secs(30), |t| !t["adminId"].is_null())
            .await;
        assert_eq!(got["adminId"], json!(ben.id), "{got}");
        assigned_at.push(got["updatedAt"].as_str().unwrap().to_owned());
    }
    assert!(
        assigned_at.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {assigned_at:?}"
    );
    assert!(
        app.ticket(&ana.jwt, &closed).await["adminId"].is_null(),
        "CLOSED tickets wait for nobody"
    );
    let events = all_events(&app, &ana.jwt, &waiting[1], 100).await;
    let assigned = events.last().unwrap();
    assert_eq!(
        (
            &assigned["type"],
            &assigned["actor"],
            &assigned["from"],
            &assigned["to"]
        ),
        (
            &json!("assigned"),
            &json!({"kind": "system"}),
            &Value::Null,
            &json!(ben.id)
        )
    );
    let admins = app.get("/admins", Some(&ana.jwt)).await.expect(200);
    let ben_listed = admins["admins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == json!(ben.id))
        .unwrap()
        .clone();
    assert_eq!(ben_listed["openTickets"], json!(waiting.len() - 1), "{admins}");
    app.stop().await;
}

/// Availability is set by any admin of the org, never another org's: their
/// admin ids are 404, as unknown ones are; the body is checked.
pub async fn availability_is_set_within_the_org_only(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let ana = app.new_admin(&org).await;
    let stranger = app.new_admin(&app.new_org().await).await;
    for (by, target) in [(&stranger, &ana.id), (&ana, &stranger.id)] {
        app.post(
            &format!("/admins/{target}/availability"),
            Some(&by.jwt),
            json!({"available": false}),
        )
        .await
        .expect_error(404, "not_found", None);
    }
    let path = format!("/admins/{}/availability", ana.id);
    app.post(&path, Some(&ana.jwt), json!({"available": "no"}))
        .await
        .expect_error(400, "invalid_request", Some("available"));
    app.post(&path, None, json!({"available": false}))
        .await
        .expect_error(401, "unauthorized", None);
    app.post(
        "/admins/not-an-id/availability",
        Some(&ana.jwt),
        json!({"available": false}),
    )
    .await
    .expect_error(400, "invalid_request", Some("id"));
    let listed = app.get("/admins", Some(&ana.jwt)).await.expect(200);
    assert_eq!(listed["admins"][0]["available"], json!(true), "unchanged: {listed}");
    app.stop().await;
}

/// `GET /admins`: the caller's org's admins only, in pages, with names,
/// email, availability and open-ticket counts, and never a hash.
pub async fn admin_list_pages_the_orgs_admins_with_their_load(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let mut admins = Vec::new();
    for _ in 0..3 {
        admins.push(app.new_admin(&org).await);
    }
    let other = app.new_admin(&app.new_org().await).await;
    let ticket = app.new_ticket_seen_by(&admins[0].jwt, &org, &customer()).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admins?limit=2&cursor={c}"),
            None => "/admins?limit=2".to_owned(),
        };
        let page = app.get(&path, Some(&admins[0].jwt)).await.expect(200);
        let text = page.to_string();
        assert!(
            !text.contains("argon2") && !text.to_lowercase().contains("hash"),
            "{text}"
        );
        seen.extend(page["admins"].as_array().unwrap().clone());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let ids: Vec<&str> = seen.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        admins.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        "in sign-up order"
    );
    for (a, shown) in admins.iter().zip(&seen) {
        assert_eq!(shown["email"], json!(a.email));
        assert_eq!(
            (&shown["firstName"], &shown["lastName"]),
            (&json!("Ada"), &json!("Admin"))
        );
        assert_eq!(shown["available"], json!(true));
        let open = if ticket["adminId"] == json!(a.id) { 1 } else { 0 };
        assert_eq!(shown["openTickets"], json!(open), "{shown}");
    }
    assert!(!ids.contains(&other.id.as_str()));
    app.get("/admins", None).await.expect_error(401, "unauthorized", None);
    // A cursor is the org's own.
    let cursor = cursor.expect("three admins in pages of two");
    app.get(&format!("/admins?cursor={cursor}"), Some(&other.jwt))
        .await
        .expect_error(400, "invalid_request", Some("cursor"));
    app.stop().await;
}
