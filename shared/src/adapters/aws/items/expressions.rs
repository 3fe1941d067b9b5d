//! The condition and update expressions on items, with the values they name:
//! the admin counters, the ticket version guard, and the sign-in throttle.

use super::{Item, Malformed, get_n, n, s, throttle_key, ts};
use crate::domain::{SigninWindow, ThrottleKey, Ticket, Timestamp};
use std::collections::HashMap;
use std::time::Duration;

/// An update (or put) condition and the names and values it uses.
#[derive(Debug, Clone, Default)]
pub struct Expr {
    pub update: &'static str,
    pub condition: String,
    pub names: HashMap<String, String>,
    pub values: Item,
}

/// Adds `delta` to an admin's open-ticket count. With `assigned` (time,
/// observed count) it also stamps the assignment, and holds only if the count
/// is still the one observed: two creates cannot both take the same slot.
pub fn counter_update(delta: i64, assigned: Option<(Timestamp, i64)>) -> Expr {
    let mut values = HashMap::from([(":d".to_owned(), n(delta))]);
    match assigned {
        Some((at, observed)) => {
            values.insert(":at".into(), n(at.millis()));
            values.insert(":observed".into(), n(observed));
            Expr {
                update: "SET openTickets = openTickets + :d, lastAssignedAt = :at",
                condition: "openTickets = :observed".into(),
                names: HashMap::new(),
                values,
            }
        }
        None => Expr {
            update: "SET openTickets = openTickets + :d",
            condition: "attribute_exists(pk)".into(),
            names: HashMap::new(),
            values,
        },
    }
}

/// The condition every ticket write carries: the ticket is exactly the
/// version the change was computed from. Status and `respondedAt` are spelled
/// out so the auto-close guard ("still RESPONDED for the same response") is
/// visible in the condition itself.
pub fn ticket_guard(before: &Ticket) -> Expr {
    let mut values = HashMap::from([
        (":v".to_owned(), n(before.version)),
        (":st".to_owned(), s(before.status.as_str())),
    ]);
    let responded = match before.responded_at {
        Some(at) => {
            values.insert(":ra".to_owned(), n(at.millis()));
            "respondedAt = :ra"
        }
        None => "attribute_not_exists(respondedAt)",
    };
    Expr {
        update: "",
        condition: format!("#v = :v AND #st = :st AND {responded}"),
        names: HashMap::from([
            ("#v".to_owned(), "version".to_owned()),
            ("#st".to_owned(), "status".to_owned()),
        ]),
        values,
    }
}

/// A new throttle window holding one failure; TTL deletes it a minute after it ends.
pub fn throttle_item(k: &ThrottleKey, now: Timestamp, window: Duration) -> Item {
    let mut item = throttle_key(k);
    item.insert("failures".into(), n(1));
    item.insert("windowStart".into(), n(now.millis()));
    item.insert("expiresAt".into(), n(now.plus(window).millis() / 1000 + 60));
    item
}

pub fn throttle_from(item: &Item) -> Result<SigninWindow, Malformed> {
    Ok(SigninWindow {
        failures: u32::try_from(get_n(item, "failures")?).unwrap_or(u32::MAX),
        started_at: ts(item, "windowStart")?,
    })
}
