//! The HTTP contract (docs/ARCHITECTURE.md), over a real socket, run against every adapter set.

mod cases;

/// Instantiates every contract case as a test against one adapter set.
macro_rules! contract_suite {
    ($module:ident, $set:expr) => {
        mod $module {
            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        crate::cases::$name(&$set).await;
                    }
                };
            }
            case!(seed_walkthrough_end_to_end);
            case!(tickets_spread_evenly_over_admins_and_unassigned_without_admins);
            case!(list_pages_newest_first_with_cursors);
            case!(list_filters_combine);
            case!(list_rejects_bad_limits_filters_and_cursors);
            case!(update_changes_fields_and_status_timestamps);
            case!(update_requires_a_field_and_valid_values);
            case!(respond_to_closed_ticket_is_conflict);
            case!(org_secret_accepted_in_header_or_body_and_rejected_otherwise);
            case!(a_filed_ticket_is_answered_in_the_customer_view);
            case!(duplicate_domain_and_same_org_email_are_conflicts);
            case!(signin_rejects_wrong_password_and_unknown_email_alike);
            case!(bad_tokens_are_unauthorized_on_every_jwt_endpoint);
            case!(repeated_signin_failures_are_throttled_until_the_window_ends);
            case!(signin_throttling_stops_the_guessing_client_not_the_owner);
            case!(an_email_taken_in_another_org_blocks_and_reveals_nothing);
            case!(an_email_in_many_orgs_signs_in_with_its_org_domain);
            case!(squatted_emails_give_no_oracle_and_the_owner_signs_in);
            case!(concurrent_guesses_get_no_more_checks_than_the_limit);
            case!(malformed_requests_get_json_errors_naming_the_field);
            case!(routing_errors_and_oversized_bodies_are_json);
            case!(another_orgs_admin_sees_404_everywhere);
            case!(update_cannot_move_ticket_to_another_org_or_admin);
            case!(responded_ticket_auto_closes_and_reopened_one_does_not);
            case!(only_the_latest_response_schedule_closes_the_ticket);
            case!(data_and_due_jobs_survive_a_restart);
            case!(passwords_hashes_and_secrets_are_never_returned);
            case!(concurrent_creates_are_assigned_evenly_with_exact_counts);
            case!(concurrent_updates_are_applied_or_conflict_never_lost);
            case!(concurrent_signups_with_one_domain_or_email_create_exactly_one);
            case!(single_line_fields_refuse_line_breaks_and_control_characters);
            case!(client_request_ids_are_kept_only_when_short_and_plain);
            case!(unknown_query_parameters_are_rejected_on_every_route);
            case!(ids_are_accepted_only_in_the_canonical_uuid_form);
            case!(duplicate_json_keys_are_reported_by_name);
            case!(responded_by_hand_starts_the_wait_from_open_and_conflicts_from_closed);
            case!(odd_emails_domains_and_blank_passwords_are_refused);
            case!(tokens_not_yet_valid_or_issued_in_the_future_are_unauthorized);
            case!(each_response_email_is_sent_once_and_its_delivery_kept);
            case!(a_customer_reply_reopens_the_ticket_and_emails_its_assignee);
            case!(replies_are_checked_for_sender_org_and_input);
            case!(replies_reopen_within_the_window_and_follow_up_after);
            case!(notes_are_internal_and_the_customer_view_hides_admins);
            case!(a_customers_tickets_are_listed_with_the_org_secret);
            case!(reopening_replies_are_limited_per_hour);
            case!(api_keys_work_within_their_scopes_and_stop_when_revoked);
            case!(api_key_requests_are_validated);
            case!(a_rotated_org_secret_replaces_the_old_one_at_once);
            case!(admins_made_with_an_api_key_are_limited_until_granted);
            case!(a_retried_post_is_applied_once_and_answered_again);
            case!(concurrent_twins_with_one_key_apply_once);
            case!(answers_with_credentials_are_not_kept_for_replays);
            case!(requests_without_a_credential_share_no_idempotency_record);
            case!(signin_ignores_idempotency_keys);
            case!(an_escaped_body_secret_keys_under_its_own_org);
            // Issue 9: history and people (H).
            case!(history_replays_to_the_tickets_current_status_and_assignee);
            case!(history_is_tenant_scoped_and_its_cursors_bound_to_the_ticket);
            case!(an_admin_becoming_available_takes_the_waiting_tickets);
            case!(availability_is_set_within_the_org_only);
            case!(admin_list_pages_the_orgs_admins_with_their_load);
            case!(inbound_email_fixtures_reach_their_ticket_once);
            case!(without_inbound_email_mail_says_how_to_follow_up);
            // Issue 10: webhooks.
            case!(webhooks_deliver_each_subscribed_event_signed);
            case!(webhook_failures_are_retried_and_gone_endpoints_disabled);
            case!(webhook_requests_are_validated_and_private_targets_refused);
            case!(webhooks_are_tenant_scoped);
            case!(webhooks_keep_flowing_after_a_refused_write);
            // Abuse resistance: limits, held replies, inbound sender checks.
            case!(replies_while_open_never_use_up_the_reopen_limit);
            case!(follow_ups_are_one_per_closed_ticket_and_limited_per_org);
            case!(response_mail_is_limited_per_org_and_per_recipient);
            case!(assignee_notices_of_replies_are_coalesced);
            case!(redeliveries_and_availability_changes_are_limited);
            case!(a_strangers_message_id_cannot_preempt_the_customers_reply);
            case!(unauthenticated_senders_are_refused_and_recorded_once);
            case!(emailed_replies_past_a_limit_are_held_on_the_ticket);
            case!(a_slow_endpoint_never_delays_another_orgs_delivery);
        }
    };
}

contract_suite!(embedded, ticketing_tests::EmbeddedSet);
contract_suite!(aws, ticketing_tests::AwsSet);

/// Every case in `cases/` (`pub async fn name(set: &dyn AdapterSet)`) is instantiated above exactly once, so a
/// new case cannot be written and then silently never run.
#[test]
fn every_contract_case_is_in_the_suite() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/cases");
    let mut defined = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("cases dir") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("readable case file");
        for line in text.lines() {
            // A case is a public async fn over an adapter set; other pub fns are helpers.
            if let Some(rest) = line.trim_start().strip_prefix("pub async fn ")
                && let Some((name, args)) = rest.split_once('(')
                && args.starts_with("set: &dyn AdapterSet")
            {
                defined.insert(name.trim().to_owned());
            }
        }
    }
    let suite_text = include_str!("contract.rs");
    let listed: Vec<String> = suite_text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("case!(")?.strip_suffix(");"))
        .map(str::to_owned)
        .collect();
    let listed_set: std::collections::BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(listed.len(), listed_set.len(), "a case is listed twice");
    assert_eq!(defined, listed_set, "cases/ and the case! list differ");
}
