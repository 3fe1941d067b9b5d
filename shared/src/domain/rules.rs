//! The rules of the ticket lifecycle, as plain functions over plain values.

use super::ids::{AdminId, TicketId};
use super::model::{AdminLoad, CloseJob, Status, Ticket};
use super::time::Timestamp;
use crate::error::Error;
use std::time::Duration;

/// What a change does to the ticket's pending auto-close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoClose {
    Unchanged,
    Schedule(CloseJob),
    Cancel(TicketId),
}

/// What a customer's reply does to its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyEffect {
    /// The ticket is OPEN already: the reply joins the conversation.
    Joins,
    /// RESPONDED, or CLOSED within the reopen window: back to OPEN (which
    /// cancels a pending auto-close).
    Reopens,
    /// CLOSED longer than the reopen window: the reply opens a new ticket
    /// that follows up on this one.
    FollowsUp,
}

/// What a reply at `now` does to `ticket`, given how long after closing a
/// reply still reopens it. The window ends at `closedAt + reopen_window`,
/// inclusive.
pub fn reply_effect(ticket: &Ticket, now: Timestamp, reopen_window: Duration) -> ReplyEffect {
    match ticket.status {
        Status::Open => ReplyEffect::Joins,
        Status::Responded => ReplyEffect::Reopens,
        Status::Closed => match ticket.closed_at {
            Some(closed) if now <= closed.plus(reopen_window) => ReplyEffect::Reopens,
            _ => ReplyEffect::FollowsUp,
        },
    }
}

/// Moves `ticket` to `to`, keeping the timestamps honest:
/// entering CLOSED sets `closedAt`, leaving it clears it; entering RESPONDED
/// (or responding again) stamps `respondedAt` and (re)schedules the auto-close,
/// leaving RESPONDED cancels it.
pub fn set_status(ticket: &mut Ticket, to: Status, now: Timestamp, auto_close_after: Duration) -> AutoClose {
    let from = ticket.status;
    if from == to {
        return AutoClose::Unchanged;
    }
    enter(ticket, to, now, auto_close_after)
}

/// A status change an admin asks for (`change_status`, or `status` in an
/// update). Setting RESPONDED by hand means "the customer was answered outside
/// this API; wait for them": from OPEN it starts the auto-close as a response
/// does (no email: there is no message to send); from CLOSED it is a conflict,
/// as responding to a CLOSED ticket is: reopen it first. Other moves are free.
pub fn change_status(
    ticket: &mut Ticket,
    to: Status,
    now: Timestamp,
    auto_close_after: Duration,
) -> Result<AutoClose, Error> {
    if to == Status::Responded && ticket.status == Status::Closed {
        return Err(Error::Conflict(
            "the ticket is CLOSED; reopen it (status OPEN) before marking it RESPONDED".into(),
        ));
    }
    Ok(set_status(ticket, to, now, auto_close_after))
}

/// A response always restamps `respondedAt`: the customer gets the full delay
/// to answer the newest message.
pub fn record_response(ticket: &mut Ticket, now: Timestamp, auto_close_after: Duration) -> AutoClose {
    enter(ticket, Status::Responded, now, auto_close_after)
}

fn enter(ticket: &mut Ticket, to: Status, now: Timestamp, auto_close_after: Duration) -> AutoClose {
    let from = ticket.status;
    ticket.status = to;
    ticket.updated_at = now;
    if to == Status::Closed && from != Status::Closed {
        ticket.closed_at = Some(now);
    }
    if to != Status::Closed {
        ticket.closed_at = None;
    }
    if to == Status::Responded {
        let due_at = now.plus(auto_close_after);
        ticket.responded_at = Some(now);
        ticket.auto_close_at = Some(due_at);
        return AutoClose::Schedule(CloseJob {
            ticket_id: ticket.id,
            responded_at: now,
            due_at,
        });
    }
    ticket.auto_close_at = None;
    if from == Status::Responded {
        AutoClose::Cancel(ticket.id)
    } else {
        AutoClose::Unchanged
    }
}

/// Whether a close job may still close `ticket`: only the RESPONDED ticket of
/// the response it was scheduled for. Anything else means the ticket moved on.
pub fn close_job_applies(ticket: &Ticket, job: &CloseJob) -> bool {
    ticket.status == Status::Responded && ticket.responded_at == Some(job.responded_at)
}

/// The close job a ticket should have pending: one for its latest response
/// while it is RESPONDED, none otherwise. The reconciler makes the scheduler
/// match this, so the schedule follows the data, not the request that wrote it.
pub fn desired_close_job(ticket: &Ticket) -> Option<CloseJob> {
    match (ticket.status, ticket.responded_at, ticket.auto_close_at) {
        (Status::Responded, Some(responded_at), Some(due_at)) => Some(CloseJob {
            ticket_id: ticket.id,
            responded_at,
            due_at,
        }),
        _ => None,
    }
}

/// The admin a new ticket goes to: among available admins, the fewest
/// non-closed tickets; ties go to the one assigned least recently (never
/// assigned counts as longest ago), then to the lower id for determinism.
pub fn choose_assignee(admins: &[AdminLoad]) -> Option<AdminId> {
    least_loaded(admins).first().copied()
}

/// The available admins tied for the fewest non-closed tickets, in the order
/// [`choose_assignee`] prefers them. A store that lost a race for the first
/// may spread concurrent creates over the others: all are equally right.
pub fn least_loaded(admins: &[AdminLoad]) -> Vec<AdminId> {
    let available = admins.iter().filter(|a| a.available);
    let Some(min) = available.clone().map(|a| a.open_tickets).min() else {
        return vec![];
    };
    let mut tied: Vec<&AdminLoad> = available.filter(|a| a.open_tickets == min).collect();
    tied.sort_by_key(|a| (a.last_assigned_at, a.admin_id));
    tied.into_iter().map(|a| a.admin_id).collect()
}

/// Sign-in throttling: once an email has `max_failures` failed sign-ins within
/// `window`, every sign-in for it is refused until the window ends. Returns
/// how long is left, or `None` when a sign-in may proceed.
pub fn signin_lockout(
    failures: Option<super::model::SigninWindow>,
    now: Timestamp,
    window: Duration,
    max_failures: u32,
) -> Option<Duration> {
    let w = failures?;
    let ends = w.started_at.plus(window);
    (w.failures >= max_failures && now < ends).then(|| now.until(ends))
}

/// How a write changes each admin's count of non-closed tickets. Both stores
/// apply these in the same transaction as the ticket write.
pub fn load_changes(before: Option<&Ticket>, after: &Ticket) -> Vec<(AdminId, i64)> {
    let counted = |t: &Ticket| t.admin_id.filter(|_| t.status != Status::Closed);
    let old = before.and_then(counted);
    let new = counted(after);
    match (old, new) {
        (a, b) if a == b => vec![],
        (Some(a), Some(b)) => vec![(a, -1), (b, 1)],
        (Some(a), None) => vec![(a, -1)],
        (None, Some(b)) => vec![(b, 1)],
        (None, None) => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Email, OrgId};

    const DELAY: Duration = Duration::from_secs(30 * 86_400);

    fn ticket(status: Status) -> Ticket {
        let t0 = Timestamp::from_millis(1_000);
        Ticket {
            id: TicketId::new(),
            org_id: OrgId::new(),
            title: "t".into(),
            description: "d".into(),
            added_by: Email::from_trusted("c@x.io".into()),
            admin_id: Some(AdminId::new()),
            status,
            created_at: t0,
            updated_at: t0,
            responded_at: None,
            closed_at: None,
            auto_close_at: None,
            version: 1,
            follow_up_of: None,
        }
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn entering_responded_stamps_and_schedules_auto_close() {
        let mut t = ticket(Status::Open);
        let effect = set_status(&mut t, Status::Responded, at(5_000), DELAY);
        assert_eq!(t.responded_at, Some(at(5_000)));
        assert_eq!(t.auto_close_at, Some(at(5_000).plus(DELAY)));
        assert_eq!(t.updated_at, at(5_000));
        assert_eq!(
            effect,
            AutoClose::Schedule(CloseJob {
                ticket_id: t.id,
                responded_at: at(5_000),
                due_at: at(5_000).plus(DELAY)
            })
        );
    }

    #[test]
    fn leaving_responded_cancels_auto_close_but_keeps_responded_at() {
        let mut t = ticket(Status::Open);
        set_status(&mut t, Status::Responded, at(5_000), DELAY);
        assert_eq!(
            set_status(&mut t, Status::Open, at(6_000), DELAY),
            AutoClose::Cancel(t.id)
        );
        assert_eq!(t.auto_close_at, None);
        assert_eq!(t.responded_at, Some(at(5_000)));
    }

    #[test]
    fn entering_closed_sets_closed_at_and_leaving_clears_it() {
        let mut t = ticket(Status::Open);
        assert_eq!(
            set_status(&mut t, Status::Closed, at(7_000), DELAY),
            AutoClose::Unchanged
        );
        assert_eq!(t.closed_at, Some(at(7_000)));
        set_status(&mut t, Status::Open, at(8_000), DELAY);
        assert_eq!(t.closed_at, None);
    }

    #[test]
    fn closing_a_responded_ticket_cancels_its_auto_close() {
        let mut t = ticket(Status::Open);
        set_status(&mut t, Status::Responded, at(5_000), DELAY);
        assert_eq!(
            set_status(&mut t, Status::Closed, at(9_000), DELAY),
            AutoClose::Cancel(t.id)
        );
        assert_eq!((t.closed_at, t.auto_close_at), (Some(at(9_000)), None));
    }

    #[test]
    fn marking_an_open_ticket_responded_by_hand_starts_the_auto_close() {
        let mut t = ticket(Status::Open);
        let effect = change_status(&mut t, Status::Responded, at(3_000), DELAY).unwrap();
        assert!(matches!(effect, AutoClose::Schedule(job) if job.due_at == at(3_000).plus(DELAY)));
        assert_eq!((t.status, t.responded_at), (Status::Responded, Some(at(3_000))));
    }

    #[test]
    fn marking_a_closed_ticket_responded_is_a_conflict_and_changes_nothing() {
        let mut t = ticket(Status::Closed);
        t.closed_at = Some(at(2_000));
        let before = t.clone();
        assert!(matches!(
            change_status(&mut t, Status::Responded, at(3_000), DELAY),
            Err(Error::Conflict(_))
        ));
        assert_eq!(t, before);
        // Reopening first is the way.
        assert_eq!(
            change_status(&mut t, Status::Open, at(4_000), DELAY).unwrap(),
            AutoClose::Unchanged
        );
        assert!(change_status(&mut t, Status::Responded, at(5_000), DELAY).is_ok());
        assert_eq!(t.closed_at, None);
    }

    #[test]
    fn other_changes_by_hand_follow_set_status() {
        for (from, to) in [
            (Status::Open, Status::Closed),
            (Status::Closed, Status::Open),
            (Status::Responded, Status::Open),
            (Status::Responded, Status::Closed),
            (Status::Responded, Status::Responded),
            (Status::Closed, Status::Closed),
        ] {
            let mut by_hand = ticket(from);
            let mut direct = by_hand.clone();
            let effect = change_status(&mut by_hand, to, at(3_000), DELAY).unwrap();
            assert_eq!(effect, set_status(&mut direct, to, at(3_000), DELAY), "{from} -> {to}");
            assert_eq!(by_hand, direct);
        }
    }

    #[test]
    fn setting_the_same_status_changes_nothing() {
        let mut t = ticket(Status::Open);
        set_status(&mut t, Status::Responded, at(5_000), DELAY);
        let before = t.clone();
        assert_eq!(
            set_status(&mut t, Status::Responded, at(6_000), DELAY),
            AutoClose::Unchanged
        );
        assert_eq!(t, before);
    }

    #[test]
    fn responding_again_restamps_and_reschedules() {
        let mut t = ticket(Status::Open);
        record_response(&mut t, at(5_000), DELAY);
        let effect = record_response(&mut t, at(6_000), DELAY);
        assert_eq!(t.responded_at, Some(at(6_000)));
        assert!(matches!(effect, AutoClose::Schedule(job) if job.responded_at == at(6_000)));
    }

    #[test]
    fn a_reply_joins_an_open_ticket_and_reopens_a_responded_one() {
        let window = Duration::from_secs(7 * 86_400);
        assert_eq!(reply_effect(&ticket(Status::Open), at(5), window), ReplyEffect::Joins);
        assert_eq!(
            reply_effect(&ticket(Status::Responded), at(5), window),
            ReplyEffect::Reopens
        );
    }

    #[test]
    fn a_reply_reopens_a_closed_ticket_only_within_the_window() {
        let window = Duration::from_millis(1_000);
        let mut t = ticket(Status::Closed);
        t.closed_at = Some(at(10_000));
        assert_eq!(reply_effect(&t, at(10_500), window), ReplyEffect::Reopens);
        assert_eq!(
            reply_effect(&t, at(11_000), window),
            ReplyEffect::Reopens,
            "the window's end is in it"
        );
        assert_eq!(reply_effect(&t, at(11_001), window), ReplyEffect::FollowsUp);
        t.closed_at = None;
        assert_eq!(
            reply_effect(&t, at(10_500), window),
            ReplyEffect::FollowsUp,
            "no close time: follow up"
        );
    }

    #[test]
    fn close_job_applies_only_to_the_response_it_was_scheduled_for() {
        let mut t = ticket(Status::Open);
        let AutoClose::Schedule(first) = record_response(&mut t, at(5_000), DELAY) else {
            panic!()
        };
        assert!(close_job_applies(&t, &first));
        set_status(&mut t, Status::Open, at(6_000), DELAY);
        assert!(!close_job_applies(&t, &first), "reopened ticket");
        let AutoClose::Schedule(second) = record_response(&mut t, at(7_000), DELAY) else {
            panic!()
        };
        assert!(!close_job_applies(&t, &first), "stale schedule after a new response");
        assert!(close_job_applies(&t, &second));
        set_status(&mut t, Status::Closed, at(8_000), DELAY);
        assert!(!close_job_applies(&t, &second), "already closed");
    }

    fn load(id: u128, open: i64, last: Option<i64>, available: bool) -> AdminLoad {
        AdminLoad {
            admin_id: AdminId(uuid::Uuid::from_u128(id)),
            available,
            open_tickets: open,
            last_assigned_at: last.map(at),
        }
    }

    #[test]
    fn assignment_picks_the_fewest_open_tickets() {
        let admins = [
            load(1, 3, Some(1), true),
            load(2, 1, Some(9), true),
            load(3, 2, None, true),
        ];
        assert_eq!(choose_assignee(&admins), Some(admins[1].admin_id));
    }

    #[test]
    fn assignment_counts_admins_with_no_tickets() {
        let admins = [load(1, 1, Some(1), true), load(2, 0, None, true)];
        assert_eq!(choose_assignee(&admins), Some(admins[1].admin_id));
    }

    #[test]
    fn assignment_ties_go_to_least_recently_assigned_never_assigned_first() {
        let admins = [
            load(1, 1, Some(50), true),
            load(2, 1, Some(10), true),
            load(3, 1, None, true),
        ];
        assert_eq!(choose_assignee(&admins), Some(admins[2].admin_id));
        let admins = [load(1, 1, Some(50), true), load(2, 1, Some(10), true)];
        assert_eq!(choose_assignee(&admins), Some(admins[1].admin_id));
    }

    #[test]
    fn assignment_skips_unavailable_admins_and_may_find_none() {
        let admins = [load(1, 0, None, false), load(2, 5, Some(1), true)];
        assert_eq!(choose_assignee(&admins), Some(admins[1].admin_id));
        assert_eq!(choose_assignee(&[load(1, 0, None, false)]), None);
        assert_eq!(choose_assignee(&[]), None);
    }

    #[test]
    fn least_loaded_lists_every_tied_admin_in_preference_order() {
        let admins = [
            load(1, 2, Some(5), true),
            load(2, 1, Some(9), true),
            load(3, 1, None, true),
            load(4, 1, None, false),
        ];
        assert_eq!(least_loaded(&admins), vec![admins[2].admin_id, admins[1].admin_id]);
    }

    #[test]
    fn signin_locks_after_max_failures_until_the_window_ends() {
        use super::super::model::SigninWindow;
        let window = Duration::from_secs(60);
        let w = |failures| {
            Some(SigninWindow {
                failures,
                started_at: at(0),
            })
        };
        assert_eq!(signin_lockout(None, at(10), window, 5), None);
        assert_eq!(signin_lockout(w(4), at(10), window, 5), None);
        assert_eq!(
            signin_lockout(w(5), at(10_000), window, 5),
            Some(Duration::from_secs(50))
        );
        assert_eq!(signin_lockout(w(9), at(60_000), window, 5), None, "window over");
    }

    #[test]
    fn load_changes_follow_assignee_and_closing() {
        let open = ticket(Status::Open);
        let a = open.admin_id.unwrap();
        assert_eq!(load_changes(None, &open), vec![(a, 1)]);
        let mut closed = open.clone();
        closed.status = Status::Closed;
        assert_eq!(load_changes(Some(&open), &closed), vec![(a, -1)]);
        assert_eq!(load_changes(Some(&closed), &open), vec![(a, 1)]);
        let mut moved = open.clone();
        let b = AdminId::new();
        moved.admin_id = Some(b);
        assert_eq!(load_changes(Some(&open), &moved), vec![(a, -1), (b, 1)]);
        let mut responded = open.clone();
        responded.status = Status::Responded;
        assert_eq!(load_changes(Some(&open), &responded), vec![]);
        let mut unassigned = open.clone();
        unassigned.admin_id = None;
        assert_eq!(load_changes(Some(&open), &unassigned), vec![(a, -1)]);
        assert_eq!(load_changes(Some(&closed), &moved.clone()), vec![(b, 1)]);
    }
}
