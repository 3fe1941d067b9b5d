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
    /// What signing and verifying one admin token costs, in this process.
    pub jwt: JwtCost,
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
    let jwt = jwt_cost(2_000);
    eprintln!(
        "   JWT verify: HS256 {:.1} µs, ES256 {:.1} µs, ES256 remembered {:.2} µs",
        jwt.hs256_verify_us, jwt.es256_verify_us, jwt.es256_remembered_us
    );
    Ok(Signin {
        jwt,
        known,
        wrong,
        unknown,
    })
}

/// Median µs per operation, side by side: HS256 as admin tokens were signed
/// before (jsonwebtoken, a 48-character secret) and ES256 as they are now
/// (`auth::JwtKeys`, what sign-in and every JWT route run).
pub struct JwtCost {
    pub samples: usize,
    pub hs256_sign_us: f64,
    pub hs256_verify_us: f64,
    pub es256_sign_us: f64,
    /// A token not verified before by these keys: one ECDSA verification.
    pub es256_verify_us: f64,
    /// The same token again: found among the verified tokens.
    pub es256_remembered_us: f64,
    /// Deriving a key pair from its seed, once per key per read of the keys.
    pub es256_key_us: f64,
}

fn median_us(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn time_each<T>(n: usize, mut f: impl FnMut(usize) -> T) -> f64 {
    let mut samples: Vec<f64> = (0..n)
        .map(|i| {
            let started = std::time::Instant::now();
            std::hint::black_box(f(i));
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    median_us(&mut samples)
}

pub fn jwt_cost(n: usize) -> JwtCost {
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
    use ticketing::auth::{DEFAULT_TOKEN_LIFETIME, JwtKeys, KeyRing, KeySet, SigningKey};
    use ticketing::domain::{AdminId, OrgId, Timestamp};
    let (admins, org) = ((0..n).map(|_| AdminId::new()).collect::<Vec<_>>(), OrgId::new());
    let now = Timestamp::now();
    let claims =
        |i: usize| json!({"sub": admins[i], "org": org, "iat": now.millis() / 1000, "exp": now.millis() / 1000 + 3600});

    let secret = crate::common::JWT_SECRET.as_bytes();
    let (encoding, decoding) = (EncodingKey::from_secret(secret), DecodingKey::from_secret(secret));
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "iat", "sub"]);
    let header = Header {
        kid: Some("1".into()),
        ..Header::new(Algorithm::HS256)
    };
    let mut hs = Vec::with_capacity(n);
    let hs256_sign_us = time_each(n, |i| {
        hs.push(jsonwebtoken::encode(&header, &claims(i), &encoding).unwrap())
    });
    let hs256_verify_us = time_each(n, |i| {
        jsonwebtoken::decode::<serde_json::Value>(&hs[i], &decoding, &validation).unwrap()
    });

    let es256_key_us = time_each(n / 10, |_| SigningKey::new("1", crate::common::JWT_SECRET).unwrap());
    let ring = KeyRing::single(SigningKey::new("1", crate::common::JWT_SECRET).unwrap());
    let signer = JwtKeys::new(&KeySet::Signing(ring.clone()), DEFAULT_TOKEN_LIFETIME);
    let verifier = JwtKeys::new(&KeySet::Verifying(ring.verify_keys()), DEFAULT_TOKEN_LIFETIME);
    let mut es = Vec::with_capacity(n);
    let es256_sign_us = time_each(n, |i| es.push(signer.issue(admins[i], org, now).unwrap().0));
    let es256_verify_us = time_each(n, |i| verifier.verify(&es[i]).unwrap());
    let es256_remembered_us = time_each(n, |_| verifier.verify(&es[0]).unwrap());
    JwtCost {
        samples: n,
        hs256_sign_us,
        hs256_verify_us,
        es256_sign_us,
        es256_verify_us,
        es256_remembered_us,
        es256_key_us,
    }
}
