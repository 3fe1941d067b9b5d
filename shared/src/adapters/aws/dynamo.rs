//! The [`Store`] port on one DynamoDB table. Every call is a `GetItem`, a
//! `Query` or a (transactional) write; nothing scans.

use super::errors::Classify;
use super::items::{self, Item, n, s};
use crate::auth::SecretHash;
use crate::domain::rules;
use crate::domain::{
    Admin, AdminId, Delivery, Email, Org, OrgId, PageRequest, Response, ResponseId, SigninWindow, Ticket, TicketFilter,
    TicketId, TicketPage, Timestamp,
};
use crate::error::StoreError;
use crate::ports::{Store, StoreResult};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use std::collections::HashMap;
use std::time::Duration;

pub struct DynamoStore {
    client: Client,
    table: String,
    /// Creates for one org take turns within this process, so a burst does not
    /// become a herd of conflicting transactions; across processes (Lambda
    /// instances) the conditional counter update keeps assignment right.
    assign_turns: Vec<tokio::sync::Mutex<()>>,
}

const ASSIGN_STRIPES: usize = 64;

/// How long a ticket create keeps retrying when other creates keep taking the
/// chosen admin's counter first (a burst on one org); then it is a 503.
const ASSIGN_BUDGET: Duration = Duration::from_secs(20);

fn malformed(e: items::Malformed) -> StoreError {
    StoreError::Internal(e.into())
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            assign_turns: (0..ASSIGN_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    fn put(&self, item: Item, condition: &str) -> Put {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .expect("table, item and condition are set")
    }

    async fn transact(&self, writes: Vec<TransactWriteItem>) -> StoreResult<()> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
            .classify()?;
        Ok(())
    }

    /// Puts every item only if its key is new, all or none.
    async fn put_all_new(&self, items: Vec<Item>) -> StoreResult<()> {
        let writes = items
            .into_iter()
            .map(|item| {
                TransactWriteItem::builder()
                    .put(self.put(item, "attribute_not_exists(pk)"))
                    .build()
            })
            .collect();
        self.transact(writes).await?;
        Ok(())
    }

    async fn get(&self, key: Item) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .classify()?;
        Ok(out.item)
    }

    /// The version-checked ticket write, with the assignee counters it moves,
    /// plus any `extra` writes, all in one transaction (or one conditional put
    /// when nothing else changes).
    async fn write_ticket(&self, before: &Ticket, after: &Ticket, extra: Vec<TransactWriteItem>) -> StoreResult<()> {
        let (condition, values) = ticket_guard(before);
        let names = HashMap::from([
            ("#v".to_owned(), "version".to_owned()),
            ("#st".to_owned(), "status".to_owned()),
        ]);
        let changes = rules::load_changes(Some(before), after);
        if changes.is_empty() && extra.is_empty() {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(items::ticket_item(after)))
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .send()
                .await
                .classify()?;
            return Ok(());
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(items::ticket_item(after)))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .expect("complete put");
        let mut writes = vec![TransactWriteItem::builder().put(put).build()];
        writes.extend(
            changes
                .into_iter()
                .map(|(admin, delta)| self.counter_update(after.org_id, admin, delta, None)),
        );
        writes.extend(extra);
        self.transact(writes).await?;
        Ok(())
    }

    /// Adds `delta` to an admin's open-ticket count; with `assigned` (time,
    /// observed count), also stamps the assignment and requires the count to still be `observed`.
    fn counter_update(
        &self,
        org: OrgId,
        admin: AdminId,
        delta: i64,
        assigned: Option<(crate::domain::Timestamp, i64)>,
    ) -> TransactWriteItem {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(items::admin_key(org, admin)))
            .expression_attribute_values(":d", n(delta));
        let update = match assigned {
            Some((at, observed)) => update
                .update_expression("SET openTickets = openTickets + :d, lastAssignedAt = :at")
                .condition_expression("openTickets = :observed")
                .expression_attribute_values(":at", n(at.millis()))
                .expression_attribute_values(":observed", n(observed)),
            None => update
                .update_expression("SET openTickets = openTickets + :d")
                .condition_expression("attribute_exists(pk)"),
        };
        TransactWriteItem::builder()
            .update(update.build().expect("complete update"))
            .build()
    }
}

/// The condition every ticket write carries: the ticket is exactly the
/// version the change was computed from. Status and `respondedAt` are spelled
/// out so the auto-close guard ("still RESPONDED for the same response") is
/// visible in the condition itself.
fn ticket_guard(before: &Ticket) -> (String, HashMap<String, AttributeValue>) {
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
    (format!("#v = :v AND #st = :st AND {responded}"), values)
}

#[async_trait]
impl Store for DynamoStore {
    async fn create_org(&self, org: &Org, secret: &SecretHash) -> StoreResult<()> {
        let fields = items::org_fields(org);
        let with = |mut key: Item| {
            key.extend(fields.clone());
            key
        };
        let mut domain_marker = items::domain_key(&org.domain);
        domain_marker.insert("orgId".into(), s(org.id.to_string()));
        self.put_all_new(vec![
            with(items::org_key(org.id)),
            domain_marker,
            with(items::secret_key(&secret.0)),
        ])
        .await
    }

    async fn org_by_secret(&self, secret: &SecretHash) -> StoreResult<Option<Org>> {
        self.get(items::secret_key(&secret.0))
            .await?
            .map(|i| items::org_from(&i).map_err(malformed))
            .transpose()
    }

    async fn create_admin(&self, admin: &Admin, password_hash: &str) -> StoreResult<()> {
        let fields = items::admin_fields(admin);
        let mut credentials = items::email_key(&admin.email);
        credentials.extend(fields.clone());
        credentials.insert("passwordHash".into(), s(password_hash));
        let mut record = items::admin_key(admin.org_id, admin.id);
        record.extend(fields);
        record.insert("openTickets".into(), n(0));
        self.put_all_new(vec![credentials, record]).await
    }

    async fn admin_credentials(&self, email: &Email) -> StoreResult<Option<(Admin, String)>> {
        let Some(item) = self.get(items::email_key(email)).await? else {
            return Ok(None);
        };
        let admin = items::admin_from(&item).map_err(malformed)?;
        let hash = items::get_s(&item, "passwordHash").map_err(malformed)?.to_owned();
        Ok(Some((admin, hash)))
    }

    async fn admin(&self, org: OrgId, id: AdminId) -> StoreResult<Option<Admin>> {
        self.get(items::admin_key(org, id))
            .await?
            .map(|i| items::admin_from(&i).map_err(malformed))
            .transpose()
    }

    async fn admin_by_email(&self, email: &Email) -> StoreResult<Option<Admin>> {
        self.get(items::email_key(email))
            .await?
            .map(|i| items::admin_from(&i).map_err(malformed))
            .transpose()
    }

    async fn create_ticket(&self, ticket: &Ticket) -> StoreResult<Ticket> {
        let mut ticket = ticket.clone();
        let stripe = (ticket.org_id.0.as_u128() % ASSIGN_STRIPES as u128) as usize;
        let _turn = self.assign_turns[stripe].lock().await;
        let deadline = tokio::time::Instant::now() + ASSIGN_BUDGET;
        for attempt in 0usize.. {
            if tokio::time::Instant::now() > deadline {
                break;
            }
            let admins = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :admin)")
                .expression_attribute_values(":pk", s(items::org_partition(ticket.org_id)))
                .expression_attribute_values(":admin", s("ADMIN#"))
                .consistent_read(true)
                .send()
                .await
                .classify()?;
            let loads = admins
                .items()
                .iter()
                .map(items::load_from)
                .collect::<Result<Vec<_>, _>>()
                .map_err(malformed)?;
            // First try the rule's choice; after losing a race, spread over the
            // equally right choices so concurrent creates stop colliding.
            let candidates = rules::least_loaded(&loads);
            ticket.admin_id = match attempt {
                0 => candidates.first().copied(),
                _ if candidates.is_empty() => None,
                _ => Some(candidates[rand::random_range(0..candidates.len())]),
            };
            let Some(admin) = ticket.admin_id else {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(items::ticket_item(&ticket)))
                    .condition_expression("attribute_not_exists(pk)")
                    .send()
                    .await
                    .classify()?;
                return Ok(ticket);
            };
            let put = self.put(items::ticket_item(&ticket), "attribute_not_exists(pk)");
            let observed = loads.iter().find(|l| l.admin_id == admin).map_or(0, |l| l.open_tickets);
            let writes = vec![
                TransactWriteItem::builder().put(put).build(),
                self.counter_update(ticket.org_id, admin, 1, Some((ticket.created_at, observed))),
            ];
            match self.transact(writes).await {
                Ok(_) => return Ok(ticket),
                // Another create moved this admin's count first: look again.
                Err(StoreError::Conflict(_)) => {
                    // Full jitter, capped: losers spread out instead of colliding again.
                    let cap = 2u64.saturating_pow(attempt.min(7) as u32).max(2);
                    tokio::time::sleep(Duration::from_millis(rand::random_range(0..cap))).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable(anyhow::anyhow!(
            "assignment kept conflicting; too many concurrent creates"
        )))
    }

    async fn ticket(&self, id: TicketId) -> StoreResult<Option<Ticket>> {
        self.get(items::ticket_key(id))
            .await?
            .map(|i| items::ticket_from(&i).map_err(malformed))
            .transpose()
    }

    async fn update_ticket(&self, before: &Ticket, after: &Ticket) -> StoreResult<()> {
        self.write_ticket(before, after, vec![]).await
    }

    async fn add_response(&self, before: &Ticket, after: &Ticket, response: &Response) -> StoreResult<()> {
        let put = self.put(items::response_item(response), "attribute_not_exists(pk)");
        self.write_ticket(before, after, vec![TransactWriteItem::builder().put(put).build()])
            .await
    }

    async fn set_delivery(&self, ticket: TicketId, response: ResponseId, delivery: &Delivery) -> StoreResult<()> {
        let fields = items::delivery_fields(delivery);
        let set: Vec<String> = fields.iter().map(|(k, _)| format!("{k} = :{k}")).collect();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::response_key(ticket, response)))
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression("attribute_exists(pk)");
        for (k, v) in fields {
            update = update.expression_attribute_values(format!(":{k}"), v);
        }
        update.send().await.classify()?;
        Ok(())
    }

    /// One Query on the ticket's partition returns the ticket and its responses.
    async fn ticket_with_responses(&self, id: TicketId) -> StoreResult<Option<(Ticket, Vec<Response>)>> {
        let mut ticket = None;
        let mut responses = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(items::ticket_partition(id)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .classify()?;
            for item in out.items() {
                match items::get_s(item, items::SK).map_err(malformed)? {
                    "TICKET" => ticket = Some(items::ticket_from(item).map_err(malformed)?),
                    _ => responses.push(items::response_from(item).map_err(malformed)?),
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(ticket.map(|t| (t, responses)))
    }

    async fn signin_failures(
        &self,
        email: &Email,
        now: Timestamp,
        window: Duration,
    ) -> StoreResult<Option<SigninWindow>> {
        let Some(item) = self.get(items::signin_key(email)).await? else {
            return Ok(None);
        };
        let w = SigninWindow {
            failures: u32::try_from(items::get_n(&item, "failures").map_err(malformed)?).unwrap_or(u32::MAX),
            started_at: Timestamp::from_millis(items::get_n(&item, "windowStart").map_err(malformed)?),
        };
        Ok((w.started_at.plus(window) > now).then_some(w))
    }

    async fn record_signin_failure(&self, email: &Email, now: Timestamp, window: Duration) -> StoreResult<()> {
        let cutoff = now.millis() - i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 2);
        // Count into the open window...
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::signin_key(email)))
            .update_expression("SET failures = failures + :one")
            .condition_expression("windowStart > :cutoff")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cutoff", n(cutoff))
            .send()
            .await
            .classify();
        match counted {
            Ok(_) => Ok(()),
            // ...or open a new one (none yet, or the last one ended). TTL removes it later.
            Err(StoreError::Conflict(_)) => {
                let mut item = items::signin_key(email);
                item.insert("failures".into(), n(1));
                item.insert("windowStart".into(), n(now.millis()));
                item.insert("expiresAt".into(), n(now.plus(window).millis() / 1000 + 60));
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .send()
                    .await
                    .classify()?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn clear_signin_failures(&self, email: &Email) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(items::signin_key(email)))
            .send()
            .await
            .classify()?;
        Ok(())
    }

    async fn list_tickets(&self, org: OrgId, filter: &TicketFilter, page: PageRequest) -> StoreResult<TicketPage> {
        Ok(self.list_tickets_measured(org, filter, page).await?.0)
    }
}

/// What one Query read (`ScannedCount`) and returned (`Count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryStats {
    pub scanned: i32,
    pub count: i32,
}

impl DynamoStore {
    /// [`Store::list_tickets`], with what its one Query read and returned.
    pub async fn list_tickets_measured(
        &self,
        org: OrgId,
        filter: &TicketFilter,
        page: PageRequest,
    ) -> StoreResult<(TicketPage, QueryStats)> {
        let (index, partition) = items::list_index(org, filter);
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index.name)
            .scan_index_forward(false)
            .limit(i32::try_from(page.limit + 1).unwrap_or(i32::MAX))
            .expression_attribute_names("#p", index.pk_attr)
            .expression_attribute_values(":p", s(partition));
        query = match page.after {
            Some(after) => query
                .key_condition_expression("#p = :p AND gsk < :after")
                .expression_attribute_values(":after", s(items::sort_key(after.created_at, after.id))),
            None => query.key_condition_expression("#p = :p"),
        };
        let out = query.send().await.classify()?;
        let stats = QueryStats {
            scanned: out.scanned_count(),
            count: out.count(),
        };
        let tickets = out
            .items()
            .iter()
            .map(items::ticket_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(malformed)?;
        Ok((TicketPage::from_overfetched(tickets, page.limit), stats))
    }

    /// Writes tickets as they are, 25 per `BatchWriteItem`: for imports and
    /// benchmarks. Assignment and admin counters are left untouched.
    pub async fn bulk_import_tickets(&self, tickets: &[Ticket]) -> StoreResult<()> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        for chunk in tickets.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|t| {
                    let put = PutRequest::builder()
                        .set_item(Some(items::ticket_item(t)))
                        .build()
                        .expect("item set");
                    WriteRequest::builder().put_request(put).build()
                })
                .collect();
            while !requests.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .classify()?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }

    /// Each admin's stored open-ticket count (for tests and operators).
    pub async fn open_ticket_counts(&self, org: OrgId) -> StoreResult<Vec<(AdminId, i64)>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :admin)")
            .expression_attribute_values(":pk", s(items::org_partition(org)))
            .expression_attribute_values(":admin", s("ADMIN#"))
            .consistent_read(true)
            .send()
            .await
            .classify()?;
        out.items()
            .iter()
            .map(|i| {
                items::load_from(i)
                    .map(|l| (l.admin_id, l.open_tickets))
                    .map_err(malformed)
            })
            .collect()
    }
}
