//! Ticket lists on the DynamoDB store (one Query per page, with what it
//! read), plus the bulk import and counter read that benchmarks and tests use.

use super::dynamo::{DynamoStore, malformed};
use super::errors::Classify;
use super::items::{self, s};
use crate::domain::{AdminId, OrgId, PageRequest, Ticket, TicketFilter, TicketPage, Timestamp};
use crate::ports::StoreResult;

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
                .key_condition_expression(format!("#p = :p AND {} < :after", items::GSK))
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

    /// RESPONDED tickets due at or before `now`, earliest first: one Query on
    /// the sparse `by_due` index. The index is eventually consistent; the
    /// close job re-reads each ticket before acting.
    pub(super) async fn due_tickets(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Ticket>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(items::DUE_INDEX)
            .key_condition_expression("#p = :p AND #d <= :upto")
            .expression_attribute_names("#p", items::DUE_PK)
            .expression_attribute_names("#d", items::DUE_SK)
            .expression_attribute_values(":p", s(items::DUE_PARTITION))
            .expression_attribute_values(":upto", s(items::due_upper_bound(now)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .classify()?;
        out.items()
            .iter()
            .map(items::ticket_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(malformed)
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
        Ok(self
            .admin_loads(org)
            .await?
            .into_iter()
            .map(|l| (l.admin_id, l.open_tickets))
            .collect())
    }
}
