//! Each function runs under its own template policy. The harness resolves
//! every function's statements from template.yaml, makes each a moto IAM
//! user in a moto of its own that enforces IAM, and drives every function's
//! handler with its own credentials through its paths (success,
//! Idempotency-Key first call / replay / conflict / abandoned, version
//! conflicts, not found, throttled sign-in, the background functions'
//! failure and retry paths). Two checks, both naming function, action and
//! resource:
//!
//! - moto refused a call (`AccessDenied`): moto checks the action of every
//!   service the functions call, and the resource for SQS and S3;
//! - a recorded call (the SDK interceptor in adapters/aws/calls.rs) is not
//!   allowed by the statements as IAM reads them: action, resource ARN
//!   (tables, indexes, streams, schedules, identities, secrets, queues,
//!   objects), and conditions (`dynamodb:LeadingKeys`, `ses:FromAddress`,
//!   `iam:PassRole` with `iam:PassedToService`), none of which moto checks.
//!
//! With `each_function_gets_only_the_permissions_it_uses` (template.rs, no
//! more than needed) it pins each policy from both sides.

#[allow(dead_code)]
mod common;
#[path = "iam/moto.rs"]
mod moto;
#[path = "iam/policy.rs"]
mod policy;

use aws_lambda_events::sqs::SqsEvent;
use lambda_http::{Body, Request};
use policy::{ACCOUNT, Names, REGION, STACK, Statement};
use serde_json::{Value as Json, json};
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use ticketing::adapters::aws::inbound_mail::{InboundBucket, SesReceiptEvent};
use ticketing::adapters::aws::{self, AwsAdapters, AwsSettings, CloseEvent};
use ticketing::domain::IdempotencyKey;
use ticketing::http::Endpoint;
use ticketing::service::{self, Service};
use tower::ServiceExt;

fn template() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

/// One function of the template, deployed on the IAM-enforcing moto.
struct Function {
    logical: String,
    binary: String,
    statements: Vec<Statement>,
    service: Service,
    adapters: AwsAdapters,
    settings: AwsSettings,
}

struct Deployment {
    functions: BTreeMap<String, Function>,
    admin: AwsAdapters,
    settings: AwsSettings,
    stream_arn: String,
    bucket: InboundBucket,
    domain: String,
}

impl Deployment {
    fn by_binary(&self, binary: &str) -> &Function {
        self.functions
            .values()
            .find(|f| f.binary == binary)
            .unwrap_or_else(|| panic!("no function {binary}"))
    }
}

fn var<'a>(t: &'a Value, f: &'a Value, key: &str) -> Option<&'a Value> {
    let own = &f["Properties"]["Environment"]["Variables"][key];
    if own.is_null() {
        let global = &t["Globals"]["Function"]["Environment"]["Variables"][key];
        (!global.is_null()).then_some(global)
    } else {
        Some(own)
    }
}

async fn deploy(moto: &moto::Moto) -> Deployment {
    let id = ticketing::domain::TicketId::new().0.simple().to_string();
    let table = format!("iam-{id}");
    let sqs = |name: String| format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}");
    let domain = format!("in-{id}.example");
    let mut settings = AwsSettings {
        failure_queue_arn: sqs(format!("{table}-failures")),
        dead_letter_arn: sqs(format!("{table}-close-dlq")),
        scheduler_role_arn: format!("arn:aws:iam::{ACCOUNT}:role/{STACK}-scheduler"),
        close_function_arn: format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-close-ticket"),
        jwt_secret_arn: Some(format!("{table}-jwt")),
        jwt_signing_secret_arn: Some(format!("{table}-jwt-signing")),
        reply_key_secret_arn: Some(format!("{table}-reply")),
        inbound_domain: Some(domain.clone()),
        ..AwsSettings::local(table.clone(), table.clone(), "support@ticketing.example.com")
    };
    let base_sdk = aws::sdk_config_with(Some(&moto.url), Some(Duration::from_secs(10))).await;
    let signed_by = |key: String, secret: String| {
        let creds = aws_sdk_dynamodb::config::Credentials::new(key, secret, None, None, "iam-harness");
        base_sdk
            .to_builder()
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(creds))
            .build()
    };
    // The test's own setup and reads run as a user allowed everything.
    let everything =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let (key, secret) = moto.user("harness-admin", &everything).await;
    let admin = AwsAdapters::new(&signed_by(key, secret), &settings);
    aws::create_missing_resources(&admin, &settings)
        .await
        .expect("resources on moto");
    let secret_arn = |name: String| {
        let admin = admin.clone();
        async move {
            admin
                .secrets()
                .describe_secret()
                .secret_id(name)
                .send()
                .await
                .expect("the secret")
                .arn
                .expect("an ARN")
        }
    };
    settings.jwt_secret_arn = Some(secret_arn(settings.jwt_secret_arn.clone().unwrap()).await);
    settings.jwt_signing_secret_arn = Some(secret_arn(settings.jwt_signing_secret_arn.clone().unwrap()).await);
    settings.reply_key_secret_arn = Some(secret_arn(settings.reply_key_secret_arn.clone().unwrap()).await);
    let webhook_queue = admin
        .sqs()
        .create_queue()
        .queue_name(format!("{table}-webhooks"))
        .send()
        .await
        .expect("the webhook queue")
        .queue_url
        .expect("a URL");
    let bucket = InboundBucket {
        bucket: format!("inbound-{id}"),
        prefix: "inbound/".into(),
    };
    admin
        .s3()
        .create_bucket()
        .bucket(&bucket.bucket)
        .send()
        .await
        .expect("a bucket");
    let stream_arn = admin
        .dynamo
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect("the table")
        .table
        .and_then(|t| t.latest_stream_arn)
        .expect("a stream");

    let table_arn = format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}");
    let names = Names(BTreeMap::from(
        [
            ("TicketsTable", table.clone()),
            ("TicketsTable.Arn", table_arn),
            ("TicketsTable.StreamArn", stream_arn.clone()),
            ("JwtKeysSecret", settings.jwt_secret_arn.clone().unwrap()),
            ("JwtSigningKeysSecret", settings.jwt_signing_secret_arn.clone().unwrap()),
            ("ReplyKeySecret", settings.reply_key_secret_arn.clone().unwrap()),
            ("AutoCloseScheduleGroup", settings.schedule_group.clone()),
            ("SchedulerRole.Arn", settings.scheduler_role_arn.clone()),
            ("MailConfigurationSet", settings.configuration_set.clone()),
            ("SenderEmail", settings.mail_from.clone()),
            ("FailureQueue.Arn", settings.failure_queue_arn.clone()),
            ("CloseDeadLetterQueue.Arn", settings.dead_letter_arn.clone()),
            ("WebhookQueue.Arn", sqs(format!("{table}-webhooks"))),
            ("WebhookQueue", webhook_queue.clone()),
            ("InboundBucket", bucket.bucket.clone()),
            ("InboundBucket.Arn", format!("arn:aws:s3:::{}", bucket.bucket)),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    ));

    let t = template();
    let mut functions = BTreeMap::new();
    for (name, f) in t["Resources"].as_mapping().unwrap() {
        if f["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let logical = name.as_str().unwrap().to_owned();
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned();
        let statements = policy::statements(&t, &logical, &names);
        let (key, secret) = moto.user(&logical, &policy::moto_policy(&statements)).await;
        let sdk = signed_by(key, secret);
        // The variables the template gives this function (empty: none).
        let set = |key: &str| {
            var(&t, f, key)
                .map(|v| names.resolve(v).concat())
                .filter(|v| !v.is_empty())
        };
        let own = AwsSettings {
            jwt_secret_arn: set(aws::ENV_JWT_SECRET_ARN),
            jwt_signing_secret_arn: set(aws::ENV_JWT_SIGNING_SECRET_ARN),
            reply_key_secret_arn: set(aws::ENV_REPLY_KEY_ARN),
            webhook_queue_url: set("TICKETING_WEBHOOK_QUEUE_URL"),
            ..settings.clone()
        };
        let adapters = AwsAdapters::new(&sdk, &own).allow_private_webhooks();
        let service_settings = service::Settings {
            jwt_keys: adapters.jwt_keys(&own),
            auto_close_after: Duration::from_secs(30 * 86_400),
            reopen_window: service::DEFAULT_REOPEN_WINDOW,
            mail_from: own.mail_from.clone(),
            signin: Default::default(),
            inbound: service::InboundSettings {
                domain: Some(domain.clone()),
                reply_key: adapters.reply_keys(&own),
                allow_unauthenticated: false,
                trusted_authserv_id: None,
            },
            limits: Default::default(),
        };
        let service = Service::new(adapters.ports(), &service_settings).expect("valid settings");
        functions.insert(
            logical.clone(),
            Function {
                logical,
                binary,
                statements,
                service,
                adapters,
                settings: own,
            },
        );
    }
    Deployment {
        functions,
        admin,
        settings,
        stream_arn,
        bucket,
        domain,
    }
}

/// A request to one function's router (as API Gateway hands it over).
struct Call<'a> {
    f: &'a Function,
    method: &'static str,
    path: String,
    body: Json,
    headers: Vec<(&'static str, String)>,
}

impl<'a> Call<'a> {
    fn new(f: &'a Function, method: &'static str, path: impl Into<String>) -> Self {
        Self {
            f,
            method,
            path: path.into(),
            body: Json::Null,
            headers: Vec::new(),
        }
    }
    fn body(mut self, body: Json) -> Self {
        self.body = body;
        self
    }
    fn jwt(mut self, jwt: &str) -> Self {
        self.headers.push(("authorization", format!("Bearer {jwt}")));
        self
    }
    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
    async fn send(self) -> (u16, Json) {
        let endpoint = Endpoint::ALL
            .into_iter()
            .find(|e| e.function_name() == self.f.binary && e.method().as_str() == self.method)
            .unwrap_or_else(|| panic!("{} serves no {}", self.f.binary, self.method));
        let mut req = Request::new(if self.method == "GET" || self.method == "DELETE" {
            Body::Empty
        } else {
            Body::Text(self.body.to_string())
        });
        *req.method_mut() = self.method.parse().unwrap();
        *req.uri_mut() = self.path.parse().unwrap();
        req.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        for (k, v) in &self.headers {
            req.headers_mut().insert(*k, v.parse().unwrap());
        }
        let response = ticketing_functions::app(self.f.service.clone(), endpoint)
            .oneshot(req)
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }
    /// The call's status should be `want` (else noted, the run goes on,
    /// so every refused call is found in one run); its body.
    async fn expect(self, want: u16) -> Json {
        let what = format!("{} {} {}", self.f.logical, self.method, self.path);
        let (status, body) = self.send().await;
        if status != want {
            note(format!("{what}: {status}, not {want}: {body}"));
        }
        body
    }
}

/// A POST with an Idempotency-Key: the first call, a replay, the same key
/// for another body (422), and a begun-then-abandoned key (what a 5xx
/// answer does), all through the function's own store. The first answer.
async fn idempotent(f: &Function, path: &str, auth: Auth<'_>, body: Json, want: u16) -> Json {
    let key = ticketing::domain::TicketId::new().0.to_string();
    let call = |body: Json| {
        let c = Call::new(f, "POST", path).body(body).header("idempotency-key", &key);
        match auth {
            Auth::None => c,
            Auth::Jwt(jwt) => c.jwt(jwt),
            Auth::Key(k) => c.header("x-api-key", k),
        }
    };
    let first = call(body.clone()).expect(want).await;
    let again = call(body.clone()).send().await;
    // An answer carrying a credential is not kept: its replay is a 409.
    let issues = Endpoint::ALL
        .into_iter()
        .any(|e| e.function_name() == f.binary && e.issues_credentials());
    let want_again = if issues { 409 } else { want };
    if again.0 != want_again {
        note(format!(
            "{} {path}: replay {}, not {want_again}: {}",
            f.logical, again.0, again.1
        ));
    }
    let mut other = body.clone();
    other["iamHarness"] = json!("another body");
    let (status, _) = call(other).send().await;
    if status != 422 {
        note(format!(
            "{} {path}: the key reused for another body: {status}, not 422",
            f.logical
        ));
    }
    let abandoned = IdempotencyKey {
        scope: "anon".into(),
        key: format!("abandoned-{key}"),
    };
    if let Err(e) = f.service.begin_idempotent(&abandoned, "fingerprint".into()).await {
        note(format!("{}: begin_idempotent: {e:?}", f.logical));
    }
    if let Err(e) = f.service.abandon_idempotent(&abandoned).await {
        note(format!("{}: abandon_idempotent: {e:?}", f.logical));
    }
    first
}

/// Answers other than expected, reported with the refused calls.
static UNEXPECTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn note(what: String) {
    UNEXPECTED.lock().unwrap_or_else(|p| p.into_inner()).push(what);
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Jwt(&'a str),
    Key(&'a str),
}

/// Answers every HTTP request with `status`: a webhook endpoint.
async fn receiver(status: u16) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes(),
                    )
                    .await;
            });
        }
    });
    format!("http://{addr}/hook")
}

/// The table stream's records so far (what Lambda hands reconcile).
async fn stream_records(d: &Deployment) -> Vec<aws::stream::Record> {
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;
    let streams = d.admin.streams();
    let described = streams
        .describe_stream()
        .stream_arn(&d.stream_arn)
        .send()
        .await
        .expect("the stream");
    let mut out = Vec::new();
    for shard in described.stream_description().map(|s| s.shards()).unwrap_or_default() {
        let mut it = streams
            .get_shard_iterator()
            .stream_arn(&d.stream_arn)
            .shard_id(shard.shard_id().unwrap())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("an iterator")
            .shard_iterator;
        while let Some(i) = it.take() {
            let page = streams.get_records().shard_iterator(i).send().await.expect("records");
            if page.records().is_empty() {
                break;
            }
            out.extend(page.records().iter().map(aws::stream::Record::from));
            it = page.next_shard_iterator;
        }
    }
    out
}

/// Jobs waiting in a queue, as an SQS event (admin reads them).
async fn receive(d: &Deployment, url: &str) -> SqsEvent {
    let mut records = Vec::new();
    for _ in 0..5 {
        let out = d
            .admin
            .sqs()
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        for m in out.messages() {
            let mut r = aws_lambda_events::sqs::SqsMessage::default();
            r.message_id = m.message_id().map(str::to_owned);
            r.body = m.body().map(str::to_owned);
            r.receipt_handle = m.receipt_handle().map(str::to_owned);
            records.push(r);
        }
        if !records.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut event = SqsEvent::default();
    event.records = records;
    event
}

async fn drive(d: &Deployment) {
    let f = |b: &str| d.by_binary(b);
    let org_domain = format!("o{}.example.com", ticketing::domain::TicketId::new().0.simple());
    // org-signup: idempotency paths, a taken domain (409).
    let org = idempotent(
        f("org-signup"),
        "/auth/org/signup",
        Auth::None,
        json!({"name": "Acme", "domain": org_domain}),
        201,
    )
    .await;
    Call::new(f("org-signup"), "POST", "/auth/org/signup")
        .body(json!({"name": "Acme", "domain": org_domain}))
        .expect(409)
        .await;
    let secret = org["secret"].as_str().unwrap().to_owned();
    let password = "correct horse battery";
    let email = format!("ana@{org_domain}");
    // admin-signup: idempotency paths, a taken email (409), a bad secret (401).
    idempotent(
        f("admin-signup"),
        "/auth/admin/signup",
        Auth::None,
        json!({"firstName": "Ana", "lastName": "A", "email": email, "password": password, "secret": secret}),
        201,
    )
    .await;
    Call::new(f("admin-signup"), "POST", "/auth/admin/signup")
        .body(json!({"firstName": "Ana", "lastName": "A", "email": email, "password": password, "secret": secret}))
        .expect(409)
        .await;
    Call::new(f("admin-signup"), "POST", "/auth/admin/signup")
        .body(json!({"firstName": "Ana", "lastName": "A", "email": email, "password": password, "secret": "nope"}))
        .expect(401)
        .await;
    // admin-signin: success, wrong passwords until throttled (429).
    let signin = |email: &str, password: &str| {
        Call::new(f("admin-signin"), "POST", "/auth/admin/signin").body(json!({"email": email, "password": password}))
    };
    let jwt = signin(&email, password).expect(200).await["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = format!("bob@{org_domain}");
    Call::new(f("admin-signup"), "POST", "/auth/admin/signup")
        .body(json!({"firstName": "Bob", "lastName": "B", "email": bob, "password": password, "secret": secret}))
        .expect(201)
        .await;
    for _ in 0..service::SigninLimit::default().max_failures {
        signin(&bob, "wrong horse battery").expect(401).await;
    }
    signin(&bob, password).expect(429).await;
    signin("nobody@nowhere.example", password).expect(401).await;

    // API keys: issued, listed, used by the key-accepting functions, revoked.
    let issued = idempotent(
        f("create-api-key"),
        "/api-keys",
        Auth::Jwt(&jwt),
        json!({"name": "filer", "scopes": ["tickets:create", "tickets:read", "admins:create"]}),
        201,
    )
    .await;
    let api_key = issued["key"].as_str().unwrap_or_default().to_owned();
    let key_id = issued["id"].as_str().unwrap_or_default().to_owned();
    Call::new(f("list-api-keys"), "GET", "/api-keys")
        .jwt(&jwt)
        .expect(200)
        .await;
    Call::new(f("admin-signup"), "POST", "/auth/admin/signup")
        .header("x-api-key", &api_key)
        .body(json!({"firstName": "Cy", "lastName": "C", "email": format!("cy@{org_domain}"), "password": password}))
        .expect(201)
        .await;

    // Tickets: created (secret, API key), read, listed, updated, responded.
    let ticket = idempotent(
        f("create-ticket"),
        "/tickets",
        Auth::None,
        json!({"title": "Printer on fire", "description": "Smoke.", "addedBy": "carla@customer.example", "secret": secret}),
        201,
    )
    .await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    let second = Call::new(f("create-ticket"), "POST", "/tickets")
        .header("x-api-key", &api_key)
        .body(json!({"title": "Two", "description": "d", "addedBy": "dan@customer.example"}))
        .expect(201)
        .await;
    let id2 = second["id"].as_str().unwrap().to_owned();
    let missing = ticketing::domain::TicketId::new().0.to_string();
    for auth in [Auth::Jwt(&jwt), Auth::Key(&api_key)] {
        let get = |path: String, fun: &'static str| {
            let c = Call::new(f(fun), "GET", path);
            match auth {
                Auth::Jwt(j) => c.jwt(j),
                Auth::Key(k) => c.header("x-api-key", k),
                Auth::None => c,
            }
        };
        get(format!("/tickets/{id}"), "get-ticket").expect(200).await;
        get(format!("/tickets/{missing}"), "get-ticket").expect(404).await;
        get("/tickets?customerEmail=carla@customer.example".into(), "list-tickets")
            .expect(200)
            .await;
        if let Auth::Key(_) = auth {
            continue; // the rest take a JWT only
        }
        for q in [
            "",
            "?status=OPEN",
            "?adminEmail=ana@x.example&status=OPEN&customerEmail=c@x.example",
        ] {
            get(format!("/tickets{q}"), "list-tickets").expect(200).await;
        }
        get(format!("/tickets/{id}/events"), "ticket-events").expect(200).await;
        get("/admins".into(), "list-admins").expect(200).await;
    }
    let post = |fun: &'static str, path: String, body: Json| Call::new(f(fun), "POST", path).jwt(&jwt).body(body);
    idempotent(
        f("update-ticket"),
        &format!("/tickets/{id}"),
        Auth::Jwt(&jwt),
        json!({"title": "Printer still on fire"}),
        200,
    )
    .await;
    post("update-ticket", format!("/tickets/{missing}"), json!({"title": "x"}))
        .expect(404)
        .await;
    post(
        "update-ticket",
        format!("/tickets/{id2}"),
        json!({"status": "RESPONDED"}),
    )
    .expect(200)
    .await;
    post("update-ticket", format!("/tickets/{id2}"), json!({"status": "OPEN"}))
        .expect(200)
        .await;
    idempotent(
        f("add-note"),
        &format!("/tickets/{id}/notes"),
        Auth::Jwt(&jwt),
        json!({"message": "Checked the toner."}),
        201,
    )
    .await;
    post("add-note", format!("/tickets/{missing}/notes"), json!({"message": "x"}))
        .expect(404)
        .await;
    let response = idempotent(
        f("respond"),
        &format!("/tickets/{id}/respond"),
        Auth::Jwt(&jwt),
        json!({"message": "Turn it off."}),
        201,
    )
    .await;
    post(
        "respond",
        format!("/tickets/{missing}/respond"),
        json!({"message": "x"}),
    )
    .expect(404)
    .await;
    idempotent(
        f("change-status"),
        &format!("/tickets/{id2}/change_status"),
        Auth::Jwt(&jwt),
        json!({"status": "RESPONDED"}),
        200,
    )
    .await;
    for status in ["OPEN", "CLOSED", "OPEN"] {
        post(
            "change-status",
            format!("/tickets/{id2}/change_status"),
            json!({"status": status}),
        )
        .expect(200)
        .await;
    }
    post(
        "change-status",
        format!("/tickets/{missing}/change_status"),
        json!({"status": "OPEN"}),
    )
    .expect(404)
    .await;
    // A customer's reply through the API (org secret): reopens RESPONDED.
    idempotent(
        f("add-reply"),
        &format!("/tickets/{id}/replies"),
        Auth::None,
        json!({"message": "Still smoking.", "from": "carla@customer.example", "secret": secret}),
        201,
    )
    .await;
    Call::new(f("add-reply"), "POST", format!("/tickets/{missing}/replies"))
        .body(json!({"message": "x", "from": "carla@customer.example", "secret": secret}))
        .expect(404)
        .await;
    post(
        "respond",
        format!("/tickets/{id}/respond"),
        json!({"message": "Again."}),
    )
    .expect(201)
    .await;

    // People: availability off and on (waiting tickets assigned).
    let admins = Call::new(f("list-admins"), "GET", "/admins")
        .jwt(&jwt)
        .expect(200)
        .await;
    let me = admins["admins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["email"] == email.as_str())
        .expect("ana")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for available in [false, true] {
        idempotent(
            f("set-availability"),
            &format!("/admins/{me}/availability"),
            Auth::Jwt(&jwt),
            json!({"available": available}),
            200,
        )
        .await;
    }
    // Roles: a full admin grants (here: keeps) its own role; an unknown admin is 404.
    post("set-admin-role", format!("/admins/{me}/role"), json!({"role": "full"}))
        .expect(200)
        .await;
    post(
        "set-admin-role",
        format!("/admins/{missing}/role"),
        json!({"role": "full"}),
    )
    .expect(404)
    .await;

    // Webhooks: created, listed, rotated, deliveries, redelivered, deleted.
    let endpoint = receiver(200).await;
    let hook = idempotent(
        f("create-webhook"),
        "/webhooks",
        Auth::Jwt(&jwt),
        json!({"url": endpoint, "events": ["ticket.created", "ticket.updated", "ticket.responded"]}),
        201,
    )
    .await;
    let hook_id = hook["id"]
        .as_str()
        .or(hook["webhook"]["id"].as_str())
        .unwrap()
        .to_owned();
    Call::new(f("list-webhooks"), "GET", "/webhooks")
        .jwt(&jwt)
        .expect(200)
        .await;
    idempotent(
        f("rotate-webhook-secret"),
        &format!("/webhooks/{hook_id}/rotate_secret"),
        Auth::Jwt(&jwt),
        json!({}),
        200,
    )
    .await;
    post("update-ticket", format!("/tickets/{id2}"), json!({"title": "Hooked"}))
        .expect(200)
        .await;

    // reconcile: the stream so far, as Lambda hands it over (schedules,
    // mail, webhook fan-out onto the queue).
    let reconcile = f("reconcile");
    let queue = reconcile
        .adapters
        .webhook_queue(&reconcile.settings)
        .expect("the queue");
    let records = stream_records(d).await;
    assert!(!records.is_empty());
    for chunk in records.chunks(10) {
        let failed = aws::stream::apply_records(
            &reconcile.service,
            aws::stream::Effects::new(&reconcile.adapters, Some(&queue)),
            chunk,
            None,
        )
        .await;
        if failed.is_some() {
            note("ReconcileFunction: a record failed".into());
        }
    }
    // webhook-sender: the queued jobs; then one to an endpoint that fails
    // (the retry is queued).
    let sender = f("webhook-sender");
    let sender_queue = sender.adapters.webhook_queue(&sender.settings).expect("the queue");
    let url = sender.settings.webhook_queue_url.clone().unwrap();
    let jobs = receive(d, &url).await;
    if jobs.records.is_empty() {
        note("ReconcileFunction queued no webhook delivery".into());
    }
    ticketing_functions::webhook_sender(&sender.service, &sender_queue, jobs).await;
    let deliveries = Call::new(
        f("webhook-deliveries"),
        "GET",
        format!("/webhooks/{hook_id}/deliveries"),
    )
    .jwt(&jwt)
    .expect(200)
    .await;
    if let Some(delivery) = deliveries["deliveries"][0]["id"].as_str() {
        post(
            "redeliver-webhook",
            format!("/webhooks/{hook_id}/deliveries/{delivery}/redeliver"),
            json!({}),
        )
        .send()
        .await;
    }
    let failing = receiver(500).await;
    let hook2 = post(
        "create-webhook",
        "/webhooks".into(),
        json!({"url": failing, "events": ["ticket.updated"]}),
    )
    .expect(201)
    .await;
    post(
        "update-ticket",
        format!("/tickets/{id2}"),
        json!({"title": "Hooked again"}),
    )
    .expect(200)
    .await;
    let records = stream_records(d).await;
    aws::stream::apply_records(
        &reconcile.service,
        aws::stream::Effects::new(&reconcile.adapters, Some(&queue)),
        &records,
        None,
    )
    .await;
    let jobs = receive(d, &url).await;
    ticketing_functions::webhook_sender(&sender.service, &sender_queue, jobs).await;
    let hook2_id = hook2["id"]
        .as_str()
        .or(hook2["webhook"]["id"].as_str())
        .unwrap()
        .to_owned();
    for h in [&hook_id, &hook2_id] {
        Call::new(f("delete-webhook"), "DELETE", format!("/webhooks/{h}"))
            .jwt(&jwt)
            .expect(204)
            .await;
    }
    Call::new(f("delete-webhook"), "DELETE", format!("/webhooks/{hook_id}"))
        .jwt(&jwt)
        .expect(404)
        .await;

    // close-ticket: the schedule's input closes the ticket, a repeat skips.
    let t = Call::new(f("get-ticket"), "GET", format!("/tickets/{id}"))
        .jwt(&jwt)
        .expect(200)
        .await;
    let responded_at = t["respondedAt"].as_str().unwrap().to_owned();
    let input =
        common::event("close-ticket", &[("<TICKET_ID>", &id)]).replace("2026-11-28T03:34:05.139Z", &responded_at);
    let close: CloseEvent = serde_json::from_str(&input).unwrap();
    let closer = &f("close-ticket").service;
    for want in ["closed", "skipped"] {
        match ticketing_functions::close_ticket(closer, close).await {
            Ok(out) if out["outcome"].as_str().is_some_and(|o| o.starts_with(want)) => {}
            other => note(format!("CloseTicketFunction: {other:?}, not {want}")),
        }
    }

    // mail-events: SES reports the first response's mail delivered.
    let t = Call::new(f("get-ticket"), "GET", format!("/tickets/{id}"))
        .jwt(&jwt)
        .expect(200)
        .await;
    let first = &t["responses"][0];
    {
        let message_id = first["delivery"]["messageId"].as_str().unwrap_or("iam-harness-message");
        let fill = [
            ("<TICKET_ID>", id.as_str()),
            ("<RESPONSE_ID>", first["id"].as_str().unwrap()),
            ("<MESSAGE_ID>", message_id),
        ];
        let batch: SqsEvent = serde_json::from_str(&common::event("mail-events", &fill)).unwrap();
        let out = ticketing_functions::mail_events(&f("mail-events").service, batch).await;
        if !out.batch_item_failures.is_empty() {
            note(format!("MailEventsFunction: the report was not recorded ({first})"));
        }
    }

    // inbound-email: a customer's emailed reply, stored by SES in S3.
    let inbound = f("inbound-email");
    use ticketing::ports::ReplyKeySource;
    let key = aws::SecretsManagerReplyKey::new(
        d.admin.secrets().clone(),
        d.settings.reply_key_secret_arn.clone().unwrap(),
    )
    .load()
    .await
    .expect("the reply key");
    let ticket_id = id.parse().unwrap();
    let address = key.address(ticket_id, &d.domain);
    let in_reply_to = key.message_id(ticket_id, response["id"].as_str().unwrap().parse().unwrap(), &d.domain);
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/inbound/gmail-reply.eml"
    ))
    .unwrap()
    .replace("{{to}}", &address)
    .replace("{{from}}", "carla@customer.example")
    .replace("{{ticket}}", &id)
    .replace("{{domain}}", &d.domain)
    .replace("{{in_reply_to}}", &in_reply_to)
    .replace("\r\n", "\n")
    .replace('\n', "\r\n");
    let ses_id = ticketing::domain::TicketId::new().0.simple().to_string();
    d.admin
        .s3()
        .put_object()
        .bucket(&d.bucket.bucket)
        .key(format!("{}{ses_id}", d.bucket.prefix))
        .body(fixture.into_bytes().into())
        .send()
        .await
        .expect("stored");
    let event = common::event(
        "inbound-email",
        &[
            ("<SES_MESSAGE_ID>", &ses_id),
            ("<RECIPIENT>", &address),
            ("<SPAM_VERDICT>", "PASS"),
        ],
    );
    let event: SesReceiptEvent = serde_json::from_str(&event).unwrap();
    for want in ["applied", "duplicate"] {
        match ticketing_functions::inbound_email(&inbound.service, inbound.adapters.s3(), &d.bucket, event.clone())
            .await
        {
            Ok(out) if out["outcomes"][0] == want => {}
            other => note(format!("InboundEmailFunction: {other:?}, not {want}")),
        }
    }

    // The sweeper: overdue closes, pending mail, and a failed close waiting
    // in the failure queue (retried from there).
    let failure = aws::failures::Failure::async_invoke_record(&close, "the table was unreachable");
    let failure_url = aws::failures::queue_url(d.admin.sqs(), &d.settings.failure_queue_arn)
        .await
        .unwrap();
    d.admin
        .sqs()
        .send_message()
        .queue_url(failure_url)
        .message_body(failure)
        .send()
        .await
        .unwrap();
    let sweeper = f("sweeper");
    let sweep = aws::Sweeper::new(sweeper.service.clone(), sweeper.adapters.clone(), &sweeper.settings);
    let (_, drained) = sweep.run(Duration::from_secs(20)).await;
    if drained.retried == 0 {
        note(format!(
            "SweeperFunction: the failed close was not retried: {drained:?}"
        ));
    }

    // Credentials last: revoke the key (then 404), rotate the org secret.
    idempotent(
        f("rotate-org-secret"),
        "/auth/org/secret/rotate",
        Auth::Jwt(&jwt),
        json!({}),
        200,
    )
    .await;
    Call::new(f("revoke-api-key"), "DELETE", format!("/api-keys/{key_id}"))
        .jwt(&jwt)
        .expect(204)
        .await;
    Call::new(f("revoke-api-key"), "DELETE", format!("/api-keys/{key_id}"))
        .jwt(&jwt)
        .expect(404)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_runs_under_its_own_template_policy() {
    let moto = moto::Moto::start().await;
    let d = std::sync::Arc::new(deploy(&moto).await);
    moto.enforce().await;
    // A path that cannot go on (a refused call upstream) still reports
    // every refused call made up to there.
    let driven = tokio::spawn({
        let d = d.clone();
        async move { drive(&d).await }
    })
    .await;
    // Let spawned sends (respond's mail) finish.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut problems = Vec::new();
    let mut table = String::from("function | granted | used\n");
    for f in d.functions.values() {
        let granted: BTreeSet<String> = f.statements.iter().flat_map(|s| s.actions.clone()).collect();
        let mut used = BTreeSet::new();
        let calls = f.adapters.dynamo_calls.take_calls();
        if calls.is_empty() {
            note(format!("{} was not driven", f.logical));
        }
        for call in &calls {
            if call.denied {
                problems.push(format!(
                    "{}: moto AccessDenied {} on {} (key {:?})",
                    f.logical,
                    call.iam_action(),
                    call.resource,
                    call.key_prefix()
                ));
            }
            for request in policy::requests(call, &d.stream_arn) {
                used.insert(request.action.clone());
                if !policy::allows(&f.statements, &request) {
                    problems.push(format!(
                        "{}: not allowed: {} on {} {:?}",
                        f.logical, request.action, request.resource, request.context
                    ));
                }
            }
        }
        let fmt = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(" ");
        table.push_str(&format!("{} | {} | {}\n", f.logical, fmt(&granted), fmt(&used)));
    }
    println!("{table}");
    problems.sort();
    problems.dedup();
    let unexpected = std::mem::take(&mut *UNEXPECTED.lock().unwrap_or_else(|p| p.into_inner()));
    assert!(
        problems.is_empty() && unexpected.is_empty() && driven.is_ok(),
        "{} refused calls:\n{}\n\nanswers not as expected:\n{}\n\nthe run: {driven:?}",
        problems.len(),
        problems.join("\n"),
        unexpected.join("\n")
    );
}
