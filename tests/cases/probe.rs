//! The holes a hostile probe found (issue 11), each replayed as the request
//! that found it: header and log injection, odd ids, unknown query
//! parameters, duplicate keys, RESPONDED by hand, loose validation, tokens
//! from the future.

use reqwest::Method;
use serde_json::{Value, json};
use ticketing_tests::client::{PASSWORD, customer};
use ticketing_tests::{AdapterSet, TestApp, TestConfig, unique};

/// Titles, names and org names are one line: CR, LF, other control characters
/// and bidi overrides are a 400 naming the field, and nothing is stored.
/// Descriptions and messages keep newlines and tabs. The mail subject built
/// from a title is one line.
pub async fn single_line_fields_refuse_line_breaks_and_control_characters(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let alice = customer();
    let injected = "Refund\r\nBcc: everyone@evil.example";
    let ticket = |title: &str, description: &str| json!({"title": title, "description": description, "addedBy": alice, "secret": org.secret});
    for (body, field) in [
        (ticket(injected, "d"), "title"),
        (ticket("a\nb", "d"), "title"),
        (ticket("a\tb", "d"), "title"),
        (ticket("invoice\u{202E}fdp.exe", "d"), "title"),
        (ticket("a\u{2028}b", "d"), "title"),
        (ticket("a\u{85}b", "d"), "title"),
        (ticket("t", "colour\u{1B}[31m red"), "description"),
        (ticket("t", "a\rb"), "description"),
    ] {
        app.post("/tickets", None, body)
            .await
            .expect_error(400, "invalid_request", Some(field));
    }
    let signup = |first: &str, last: &str| {
        json!({"firstName": first, "lastName": last, "email": format!("{}@{}", unique("a"), org.domain),
               "password": PASSWORD, "secret": org.secret})
    };
    for (body, field) in [
        (signup("Ada\r\nX-Evil: 1", "A"), "firstName"),
        (signup("Ada", "\u{2066}Admin"), "lastName"),
    ] {
        app.post("/auth/admin/signup", None, body)
            .await
            .expect_error(400, "invalid_request", Some(field));
    }
    app.post(
        "/auth/org/signup",
        None,
        json!({"name": "Acme\nInc", "domain": format!("{}.example.com", unique("o"))}),
    )
    .await
    .expect_error(400, "invalid_request", Some("name"));

    // Multi-line text keeps its newlines and tabs (a CRLF becomes LF).
    let t = app
        .post("/tickets", None, ticket("Invoice wrong", "line one\r\n\tline two"))
        .await
        .expect(201);
    assert_eq!(t["description"], "line one\n\tline two");
    let id = t["id"].as_str().unwrap();
    app.post(&format!("/tickets/{id}"), Some(&admin.jwt), json!({"title": injected}))
        .await
        .expect_error(400, "invalid_request", Some("title"));
    app.post(
        &format!("/tickets/{id}/respond"),
        Some(&admin.jwt),
        json!({"message": "Fixed.\n\nThanks,\n\tAda"}),
    )
    .await
    .expect(201);
    let mails = app.mails_to(&alice).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(!mails[0].subject.contains(['\r', '\n']), "{:?}", mails[0].subject);
    assert!(mails[0].subject.contains("Invoice wrong"), "{:?}", mails[0].subject);
    let listed = app.get("/tickets", Some(&admin.jwt)).await.expect(200);
    assert_eq!(listed["tickets"].as_array().unwrap().len(), 1, "only the valid ticket");
    app.stop().await;
}

/// A client's `X-Request-Id` is echoed only when short and plain; any other
/// is replaced by a fresh UUID, as a missing one is.
pub async fn client_request_ids_are_kept_only_when_short_and_plain(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let auth = format!("Bearer {}", admin.jwt);
    let echoed = |sent: Option<&str>| {
        let app = &app;
        let auth = auth.clone();
        let sent = sent.map(str::to_owned);
        async move {
            let mut headers = vec![("authorization", auth.as_str())];
            if let Some(s) = &sent {
                headers.push(("x-request-id", s.as_str()));
            }
            let r = app.raw(Method::GET, "/tickets", &headers, None).await;
            assert_eq!(r.status, 200, "{}", r.body);
            let ids: Vec<String> = r
                .headers
                .get_all("x-request-id")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
            assert_eq!(ids.len(), 1, "one request id in the reply: {ids:?}");
            ids[0].clone()
        }
    };
    for plain in [
        "trace-42",
        "0190f5c3-8a4e-7c12-9b3d-5e6f7a8b9c0d",
        "a.b_c",
        &"r".repeat(64),
    ] {
        assert_eq!(echoed(Some(plain)).await, plain);
    }
    for hostile in [
        "r".repeat(65),
        "x".repeat(4000),
        "id with spaces".into(),
        "a;b=c".into(),
        "\"quoted\"".into(),
        "<script>".into(),
    ] {
        let got = echoed(Some(&hostile)).await;
        assert_ne!(got, hostile);
        assert!(uuid::Uuid::parse_str(&got).is_ok(), "{hostile:?} replaced by {got:?}");
    }
    assert!(uuid::Uuid::parse_str(&echoed(None).await).is_ok());
    app.stop().await;
}

/// Every route rejects a query parameter it does not take (400 naming it)
/// before doing anything, including routes that take none.
pub async fn unknown_query_parameters_are_rejected_on_every_route(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let ticket = app.new_ticket_seen_by(&admin.jwt, &org, &customer()).await;
    let id = ticket["id"].as_str().unwrap();
    let domain = format!("{}.example.com", unique("q"));
    let email = format!("{}@{}", unique("a"), org.domain);
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/auth/org/signup".into(),
            Some(json!({"name": "Q", "domain": domain})),
        ),
        (
            Method::POST,
            "/auth/admin/signup".into(),
            Some(
                json!({"firstName": "Q", "lastName": "Q", "email": email, "password": PASSWORD, "secret": org.secret}),
            ),
        ),
        (
            Method::POST,
            "/auth/admin/signin".into(),
            Some(json!({"email": admin.email, "password": PASSWORD})),
        ),
        (
            Method::POST,
            "/tickets".into(),
            Some(json!({"title": "t", "description": "d", "addedBy": customer(), "secret": org.secret})),
        ),
        (Method::GET, "/tickets".into(), None),
        (Method::GET, format!("/tickets/{id}"), None),
        (
            Method::POST,
            format!("/tickets/{id}"),
            Some(json!({"title": "changed"})),
        ),
        (
            Method::POST,
            format!("/tickets/{id}/change_status"),
            Some(json!({"status": "CLOSED"})),
        ),
        (
            Method::POST,
            format!("/tickets/{id}/respond"),
            Some(json!({"message": "hi"})),
        ),
    ];
    let bearer = format!("Bearer {}", admin.jwt);
    for (method, path, body) in &calls {
        for (query, field) in [("debug=1", "debug"), ("limit=5&x", "x"), ("secret=s", "secret")] {
            let url = format!("{path}?{query}");
            let headers = [("content-type", "application/json"), ("authorization", bearer.as_str())];
            let r = app
                .raw(
                    method.clone(),
                    &url,
                    &headers,
                    body.as_ref().map(|b| b.to_string().into_bytes()),
                )
                .await;
            if path == "/tickets" && *method == Method::GET && query == "limit=5&x" {
                r.expect_error(400, "invalid_request", Some("x"));
                continue;
            }
            if query == "limit=5&x" {
                // `limit` is unknown here, and named first.
                r.expect_error(400, "invalid_request", Some("limit"));
                continue;
            }
            assert_eq!(r.status, 400, "{method} {url}: {}", r.body);
            assert_eq!(r.body["error"]["field"], field, "{method} {url}: {}", r.body);
        }
    }
    // Nothing above took effect: the domain and email are free, the ticket as it was.
    app.post("/auth/org/signup", None, json!({"name": "Q", "domain": domain}))
        .await
        .expect(201);
    app.post(
        "/auth/admin/signup",
        None,
        json!({"firstName": "Q", "lastName": "Q", "email": email, "password": PASSWORD, "secret": org.secret}),
    )
    .await
    .expect(201);
    let now = app.ticket(&admin.jwt, id).await;
    assert_eq!(
        (&now["version"], &now["status"]),
        (&ticket["version"], &ticket["status"])
    );
    assert!(now["responses"].as_array().unwrap().is_empty());
    let listed = app.get("/tickets", Some(&admin.jwt)).await.expect(200);
    assert_eq!(listed["tickets"].as_array().unwrap().len(), 1);
    // The list's own parameters are still welcome.
    app.get("/tickets?limit=5&status=OPEN", Some(&admin.jwt))
        .await
        .expect(200);
    app.stop().await;
}

/// Ids are UUIDs in the 8-4-4-4-12 form only, in paths and bodies alike:
/// braced, 32-digit and `urn:uuid:` spellings are a 400.
pub async fn ids_are_accepted_only_in_the_canonical_uuid_form(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let id = app.new_ticket_id(&org, &customer()).await;
    let spellings = |id: &str| [format!("{{{id}}}"), id.replace('-', ""), format!("urn:uuid:{id}")];
    for other in spellings(&id) {
        app.get(&format!("/tickets/{other}"), Some(&admin.jwt))
            .await
            .expect_error(400, "invalid_request", Some("id"));
        app.post(
            &format!("/tickets/{other}/respond"),
            Some(&admin.jwt),
            json!({"message": "m"}),
        )
        .await
        .expect_error(400, "invalid_request", Some("id"));
    }
    for other in spellings(&admin.id) {
        app.post(&format!("/tickets/{id}"), Some(&admin.jwt), json!({"adminId": other}))
            .await
            .expect_error(400, "invalid_request", Some("adminId"));
    }
    for other in spellings(&org.id) {
        app.post(&format!("/tickets/{id}"), Some(&admin.jwt), json!({"orgId": other}))
            .await
            .expect_error(400, "invalid_request", Some("orgId"));
    }
    // Hex digits in either case are the same id.
    let upper = app.ticket(&admin.jwt, &id.to_ascii_uppercase()).await;
    assert_eq!(upper["id"], id.as_str());
    assert_eq!(upper["version"], 1, "nothing above changed the ticket");
    app.stop().await;
}

/// A JSON object naming a key twice is a 400 naming that key.
pub async fn duplicate_json_keys_are_reported_by_name(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let json_ct = [("content-type", "application/json")];
    let domain = format!("{}.example.com", unique("dup"));
    let bodies = [
        (format!(r#"{{"name": "A", "name": "B", "domain": "{domain}"}}"#), "name"),
        (
            format!(r#"{{"name": "A", "domain": "{domain}", "domain": "x.example.com"}}"#),
            "domain",
        ),
    ];
    for (body, field) in bodies {
        let r = app
            .raw(Method::POST, "/auth/org/signup", &json_ct, Some(body.into_bytes()))
            .await;
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("more than once"), "{}", r.body);
        r.expect_error(400, "invalid_request", Some(field));
    }
    let ticket = format!(
        r#"{{"title": "t", "description": "d", "addedBy": "{}", "addedBy": "{}", "secret": "{}"}}"#,
        customer(),
        customer(),
        org.secret
    );
    app.raw(Method::POST, "/tickets", &json_ct, Some(ticket.into_bytes()))
        .await
        .expect_error(400, "invalid_request", Some("addedBy"));
    app.post("/auth/org/signup", None, json!({"name": "A", "domain": domain}))
        .await
        .expect(201);
    app.stop().await;
}

/// Setting RESPONDED by hand means "answered outside this API; wait for the
/// customer": from OPEN it starts the auto-close and sends no email; from
/// CLOSED it is a 409 (reopen first) by change_status and update alike.
pub async fn responded_by_hand_starts_the_wait_from_open_and_conflicts_from_closed(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let alice = customer();
    let id = app.new_ticket_id(&org, &alice).await;
    let status = |s: &str| json!({"status": s});
    let marked = app
        .post(
            &format!("/tickets/{id}/change_status"),
            Some(&admin.jwt),
            status("RESPONDED"),
        )
        .await
        .expect(200);
    assert_eq!(marked["status"], "RESPONDED");
    assert!(
        marked["respondedAt"].is_string() && marked["autoCloseAt"].is_string(),
        "{marked}"
    );
    assert!(app.mails_to(&alice).await.is_empty(), "no message, no email");

    let closed = app
        .post(
            &format!("/tickets/{id}/change_status"),
            Some(&admin.jwt),
            status("CLOSED"),
        )
        .await
        .expect(200);
    for path in [format!("/tickets/{id}/change_status"), format!("/tickets/{id}")] {
        app.post(&path, Some(&admin.jwt), status("RESPONDED"))
            .await
            .expect_error(409, "conflict", None);
    }
    let still = app.ticket(&admin.jwt, &id).await;
    assert_eq!(
        (&still["status"], &still["version"]),
        (&json!("CLOSED"), &closed["version"])
    );
    assert!(still["autoCloseAt"].is_null());

    app.post(
        &format!("/tickets/{id}/change_status"),
        Some(&admin.jwt),
        status("OPEN"),
    )
    .await
    .expect(200);
    app.post(&format!("/tickets/{id}"), Some(&admin.jwt), status("RESPONDED"))
        .await
        .expect(200);
    assert!(app.mails_to(&alice).await.is_empty());
    app.stop().await;
}

/// Emails with misplaced dots or invisible characters, org domains that are
/// IP addresses or lack a real top-level label, and passwords of only spaces
/// are each a 400 naming the field.
pub async fn odd_emails_domains_and_blank_passwords_are_refused(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    for domain in ["127.0.0.1", "x.123", "x.a", "10.1.2.3."] {
        app.post("/auth/org/signup", None, json!({"name": "Odd", "domain": domain}))
            .await
            .expect_error(400, "invalid_request", Some("domain"));
    }
    let d = &org.domain;
    let admin = |email: String, password: &str| json!({"firstName": "A", "lastName": "B", "email": email, "password": password, "secret": org.secret});
    for email in [
        format!(".a@{d}"),
        format!("a.@{d}"),
        format!("a..b@{d}"),
        format!("a\u{202E}b@{d}"),
        format!("a\u{200B}b@{d}"),
    ] {
        app.post("/auth/admin/signup", None, admin(email.clone(), PASSWORD))
            .await
            .expect_error(400, "invalid_request", Some("email"));
        app.post(
            "/tickets",
            None,
            json!({"title": "t", "description": "d", "addedBy": email, "secret": org.secret}),
        )
        .await
        .expect_error(400, "invalid_request", Some("addedBy"));
    }
    let email = format!("{}@{d}", unique("a"));
    for blank in [" ".repeat(8), " \t ".repeat(4)] {
        app.post("/auth/admin/signup", None, admin(email.clone(), &blank))
            .await
            .expect_error(400, "invalid_request", Some("password"));
    }
    app.post("/auth/admin/signup", None, admin(email.clone(), "  a passphrase  "))
        .await
        .expect(201);
    app.stop().await;
}

/// A token signed with the right key is still refused before its `nbf` or
/// when its `iat` lies in the future.
pub async fn tokens_not_yet_valid_or_issued_in_the_future_are_unauthorized(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let now = chrono::Utc::now().timestamp();
    let forge = |claims: Value| ticketing_tests::forge_token(&claims);
    let (sub, o) = (&admin.id, &org.id);
    for claims in [
        json!({"sub": sub, "org": o, "iat": now, "exp": now + 7200, "nbf": now + 3600}),
        json!({"sub": sub, "org": o, "iat": now + 3600, "exp": now + 7200}),
    ] {
        app.get("/tickets", Some(&forge(claims.clone())))
            .await
            .expect_error(401, "unauthorized", None);
    }
    // The same claims without the future: accepted.
    let fine = forge(json!({"sub": sub, "org": o, "iat": now, "exp": now + 7200, "nbf": now - 5}));
    app.get("/tickets", Some(&fine)).await.expect(200);
    app.stop().await;
}
