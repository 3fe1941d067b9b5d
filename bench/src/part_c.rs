//! Part c, sign-in: sequential sign-in latency for a known email (right and
//! wrong password) and for unknown ones. What a guesser can compare is a wrong
//! password against an unknown email: both are failures, and must cost the
//! same (timing may not reveal accounts).

use crate::Args;
use crate::common::{PASSWORD, field, post, unique_domain};
use crate::load::{self, Stats};
use reqwest::Client;
use serde_json::json;

pub struct Signin {
    /// A known email with the right password.
    pub known: Stats,
    /// The known email with a wrong password: one verify, a failure recorded.
    pub wrong: Stats,
    /// Unknown emails: the fallback hash is verified instead, a failure recorded.
    pub unknown: Stats,
}

pub async fn run(args: &Args, client: &Client, base: &str) -> anyhow::Result<Signin> {
    eprintln!("c. sign-in latency ({} sequential)", args.signins);
    let domain = unique_domain("signin");
    let org = post(
        client,
        format!("{base}/auth/org/signup"),
        None,
        json!({"name": "s", "domain": domain}),
    )
    .await?;
    let email = format!("a@{domain}");
    post(
        client,
        format!("{base}/auth/admin/signup"),
        None,
        json!({"firstName": "S", "lastName": "I", "email": email, "password": PASSWORD, "secret": field(&org, "secret")?}),
    )
    .await?;
    let signin = |email: String, password: &'static str, expect: u16| {
        let client = client.clone();
        async move {
            client
                .post(format!("{base}/auth/admin/signin"))
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .is_ok_and(|r| r.status() == expect)
        }
    };
    let known = load::sequential(args.signins, |_| signin(email.clone(), PASSWORD, 200)).await;
    let wrong = load::sequential(args.signins, |_| signin(email.clone(), "not the password", 401)).await;
    let unknown = load::sequential(args.signins, |i| signin(format!("nobody{i}@{domain}"), PASSWORD, 401)).await;
    eprintln!(
        "   known p50 {:.1} ms, wrong password p50 {:.1} ms, unknown p50 {:.1} ms",
        known.p50_ms, wrong.p50_ms, unknown.p50_ms
    );
    Ok(Signin { known, wrong, unknown })
}
