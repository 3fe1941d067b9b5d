//! `ticketd` as users run it: a real process, real signals, `kill -9`.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Ticketd {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Ticketd {
    fn spawn(data_dir: &Path, extra: &[&str]) -> Self {
        Self::spawn_on("127.0.0.1:0", data_dir, extra)
    }

    fn spawn_on(listen: &str, data_dir: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ticketd"))
            .args(["--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "debug")
            .env("NO_COLOR", "1")
            .env_remove("TICKETING_JWT_SECRET")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ticketd starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (log, tx) = (log.clone(), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let _ = tx.send(rest.split(';').next().unwrap().to_owned());
                    }
                    log.lock().unwrap().push_str(&line);
                    log.lock().unwrap().push('\n');
                }
            });
        }
        drop(tx);
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no start-up line; log:\n{}", log.lock().unwrap()));
        Self {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "ticketd did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Ticketd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request reaches ticketd");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

const PASSWORD: &str = "a long admin password";

/// The seed flow, returning (secret, jwt, ticket ids).
async fn walkthrough(base: &str, tickets: usize) -> (String, String, Vec<String>) {
    use reqwest::Method;
    let (s, org) = call(
        base,
        Method::POST,
        "/auth/org/signup",
        &[],
        Some(json!({"name": "Growfin", "domain": "growfin.ai"})),
    )
    .await;
    assert_eq!(s, 201, "{org}");
    let secret = org["secret"].as_str().unwrap().to_owned();
    let (s, _) = call(
        base,
        Method::POST,
        "/auth/admin/signup",
        &[("x-api-key", &secret)],
        Some(json!({"firstName": "Ana", "lastName": "Lee", "email": "ana@growfin.ai", "password": PASSWORD})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, signin) = call(
        base,
        Method::POST,
        "/auth/admin/signin",
        &[],
        Some(json!({"email": "ana@growfin.ai", "password": PASSWORD})),
    )
    .await;
    assert_eq!(s, 200);
    let jwt = signin["jwt"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for i in 0..tickets {
        let (s, t) = call(
            base,
            Method::POST,
            "/tickets",
            &[],
            Some(json!({"title": format!("ticket {i}"), "description": "d", "addedBy": "cust@example.org", "secret": secret})),
        )
        .await;
        assert_eq!(s, 201);
        ids.push(t["id"].as_str().unwrap().to_owned());
    }
    let bearer = format!("Bearer {jwt}");
    let (s, _) = call(
        base,
        Method::POST,
        &format!("/tickets/{}/respond", ids[0]),
        &[("authorization", &bearer)],
        Some(json!({"message": "answer"})),
    )
    .await;
    assert_eq!(s, 201);
    (secret, jwt, ids)
}

/// Acknowledged writes survive `kill -9`, and a close job that fell due while
/// the process was dead runs after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_and_due_jobs_run_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Ticketd::spawn(dir.path(), &["--auto-close-after", "1s"]);
    let (_, jwt, ids) = walkthrough(&first.base, 5).await;
    first.signal("-KILL");
    first.wait_exit(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1200));

    let second = Ticketd::spawn(dir.path(), &["--auto-close-after", "1s"]);
    let bearer = format!("Bearer {jwt}");
    for id in &ids {
        let (s, t) = call(
            &second.base,
            reqwest::Method::GET,
            &format!("/tickets/{id}"),
            &[("authorization", &bearer)],
            None,
        )
        .await;
        assert_eq!(s, 200, "ticket {id} lost: {t}");
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let closed = loop {
        let (_, t) = call(
            &second.base,
            reqwest::Method::GET,
            &format!("/tickets/{}", ids[0]),
            &[("authorization", &bearer)],
            None,
        )
        .await;
        if t["status"] == "CLOSED" || Instant::now() > deadline {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(closed["status"], "CLOSED", "{closed}");
    assert_eq!(closed["responses"][0]["message"], "answer");
}

/// SIGTERM and SIGINT stop the server cleanly with exit code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_shut_down_gracefully() {
    for sig in ["-TERM", "-INT"] {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Ticketd::spawn(dir.path(), &[]);
        let (s, body) = call(&d.base, reqwest::Method::GET, "/health", &[], None).await;
        assert_eq!((s, body), (200, json!({"status": "ok"})));
        d.signal(sig);
        let status = d.wait_exit(Duration::from_secs(10));
        assert!(status.success(), "{sig}: {status:?}\n{}", d.log());
        assert!(d.log().contains("stopped"), "{}", d.log());
    }
}

/// Logs of a full walkthrough, at debug level, hold no secret, password, hash or JWT,
/// and every request line carries a request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_contain_secrets_passwords_hashes_or_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let d = Ticketd::spawn(dir.path(), &[]);
    let (secret, jwt, _) = walkthrough(&d.base, 2).await;
    // A failed sign-in too.
    call(
        &d.base,
        reqwest::Method::POST,
        "/auth/admin/signin",
        &[],
        Some(json!({"email": "ana@growfin.ai", "password": "wrong password"})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = d.log();
    let keys: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(ticketd::JWT_KEYS_FILE)).unwrap()).unwrap();
    let key = keys["current"].as_str().unwrap();
    for needle in [
        secret.as_str(),
        jwt.as_str(),
        PASSWORD,
        "wrong password",
        "$argon2",
        key,
    ] {
        assert!(!log.contains(needle), "log leaks {needle:?}:\n{log}");
    }
    assert!(log.contains("request{request_id="), "{log}");
    assert!(log.contains("generated a key and saved it to"), "{log}");
}

/// `--log-format json`: every line a JSON object, one `request` line per
/// request with its route template, status, latency and org, and no secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_line_per_request_and_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    // A dashboard token of its own: without one, ticketd prints the
    // dashboard's link (not a log line) once on stderr.
    let d = Ticketd::spawn(
        dir.path(),
        &[
            "--log-format",
            "json",
            "--dashboard-token",
            "json-logs-test-dashboard-token-0123456789",
        ],
    );
    let (secret, jwt, tickets) = walkthrough(&d.base, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = d.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let requests: Vec<&serde_json::Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    assert!(requests.len() >= 4, "{log}");
    for line in &requests {
        assert!(line["request_id"].is_string(), "{line}");
        assert!(line["status"].is_u64(), "{line}");
        assert!(line["latency_ms"].is_number(), "{line}");
        assert!(
            !line["route"].as_str().unwrap_or("").contains(&tickets[0]),
            "a template: {line}"
        );
    }
    let created = requests
        .iter()
        .find(|l| l["route"] == "/tickets" && l["method"] == "POST")
        .expect("the create line");
    assert_eq!(created["status"], 201);
    assert!(created["org"].is_string(), "{created}");
    for needle in [secret.as_str(), jwt.as_str(), PASSWORD, "$argon2"] {
        assert!(!log.contains(needle), "log leaks {needle:?}:\n{log}");
    }
}

const DASHBOARD_TOKEN: &str = "dashboard-token-for-the-process-tests-0123456789";
const INBOUND_TOKEN: &str = "inbound-token-for-the-process-tests-0123456789";

/// The dashboard (every org's mail) is always behind a token: one generated
/// at start and printed once (the URL line on stderr, never in the log
/// stream's lines) when none is given. It answers only under localhost, an
/// IP address or a configured name (a DNS name re-pointed at the machine is
/// refused), and never through a proxy, trusted or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_needs_its_token_a_local_host_and_no_proxy() {
    use reqwest::Method;
    let get = |base: String, path: &'static str, headers: Vec<(&'static str, String)>| async move {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        call(&base, Method::GET, path, &headers, None).await.0
    };
    // No token given: one is generated and printed once, as the dashboard's URL.
    let dir = tempfile::tempdir().unwrap();
    let d = Ticketd::spawn(dir.path(), &["--trusted-proxies", "127.0.0.1"]);
    let mut printed = None;
    for _ in 0..50 {
        printed = d
            .log()
            .lines()
            .find_map(|l| l.strip_prefix("ticketd: dashboard at ").map(str::to_owned));
        if printed.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let printed = printed.unwrap_or_else(|| panic!("no dashboard line:\n{}", d.log()));
    let token = printed
        .split("?token=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .expect("the URL carries the token")
        .to_owned();
    assert!(token.len() >= 32, "{token}");
    assert_eq!(d.log().matches(&token).count(), 1, "printed once:\n{}", d.log());
    let base = d.base.clone();
    let with = |extra: &[(&'static str, &str)]| {
        let mut h = vec![("x-dashboard-token", token.clone())];
        h.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        h
    };
    assert_eq!(
        get(base.clone(), "/dashboard/api/mail", vec![]).await,
        401,
        "no token, on loopback"
    );
    assert_eq!(
        get(
            base.clone(),
            "/dashboard/api/mail",
            vec![("x-dashboard-token", "wrong".repeat(10))]
        )
        .await,
        401,
        "a wrong token"
    );
    assert_eq!(get(base.clone(), "/dashboard/api/jobs", with(&[])).await, 200);
    assert_eq!(get(base.clone(), "/dashboard", with(&[])).await, 200);
    let (s, page) = call(&base, Method::GET, &format!("/dashboard?token={token}"), &[], None).await;
    assert_eq!(s, 200);
    assert!(page.as_str().unwrap().contains("Auto-close jobs"));
    let port = base.rsplit(':').next().unwrap().to_owned();
    for host in [format!("localhost:{port}"), format!("[::1]:{port}"), "127.0.0.1".into()] {
        assert_eq!(
            get(base.clone(), "/dashboard/api/jobs", with(&[("host", &host)])).await,
            200,
            "{host}"
        );
    }
    // DNS rebinding: the browser sends the attacker's name; the token would
    // not save a page served to it (it could read it from a link).
    for host in [format!("attacker.example:{port}"), "localhost.attacker.example".into()] {
        assert_eq!(
            get(base.clone(), "/dashboard/api/mail", with(&[("host", &host)])).await,
            403,
            "{host}"
        );
    }
    // Through a proxy (here a trusted one naming a remote client), never.
    for (header, value) in [
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-for", "127.0.0.1"),
        ("forwarded", "for=203.0.113.9"),
        ("x-real-ip", "203.0.113.9"),
    ] {
        assert_eq!(
            get(base.clone(), "/dashboard/api/mail", with(&[(header, value)])).await,
            403,
            "{header}: {value}"
        );
    }
    drop(d);

    // A token given: not printed; a configured public name is served.
    let dir = tempfile::tempdir().unwrap();
    let d = Ticketd::spawn_on(
        "0.0.0.0:0",
        dir.path(),
        &[
            "--dashboard-token",
            DASHBOARD_TOKEN,
            "--dashboard-host",
            "desk.example.com",
        ],
    );
    let port = d.base.rsplit(':').next().unwrap().to_owned();
    let base = format!("http://127.0.0.1:{port}");
    let token = |t: &str| ("x-dashboard-token", t.to_owned());
    assert_eq!(get(base.clone(), "/dashboard/api/jobs", vec![]).await, 401);
    assert_eq!(
        get(base.clone(), "/dashboard/api/jobs", vec![token("let-me-in")]).await,
        401
    );
    assert_eq!(
        get(base.clone(), "/dashboard/api/jobs", vec![token(DASHBOARD_TOKEN)]).await,
        200
    );
    assert_eq!(
        get(
            base.clone(),
            "/dashboard/api/jobs",
            vec![token(DASHBOARD_TOKEN), ("host", format!("desk.example.com:{port}"))]
        )
        .await,
        200
    );
    assert_eq!(
        get(
            base.clone(),
            "/dashboard/api/jobs",
            vec![token(DASHBOARD_TOKEN), ("host", "evil.example.com".into())]
        )
        .await,
        403
    );
    assert!(!d.log().contains(DASHBOARD_TOKEN), "{}", d.log());
}

/// Sends `request` as raw bytes and reads until the server closes the
/// connection or `wait` passes: what came back, whether the server closed,
/// and when that was.
async fn raw_exchange(base: &str, request: &[u8], wait: Duration) -> (String, bool, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(request).await.unwrap();
    let deadline = tokio::time::Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&got).into_owned(), closed, started.elapsed())
}

/// `/inbound/email` checks its token before reading a byte of the body:
/// with 10 MiB declared and none sent, a wrong or missing token is answered
/// 401 at once, an oversized declaration 413. A body withheld past
/// `--body-read-timeout` is answered 408 and the connection closed; a
/// header left half-sent (slowloris) has its connection closed after
/// `--header-read-timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_cannot_hold_requests_open_or_make_ticketd_read_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let d = Ticketd::spawn(
        dir.path(),
        &[
            "--inbound-domain",
            "in.example.com",
            "--inbound-token",
            INBOUND_TOKEN,
            "--header-read-timeout",
            "1s",
            "--body-read-timeout",
            "2s",
        ],
    );
    let head = |token: &str, length: usize| {
        format!(
            "POST /inbound/email HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: message/rfc822\r\n\
             Content-Length: {length}\r\n{token}\r\n"
        )
    };
    let wait = Duration::from_secs(8);
    for (token, length, status) in [
        (format!("X-Inbound-Token: {}\r\n", "w".repeat(40)), 10 << 20, "401"),
        (String::new(), 10 << 20, "401"),
        (format!("X-Inbound-Token: {INBOUND_TOKEN}\r\n"), 11 << 20, "413"),
    ] {
        let (answer, _, took) = raw_exchange(&d.base, head(&token, length).as_bytes(), wait).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{token:?} {length}: {answer:?} after {took:?}"
        );
        assert!(
            took < Duration::from_secs(2),
            "answered before the body timeout: {took:?}"
        );
    }
    // The right token, the body withheld: 408 once the body timeout passes.
    let (answer, closed, took) = raw_exchange(
        &d.base,
        head(&format!("X-Inbound-Token: {INBOUND_TOKEN}\r\n"), 1000).as_bytes(),
        wait,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?} after {took:?}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(closed, "the connection stays open after the 408");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // A body sent slowly past the bound: the same.
    let (answer, _, _) = {
        use tokio::io::AsyncWriteExt;
        let addr = d.base.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let req = "POST /tickets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
        stream.write_all(req.as_bytes()).await.unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(2500) {
            if stream.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let mut got = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), async {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                got.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
        .await;
        (got, (), ())
    };
    assert!(answer.starts_with("HTTP/1.1 408"), "a trickled body: {answer:?}");
    // Slowloris: half a header, then nothing; closed after the header timeout.
    for partial in [
        "POST /tickets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty",
        "GET /health HTTP/1.1\r\n",
        "",
    ] {
        let (answer, closed, took) = raw_exchange(&d.base, partial.as_bytes(), wait).await;
        assert!(closed, "{partial:?}: still open after {took:?} ({answer:?})");
        assert!(took < Duration::from_secs(4), "{partial:?}: closed after {took:?}");
    }
    // Meanwhile, and after, ticketd serves as usual.
    let (s, _) = call(&d.base, reqwest::Method::GET, "/health", &[], None).await;
    assert_eq!(s, 200);
}

/// In the text log format no user-controlled value can forge a line or
/// reach the terminal raw: a Message-ID folded over lines with a fake log
/// line, bare CRs, escape sequences and bidi overrides is written escaped,
/// one line per event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_escape_every_user_controlled_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = Ticketd::spawn(
        dir.path(),
        &["--inbound-domain", "in.example.com", "--inbound-token", INBOUND_TOKEN],
    );
    let forged = "2026-01-01T00:00:00.000000Z ERROR ticketd: level=ERROR forged line";
    let client = reqwest::Client::new();
    for (i, id) in [
        format!("<a\r\n {forged}@x>"),
        format!("<a\r{forged}@x>"),
        "<a\u{1b}[2Jb\u{202e}c@x>".to_owned(),
        format!("<a@x\r\n {forged}>"),
    ]
    .into_iter()
    .enumerate()
    {
        let raw = format!(
            "From: Carla <carla@customer.example>\r\nTo: reply+nothing@in.example.com\r\n\
             Subject: hello {i}\r\nMessage-ID: {id}\r\n\r\nbody\r\n"
        );
        let resp = client
            .post(format!("{}/inbound/email", d.base))
            .header("content-type", "message/rfc822")
            .header("x-inbound-token", INBOUND_TOKEN)
            .body(raw)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }
    // A path, a query and headers with what HTTP lets through.
    let (s, _) = call(
        &d.base,
        reqwest::Method::GET,
        "/tickets/%0d%0aERROR%20forged%1b?x=%0a",
        &[("x-request-id", "abc%0a")],
        None,
    )
    .await;
    assert!(s >= 400);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = d.log();
    assert!(log.contains("inbound mail"), "{log}");
    for line in log.lines() {
        assert!(
            !line.contains("forged line") || line.contains("inbound mail"),
            "a forged line: {line:?}"
        );
        assert!(!line.starts_with(' ') && !line.starts_with("level="), "{line:?}");
    }
    for c in ['\r', '\x1b', '\u{202e}'] {
        assert!(!log.contains(c), "{c:?} reached the log:\n{log}");
    }
}

/// The README's curl walkthrough, pasted into bash against a fresh `ticketd`, works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_walkthrough_runs_as_pasted() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = readme.split("## Walkthrough").nth(1).expect("a Walkthrough section");
    let script = section
        .split("```bash\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a bash block");
    let dir = tempfile::tempdir().unwrap();
    let d = Ticketd::spawn(dir.path(), &["--dashboard-token", DASHBOARD_TOKEN]);
    let base = d.base.clone();
    let script = script.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env("BASE", base)
            .env("DASHBOARD_TOKEN", DASHBOARD_TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "walkthrough failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"status\":\"CLOSED\""), "{stdout}");
    assert!(stdout.contains("Re: Invoice 3 is wrong"), "{stdout}");
    assert!(
        stdout.contains("\"outcome\":\"added\""),
        "the reply reopened the ticket: {stdout}"
    );
    assert!(stdout.contains("\"kind\":\"note\""), "{stdout}");
    assert!(
        stdout.contains("\"field\":\"url\""),
        "a private webhook URL is refused: {stdout}"
    );
}

/// A writer loop (tickets and responses) against `ticketd`, `kill -9` in the
/// middle of it, a restart on the same data dir: every write acknowledged
/// with a 2xx is there, and a close job that fell due while down runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_loop_killed_mid_flight_loses_no_acknowledged_write() {
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let mut first = Ticketd::spawn(dir.path(), &["--auto-close-after", "1s"]);
    let (secret, jwt, _) = walkthrough(&first.base, 1).await;
    let bearer = format!("Bearer {jwt}");

    // Four writers, each recording what the server acknowledged.
    // (ticket id, response id if the respond was acknowledged too)
    type Acked = Vec<(String, Option<String>)>;
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4 {
        let (base, secret, bearer, acked) = (first.base.clone(), secret.clone(), bearer.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let body = json!({"title": format!("w{w} #{i}"), "description": "d", "addedBy": "cust@example.org", "secret": secret});
                let client = reqwest::Client::new();
                let Ok(resp) = client.post(format!("{base}/tickets")).json(&body).send().await else { break };
                if resp.status() != 201 {
                    break;
                }
                let Ok(t) = resp.json::<Value>().await else { break };
                let id = t["id"].as_str().unwrap().to_owned();
                acked.lock().unwrap().push((id.clone(), None));
                let reply = client
                    .post(format!("{base}/tickets/{id}/respond"))
                    .header("authorization", &bearer)
                    .json(&json!({"message": format!("answer {w}/{i}")}))
                    .send()
                    .await;
                let Ok(reply) = reply else { break };
                if reply.status() != 201 {
                    break;
                }
                let Ok(r) = reply.json::<Value>().await else { break };
                acked.lock().unwrap().push((id, Some(r["id"].as_str().unwrap().to_owned())));
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.signal("-KILL");
    first.wait_exit(Duration::from_secs(10));
    for w in writers {
        let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
    }
    let acked = acked.lock().unwrap().clone();
    let responses = acked.iter().filter(|(_, r)| r.is_some()).count();
    assert!(
        responses >= 10,
        "the writers got going before the kill ({responses} responses)"
    );
    std::thread::sleep(Duration::from_millis(1200));

    let second = Ticketd::spawn(dir.path(), &["--auto-close-after", "1s"]);
    for (ticket, response) in &acked {
        let (s, t) = call(
            &second.base,
            Method::GET,
            &format!("/tickets/{ticket}"),
            &[("authorization", &bearer)],
            None,
        )
        .await;
        assert_eq!(s, 200, "acknowledged ticket {ticket} lost");
        if let Some(r) = response {
            let found = t["responses"].as_array().unwrap().iter().any(|x| x["id"] == r.as_str());
            assert!(found, "acknowledged response {r} of {ticket} lost: {t}");
        }
    }
    // The responded tickets were due while ticketd was dead: they close now.
    let (_, last) = acked.iter().rev().find(|(_, r)| r.is_some()).cloned().unwrap();
    let ticket = acked.iter().rev().find(|(_, r)| r == &last).unwrap().0.clone();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, t) = call(
            &second.base,
            Method::GET,
            &format!("/tickets/{ticket}"),
            &[("authorization", &bearer)],
            None,
        )
        .await;
        if t["status"] == "CLOSED" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "due close job did not run after restart: {t}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A configuration error is one clear line on stderr and exit status 2: no
/// error chain over several lines, no backtrace.
#[test]
fn configuration_errors_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let occupied = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = occupied.local_addr().unwrap().to_string();
    let cases: [(&[&str], &str); 6] = [
        (&["--jwt-secret", "too-short"], "at least 32 characters"),
        (
            &["--dashboard-token", "x"],
            "--dashboard-token must be at least 32 characters",
        ),
        (
            &["--inbound-domain", "in.example.com", "--inbound-token", &"t".repeat(31)],
            "--inbound-token must be at least 32 characters",
        ),
        (
            &["--listen", &busy, "--jwt-secret", &"k".repeat(40)],
            "cannot listen on",
        ),
        (&["--auto-close-after", "soon"], "auto-close-after"),
        (&["--reconcile-interval", "0s"], "longer than zero"),
    ];
    for (args, expected) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_ticketd"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .env("RUST_LOG", "off")
            .env("RUST_BACKTRACE", "1")
            .env_remove("TICKETING_JWT_SECRET")
            .output()
            .expect("ticketd runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        if !expected.contains("auto-close") && !expected.contains("zero") {
            // clap's own usage errors span a few lines; ours are exactly one.
            assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        }
        assert!(
            !stderr.contains("backtrace") && !stderr.contains("Caused by"),
            "{stderr}"
        );
    }
}

/// `ticketd --backend aws` on a laptop needs no TICKETING_* variable: the
/// table and schedule group have local defaults, the ARNs placeholders, and
/// the JWT keys a local default secret, created with a generated key.
#[cfg(feature = "aws")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_backend_runs_on_local_defaults_with_no_ticketing_variables() {
    use reqwest::Method;
    std::env::var("AWS_ENDPOINT_URL").expect("needs moto: run ./scripts/test, which starts it");
    let set: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("TICKETING_"))
        .collect();
    assert!(set.is_empty(), "{set:?} set: this test checks the defaults");
    let dir = tempfile::tempdir().unwrap();
    let ticketd = Ticketd::spawn(dir.path(), &["--backend", "aws", "--create-aws-resources"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ticketd
        .log()
        .contains("DynamoDB table ticketing, schedule group ticketing-auto-close")
    {
        assert!(
            Instant::now() < deadline,
            "start-up line names the defaults:\n{}",
            ticketd.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let domain = format!("defaults-{}.example.com", std::process::id());
    let (s, org) = call(
        &ticketd.base,
        Method::POST,
        "/auth/org/signup",
        &[],
        Some(json!({"name": "Local", "domain": domain})),
    )
    .await;
    assert_eq!(s, 201, "{org}");
    let (s, t) = call(
        &ticketd.base,
        Method::POST,
        "/tickets",
        &[("x-api-key", org["secret"].as_str().unwrap())],
        Some(json!({"title": "t", "description": "d", "addedBy": "c@example.org"})),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    assert!(
        !dir.path().join(ticketd::JWT_KEYS_FILE).exists(),
        "the keys come from the (local default) secret, not the data dir"
    );
}

/// Behind a proxy named by `--trusted-proxies`, sign-in throttling counts per
/// the client in `X-Forwarded-For`: one forwarded client guessing is locked
/// out while another, through the same proxy, signs in. Without the flag the
/// header is ignored and the peer itself is the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_clients_are_told_apart_only_behind_trusted_proxies() {
    use reqwest::Method;
    let signin = |base: String, forwarded: &'static str, password: &'static str| async move {
        call(
            &base,
            Method::POST,
            "/auth/admin/signin",
            &[("x-forwarded-for", forwarded)],
            Some(json!({"email": "ana@growfin.ai", "password": password})),
        )
        .await
        .0
    };
    for (trusted, other_client_status) in [(true, 200), (false, 429)] {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["--signin-max-failures", "2"];
        if trusted {
            args.extend(["--trusted-proxies", "10.0.0.0/8, 127.0.0.1"]);
        }
        let ticketd = Ticketd::spawn(dir.path(), &args);
        walkthrough(&ticketd.base, 1).await;
        let base = ticketd.base.clone();
        for _ in 0..2 {
            assert_eq!(signin(base.clone(), "198.51.100.7", "wrong password").await, 401);
        }
        assert_eq!(
            signin(base.clone(), "198.51.100.7", PASSWORD).await,
            429,
            "trusted: {trusted}"
        );
        assert_eq!(
            signin(base.clone(), "203.0.113.9", PASSWORD).await,
            other_client_status,
            "trusted: {trusted}"
        );
    }
}

fn kid(jwt: &str) -> String {
    use base64::Engine;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwt.split('.').next().unwrap())
        .unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `ticketd rotate-jwt-key --data-dir`: prints the new kid, never a key.
fn rotate_jwt_key(data_dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .args(["rotate-jwt-key", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
        .split("new tokens carry kid ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no kid in {stdout:?}"))
        .to_owned()
}

/// What `GET /tickets` answers a token, once `ready` holds for the answer or
/// 5 s have passed (a running ticketd re-reads its key file within a second).
async fn list_until(base: &str, jwt: &str, ready: impl Fn(u16) -> bool) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let bearer = format!("Bearer {jwt}");
        let (s, _) = call(
            base,
            reqwest::Method::GET,
            "/tickets",
            &[("authorization", &bearer)],
            None,
        )
        .await;
        if ready(s) || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A sign-in's token, once it carries `kid` (or after 5 s).
async fn signin_with_kid(base: &str, kid_wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (s, body) = call(
            base,
            reqwest::Method::POST,
            "/auth/admin/signin",
            &[],
            Some(json!({"email": "ana@growfin.ai", "password": PASSWORD})),
        )
        .await;
        assert_eq!(s, 200, "{body}");
        let jwt = body["jwt"].as_str().unwrap().to_owned();
        if kid(&jwt) == kid_wanted || Instant::now() > deadline {
            return jwt;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `claims` of `token` signed HS256 with `secret` under `kid`: a token as an
/// earlier version's key signed it.
fn hs256_copy(token: &str, secret: &str, kid: &str) -> String {
    use base64::Engine;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap();
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    let header = jsonwebtoken::Header {
        kid: Some(kid.into()),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
    };
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// An earlier version's HS256 `jwt-secret` file is replaced by a fresh ES256
/// ring (kid "1"): a token of the old key is refused. Rotating a running
/// ticketd's keys logs nobody out, new sign-ins carry the new kid, and the
/// second rotation retires the first key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_jwt_key_logs_nobody_out_until_the_key_is_two_rotations_old() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = "a-key-from-an-earlier-ticketd-0123456789";
    std::fs::write(dir.path().join(ticketd::JWT_SECRET_FILE), legacy).unwrap();
    let d = Ticketd::spawn(dir.path(), &[]);
    let (_, first, _) = walkthrough(&d.base, 1).await;
    assert_eq!(kid(&first), "1", "a fresh ES256 key signs");
    assert!(!dir.path().join(ticketd::JWT_SECRET_FILE).exists());
    let old_token = hs256_copy(&first, legacy, "0");
    assert_eq!(
        list_until(&d.base, &old_token, |_| true).await,
        401,
        "the HS256 key is retired"
    );

    let second_kid = rotate_jwt_key(dir.path());
    let second = signin_with_kid(&d.base, &second_kid).await;
    assert_eq!(kid(&second), second_kid, "new sign-ins carry the new kid");
    assert_eq!(
        list_until(&d.base, &first, |_| true).await,
        200,
        "the previous key still verifies"
    );

    let third_kid = rotate_jwt_key(dir.path());
    let third = signin_with_kid(&d.base, &third_kid).await;
    assert_eq!(kid(&third), third_kid);
    assert_eq!(
        list_until(&d.base, &first, |s| s == 401).await,
        401,
        "the first key is retired"
    );
    assert_eq!(list_until(&d.base, &second, |_| true).await, 200);
    assert_eq!(list_until(&d.base, &third, |_| true).await, 200);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(ticketd::JWT_KEYS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let log = d.log();
    assert!(!log.contains(legacy), "{log}");
}
