use super::auth::{call_with_token, jwt_endpoints};
use serde_json::json;
use ticketing_tests::client::customer;
use ticketing_tests::{AdapterSet, TestApp, TestConfig};

/// Another org's admin gets 404 for every JWT endpoint on our ticket, sees none
/// of our tickets in lists, and changes nothing.
pub async fn another_orgs_admin_sees_404_everywhere(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let ours = app.new_org().await;
    let our_admin = app.new_admin(&ours).await;
    let theirs = app.new_org().await;
    let their_admin = app.new_admin(&theirs).await;
    let cust = customer();
    let ticket = app.new_ticket_seen_by(&our_admin.jwt, &ours, &cust).await;
    let id = ticket["id"].as_str().unwrap();
    let auth = format!("Bearer {}", their_admin.jwt);

    for (method, path, body) in jwt_endpoints(id) {
        if path == "/tickets" {
            continue;
        }
        let r = call_with_token(&app, method.clone(), &path, &body, Some(&auth)).await;
        r.expect_error(404, "not_found", None);
    }
    for query in [
        String::new(),
        format!("?customerEmail={cust}"),
        format!("?adminEmail={}", our_admin.email),
        "?status=OPEN".into(),
    ] {
        let list = app
            .get(&format!("/tickets{query}"), Some(&their_admin.jwt))
            .await
            .expect(200);
        assert!(list["tickets"].as_array().unwrap().is_empty(), "{query}: {list}");
    }
    // Our cursor is no use to them.
    app.new_ticket(&ours, &cust).await;
    let page = app.get("/tickets?limit=1", Some(&our_admin.jwt)).await.expect(200);
    let cursor = page["nextCursor"].as_str().unwrap();
    app.get(&format!("/tickets?limit=1&cursor={cursor}"), Some(&their_admin.jwt))
        .await
        .expect_error(400, "invalid_request", Some("cursor"));

    let after = app.ticket(&our_admin.jwt, id).await;
    assert_eq!(after["version"], ticket["version"]);
    assert_eq!(after["status"], "OPEN");
    assert!(after["responses"].as_array().unwrap().is_empty());
    assert!(app.mails_to(&cust).await.is_empty());
    app.stop().await;
}

/// An update may name only the caller's own org and its own admins.
pub async fn update_cannot_move_ticket_to_another_org_or_admin(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let ours = app.new_org().await;
    let our_admin = app.new_admin(&ours).await;
    let theirs = app.new_org().await;
    let their_admin = app.new_admin(&theirs).await;
    let ticket = app.new_ticket(&ours, &customer()).await;
    let path = format!("/tickets/{}", ticket["id"].as_str().unwrap());

    app.post(&path, Some(&our_admin.jwt), json!({"orgId": theirs.id}))
        .await
        .expect_error(403, "forbidden", None);
    app.post(&path, Some(&our_admin.jwt), json!({"adminId": their_admin.id}))
        .await
        .expect_error(400, "invalid_request", Some("adminId"));
    app.post(&path, Some(&our_admin.jwt), json!({"adminId": uuid::Uuid::new_v4()}))
        .await
        .expect_error(400, "invalid_request", Some("adminId"));
    let same = app
        .post(&path, Some(&our_admin.jwt), json!({"orgId": ours.id}))
        .await
        .expect(200);
    assert_eq!(same["orgId"], ours.id.as_str());
    let after = app.ticket(&our_admin.jwt, ticket["id"].as_str().unwrap()).await;
    assert_eq!(after["adminId"], our_admin.id.as_str());
    assert_eq!(after["orgId"], ours.id.as_str());
    app.stop().await;
}
