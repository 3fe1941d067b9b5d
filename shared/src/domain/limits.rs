//! Rate limits: how many of a thing may happen per window, for one key (an
//! org, a recipient, a ticket, a sender). Windows are fixed: the count of a
//! key starts again at each multiple of the window, so one atomic counter per
//! (key, window) decides, on SQLite and DynamoDB alike. No I/O here.

use super::duration::{format_duration, parse_duration};
use super::time::Timestamp;
use std::time::Duration;

/// At most `limit` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub limit: u32,
    pub window: Duration,
}

impl Rate {
    pub const fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window }
    }

    /// `N/DURATION`, e.g. `200/1h`, `5/10m`. `0/…` forbids the thing outright.
    pub fn parse(input: &str) -> Result<Self, String> {
        let (n, window) = input
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("`{input}`: write a count and a window, e.g. 200/1h"))?;
        let limit = n
            .trim()
            .parse()
            .map_err(|_| format!("`{input}`: the count must be a whole number"))?;
        Ok(Self {
            limit,
            window: parse_duration(window)?,
        })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.limit, format_duration(self.window))
    }
}

/// The fixed window `now` falls in: its start (the key's counter is per
/// start) and its end (when a refused caller may try again).
pub fn window_of(now: Timestamp, window: Duration) -> (Timestamp, Timestamp) {
    let size = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
    let start = now.millis().div_euclid(size) * size;
    (
        Timestamp::from_millis(start),
        Timestamp::from_millis(start.saturating_add(size)),
    )
}

/// What taking a slot gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Taken,
    /// The window is full: try again after this long.
    RetryAfter(Duration),
}

/// Each limit the service applies, by the name errors and settings use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Mail an org's actions send (responses, reply notifications), per org.
    MailPerOrg,
    /// Mail to one address, whatever org sends it.
    MailPerRecipient,
    /// Customer replies that reopen one ticket (RESPONDED/CLOSED -> OPEN).
    ReopensPerTicket,
    /// Follow-up tickets opened by replies to long-closed tickets, per org.
    FollowUpsPerOrg,
    /// Webhook redeliveries asked for, per org.
    RedeliveriesPerOrg,
    /// Availability changes, per admin.
    AvailabilityPerAdmin,
    /// Inbound mail from one sender address.
    InboundPerSender,
    /// Inbound mail to one ticket.
    InboundPerTicket,
}

impl Limit {
    pub const ALL: [Limit; 8] = [
        Limit::MailPerOrg,
        Limit::MailPerRecipient,
        Limit::ReopensPerTicket,
        Limit::FollowUpsPerOrg,
        Limit::RedeliveriesPerOrg,
        Limit::AvailabilityPerAdmin,
        Limit::InboundPerSender,
        Limit::InboundPerTicket,
    ];

    /// The name in errors (`limit`), keys, ticketd's `--limit NAME=N/DURATION`
    /// and the Lambda's `TICKETING_LIMIT_<NAME>` (upper-cased).
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MailPerOrg => "mail_per_org",
            Limit::MailPerRecipient => "mail_per_recipient",
            Limit::ReopensPerTicket => "reopens_per_ticket",
            Limit::FollowUpsPerOrg => "follow_ups_per_org",
            Limit::RedeliveriesPerOrg => "redeliveries_per_org",
            Limit::AvailabilityPerAdmin => "availability_per_admin",
            Limit::InboundPerSender => "inbound_per_sender",
            Limit::InboundPerTicket => "inbound_per_ticket",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == name.trim())
    }

    /// The environment variable a Lambda reads this limit from.
    pub fn env_var(self) -> String {
        format!("TICKETING_LIMIT_{}", self.as_str().to_ascii_uppercase())
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// Every limit's rate, and the other abuse settings. Defaults are generous
/// for people and tight for scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub mail_per_org: Rate,
    pub mail_per_recipient: Rate,
    pub reopens_per_ticket: Rate,
    pub follow_ups_per_org: Rate,
    pub redeliveries_per_org: Rate,
    pub availability_per_admin: Rate,
    pub inbound_per_sender: Rate,
    pub inbound_per_ticket: Rate,
    /// An assignee is mailed about a ticket's customer replies at most once
    /// per this long; the replies in between are counted in the next one.
    pub reply_notice_every: Duration,
    /// Raw inbound mail is deleted this long after it arrived (the reply
    /// it became stays).
    pub inbound_retention: Duration,
}

/// `reply_notice_every`'s default.
pub const DEFAULT_REPLY_NOTICE_EVERY: Duration = Duration::from_secs(10 * 60);
/// `inbound_retention`'s default: 30 days.
pub const DEFAULT_INBOUND_RETENTION: Duration = Duration::from_secs(30 * 86_400);

impl Default for Limits {
    fn default() -> Self {
        Self {
            mail_per_org: Rate::new(200, HOUR),
            mail_per_recipient: Rate::new(30, HOUR),
            reopens_per_ticket: Rate::new(5, HOUR),
            follow_ups_per_org: Rate::new(30, HOUR),
            redeliveries_per_org: Rate::new(60, HOUR),
            availability_per_admin: Rate::new(30, HOUR),
            inbound_per_sender: Rate::new(30, HOUR),
            inbound_per_ticket: Rate::new(60, HOUR),
            reply_notice_every: DEFAULT_REPLY_NOTICE_EVERY,
            inbound_retention: DEFAULT_INBOUND_RETENTION,
        }
    }
}

impl Limits {
    pub fn rate(&self, limit: Limit) -> Rate {
        match limit {
            Limit::MailPerOrg => self.mail_per_org,
            Limit::MailPerRecipient => self.mail_per_recipient,
            Limit::ReopensPerTicket => self.reopens_per_ticket,
            Limit::FollowUpsPerOrg => self.follow_ups_per_org,
            Limit::RedeliveriesPerOrg => self.redeliveries_per_org,
            Limit::AvailabilityPerAdmin => self.availability_per_admin,
            Limit::InboundPerSender => self.inbound_per_sender,
            Limit::InboundPerTicket => self.inbound_per_ticket,
        }
    }

    pub fn set(&mut self, limit: Limit, rate: Rate) {
        *match limit {
            Limit::MailPerOrg => &mut self.mail_per_org,
            Limit::MailPerRecipient => &mut self.mail_per_recipient,
            Limit::ReopensPerTicket => &mut self.reopens_per_ticket,
            Limit::FollowUpsPerOrg => &mut self.follow_ups_per_org,
            Limit::RedeliveriesPerOrg => &mut self.redeliveries_per_org,
            Limit::AvailabilityPerAdmin => &mut self.availability_per_admin,
            Limit::InboundPerSender => &mut self.inbound_per_sender,
            Limit::InboundPerTicket => &mut self.inbound_per_ticket,
        } = rate;
    }

    /// Applies one `NAME=N/DURATION` (ticketd's `--limit`).
    pub fn apply(&mut self, setting: &str) -> Result<(), String> {
        let (name, rate) = setting
            .split_once('=')
            .ok_or_else(|| format!("`{setting}`: write NAME=N/DURATION, e.g. mail_per_org=200/1h"))?;
        let limit = Limit::from_name(name).ok_or_else(|| {
            let names: Vec<_> = Limit::ALL.iter().map(|l| l.as_str()).collect();
            format!("`{name}` is not a limit; limits: {}", names.join(", "))
        })?;
        self.set(limit, Rate::parse(rate)?);
        Ok(())
    }

    /// Each limit whose variable (`Limit::env_var`) `get` has set.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, (String, String)> {
        let mut limits = Self::default();
        for limit in Limit::ALL {
            let var = limit.env_var();
            if let Some(v) = get(&var).filter(|v| !v.trim().is_empty()) {
                limits.set(limit, Rate::parse(&v).map_err(|e| (var.clone(), e))?);
            }
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print() {
        assert_eq!(Rate::parse("200/1h"), Ok(Rate::new(200, HOUR)));
        assert_eq!(Rate::parse(" 0 / 10m "), Ok(Rate::new(0, Duration::from_secs(600))));
        assert_eq!(Rate::new(5, HOUR).to_string(), "5/1h");
        for bad in ["200", "x/1h", "5/", "5/0s", "-1/1h"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_are_fixed_and_cover_now() {
        let w = Duration::from_secs(60);
        let (start, end) = window_of(Timestamp::from_millis(125_000), w);
        assert_eq!((start.millis(), end.millis()), (120_000, 180_000));
        let (start, _) = window_of(Timestamp::from_millis(120_000), w);
        assert_eq!(start.millis(), 120_000, "a window's first instant is in it");
    }

    #[test]
    fn settings_name_each_limit() {
        let mut limits = Limits::default();
        limits.apply("follow_ups_per_org=2/1m").unwrap();
        assert_eq!(limits.follow_ups_per_org, Rate::new(2, Duration::from_secs(60)));
        assert!(limits.apply("nonsense=1/1m").unwrap_err().contains("mail_per_org"));
        let env = Limits::from_lookup(|k| (k == "TICKETING_LIMIT_MAIL_PER_ORG").then(|| "7/1d".to_owned())).unwrap();
        assert_eq!(env.mail_per_org, Rate::new(7, Duration::from_secs(86_400)));
        let bad = Limits::from_lookup(|k| (k == "TICKETING_LIMIT_INBOUND_PER_TICKET").then(|| "7".to_owned()));
        assert_eq!(bad.unwrap_err().0, "TICKETING_LIMIT_INBOUND_PER_TICKET");
        for l in Limit::ALL {
            assert_eq!(Limit::from_name(l.as_str()), Some(l));
        }
    }
}
