//! The [`Scheduler`] port on EventBridge Scheduler: one one-off schedule per
//! RESPONDED ticket, named after the ticket, invoking the close function.

use super::errors::is_code;
use super::sdk::LazyClient;
use crate::domain::{CloseJob, TicketId, Timestamp};
use crate::ports::Scheduler;
use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_scheduler::Client;
use aws_sdk_scheduler::error::DisplayErrorContext;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, Target,
};
use serde::{Deserialize, Serialize};

/// What a schedule hands the close function: which ticket, for which response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseEvent {
    pub ticket_id: TicketId,
    pub responded_at: Timestamp,
}

pub struct EventBridgeScheduler {
    /// Built on first use: only the functions that schedule or cancel call it.
    client: LazyClient<Client>,
    group: String,
    target_arn: String,
    role_arn: String,
    dead_letter_arn: String,
}

/// `at(...)` in UTC, rounded up to the second so a ticket never closes early.
pub fn at_expression(due: Timestamp) -> String {
    let secs = due.millis().div_euclid(1000) + i64::from(due.millis().rem_euclid(1000) != 0);
    let t = Timestamp::from_millis(secs * 1000).to_datetime();
    format!("at({})", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// The schedule name for a ticket (ticket ids fit Scheduler's name rules).
pub fn schedule_name(ticket: TicketId) -> String {
    ticket.to_string()
}

impl EventBridgeScheduler {
    pub fn new(
        client: impl Into<LazyClient<Client>>,
        group: String,
        target_arn: String,
        role_arn: String,
        dead_letter_arn: String,
    ) -> Self {
        Self {
            client: client.into(),
            group,
            target_arn,
            role_arn,
            dead_letter_arn,
        }
    }

    fn target(&self, job: &CloseJob) -> anyhow::Result<Target> {
        let input = serde_json::to_string(&CloseEvent {
            ticket_id: job.ticket_id,
            responded_at: job.responded_at,
        })?;
        Target::builder()
            .arn(&self.target_arn)
            .role_arn(&self.role_arn)
            .input(input)
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(20)
                    .maximum_event_age_in_seconds(86_400)
                    .build(),
            )
            .dead_letter_config(DeadLetterConfig::builder().arn(&self.dead_letter_arn).build())
            .build()
            .context("building the schedule target")
    }
}

#[async_trait]
impl Scheduler for EventBridgeScheduler {
    async fn schedule_close(&self, job: &CloseJob) -> anyhow::Result<()> {
        let name = schedule_name(job.ticket_id);
        let expression = at_expression(job.due_at);
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()?;
        let created = self
            .client
            .create_schedule()
            .name(&name)
            .group_name(&self.group)
            .schedule_expression(&expression)
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window.clone())
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(self.target(job)?)
            .description("auto-close of a RESPONDED ticket")
            .send()
            .await;
        match created {
            Ok(_) => {}
            // The ticket already has a schedule: this one replaces it (upsert).
            Err(e) if is_code(&e, "ConflictException") => {
                self.client
                    .update_schedule()
                    .name(&name)
                    .group_name(&self.group)
                    .schedule_expression(&expression)
                    .schedule_expression_timezone("UTC")
                    .flexible_time_window(window)
                    .action_after_completion(ActionAfterCompletion::Delete)
                    .target(self.target(job)?)
                    .description("auto-close of a RESPONDED ticket")
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("UpdateSchedule {name}: {}", DisplayErrorContext(&e)))?;
            }
            Err(e) => anyhow::bail!("CreateSchedule {name}: {}", DisplayErrorContext(&e)),
        }
        tracing::info!(ticket = %job.ticket_id, at = %expression, "auto-close scheduled");
        Ok(())
    }

    async fn cancel_close(&self, ticket: TicketId) -> anyhow::Result<()> {
        match self
            .client
            .delete_schedule()
            .name(schedule_name(ticket))
            .group_name(&self.group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Already gone: it ran, or was never made.
            Err(e) if is_code(&e, "ResourceNotFoundException") => Ok(()),
            Err(e) => anyhow::bail!("DeleteSchedule {ticket}: {}", DisplayErrorContext(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_expression_is_utc_seconds_rounded_up() {
        let t = Timestamp::parse_rfc3339("2026-12-28T03:34:05.000Z").unwrap();
        assert_eq!(at_expression(t), "at(2026-12-28T03:34:05)");
        let t = Timestamp::parse_rfc3339("2026-12-28T03:34:05.001Z").unwrap();
        assert_eq!(at_expression(t), "at(2026-12-28T03:34:06)");
        let t = Timestamp::parse_rfc3339("2026-12-31T23:59:59.500Z").unwrap();
        assert_eq!(at_expression(t), "at(2027-01-01T00:00:00)");
    }

    #[test]
    fn close_event_is_the_documented_json() {
        let e = CloseEvent {
            ticket_id: "01a22037-9bd3-7607-a023-5acc620da46d".parse().unwrap(),
            responded_at: Timestamp::parse_rfc3339("2026-11-28T03:34:05.139Z").unwrap(),
        };
        assert_eq!(
            serde_json::to_value(e).unwrap(),
            serde_json::json!({"ticketId": "01a22037-9bd3-7607-a023-5acc620da46d", "respondedAt": "2026-11-28T03:34:05.139Z"})
        );
    }
}
