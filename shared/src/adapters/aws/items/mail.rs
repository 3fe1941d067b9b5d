//! How a response's outgoing mail and its delivery map onto the response
//! item, and the conditional writes that move it: claim, record an attempt,
//! record a provider event. A pending mail carries `g_mail` and `mailNextAt`,
//! the keys of the sparse index [`MAIL_DUE_INDEX`]: only pending mail is in it.

use super::{Item, Malformed, get_n, get_s, n, opt_n, opt_s, opt_ts, s};
use crate::domain::{ClaimedMail, Delivery, Email, Mail, ResponseId, TicketId, Timestamp};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// The sparse index of pending mail: partition `g_mail` (one value, `DUE`),
/// sort `mailNextAt` (a number, ms). Keys only: the table keys name the
/// ticket and the response.
pub const MAIL_DUE_INDEX: &str = "mail_due";
pub const MAIL_DUE_PK: &str = "g_mail";
pub const MAIL_DUE_SK: &str = "mailNextAt";
pub const MAIL_DUE: &str = "DUE";

/// The fields a new response item gets for its mail and pending delivery.
pub fn mail_fields(mail: &Mail, delivery: &Delivery) -> Item {
    let mut item = HashMap::from([
        ("mailTo".to_owned(), s(mail.to.as_str())),
        ("mailFrom".to_owned(), s(&mail.from)),
        ("mailSubject".to_owned(), s(&mail.subject)),
        ("mailBody".to_owned(), s(&mail.text)),
        ("mailAttempts".to_owned(), n(0)),
    ]);
    for (k, v) in [("mailReplyTo", &mail.reply_to), ("mailMessageId", &mail.message_id)] {
        if let Some(v) = v {
            item.insert(k.to_owned(), s(v));
        }
    }
    let p = delivery.parts();
    item.insert("deliveryState".into(), s(p.state));
    if let Some(next) = p.next_attempt_at {
        item.insert(MAIL_DUE_PK.into(), s(MAIL_DUE));
        item.insert(MAIL_DUE_SK.into(), n(next.millis()));
    }
    item
}

/// The delivery stored on a response item. Items written before issue 8 kept
/// the message id or the reason in `deliveryDetail`.
pub fn delivery_from(item: &Item) -> Delivery {
    let state = opt_s(item, "deliveryState").unwrap_or("pending");
    let detail = opt_s(item, "deliveryDetail").map(str::to_owned);
    let message_id = opt_s(item, "deliveryMessageId")
        .map(str::to_owned)
        .or_else(|| (state != "failed").then(|| detail.clone()).flatten());
    let reason = opt_s(item, "deliveryReason")
        .map(str::to_owned)
        .or_else(|| (state == "failed").then_some(detail).flatten());
    Delivery::from_parts(
        state,
        message_id,
        reason,
        opt_ts(item, "deliveryAt"),
        u32::try_from(opt_n(item, "mailAttempts").unwrap_or(0)).unwrap_or(0),
        opt_ts(item, MAIL_DUE_SK),
    )
}

/// An update of a response item: expression, condition and the values they use.
#[derive(Debug, Clone, Default)]
pub struct MailWrite {
    pub update: String,
    pub condition: String,
    pub values: Item,
}

/// Takes a pending, due mail for one attempt: counts it and pushes its due
/// time to the lease's end, under a fresh lease token.
pub fn claim(now: Timestamp, lease_end: Timestamp, token: &str) -> MailWrite {
    MailWrite {
        update: format!("SET mailAttempts = mailAttempts + :one, {MAIL_DUE_SK} = :until, mailLease = :lease"),
        condition: format!("deliveryState = :pending AND {MAIL_DUE_SK} <= :now AND attribute_exists(mailTo)"),
        values: HashMap::from([
            (":one".to_owned(), n(1)),
            (":until".to_owned(), n(lease_end.millis())),
            (":lease".to_owned(), s(token)),
            (":pending".to_owned(), s("pending")),
            (":now".to_owned(), n(now.millis())),
        ]),
    }
}

/// The claimed mail, from the item the claim returned.
pub fn claimed_from(
    item: &Item,
    ticket: TicketId,
    response: ResponseId,
    token: &str,
) -> Result<ClaimedMail, Malformed> {
    Ok(ClaimedMail {
        mail: Mail {
            to: Email::from_trusted(get_s(item, "mailTo")?.to_owned()),
            from: get_s(item, "mailFrom")?.to_owned(),
            subject: get_s(item, "mailSubject")?.to_owned(),
            text: get_s(item, "mailBody")?.to_owned(),
            ticket_id: ticket,
            response_id: response,
            reply_to: opt_s(item, "mailReplyTo").map(str::to_owned),
            message_id: opt_s(item, "mailMessageId").map(str::to_owned),
        },
        attempt: u32::try_from(get_n(item, "mailAttempts")?).unwrap_or(u32::MAX),
        lease: token.to_owned(),
    })
}

/// Sets `delivery`'s fields, removing those it lacks (and, once it is no
/// longer pending, its place in the due index).
fn set_delivery(delivery: &Delivery) -> MailWrite {
    let p = delivery.parts();
    let mut set = vec!["deliveryState = :state".to_owned()];
    let mut remove = vec!["mailLease".to_owned(), "deliveryDetail".to_owned()];
    let mut values = HashMap::from([(":state".to_owned(), s(p.state))]);
    let fields: [(&str, Option<AttributeValue>); 4] = [
        ("deliveryMessageId", p.message_id.map(s)),
        ("deliveryReason", p.reason.map(s)),
        ("deliveryAt", p.at.map(|t| n(t.millis()))),
        (MAIL_DUE_SK, p.next_attempt_at.map(|t| n(t.millis()))),
    ];
    for (k, v) in fields {
        match v {
            Some(v) => {
                set.push(format!("{k} = :{k}"));
                values.insert(format!(":{k}"), v);
            }
            None => remove.push(k.to_owned()),
        }
    }
    if p.next_attempt_at.is_none() {
        remove.push(MAIL_DUE_PK.to_owned());
    }
    MailWrite {
        update: format!("SET {} REMOVE {}", set.join(", "), remove.join(", ")),
        condition: String::new(),
        values,
    }
}

/// Records a claimed attempt's outcome: `Sent` while the mail is still
/// pending; a retry or `Failed` only under the claim's own lease.
pub fn record_attempt(lease: &str, outcome: &Delivery) -> MailWrite {
    let mut w = set_delivery(outcome);
    w.values.insert(":pending".into(), s("pending"));
    w.condition = "deliveryState = :pending".into();
    if !matches!(outcome, Delivery::Sent { .. }) {
        w.condition.push_str(" AND mailLease = :lease");
        w.values.insert(":lease".into(), s(lease));
    }
    w
}

/// Records a provider event if it ranks above the stored state.
pub fn record_event(delivery: &Delivery) -> MailWrite {
    let mut w = set_delivery(delivery);
    let below = Delivery::states_below(delivery.state());
    let names: Vec<String> = (0..below.len()).map(|i| format!(":below{i}")).collect();
    for (name, state) in names.iter().zip(below) {
        w.values.insert(name.clone(), s(state));
    }
    w.condition = format!("deliveryState IN ({})", names.join(", "));
    w
}

/// The ticket and response a response item's (or index entry's) keys name.
pub fn ids_from_keys(item: &Item) -> Result<(TicketId, ResponseId), Malformed> {
    let bad = |k: &str| Malformed(format!("bad {k}"));
    let ticket = get_s(item, super::PK)?
        .strip_prefix("TICKET#")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| bad("pk"))?;
    let response = get_s(item, super::SK)?
        .strip_prefix("RESPONSE#")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| bad("sk"))?;
    Ok((ticket, response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_mail_is_in_the_due_index_and_leaves_it_when_sent() {
        let at = Timestamp::from_millis(1_700_000_000_000);
        let mail = Mail {
            to: Email::from_trusted("c@x.io".into()),
            from: "s@x.io".into(),
            subject: "Re".into(),
            text: "hello".into(),
            ticket_id: TicketId::new(),
            response_id: ResponseId::new(),
            reply_to: None,
            message_id: None,
        };
        let item = mail_fields(&mail, &Delivery::new_pending(at));
        assert_eq!(item.get(MAIL_DUE_PK), Some(&s(MAIL_DUE)));
        assert_eq!(delivery_from(&item), Delivery::new_pending(at));
        let sent = record_attempt(
            "lease",
            &Delivery::Sent {
                message_id: "m".into(),
                at,
            },
        );
        assert!(
            sent.update.contains(&format!(
                "REMOVE mailLease, deliveryDetail, deliveryReason, {MAIL_DUE_SK}, {MAIL_DUE_PK}"
            )),
            "{}",
            sent.update
        );
        assert!(
            !sent.condition.contains("mailLease"),
            "a send is recorded whoever holds the lease"
        );
        let retry = record_attempt(
            "lease",
            &Delivery::Pending {
                attempts: 1,
                next_attempt_at: at,
                last_error: Some("down".into()),
            },
        );
        assert!(retry.condition.contains("mailLease = :lease"));
        assert!(!retry.update.contains(MAIL_DUE_PK), "a retry stays in the index");
    }

    #[test]
    fn old_items_read_their_detail() {
        let item = HashMap::from([
            ("deliveryState".to_owned(), s("failed")),
            ("deliveryDetail".to_owned(), s("mail service unreachable")),
            ("deliveryAt".to_owned(), n(5)),
        ]);
        assert_eq!(
            delivery_from(&item),
            Delivery::Failed {
                reason: "mail service unreachable".into(),
                at: Timestamp::from_millis(5)
            }
        );
    }
}
