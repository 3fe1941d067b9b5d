//! How domain values map onto SQLite rows: the one place that knows.

use crate::domain::{Admin, AdminRole, Author, Delivery, Domain, Email, Message, MessageKind, Org, Ticket, Timestamp};
use rusqlite::Row;
use rusqlite::types::Value;
use std::str::FromStr;

pub(super) fn parse<T: FromStr>(s: String, idx: usize) -> rusqlite::Result<T> {
    s.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, format!("bad value {s:?}").into())
    })
}

fn bad_column(idx: usize, why: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, why.into())
}

pub(super) fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

pub(super) const ORG_COLS: &str = "id, name, domain, created_at";

pub(super) fn org_from_row(r: &Row) -> rusqlite::Result<Org> {
    Ok(Org {
        id: parse(r.get(0)?, 0)?,
        name: r.get(1)?,
        domain: Domain::from_trusted(r.get(2)?),
        created_at: ts(r.get(3)?),
    })
}

pub(super) const ADMIN_COLS: &str = "id, org_id, first_name, last_name, email, available, created_at, role";

pub(super) fn admin_from_row(r: &Row) -> rusqlite::Result<Admin> {
    Ok(Admin {
        id: parse(r.get(0)?, 0)?,
        org_id: parse(r.get(1)?, 1)?,
        first_name: r.get(2)?,
        last_name: r.get(3)?,
        email: Email::from_trusted(r.get(4)?),
        available: r.get(5)?,
        created_at: ts(r.get(6)?),
        role: AdminRole::from_stored(Some(&r.get::<_, String>(7)?)),
    })
}

pub(super) const TICKET_COLS: &str = "id, org_id, title, description, added_by, admin_id, status, created_at, \
     updated_at, responded_at, closed_at, auto_close_at, version, follow_up_of";

/// `?1, ?2, ...`: one placeholder per column of [`TICKET_COLS`].
pub(super) fn ticket_placeholders() -> String {
    (1..=TICKET_COLUMNS)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) const TICKET_COLUMNS: usize = 14;

pub(super) fn ticket_from_row(r: &Row) -> rusqlite::Result<Ticket> {
    Ok(Ticket {
        id: parse(r.get(0)?, 0)?,
        org_id: parse(r.get(1)?, 1)?,
        title: r.get(2)?,
        description: r.get(3)?,
        added_by: Email::from_trusted(r.get(4)?),
        admin_id: r.get::<_, Option<String>>(5)?.map(|s| parse(s, 5)).transpose()?,
        status: parse(r.get(6)?, 6)?,
        created_at: ts(r.get(7)?),
        updated_at: ts(r.get(8)?),
        responded_at: r.get::<_, Option<i64>>(9)?.map(ts),
        closed_at: r.get::<_, Option<i64>>(10)?.map(ts),
        auto_close_at: r.get::<_, Option<i64>>(11)?.map(ts),
        version: r.get(12)?,
        follow_up_of: r.get::<_, Option<String>>(13)?.map(|s| parse(s, 13)).transpose()?,
    })
}

pub(super) const MESSAGE_COLS: &str = "id, ticket_id, kind, admin_id, author_email, message, created_at, \
     delivery_state, delivery_message_id, delivery_reason, delivery_at, mail_attempts, mail_next_at";

pub(super) fn message_from_row(r: &Row) -> rusqlite::Result<Message> {
    let kind: String = r.get(2)?;
    let kind = MessageKind::parse(&kind).ok_or_else(|| bad_column(2, format!("unknown message kind {kind:?}")))?;
    let author = match (r.get::<_, Option<String>>(3)?, r.get::<_, Option<String>>(4)?) {
        (Some(admin), _) => Author::Admin {
            admin_id: parse(admin, 3)?,
        },
        (None, Some(email)) => Author::Customer {
            email: Email::from_trusted(email),
        },
        (None, None) => return Err(bad_column(3, "a message with no author".into())),
    };
    let delivery = r
        .get::<_, Option<String>>(7)?
        .map(|state| -> rusqlite::Result<Delivery> {
            Ok(Delivery::from_parts(
                &state,
                r.get(8)?,
                r.get(9)?,
                r.get::<_, Option<i64>>(10)?.map(ts),
                u32::try_from(r.get::<_, i64>(11)?).unwrap_or(0),
                r.get::<_, Option<i64>>(12)?.map(ts),
            ))
        });
    Ok(Message {
        id: parse(r.get(0)?, 0)?,
        ticket_id: parse(r.get(1)?, 1)?,
        kind,
        author,
        message: r.get(5)?,
        created_at: ts(r.get(6)?),
        delivery: delivery.transpose()?,
    })
}

pub(super) fn ticket_params(t: &Ticket) -> [Value; TICKET_COLUMNS] {
    [
        t.id.to_string().into(),
        t.org_id.to_string().into(),
        t.title.clone().into(),
        t.description.clone().into(),
        t.added_by.as_str().to_owned().into(),
        t.admin_id.map(|a| a.to_string()).into(),
        t.status.as_str().to_owned().into(),
        t.created_at.millis().into(),
        t.updated_at.millis().into(),
        t.responded_at.map(|x| x.millis()).into(),
        t.closed_at.map(|x| x.millis()).into(),
        t.auto_close_at.map(|x| x.millis()).into(),
        t.version.into(),
        t.follow_up_of.map(|x| x.to_string()).into(),
    ]
}
