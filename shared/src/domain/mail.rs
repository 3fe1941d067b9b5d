//! The email carrying a response, and what became of it: the delivery states,
//! their order, the retry schedule of a pending mail, and the provider's events.

use super::ids::{ResponseId, TicketId};
use super::time::Timestamp;
use super::values::Email;
use serde::Serialize;
use std::time::Duration;

/// What became of the email carrying a response. The mail is stored with the
/// response, so it is never lost: it stays `pending` until a send succeeds
/// (then `sent`, then whatever the provider reports) or the last attempt
/// fails (`failed`, with the reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Delivery {
    /// Not sent yet: `attempts` made so far; the next one at `nextAttemptAt`.
    #[serde(rename_all = "camelCase")]
    Pending {
        attempts: u32,
        next_attempt_at: Timestamp,
        #[serde(skip_serializing_if = "Option::is_none")]
        last_error: Option<String>,
    },
    /// The provider accepted it.
    #[serde(rename_all = "camelCase")]
    Sent { message_id: String, at: Timestamp },
    /// The recipient's mail server accepted it.
    #[serde(rename_all = "camelCase")]
    Delivered { message_id: String, at: Timestamp },
    /// The recipient's mail server refused it; `reason` is the bounce type.
    #[serde(rename_all = "camelCase")]
    Bounced {
        message_id: String,
        reason: String,
        at: Timestamp,
    },
    /// The recipient marked it as spam.
    #[serde(rename_all = "camelCase")]
    Complained { message_id: String, at: Timestamp },
    /// Every attempt failed; `reason` is the last error.
    #[serde(rename_all = "camelCase")]
    Failed { reason: String, at: Timestamp },
}

impl Delivery {
    /// A mail committed at `now`, not tried yet: due at once.
    pub fn new_pending(now: Timestamp) -> Self {
        Delivery::Pending {
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
        }
    }

    pub fn state(&self) -> &'static str {
        match self {
            Delivery::Pending { .. } => "pending",
            Delivery::Sent { .. } => "sent",
            Delivery::Delivered { .. } => "delivered",
            Delivery::Bounced { .. } => "bounced",
            Delivery::Complained { .. } => "complained",
            Delivery::Failed { .. } => "failed",
        }
    }

    /// How far along the mail is. A state only ever moves to a higher rank: a
    /// late or repeated notification can never undo a later one. `failed`
    /// ranks with `sent`: a send recorded as failed (a timeout) that the
    /// provider then reports delivered was in fact sent.
    pub fn rank(state: &str) -> u8 {
        match state {
            "pending" => 0,
            "sent" | "failed" => 1,
            "delivered" => 2,
            _ => 3, // bounced, complained: final
        }
    }
}

/// A delivery as the flat fields both stores keep: the state, the provider's
/// message id, a reason (why it failed or bounced; the last error while
/// pending), when it reached the state, and (while pending) when the next
/// attempt is due.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryParts {
    pub state: &'static str,
    pub message_id: Option<String>,
    pub reason: Option<String>,
    pub at: Option<Timestamp>,
    pub next_attempt_at: Option<Timestamp>,
}

impl Delivery {
    /// Every state, for building the "ranks below" conditions.
    pub const STATES: [&'static str; 6] = ["pending", "sent", "failed", "delivered", "bounced", "complained"];

    /// The states a delivery in state `to` may replace.
    pub fn states_below(to: &str) -> Vec<&'static str> {
        Self::STATES
            .into_iter()
            .filter(|s| Self::rank(s) < Self::rank(to))
            .collect()
    }

    pub fn parts(&self) -> DeliveryParts {
        let state = self.state();
        match self.clone() {
            Delivery::Pending {
                next_attempt_at,
                last_error,
                ..
            } => DeliveryParts {
                state,
                reason: last_error,
                next_attempt_at: Some(next_attempt_at),
                ..Default::default()
            },
            Delivery::Sent { message_id, at }
            | Delivery::Delivered { message_id, at }
            | Delivery::Complained { message_id, at } => DeliveryParts {
                state,
                message_id: Some(message_id),
                at: Some(at),
                ..Default::default()
            },
            Delivery::Bounced { message_id, reason, at } => DeliveryParts {
                state,
                message_id: Some(message_id),
                reason: Some(reason),
                at: Some(at),
                next_attempt_at: None,
            },
            Delivery::Failed { reason, at } => DeliveryParts {
                state,
                reason: Some(reason),
                at: Some(at),
                ..Default::default()
            },
        }
    }

    /// The delivery stored as `state` with these fields and `attempts` made;
    /// an unknown state reads as `failed` rather than failing the read.
    pub fn from_parts(
        state: &str,
        message_id: Option<String>,
        reason: Option<String>,
        at: Option<Timestamp>,
        attempts: u32,
        next_attempt_at: Option<Timestamp>,
    ) -> Self {
        let at = at.unwrap_or(Timestamp::from_millis(0));
        let message_id = message_id.unwrap_or_default();
        match state {
            "pending" => Delivery::Pending {
                attempts,
                next_attempt_at: next_attempt_at.unwrap_or(at),
                last_error: reason,
            },
            "sent" => Delivery::Sent { message_id, at },
            "delivered" => Delivery::Delivered { message_id, at },
            "bounced" => Delivery::Bounced {
                message_id,
                reason: reason.unwrap_or_default(),
                at,
            },
            "complained" => Delivery::Complained { message_id, at },
            "failed" => Delivery::Failed {
                reason: reason.unwrap_or_default(),
                at,
            },
            other => Delivery::Failed {
                reason: format!("unknown delivery state {other:?}"),
                at,
            },
        }
    }
}

/// One email, as the mailer port sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mail {
    pub to: Email,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub ticket_id: TicketId,
    /// The response it carries: tagged on the message so the provider's
    /// delivery events find their way back to it.
    pub response_id: ResponseId,
    /// The ticket's reply address (`Reply-To`), when inbound email is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Our own Message-ID (without angle brackets), when inbound email is on:
    /// a reply's `In-Reply-To` names it. Mailers that assign their own (SES)
    /// ignore it; see docs/ARCHITECTURE.md, "Inbound email".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// A pending mail claimed by one sender: the mail, the attempt number this
/// send is, and the lease that makes it this sender's alone until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMail {
    pub mail: Mail,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub lease: String,
}

/// What the provider reported about a sent mail, matched to its response by
/// the message's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailEvent {
    pub ticket_id: TicketId,
    pub response_id: ResponseId,
    pub message_id: String,
    pub kind: MailEventKind,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailEventKind {
    Delivered,
    /// `reason`: the bounce type and subtype, e.g. `Permanent: NoEmail`.
    Bounced {
        reason: String,
    },
    Complained,
}

impl MailEvent {
    /// The delivery this event records.
    pub fn delivery(&self) -> Delivery {
        let (message_id, at) = (self.message_id.clone(), self.at);
        match &self.kind {
            MailEventKind::Delivered => Delivery::Delivered { message_id, at },
            MailEventKind::Bounced { reason } => Delivery::Bounced {
                message_id,
                reason: reason.clone(),
                at,
            },
            MailEventKind::Complained => Delivery::Complained { message_id, at },
        }
    }
}

/// When a failed send is tried again: after each failed attempt the next
/// delay in `delays`; after the last one the mail is `failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRetry {
    pub delays: Vec<Duration>,
}

impl Default for MailRetry {
    /// 30 s, 2 m, 10 m, 1 h, 4 h, 4 h: seven attempts over about 9 h. The
    /// first retries catch throttling and a blip (SES throttles per second);
    /// the later ones outlast a regional incident (hours at worst) without
    /// leaving the customer to wait days for a reply that will not come: past
    /// that, `failed` tells the admin to reach the customer another way.
    fn default() -> Self {
        let m = |n: u64| Duration::from_secs(n * 60);
        Self {
            delays: vec![Duration::from_secs(30), m(2), m(10), m(60), m(240), m(240)],
        }
    }
}

impl MailRetry {
    /// Attempts made at most.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX - 1) + 1
    }

    /// The delay before the attempt after `attempt` (1-based) failed, or none
    /// when that was the last.
    pub fn after(&self, attempt: u32) -> Option<Duration> {
        self.delays.get(usize::try_from(attempt).ok()?.checked_sub(1)?).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_then_stop() {
        let r = MailRetry::default();
        assert_eq!(r.max_attempts(), 7);
        assert_eq!(r.after(1), Some(Duration::from_secs(30)));
        assert_eq!(r.after(2), Some(Duration::from_secs(120)));
        assert!(r.after(3) < r.after(4));
        assert_eq!(r.after(7), None);
        assert_eq!(r.after(0), None);
    }

    #[test]
    fn states_only_move_forward() {
        let order = ["pending", "sent", "delivered", "bounced"];
        for pair in order.windows(2) {
            assert!(Delivery::rank(pair[0]) < Delivery::rank(pair[1]), "{pair:?}");
        }
        assert_eq!(Delivery::rank("bounced"), Delivery::rank("complained"));
        assert!(Delivery::rank("failed") < Delivery::rank("delivered"));
    }

    #[test]
    fn every_delivery_round_trips_through_its_parts() {
        let at = Timestamp::from_millis(1_700_000_000_000);
        let id = || "m-1".to_owned();
        for d in [
            Delivery::Pending {
                attempts: 2,
                next_attempt_at: at,
                last_error: Some("throttled".into()),
            },
            Delivery::Sent { message_id: id(), at },
            Delivery::Delivered { message_id: id(), at },
            Delivery::Bounced {
                message_id: id(),
                reason: "Permanent: General".into(),
                at,
            },
            Delivery::Complained { message_id: id(), at },
            Delivery::Failed {
                reason: "unreachable".into(),
                at,
            },
        ] {
            let p = d.parts();
            let attempts = if let Delivery::Pending { attempts, .. } = d {
                attempts
            } else {
                0
            };
            let back = Delivery::from_parts(p.state, p.message_id, p.reason, p.at, attempts, p.next_attempt_at);
            assert_eq!(back, d);
        }
        assert_eq!(Delivery::states_below("delivered"), ["pending", "sent", "failed"]);
        assert!(Delivery::states_below("bounced").contains(&"delivered"));
        assert!(!Delivery::states_below("complained").contains(&"bounced"));
    }

    #[test]
    fn pending_shows_attempts_and_next_attempt() {
        let d = Delivery::new_pending(Timestamp::from_millis(0));
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["state"], "pending");
        assert_eq!(json["attempts"], 0);
        assert!(json["nextAttemptAt"].is_string());
        assert!(json.get("lastError").is_none());
    }
}
