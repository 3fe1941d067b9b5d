//! A moto server of the test's own that enforces IAM (scripts/moto_iam.py):
//! started with every request unchecked (for the setup: tables, queues,
//! users and their policies), then switched to checking every request's
//! signature and action against the signer's policies
//! (`/moto-api/reset-auth`, what `INITIAL_NO_AUTH_ACTION_COUNT` sets at start).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Moto {
    child: Child,
    pub url: String,
    http: reqwest::Client,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn between<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no {tag} in {xml}")) + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).expect("closed tag") + start;
    &xml[start..end]
}

impl Moto {
    /// `$MOTO_SERVER` (scripts/with-moto sets it) on a free port, all
    /// requests unchecked until [`Moto::enforce`].
    pub async fn start() -> Self {
        let bin = std::env::var("MOTO_SERVER").expect("MOTO_SERVER names .venv's moto_server: run scripts/with-moto");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(std::env::temp_dir().join(format!("moto-iam-{port}.log"))).unwrap();
        // The Python beside moto_server, running scripts/moto_iam.py (moto
        // with its signature check fixed for body-less REST requests).
        let python = std::path::Path::new(&bin).with_file_name("python");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/moto_iam.py");
        let child = Command::new(python)
            .args([script, "127.0.0.1", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "1000000000")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("moto_server starts");
        let moto = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        for _ in 0..150 {
            if moto.http.get(format!("{}/moto-api/", moto.url)).send().await.is_ok() {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("moto_server on port {port} did not start");
    }

    /// From now on every request is signed by a moto IAM identity and
    /// checked against its policies.
    pub async fn enforce(&self) {
        let r = self
            .http
            .post(format!("{}/moto-api/reset-auth", self.url))
            .body("0")
            .send()
            .await
            .expect("reset-auth");
        assert!(r.status().is_success());
    }

    async fn iam(&self, params: &[(&str, &str)]) -> String {
        let body: Vec<String> = params
            .iter()
            .chain(&[("Version", "2010-05-08")])
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let r = self
            .http
            .post(&self.url)
            .header("content-type", "application/x-www-form-urlencoded")
            // Unchecked while setting up; the scope routes it to IAM.
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=setup/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.join("&"))
            .send()
            .await
            .expect("IAM on moto");
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "IAM {params:?}: {status} {text}");
        text
    }

    /// A user allowed exactly `policy`; its access key id and secret.
    pub async fn user(&self, name: &str, policy: &serde_json::Value) -> (String, String) {
        self.iam(&[("Action", "CreateUser"), ("UserName", name)]).await;
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", "template"),
            ("PolicyDocument", &policy.to_string()),
        ])
        .await;
        let key = self.iam(&[("Action", "CreateAccessKey"), ("UserName", name)]).await;
        (
            between(&key, "AccessKeyId").to_owned(),
            between(&key, "SecretAccessKey").to_owned(),
        )
    }
}
