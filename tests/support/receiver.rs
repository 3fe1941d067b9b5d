//! A webhook receiver for the tests: a real HTTP server on loopback that
//! verifies each delivery's Standard Webhooks signature itself (its own
//! HMAC, not the service's `sign`), records what arrived, answers with the
//! status codes it is told to, and can go down and come back on its port.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request that reached the receiver.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: i64,
    /// Whether `webhook-signature` holds a valid signature under the secret
    /// the test set (any of them: during a rotation both may be valid).
    pub verified: bool,
    pub body: Value,
    /// The status the receiver answered.
    pub answered: u16,
}

#[derive(Default)]
struct State {
    secrets: Vec<String>,
    received: Vec<Received>,
    /// Statuses to answer, in order; 200 once they run out.
    script: VecDeque<u16>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// Whether `signature` (the header: space-separated `v1,<base64>` entries)
/// signs `{id}.{timestamp}.{body}` under `secret` (`whsec_<base64>`).
pub fn verify(secret: &str, id: &str, timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Some(key) = secret.strip_prefix("whsec_").and_then(|k| STANDARD.decode(k).ok()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    signature
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|s| s == expected)
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut r = Self {
            addr,
            state: Arc::default(),
            server: None,
        };
        r.serve(listener);
        r
    }

    /// The URL to register (plain http: the deployment allows private webhooks).
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let state = self.state.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    let (id, ts, sig) = (
                        header("webhook-id"),
                        header("webhook-timestamp"),
                        header("webhook-signature"),
                    );
                    let mut s = state.lock().unwrap();
                    let verified = s.secrets.iter().any(|k| verify(k, &id, &ts, &body, &sig));
                    let answered = s.script.pop_front().unwrap_or(200);
                    s.received.push(Received {
                        id,
                        timestamp: ts.parse().unwrap_or(0),
                        verified,
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        answered,
                    });
                    StatusCode::from_u16(answered).unwrap_or(StatusCode::OK)
                }
            }),
        );
        self.server = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// Accept signatures made with `secret` (keeps those set before).
    pub fn trust(&self, secret: &str) {
        self.state.lock().unwrap().secrets.push(secret.to_owned());
    }

    /// Accept signatures made with `secret` only.
    pub fn trust_only(&self, secret: &str) {
        self.state.lock().unwrap().secrets = vec![secret.to_owned()];
    }

    /// Answer the next requests with these statuses, then 200.
    pub fn answer(&self, statuses: &[u16]) {
        self.state.lock().unwrap().script.extend(statuses.iter().copied());
    }

    /// Everything received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// What was received and answered 2xx, of `type`.
    pub fn accepted_of(&self, kind: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.body["type"] == kind && (200..300).contains(&r.answered))
            .collect()
    }

    /// Stops listening: connections to the port are refused.
    pub async fn down(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    /// Listens again on the same port.
    pub async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.expect("rebind the port");
        self.serve(listener);
    }

    /// Waits until `check` holds for what was received (or `timeout`).
    pub async fn wait_until(&self, timeout: Duration, check: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.received();
            if check(&got) || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn verifies_the_standard_webhooks_example() {
        assert!(super::verify(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            br#"{"test": 2432232314}"#,
            "v1,bad v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        ));
        assert!(!super::verify(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_x",
            "1",
            b"{}",
            "v1,AAAA"
        ));
    }
}
