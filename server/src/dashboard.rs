//! The jobs dashboard (the local stand-in for the Scheduler console): close
//! jobs and outbox mail, as HTML and as JSON, and inbound mail counted by outcome.

use axum::Json;
use axum::http::{HeaderMap, header};
use axum::response::Html;
use axum::routing::{MethodRouter, get};
use serde::Deserialize;
use std::fmt::Write;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use ticketing::Error;
use ticketing::adapters::embedded::{Db, InboundCount, JobView, MailView, inbound_counts, recent_jobs, recent_mail};
use ticketing::http::extract::ApiQuery;
use ticketing::service::Service;

const SHOWN: usize = 200;

pub struct Dashboard {
    pub db: Arc<Db>,
    /// Every dashboard request must carry it (`--dashboard-token`, or one
    /// generated at start).
    pub token: String,
    /// Host names (beside `localhost` and IP literals) the dashboard
    /// answers to: `--dashboard-host`.
    pub hosts: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    token: Option<String>,
}

/// The handlers, each bound to the dashboard; `LocalRoute` says where they are served.
pub fn page(d: Arc<Dashboard>) -> MethodRouter<Service> {
    get(move |headers: HeaderMap, q: ApiQuery<TokenQuery>| page_html(d.clone(), headers, q))
}

pub fn jobs(d: Arc<Dashboard>) -> MethodRouter<Service> {
    get(move |headers: HeaderMap, q: ApiQuery<TokenQuery>| jobs_json(d.clone(), headers, q))
}

pub fn mail(d: Arc<Dashboard>) -> MethodRouter<Service> {
    get(move |headers: HeaderMap, q: ApiQuery<TokenQuery>| mail_json(d.clone(), headers, q))
}

/// Headers a proxy adds: a request carrying one came through a proxy, and
/// the dashboard (every org's mail) is never served to whoever is behind it.
const FORWARDED: [&str; 5] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-real-ip",
    "x-forwarded-proto",
];

/// Refuses, in this order: a proxied request (403), a `Host` the dashboard
/// is not served under (403: a browser led there by a re-pointed DNS name
/// sends that name), a missing or wrong token (401).
fn authorize(d: &Dashboard, headers: &HeaderMap, query: &TokenQuery) -> Result<(), Error> {
    if FORWARDED.iter().any(|h| headers.contains_key(*h)) {
        return Err(Error::Forbidden(
            "the dashboard is not served through a proxy; reach ticketd directly".into(),
        ));
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !host_allowed(host, &d.hosts) {
        return Err(Error::Forbidden(
            "the dashboard is served only under localhost, an IP address or --dashboard-host".into(),
        ));
    }
    let given = headers
        .get("x-dashboard-token")
        .and_then(|v| v.to_str().ok())
        .or(query.token.as_deref())
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(d.token.as_bytes())) {
        Ok(())
    } else {
        Err(Error::Unauthorized(
            "dashboard token required (?token= or X-Dashboard-Token)",
        ))
    }
}

/// `localhost`, an IP literal (a re-pointed DNS name is never one) or a
/// configured name, each with or without a port.
fn host_allowed(host: &str, configured: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`
        Some(rest) => match rest.split_once(']') {
            Some((v6, port)) if port.is_empty() || port.strip_prefix(':').is_some_and(valid_port) => {
                return v6.parse::<std::net::Ipv6Addr>().is_ok();
            }
            _ => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) if valid_port(port) => name,
            Some(_) => return false,
            None => host,
        },
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    !name.is_empty()
        && (name == "localhost"
            || name.parse::<std::net::Ipv4Addr>().is_ok()
            || configured
                .iter()
                .any(|h| h.trim_end_matches('.').eq_ignore_ascii_case(&name)))
}

fn valid_port(port: &str) -> bool {
    port.parse::<u16>().is_ok()
}

async fn jobs_json(
    d: Arc<Dashboard>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<TokenQuery>,
) -> Result<Json<serde_json::Value>, Error> {
    authorize(&d, &headers, &q)?;
    let jobs = recent_jobs(&d.db, SHOWN).await.map_err(Error::Internal)?;
    Ok(Json(serde_json::json!({ "jobs": jobs })))
}

async fn mail_json(
    d: Arc<Dashboard>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<TokenQuery>,
) -> Result<Json<serde_json::Value>, Error> {
    authorize(&d, &headers, &q)?;
    let mail = recent_mail(&d.db, SHOWN).await.map_err(Error::Internal)?;
    Ok(Json(serde_json::json!({ "mail": mail })))
}

async fn page_html(
    d: Arc<Dashboard>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<TokenQuery>,
) -> Result<Html<String>, Error> {
    authorize(&d, &headers, &q)?;
    let jobs = recent_jobs(&d.db, SHOWN).await.map_err(Error::Internal)?;
    let mail = recent_mail(&d.db, SHOWN).await.map_err(Error::Internal)?;
    let inbound = inbound_counts(&d.db).await.map_err(Error::Internal)?;
    Ok(Html(render(&jobs, &mail, &inbound, &d.token)))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn render(jobs: &[JobView], mail: &[MailView], inbound: &[InboundCount], token: &str) -> String {
    // A query value: every byte but the unreserved ones percent-encoded.
    let token: String = token
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let mut h = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\"><title>ticketd dashboard</title><style>\
         body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;width:100%;margin-bottom:2em}}\
         th,td{{border-bottom:1px solid #ddd;padding:.35em .6em;text-align:left;vertical-align:top}}th{{background:#f4f4f4}}\
         .pending{{color:#a60}}.done{{color:#080}}.cancelled{{color:#777}}.failed{{color:#c00;font-weight:bold}}\
         pre{{white-space:pre-wrap;margin:0;font:12px ui-monospace,monospace}}</style></head><body>\
         <h1>ticketd dashboard</h1><p>Refreshes every 5 seconds. JSON: \
         <a href=\"/dashboard/api/jobs?token={token}\">/dashboard/api/jobs</a>, \
         <a href=\"/dashboard/api/mail?token={token}\">/dashboard/api/mail</a>.</p>",
    );
    let count = |state: &str| jobs.iter().filter(|j| j.state == state).count();
    let _ = write!(
        h,
        "<h2>Auto-close jobs</h2><p>{} pending, {} done, {} cancelled, {} failed (latest {SHOWN} shown)</p>\
         <table><tr><th>ticket</th><th>due</th><th>state</th><th>attempts</th><th>outcome</th><th>responded at</th><th>scheduled</th></tr>",
        count("pending"),
        count("done"),
        count("cancelled"),
        count("failed")
    );
    for j in jobs {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&j.ticket_id),
            j.due_at,
            esc(&j.state),
            esc(&j.state),
            j.attempts,
            esc(j.outcome.as_deref().unwrap_or("")),
            j.responded_at,
            j.created_at
        );
    }
    if jobs.is_empty() {
        h.push_str("<tr><td colspan=\"7\">No jobs yet: respond to a ticket to schedule its auto-close.</td></tr>");
    }
    let _ = write!(
        h,
        "</table><h2>Outbox</h2><table><tr><th>sent</th><th>to</th><th>reply to</th><th>subject</th><th>ticket</th><th>body</th></tr>"
    );
    for m in mail {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
            m.created_at,
            esc(&m.to),
            esc(m.reply_to.as_deref().unwrap_or("")),
            esc(&m.subject),
            esc(&m.ticket_id),
            esc(&m.text)
        );
    }
    if mail.is_empty() {
        h.push_str("<tr><td colspan=\"6\">No mail yet.</td></tr>");
    }
    // Loop protection at work: auto-replies, bounces and spam are dropped, never applied.
    h.push_str("</table><h2>Inbound email</h2><table><tr><th>outcome</th><th>messages</th></tr>");
    for c in inbound {
        let _ = write!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(&c.outcome), c.count);
    }
    if inbound.is_empty() {
        h.push_str("<tr><td colspan=\"2\">No inbound email yet.</td></tr>");
    }
    h.push_str("</table></body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_localhost_ip_literals_or_configured_names() {
        let configured = ["desk.example.com".to_owned()];
        for good in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.",
            "127.0.0.1",
            "127.0.0.1:8080",
            "10.0.0.5:80",
            "[::1]",
            "[::1]:8080",
            "desk.example.com",
            "Desk.Example.com:443",
        ] {
            assert!(host_allowed(good, &configured), "{good}");
        }
        for bad in [
            "",
            "attacker.example",
            "attacker.example:8080",
            "localhost.attacker.example",
            "127.0.0.1.nip.io",
            "[::1]8080",
            "[::1]:x",
            "[nope]",
            "localhost:99999",
            "desk.example.com.attacker.example",
        ] {
            assert!(!host_allowed(bad, &configured), "{bad}");
        }
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(esc("<script>\"&'"), "&lt;script&gt;&quot;&amp;&#39;");
    }
}
