//! The one place that knows how domain values map onto DynamoDB items.
//!
//! One table, string keys `pk`/`sk`:
//!
//! | item | pk | sk | holds |
//! |---|---|---|---|
//! | org | `ORG#<org>` | `ORG` | the org |
//! | domain marker | `DOMAIN#<domain>` | `DOMAIN` | uniqueness of the domain |
//! | secret | `SECRET#<sha256>` | `SECRET` | the org, found by its secret's hash; for an API key also `keyId` and `scopes` (`keys.rs`) |
//! | API key | `ORG#<org>` | `APIKEY#<key>` | the key's name, prefix, scopes, `lastUsedAt`, and its secret item's hash |
//! | credentials | `EMAIL#<email>` | `ORG#<org>` | the admin and `passwordHash`: one Query finds an email's accounts in every org; the conditional put keeps the email unique per org |
//! | admin | `ORG#<org>` | `ADMIN#<admin>` | the admin and its assignment counters (`openTickets`, `lastAssignedAt`) |
//! | ticket | `TICKET#<ticket>` | `TICKET` | the ticket, plus list-index keys |
//! | event | `TICKET#<ticket>` | `EVENT#<event>` | one history entry (`history.rs`) |
//! | message | `TICKET#<ticket>` | `RESPONSE#<message>` | a message (response, reply or note: `kind`), its outgoing mail and its delivery (v7 ids sort by time); `g_mail`/`mailNextAt` while the mail is pending (`mail.rs`) |
//! | inbound mail | `INBOUND#<Message-ID or sha256>` | `INBOUND` | one inbound message: `receivedAt`, `source` (its S3 object) or `raw`, `outcome`, `ticketId`; `expiresAt` lets TTL remove it (`dynamo_inbound.rs`) |
//! | sign-in failures | `SIGNIN#<throttle key>` | `SIGNIN` | `failures`, `windowStart`; `expiresAt` lets TTL remove it |
//!
//! Lists: one GSI per filter combination, partition key the org plus the
//! filter values, sort key `gsk` = `<createdAt ms, 13 digits>#<ticket id>`.
//!
//! Due auto-closes: the sparse GSI `by_due` holds only RESPONDED tickets
//! (`g_due` = `DUE`, `g_due_at` = `<autoCloseAt ms, 13 digits>#<ticket id>`),
//! so the sweeper finds every overdue ticket with one Query, never a scan.

use crate::domain::{
    Admin, AdminId, AdminLoad, AdminRole, Author, Domain, Email, Mail, Message, MessageKind, Org, OrgId, ResponseId,
    Status, ThrottleKey, Ticket, TicketFilter, TicketId, Timestamp,
};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::str::FromStr;

mod expressions;
mod history;
pub mod keys;
mod mail;
pub mod webhooks;

pub use expressions::*;
pub use history::*;
pub use mail::*;

pub type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSK: &str = "gsk";

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn key(pk: String, sk: &str) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

/// The primary key of `item` (as an index Query returns it with the rest).
pub fn key_of(item: &Item) -> Item {
    item.iter()
        .filter(|(k, _)| *k == PK || *k == SK)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub fn org_key(org: OrgId) -> Item {
    key(format!("ORG#{org}"), "ORG")
}
pub fn domain_key(domain: &Domain) -> Item {
    key(format!("DOMAIN#{}", domain.as_str()), "DOMAIN")
}
pub fn secret_key(hash: &str) -> Item {
    key(format!("SECRET#{hash}"), "SECRET")
}
pub fn credentials_key(email: &Email, org: OrgId) -> Item {
    key(email_partition(email), &format!("ORG#{org}"))
}
/// The partition holding an email's credentials items, one per org.
pub fn email_partition(email: &Email) -> String {
    format!("EMAIL#{}", email.as_str())
}
pub fn admin_key(org: OrgId, admin: AdminId) -> Item {
    key(org_partition(org), &format!("{ADMIN_PREFIX}{admin}"))
}
/// Sort-key prefix of the admin items in an org's partition.
pub const ADMIN_PREFIX: &str = "ADMIN#";
pub fn ticket_key(id: TicketId) -> Item {
    key(ticket_partition(id), TICKET_SK)
}
/// The ticket item's sort key; its responses share the partition.
pub const TICKET_SK: &str = "TICKET";
pub fn response_key(ticket: TicketId, response: ResponseId) -> Item {
    key(ticket_partition(ticket), &format!("RESPONSE#{response}"))
}
pub fn throttle_key(k: &ThrottleKey) -> Item {
    key(format!("SIGNIN#{}", k.storage_key()), "SIGNIN")
}
pub fn org_partition(org: OrgId) -> String {
    format!("ORG#{org}")
}
pub fn ticket_partition(id: TicketId) -> String {
    format!("TICKET#{id}")
}

/// The sparse index of RESPONDED tickets by due time.
pub const DUE_INDEX: &str = "by_due";
pub const DUE_PK: &str = "g_due";
pub const DUE_SK: &str = "g_due_at";
/// The one partition of `by_due`. One partition takes 1,000 writes/s, far
/// above the rate tickets are responded to and closed; shard it if that changes.
pub const DUE_PARTITION: &str = "DUE";

/// `by_due`'s sort key: due time, then what is due (a ticket id; for
/// webhooks, an endpoint, delivery or message id).
pub fn due_sort_key(due: Timestamp, id: impl std::fmt::Display) -> String {
    format!("{:013}#{id}", due.millis().max(0))
}

/// The bound that includes everything due at or before `at`: `~` sorts
/// after every character of the ids that follow the time.
pub fn due_upper_bound(at: Timestamp) -> String {
    format!("{:013}#~", at.millis().max(0))
}

/// A list index: its name and partition-key attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListIndex {
    pub name: &'static str,
    pub pk_attr: &'static str,
}

/// Every list index, for table creation and the template.
pub const LIST_INDEXES: [ListIndex; 8] = [
    ListIndex {
        name: "by_org",
        pk_attr: "g_org",
    },
    ListIndex {
        name: "by_status",
        pk_attr: "g_status",
    },
    ListIndex {
        name: "by_admin",
        pk_attr: "g_admin",
    },
    ListIndex {
        name: "by_customer",
        pk_attr: "g_customer",
    },
    ListIndex {
        name: "by_admin_status",
        pk_attr: "g_admin_status",
    },
    ListIndex {
        name: "by_customer_status",
        pk_attr: "g_customer_status",
    },
    ListIndex {
        name: "by_admin_customer",
        pk_attr: "g_admin_customer",
    },
    ListIndex {
        name: "by_admin_customer_status",
        pk_attr: "g_admin_customer_status",
    },
];

/// The index serving `filter`, and its partition-key value for `org`.
pub fn list_index(org: OrgId, f: &TicketFilter) -> (ListIndex, String) {
    let admin = f.admin_id.map(|a| a.to_string());
    let customer = f.customer.as_ref().map(|c| c.as_str().to_owned());
    let status = f.status.map(|s| s.as_str().to_owned());
    let idx = usize::from(admin.is_some()) * 4 + usize::from(customer.is_some()) * 2 + usize::from(status.is_some());
    // (admin, customer, status) bits → index
    const BY_BITS: [usize; 8] = [0, 1, 3, 5, 2, 4, 6, 7];
    let parts: Vec<String> = std::iter::once(org.to_string())
        .chain(admin)
        .chain(customer)
        .chain(status)
        .collect();
    (LIST_INDEXES[BY_BITS[idx]], parts.join("#"))
}

/// Index keys a ticket carries: it appears in every list whose filter it matches.
fn list_keys(t: &Ticket) -> Vec<(&'static str, String)> {
    let mut keys = Vec::new();
    for admin in [None, t.admin_id] {
        for customer in [None, Some(t.added_by.clone())] {
            for status in [None, Some(t.status)] {
                let f = TicketFilter {
                    admin_id: admin,
                    status,
                    customer: customer.clone(),
                };
                let (index, value) = list_index(t.org_id, &f);
                if !keys.iter().any(|(attr, _)| *attr == index.pk_attr) {
                    keys.push((index.pk_attr, value));
                }
            }
        }
    }
    keys
}

pub fn sort_key(created_at: Timestamp, id: TicketId) -> String {
    format!("{:013}#{id}", created_at.millis().max(0))
}

// ---- reading ----

#[derive(Debug, thiserror::Error)]
#[error("malformed item: {0}")]
pub struct Malformed(pub String);

pub fn get_s<'a>(item: &'a Item, k: &str) -> Result<&'a str, Malformed> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(Malformed(format!("missing string {k}"))),
    }
}

pub(crate) fn opt_s<'a>(item: &'a Item, k: &str) -> Option<&'a str> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

pub fn get_n(item: &Item, k: &str) -> Result<i64, Malformed> {
    opt_n(item, k).ok_or_else(|| Malformed(format!("missing number {k}")))
}

pub(crate) fn opt_n(item: &Item, k: &str) -> Option<i64> {
    match item.get(k) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn parse<T: FromStr>(item: &Item, k: &str) -> Result<T, Malformed> {
    get_s(item, k)?.parse().map_err(|_| Malformed(format!("bad {k}")))
}

fn ts(item: &Item, k: &str) -> Result<Timestamp, Malformed> {
    get_n(item, k).map(Timestamp::from_millis)
}

pub(crate) fn opt_ts(item: &Item, k: &str) -> Option<Timestamp> {
    opt_n(item, k).map(Timestamp::from_millis)
}

// ---- orgs ----

pub fn org_fields(org: &Org) -> Item {
    HashMap::from([
        ("orgId".to_owned(), s(org.id.to_string())),
        ("name".to_owned(), s(&org.name)),
        ("domain".to_owned(), s(org.domain.as_str())),
        ("createdAt".to_owned(), n(org.created_at.millis())),
    ])
}

/// The marker that reserves the org's domain, and names the org.
pub fn domain_marker_item(org: &Org) -> Item {
    let mut item = domain_key(&org.domain);
    item.insert("orgId".into(), s(org.id.to_string()));
    item
}

/// The org named by a domain marker (or any org item).
pub fn org_id_from(item: &Item) -> Result<OrgId, Malformed> {
    parse(item, "orgId")
}

pub fn org_from(item: &Item) -> Result<Org, Malformed> {
    Ok(Org {
        id: parse(item, "orgId")?,
        name: get_s(item, "name")?.to_owned(),
        domain: Domain::from_trusted(get_s(item, "domain")?.to_owned()),
        created_at: ts(item, "createdAt")?,
    })
}

// ---- admins ----

fn admin_fields(a: &Admin) -> Item {
    HashMap::from([
        ("adminId".to_owned(), s(a.id.to_string())),
        ("orgId".to_owned(), s(a.org_id.to_string())),
        ("firstName".to_owned(), s(&a.first_name)),
        ("lastName".to_owned(), s(&a.last_name)),
        ("email".to_owned(), s(a.email.as_str())),
        ("available".to_owned(), AttributeValue::Bool(a.available)),
        ("createdAt".to_owned(), n(a.created_at.millis())),
        ("role".to_owned(), s(a.role.as_str())),
    ])
}

pub fn admin_from(item: &Item) -> Result<Admin, Malformed> {
    Ok(Admin {
        id: parse(item, "adminId")?,
        org_id: parse(item, "orgId")?,
        first_name: get_s(item, "firstName")?.to_owned(),
        last_name: get_s(item, "lastName")?.to_owned(),
        email: Email::from_trusted(get_s(item, "email")?.to_owned()),
        available: matches!(item.get("available"), Some(AttributeValue::Bool(true))),
        created_at: ts(item, "createdAt")?,
        role: AdminRole::from_stored(opt_s(item, "role")),
    })
}

/// The admin's item in its org's partition, with zeroed counters.
pub fn admin_item(a: &Admin) -> Item {
    let mut item = admin_key(a.org_id, a.id);
    item.extend(admin_fields(a));
    item.insert("openTickets".into(), n(0));
    item
}

/// The admin's credentials item: the admin and its password hash.
pub fn credentials_item(a: &Admin, password_hash: &str) -> Item {
    let mut item = credentials_key(&a.email, a.org_id);
    item.extend(admin_fields(a));
    item.insert("passwordHash".into(), s(password_hash));
    item
}

pub fn credentials_from(item: &Item) -> Result<(Admin, String), Malformed> {
    Ok((admin_from(item)?, get_s(item, "passwordHash")?.to_owned()))
}

pub fn load_from(item: &Item) -> Result<AdminLoad, Malformed> {
    Ok(AdminLoad {
        admin_id: parse(item, "adminId")?,
        available: matches!(item.get("available"), Some(AttributeValue::Bool(true))),
        open_tickets: opt_n(item, "openTickets").unwrap_or(0),
        last_assigned_at: opt_ts(item, "lastAssignedAt"),
    })
}

// ---- tickets ----

pub fn ticket_item(t: &Ticket) -> Item {
    let mut item = ticket_key(t.id);
    let mut put = |k: &str, v: AttributeValue| {
        item.insert(k.to_owned(), v);
    };
    put("ticketId", s(t.id.to_string()));
    put("orgId", s(t.org_id.to_string()));
    put("title", s(&t.title));
    put("description", s(&t.description));
    put("addedBy", s(t.added_by.as_str()));
    if let Some(a) = t.admin_id {
        put("adminId", s(a.to_string()));
    }
    put("status", s(t.status.as_str()));
    put("createdAt", n(t.created_at.millis()));
    put("updatedAt", n(t.updated_at.millis()));
    for (k, v) in [
        ("respondedAt", t.responded_at),
        ("closedAt", t.closed_at),
        ("autoCloseAt", t.auto_close_at),
    ] {
        if let Some(v) = v {
            put(k, n(v.millis()));
        }
    }
    put("version", n(t.version));
    if let Some(f) = t.follow_up_of {
        put("followUpOf", s(f.to_string()));
    }
    put(GSK, s(sort_key(t.created_at, t.id)));
    if let (Status::Responded, Some(due)) = (t.status, t.auto_close_at) {
        put(DUE_PK, s(DUE_PARTITION));
        put(DUE_SK, s(due_sort_key(due, t.id)));
    }
    for (attr, value) in list_keys(t) {
        put(attr, s(value));
    }
    if let Some((attr, value)) = unassigned_key(t) {
        put(attr, s(value));
    }
    item
}

pub fn ticket_from(item: &Item) -> Result<Ticket, Malformed> {
    Ok(Ticket {
        id: parse(item, "ticketId")?,
        org_id: parse(item, "orgId")?,
        title: get_s(item, "title")?.to_owned(),
        description: get_s(item, "description")?.to_owned(),
        added_by: Email::from_trusted(get_s(item, "addedBy")?.to_owned()),
        admin_id: opt_s(item, "adminId")
            .map(|a| a.parse().map_err(|_| Malformed("bad adminId".into())))
            .transpose()?,
        status: parse(item, "status")?,
        created_at: ts(item, "createdAt")?,
        updated_at: ts(item, "updatedAt")?,
        responded_at: opt_ts(item, "respondedAt"),
        closed_at: opt_ts(item, "closedAt"),
        auto_close_at: opt_ts(item, "autoCloseAt"),
        version: get_n(item, "version")?,
        follow_up_of: opt_s(item, "followUpOf")
            .map(|a| a.parse().map_err(|_| Malformed("bad followUpOf".into())))
            .transpose()?,
    })
}

// ---- messages ----

/// A new message (response, reply or note) and its outgoing mail, pending.
/// Items written before issue 9 have no `kind`: they are responses.
pub fn message_item(m: &Message, mail: Option<&Mail>) -> Item {
    let mut item = response_key(m.ticket_id, m.id);
    item.insert("responseId".into(), s(m.id.to_string()));
    item.insert("ticketId".into(), s(m.ticket_id.to_string()));
    item.insert("kind".into(), s(m.kind.as_str()));
    match &m.author {
        Author::Admin { admin_id } => item.insert("adminId".into(), s(admin_id.to_string())),
        Author::Customer { email } => item.insert("authorEmail".into(), s(email.as_str())),
    };
    item.insert("message".into(), s(&m.message));
    item.insert("createdAt".into(), n(m.created_at.millis()));
    if let (Some(mail), Some(delivery)) = (mail, &m.delivery) {
        item.extend(mail_fields(mail, delivery));
    }
    item
}

pub fn message_from(item: &Item) -> Result<Message, Malformed> {
    let kind = match opt_s(item, "kind") {
        None => MessageKind::Response,
        Some(k) => MessageKind::parse(k).ok_or_else(|| Malformed(format!("unknown message kind {k:?}")))?,
    };
    let author = match (opt_s(item, "adminId"), opt_s(item, "authorEmail")) {
        (Some(_), _) => Author::Admin {
            admin_id: parse(item, "adminId")?,
        },
        (None, Some(email)) => Author::Customer {
            email: Email::from_trusted(email.to_owned()),
        },
        (None, None) => return Err(Malformed("a message with no author".into())),
    };
    Ok(Message {
        id: parse(item, "responseId")?,
        ticket_id: parse(item, "ticketId")?,
        kind,
        author,
        message: get_s(item, "message")?.to_owned(),
        created_at: ts(item, "createdAt")?,
        delivery: item.contains_key("deliveryState").then(|| delivery_from(item)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AdminId, Status};

    fn ticket() -> Ticket {
        Ticket {
            id: TicketId::new(),
            org_id: OrgId::new(),
            title: "t".into(),
            description: "d".into(),
            added_by: Email::from_trusted("c@x.io".into()),
            admin_id: Some(AdminId::new()),
            status: Status::Responded,
            created_at: Timestamp::from_millis(1_700_000_000_000),
            updated_at: Timestamp::from_millis(1_700_000_000_500),
            responded_at: Some(Timestamp::from_millis(1_700_000_000_500)),
            closed_at: None,
            auto_close_at: Some(Timestamp::from_millis(1_700_000_100_500)),
            version: 3,
            follow_up_of: None,
        }
    }

    #[test]
    fn ticket_round_trips_through_its_item() {
        let t = ticket();
        assert_eq!(ticket_from(&ticket_item(&t)).unwrap(), t);
        let mut unassigned = t.clone();
        unassigned.admin_id = None;
        assert_eq!(ticket_from(&ticket_item(&unassigned)).unwrap(), unassigned);
    }

    #[test]
    fn ticket_item_carries_the_key_of_every_list_it_belongs_to() {
        let t = ticket();
        let item = ticket_item(&t);
        for mask in 0..8u8 {
            let f = TicketFilter {
                admin_id: (mask & 1 != 0).then_some(t.admin_id.unwrap()),
                status: (mask & 2 != 0).then_some(t.status),
                customer: (mask & 4 != 0).then(|| t.added_by.clone()),
            };
            let (index, value) = list_index(t.org_id, &f);
            assert_eq!(item.get(index.pk_attr), Some(&s(value)), "{f:?}");
        }
        let mut unassigned = t.clone();
        unassigned.admin_id = None;
        let item = ticket_item(&unassigned);
        assert!(
            LIST_INDEXES
                .iter()
                .filter(|i| i.pk_attr.contains("admin"))
                .all(|i| !item.contains_key(i.pk_attr))
        );
    }

    #[test]
    fn each_filter_combination_has_its_own_index() {
        let org = OrgId::new();
        let mut names = std::collections::HashSet::new();
        for mask in 0..8u8 {
            let f = TicketFilter {
                admin_id: (mask & 1 != 0).then(AdminId::new),
                status: (mask & 2 != 0).then_some(Status::Open),
                customer: (mask & 4 != 0).then(|| Email::from_trusted("c@x.io".into())),
            };
            names.insert(list_index(org, &f).0.name);
        }
        assert_eq!(names.len(), 8);
    }

    #[test]
    fn sort_keys_order_by_time_then_id() {
        let a = sort_key(Timestamp::from_millis(999), TicketId::new());
        let b = sort_key(Timestamp::from_millis(1_000), TicketId::new());
        assert!(a < b);
    }
}
