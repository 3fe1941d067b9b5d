use reqwest::Method;
use serde_json::json;
use ticketing_tests::client::customer;
use ticketing_tests::{AdapterSet, TestApp, TestConfig};

/// Malformed JSON, a wrong content type, missing, mistyped or unknown fields,
/// invalid values and bad ids: each a 400 whose `field` says what to fix.
pub async fn malformed_requests_get_json_errors_naming_the_field(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let json_ct = [("content-type", "application/json")];

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("/auth/org/signup", b"{\"name\": \"x\", ".to_vec(), "body"),
        ("/auth/org/signup", b"".to_vec(), "body"),
        ("/auth/org/signup", b"[]".to_vec(), "body"),
        ("/auth/org/signup", b"\"text\"".to_vec(), "body"),
        ("/auth/org/signup", json!({"name": "x"}).to_string().into_bytes(), "domain"),
        ("/auth/org/signup", json!({"name": 5, "domain": "a.io"}).to_string().into_bytes(), "name"),
        ("/auth/org/signup", json!({"name": "x", "domain": "a.io", "plan": "pro"}).to_string().into_bytes(), "plan"),
        ("/auth/org/signup", json!({"name": "x", "domain": "not a domain"}).to_string().into_bytes(), "domain"),
        ("/auth/org/signup", json!({"name": "", "domain": "a.io"}).to_string().into_bytes(), "name"),
        ("/auth/admin/signin", json!({"email": "a@b.io"}).to_string().into_bytes(), "password"),
        ("/auth/admin/signin", json!({"email": null, "password": "x"}).to_string().into_bytes(), "email"),
        (
            "/tickets",
            json!({"title": "t", "description": "d", "addedBy": "not-an-email", "secret": org.secret}).to_string().into_bytes(),
            "addedBy",
        ),
        ("/tickets", json!({"title": "t", "addedBy": "a@b.io", "secret": org.secret}).to_string().into_bytes(), "description"),
        (
            "/tickets",
            json!({"title": ["t"], "description": "d", "addedBy": "a@b.io", "secret": org.secret}).to_string().into_bytes(),
            "title",
        ),
        (
            "/auth/admin/signup",
            json!({"firstName": "A", "lastName": "B", "email": "nope", "password": "long enough", "secret": org.secret})
                .to_string()
                .into_bytes(),
            "email",
        ),
    ];
    for (path, body, field) in cases {
        let r = app.raw(Method::POST, path, &json_ct, Some(body.clone())).await;
        assert_eq!(r.status, 400, "{path} {:?}: {}", String::from_utf8_lossy(&body), r.body);
        assert_eq!(r.body["error"]["code"], "invalid_request");
        assert_eq!(
            r.body["error"]["field"],
            field,
            "{path} {:?}: {}",
            String::from_utf8_lossy(&body),
            r.body
        );
    }

    // Wrong or missing content type.
    let good = json!({"name": "x", "domain": "ok.example.com"})
        .to_string()
        .into_bytes();
    for headers in [vec![("content-type", "text/plain")], vec![]] {
        app.raw(Method::POST, "/auth/org/signup", &headers, Some(good.clone()))
            .await
            .expect_error(400, "invalid_request", Some("Content-Type"));
    }
    // Bad ticket ids in the path.
    let auth = format!("Bearer {}", admin.jwt);
    for path in [
        "/tickets/not-a-uuid",
        "/tickets/123/respond",
        "/tickets/%00/change_status",
    ] {
        let r = app
            .raw(
                Method::POST,
                path,
                &[("content-type", "application/json"), ("authorization", &auth)],
                Some(json!({"message": "m", "status": "OPEN"}).to_string().into_bytes()),
            )
            .await;
        r.expect_error(400, "invalid_request", Some("id"));
    }
    app.get("/tickets/not-a-uuid", Some(&admin.jwt))
        .await
        .expect_error(400, "invalid_request", Some("id"));
    // A well-formed id that does not exist.
    app.get(&format!("/tickets/{}", uuid::Uuid::new_v4()), Some(&admin.jwt))
        .await
        .expect_error(404, "not_found", None);
    // Nothing was created by any of the above.
    assert!(
        app.get("/tickets", Some(&admin.jwt)).await.expect(200)["tickets"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    app.stop().await;
}

/// Unknown routes are 404, wrong methods 405, bodies over 64 KiB 413, all JSON.
pub async fn routing_errors_and_oversized_bodies_are_json(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    app.get("/nope", None).await.expect_error(404, "not_found", None);
    app.get("/tickets/a/b/c", None)
        .await
        .expect_error(404, "not_found", None);
    app.raw(Method::DELETE, "/tickets", &[], None)
        .await
        .expect_error(405, "method_not_allowed", None);
    app.raw(Method::PUT, "/auth/org/signup", &[], None)
        .await
        .expect_error(405, "method_not_allowed", None);
    app.get("/auth/admin/signin", None)
        .await
        .expect_error(405, "method_not_allowed", None);

    let huge = json!({"title": "t", "description": "x".repeat(70 * 1024), "addedBy": customer(), "secret": org.secret});
    app.post("/tickets", None, huge)
        .await
        .expect_error(413, "payload_too_large", None);
    // Just under the limit but over the description's own limit: a 400, not a 413.
    let big = json!({"title": "t", "description": "x".repeat(20_000), "addedBy": customer(), "secret": org.secret});
    app.post("/tickets", None, big)
        .await
        .expect_error(400, "invalid_request", Some("description"));
    app.stop().await;
}
