//! How domain values map onto SQLite rows: the one place that knows.

use crate::domain::{Admin, Delivery, Domain, Email, Org, Response, Ticket, Timestamp};
use rusqlite::Row;
use rusqlite::types::Value;
use std::str::FromStr;

pub(super) fn parse<T: FromStr>(s: String, idx: usize) -> rusqlite::Result<T> {
    s.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, format!("bad value {s:?}").into())
    })
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

pub(super) const ADMIN_COLS: &str = "id, org_id, first_name, last_name, email, available, created_at";

pub(super) fn admin_from_row(r: &Row) -> rusqlite::Result<Admin> {
    Ok(Admin {
        id: parse(r.get(0)?, 0)?,
        org_id: parse(r.get(1)?, 1)?,
        first_name: r.get(2)?,
        last_name: r.get(3)?,
        email: Email::from_trusted(r.get(4)?),
        available: r.get(5)?,
        created_at: ts(r.get(6)?),
    })
}

pub(super) const TICKET_COLS: &str = "id, org_id, title, description, added_by, admin_id, status, created_at, \
     updated_at, responded_at, closed_at, auto_close_at, version";

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
    })
}

pub(super) const RESPONSE_COLS: &str = "id, ticket_id, admin_id, message, created_at, delivery_state, \
     delivery_message_id, delivery_reason, delivery_at, mail_attempts, mail_next_at";

pub(super) fn response_from_row(r: &Row) -> rusqlite::Result<Response> {
    let state: String = r.get(5)?;
    let delivery = Delivery::from_parts(
        &state,
        r.get(6)?,
        r.get(7)?,
        r.get::<_, Option<i64>>(8)?.map(ts),
        u32::try_from(r.get::<_, i64>(9)?).unwrap_or(0),
        r.get::<_, Option<i64>>(10)?.map(ts),
    );
    Ok(Response {
        id: parse(r.get(0)?, 0)?,
        ticket_id: parse(r.get(1)?, 1)?,
        admin_id: parse(r.get(2)?, 2)?,
        message: r.get(3)?,
        created_at: ts(r.get(4)?),
        delivery,
    })
}

pub(super) fn ticket_params(t: &Ticket) -> [Value; 13] {
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
    ]
}
