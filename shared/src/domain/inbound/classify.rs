//! Loop protection: which inbound messages are not a person's reply and must
//! be dropped (counted, never applied): auto-replies, bounces, and what SES
//! judged spam or a virus. Answering any of them could start a mail loop.

use mail_parser::{HeaderValue, Message, MimeHeaders};

/// Why a message is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// An out-of-office or other automatic answer (RFC 3834 `Auto-Submitted`,
    /// `Precedence: bulk|junk|auto_reply`, `X-Autoreply`, `X-Autorespond`).
    AutoReply,
    /// A delivery status notification or other bounce (a DSN report, an
    /// empty return path, a mailer daemon).
    Bounce,
    /// SES's spam verdict failed.
    Spam,
    /// SES's virus verdict failed.
    Virus,
}

impl Drop {
    /// The name counted in logs and on the dashboard.
    pub fn as_str(self) -> &'static str {
        match self {
            Drop::AutoReply => "auto_reply",
            Drop::Bounce => "bounce",
            Drop::Spam => "spam",
            Drop::Virus => "virus",
        }
    }
}

/// SES's receipt verdicts from the Lambda event (`receipt.spamVerdict.status`
/// and `receipt.virusVerdict.status`); `None` where there is none (ticketd).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SesVerdicts {
    pub spam: Option<String>,
    pub virus: Option<String>,
}

fn failed(status: Option<&str>) -> bool {
    status.is_some_and(|s| s.trim().eq_ignore_ascii_case("FAIL"))
}

/// The header's value as text (first occurrence), trimmed.
fn header<'a>(message: &'a Message<'_>, name: &'static str) -> Option<&'a str> {
    match message.header(name)? {
        HeaderValue::Text(t) => Some(t.trim()),
        HeaderValue::TextList(l) => l.first().map(|t| t.trim()),
        _ => message.header_raw(name).map(str::trim),
    }
}

/// Why `message` must be dropped, or `None` for a reply to apply.
pub fn classify(message: &Message<'_>, verdicts: &SesVerdicts) -> Option<Drop> {
    // SES adds these headers on receipt (also readable by ticketd behind SES).
    if failed(verdicts.virus.as_deref()) || failed(header(message, "X-SES-Virus-Verdict")) {
        return Some(Drop::Virus);
    }
    if failed(verdicts.spam.as_deref()) || failed(header(message, "X-SES-Spam-Verdict")) {
        return Some(Drop::Spam);
    }
    if is_bounce(message) {
        return Some(Drop::Bounce);
    }
    let auto_submitted = header(message, "Auto-Submitted").is_some_and(|v| {
        let kind = v.split(';').next().unwrap_or("").trim();
        !kind.eq_ignore_ascii_case("no")
    });
    let precedence = header(message, "Precedence")
        .is_some_and(|v| ["bulk", "junk", "auto_reply"].iter().any(|p| v.eq_ignore_ascii_case(p)));
    let autoreply_header = ["X-Autoreply", "X-Autorespond"]
        .iter()
        .any(|h| message.header(*h).is_some());
    (auto_submitted || precedence || autoreply_header).then_some(Drop::AutoReply)
}

fn is_bounce(message: &Message<'_>) -> bool {
    let report = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct
                .attribute("report-type")
                .is_some_and(|r| r.eq_ignore_ascii_case("delivery-status"))
    });
    // RFC 5321: notifications are sent with an empty reverse path, which the
    // final MTA records as `Return-Path: <>`.
    let empty_return_path = message
        .header_raw("Return-Path")
        .is_some_and(|v| v.trim().trim_matches(['<', '>']).trim().is_empty());
    let daemon = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .is_some_and(|a| {
            let local = a.split('@').next().unwrap_or("").to_ascii_lowercase();
            local == "mailer-daemon" || local == "postmaster"
        });
    report || empty_return_path || daemon
}
