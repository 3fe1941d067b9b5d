//! Inbound email in tests: the .eml fixtures (tests/fixtures/inbound) with
//! their placeholders filled for one ticket, and posting them to ticketd.

use crate::{Reply, TestApp};
use reqwest::Method;

/// What a fixture's placeholders become.
pub struct Vars<'a> {
    /// The ticket's reply address.
    pub to: &'a str,
    pub from: &'a str,
    pub ticket: &'a str,
    /// The Message-ID of our response email (without angle brackets).
    pub in_reply_to: &'a str,
}

/// The authserv-id of the `Authentication-Results` header ticketd trusts in
/// tests (`--inbound-authserv-id`): the test MTA's.
pub const AUTHSERV_ID: &str = "mx.tests.example";

/// The fixture `name` filled in, with CRLF line ends as on the wire. A
/// fixture without an `Authentication-Results` header gets the test MTA's,
/// saying its sender passed (as a real MTA's would for the customer); those
/// with one keep theirs (`{{authserv}}` is the test MTA's id).
pub fn fixture(name: &str, vars: &Vars<'_>) -> Vec<u8> {
    let path = format!("{}/fixtures/inbound/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let domain = vars.to.rsplit('@').next().unwrap_or("");
    let mut out = if raw
        .windows(23)
        .any(|w| w.eq_ignore_ascii_case(b"Authentication-Results:"))
    {
        raw
    } else {
        let mut with =
            b"Authentication-Results: {{authserv}}; spf=pass smtp.mailfrom={{from}};\n dkim=pass; dmarc=pass\n"
                .to_vec();
        with.extend_from_slice(&raw);
        with
    };
    for (k, v) in [
        ("{{to}}", vars.to),
        ("{{from}}", vars.from),
        ("{{ticket}}", vars.ticket),
        ("{{domain}}", domain),
        ("{{in_reply_to}}", vars.in_reply_to),
        ("{{authserv}}", AUTHSERV_ID),
    ] {
        out = replace(&out, k.as_bytes(), v.as_bytes());
    }
    replace(&replace(&out, b"\r\n", b"\n"), b"\n", b"\r\n")
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// Posts a raw message to ticketd's `/inbound/email` as an MTA would.
pub async fn post_mail(app: &TestApp, token: &str, raw: Vec<u8>) -> Reply {
    app.raw(
        Method::POST,
        "/inbound/email",
        &[("content-type", "message/rfc822"), ("x-inbound-token", token)],
        Some(raw),
    )
    .await
}
