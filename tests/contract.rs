//! The HTTP contract of docs/ARCHITECTURE.md, over a real socket, run against every adapter set.

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
            case!(duplicate_domain_and_email_are_conflicts);
            case!(signin_rejects_wrong_password_and_unknown_email_alike);
            case!(bad_tokens_are_unauthorized_on_every_jwt_endpoint);
            case!(repeated_signin_failures_are_throttled_until_the_window_ends);
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
        }
    };
}

contract_suite!(embedded, ticketing_tests::EmbeddedSet);
contract_suite!(aws, ticketing_tests::AwsSet);
