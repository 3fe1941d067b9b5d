//! `ticketd` under a burst of sign-ins, as a real process: password work is
//! bounded, so its memory is too.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Peak resident memory allowed through the burst, with 4 hashing turns:
/// ~30 MiB at rest, 4 × 19 MiB of Argon2 buffers, and room for 64
/// connections and the allocator. Without a limit the same burst took a
/// fresh ticketd past 1 GiB.
const MAX_PEAK_RSS_KIB: u64 = 200 * 1024;

struct Ticketd {
    child: Child,
    base: String,
}

impl Ticketd {
    fn spawn(data_dir: &std::path::Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ticketd"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("NO_COLOR", "1")
            .env_remove("TICKETING_JWT_SECRET")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ticketd starts");
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.split(';').next().unwrap().to_owned());
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).expect("a start-up line");
        Self {
            child,
            base: format!("http://{addr}"),
        }
    }

    /// A line of /proc/<pid>/status, in KiB (`VmRSS`, `VmHWM`: the peak).
    fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }
}

impl Drop for Ticketd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn post(
    base: &str,
    from: Option<IpAddr>,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, Value, bool) {
    let mut http = reqwest::Client::builder();
    if let Some(ip) = from {
        http = http.local_address(ip);
    }
    let mut req = http.build().unwrap().post(format!("{base}{path}")).json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request reaches ticketd");
    let status = resp.status().as_u16();
    let retry_after = resp.headers().contains_key("retry-after");
    (status, resp.json().await.unwrap_or(Value::Null), retry_after)
}

/// 64 concurrent sign-ins from 64 clients (so none is throttled: half wrong
/// passwords for a real admin, half unknown emails), twice: every one is a
/// 401 or, past the hashing turns' wait, a 503 `busy` with `Retry-After`;
/// ticketd's peak memory stays under [`MAX_PEAK_RSS_KIB`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_signins_keeps_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let ticketd = Ticketd::spawn(dir.path(), &["--password-hash-concurrency", "4"]);
    let base = ticketd.base.clone();
    let (s, org, _) = post(
        &base,
        None,
        "/auth/org/signup",
        &[],
        json!({"name": "Load", "domain": "load.example"}),
    )
    .await;
    assert_eq!(s, 201, "{org}");
    let secret = org["secret"].as_str().unwrap().to_owned();
    let admin =
        json!({"firstName": "A", "lastName": "B", "email": "ana@load.example", "password": "the real password"});
    let (s, _, _) = post(&base, None, "/auth/admin/signup", &[("x-api-key", &secret)], admin).await;
    assert_eq!(s, 201);
    let at_rest = ticketd.memory_kib("VmRSS");

    let mut answers = Vec::new();
    for round in 0..2u8 {
        let mut burst = tokio::task::JoinSet::new();
        for i in 0..64u8 {
            let base = base.clone();
            let client = IpAddr::from([127, 1 + round, 0, 1 + i]);
            let email = if i % 2 == 0 {
                "ana@load.example".to_owned()
            } else {
                format!("nobody{i}@load.example")
            };
            burst.spawn(async move {
                post(
                    &base,
                    Some(client),
                    "/auth/admin/signin",
                    &[],
                    json!({"email": email, "password": "a wrong guess"}),
                )
                .await
            });
        }
        answers.extend(burst.join_all().await);
    }
    let peak = ticketd.memory_kib("VmHWM");
    let after = ticketd.memory_kib("VmRSS");
    let count = |status: u16| answers.iter().filter(|(s, _, _)| *s == status).count();
    eprintln!(
        "RSS at rest {} MiB, peak {} MiB, after {} MiB; {} x 401, {} x 503",
        at_rest / 1024,
        peak / 1024,
        after / 1024,
        count(401),
        count(503)
    );
    assert_eq!(count(401) + count(503), 128, "{answers:?}");
    assert!(count(401) >= 8, "most are checked: {answers:?}");
    for (status, body, retry_after) in &answers {
        if *status == 503 {
            assert_eq!(body["error"]["code"], "busy", "{body}");
            assert!(retry_after, "503 says when to retry");
        }
    }
    assert!(peak < MAX_PEAK_RSS_KIB, "peak RSS {} MiB", peak / 1024);
}
