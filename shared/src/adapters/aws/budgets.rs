//! Each Lambda function's worst-case time: the AWS calls it makes one after
//! another, each bounded by the SDK limits `sdk` configures, plus its retry
//! loops and CPU work. `functions/tests/ops.rs` reads template.yaml and fails
//! when a function has no entry here or its budget plus [`MARGIN`] exceeds
//! its `Timeout`: a function killed after its commit leaves the client to
//! retry, which duplicates what it wrote.

use std::time::Duration;

/// How the SDK bounds one AWS call; `sdk::sdk_config_at` builds its timeout
/// and retry configuration from exactly these values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    pub connect: Duration,
    pub attempt: Duration,
    /// The whole call, every attempt and backoff included (the SDK cancels the
    /// call when it runs out, whatever attempt it is on).
    pub operation: Duration,
    pub max_attempts: u32,
    pub max_backoff: Duration,
}

impl CallLimits {
    /// The limits for a per-call budget of `operation`: half of it per attempt
    /// (so a stalled attempt leaves time for one retry), 3 attempts, 1 s to
    /// connect, at most 0.5 s between attempts.
    pub fn for_operation(operation: Duration) -> Self {
        Self {
            connect: Duration::from_secs(1),
            attempt: operation / 2,
            operation,
            max_attempts: 3,
            max_backoff: Duration::from_millis(500),
        }
    }

    /// The longest one call can take: its attempts and backoffs, capped by the
    /// operation timeout.
    pub fn worst_call(&self) -> Duration {
        let attempts = self.attempt * self.max_attempts + self.max_backoff * (self.max_attempts - 1);
        attempts.min(self.operation)
    }
}

/// Time a function keeps beyond its summed budget for what is not an AWS
/// call: JSON, routing, the runtime's own API calls (a few ms each, measured
/// in bench part d), and scheduling noise on a fraction of a vCPU.
pub const MARGIN: Duration = Duration::from_secs(1);

/// The DynamoDB calls of one ticket-assignment attempt: the admins' counters
/// (Query) and the ticket with its counter update (TransactWriteItems).
pub const ASSIGN_ATTEMPT_CALLS: u32 = 2;

/// The longest pause between two assignment attempts (full jitter, capped).
pub const ASSIGN_MAX_JITTER: Duration = Duration::from_millis(128);

/// How long a ticket create keeps starting new assignment attempts after
/// losing races to creates in other instances: one call's worth. An attempt
/// takes ~10 ms on DynamoDB, so this allows ~100 of them; past it the create
/// is a 503 the client retries, rather than a function killed mid-commit.
pub fn assign_window(limits: &CallLimits) -> Duration {
    limits.operation
}

/// How long one sweeper run keeps starting work (closes, failure retries);
/// the unit under way when it ends still finishes. A backlog drains over
/// several runs instead of one run outliving its timeout.
pub const SWEEP_WINDOW: Duration = Duration::from_secs(40);

/// One stretch of a function's work, in the order it runs.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// AWS calls made one after another (calls made in parallel count once).
    Calls(&'static str, u32),
    /// A bounded loop: `rounds` rounds of `calls` calls each.
    Repeat(&'static str, u32, u32),
    /// The assignment loop of `create_ticket`: [`assign_window`], then the
    /// attempt under way when it closes, and the pause before it.
    AssignRetries,
    /// Work that is not an AWS call, at its worst on the function's memory size.
    Cpu(&'static str, Duration),
    /// A loop that starts no new unit after `window`: the window, then the
    /// `calls` of the unit under way when it closes.
    TimeBoxed(&'static str, Duration, u32),
    /// Up to `calls` AWS calls cut off after a fixed time (respond's inline
    /// mail attempt: what is left goes to the sweeper, never past the answer).
    Capped(&'static str, Duration, u32),
    /// `calls` AWS calls made in parallel branches, `depth` of them one
    /// after another on the longest branch: the time of `depth` calls.
    Parallel(&'static str, u32, u32),
    /// A stretch of steps with a name of its own (a unit two functions share).
    Unit(&'static str, &'static [Step]),
    /// One of several stretches, whichever is longest.
    Longest(&'static str, &'static [&'static [Step]]),
}

impl Step {
    pub fn worst_case(&self, limits: &CallLimits) -> Duration {
        match *self {
            Step::Calls(_, n) => limits.worst_call() * n,
            Step::Repeat(_, rounds, calls) => limits.worst_call() * (rounds * calls),
            Step::AssignRetries => {
                assign_window(limits) + ASSIGN_MAX_JITTER + limits.worst_call() * ASSIGN_ATTEMPT_CALLS
            }
            Step::Cpu(_, d) => d,
            Step::TimeBoxed(_, window, calls) => window + limits.worst_call() * calls,
            Step::Capped(_, cap, calls) => cap.min(limits.worst_call() * calls),
            Step::Parallel(_, _, depth) => limits.worst_call() * depth,
            Step::Unit(_, steps) => steps.iter().map(|s| s.worst_case(limits)).sum(),
            Step::Longest(_, options) => options
                .iter()
                .map(|steps| steps.iter().map(|s| s.worst_case(limits)).sum())
                .max()
                .unwrap_or_default(),
        }
    }

    /// What the step says it does, nested steps included: the AWS operations
    /// it names (`GetItem`, `GetSecretValue`, ...) are the ones it may make.
    pub fn descriptions(&self) -> Vec<&'static str> {
        match *self {
            Step::Calls(d, _) | Step::Repeat(d, _, _) | Step::Cpu(d, _) | Step::TimeBoxed(d, _, _) => vec![d],
            Step::Capped(d, _, _) | Step::Parallel(d, _, _) => vec![d],
            Step::AssignRetries => vec![ASSIGN_ATTEMPT],
            Step::Unit(d, steps) => std::iter::once(d)
                .chain(steps.iter().flat_map(Step::descriptions))
                .collect(),
            Step::Longest(d, options) => std::iter::once(d)
                .chain(
                    options
                        .iter()
                        .flat_map(|steps| steps.iter().flat_map(Step::descriptions)),
                )
                .collect(),
        }
    }

    /// The most AWS calls the step makes, when bounded by a count (a loop
    /// bounded by time only is not).
    pub fn max_calls(&self) -> Option<u32> {
        match *self {
            Step::Calls(_, n) | Step::Capped(_, _, n) | Step::Parallel(_, n, _) => Some(n),
            Step::Repeat(_, rounds, calls) => Some(rounds * calls),
            Step::Cpu(..) => Some(0),
            Step::AssignRetries | Step::TimeBoxed(..) => None,
            Step::Unit(_, steps) => steps.iter().map(Step::max_calls).sum(),
            Step::Longest(_, options) => options
                .iter()
                .map(|steps| steps.iter().map(Step::max_calls).sum::<Option<u32>>())
                .collect::<Option<Vec<u32>>>()
                .and_then(|v| v.into_iter().max()),
        }
    }
}

/// The calls one assignment attempt makes (see [`ASSIGN_ATTEMPT_CALLS`]).
const ASSIGN_ATTEMPT: &str = "assignment attempt: Query admins' counters, TransactWriteItems ticket and counter";

/// A function's worst path, by its binary name (template.yaml's
/// `Metadata.BuildProperties.Binary`).
#[derive(Debug, Clone, Copy)]
pub struct FunctionBudget {
    pub binary: &'static str,
    pub steps: &'static [Step],
}

impl FunctionBudget {
    pub fn worst_case(&self, limits: &CallLimits) -> Duration {
        self.steps.iter().map(|s| s.worst_case(limits)).sum()
    }

    /// The budget names AWS operation `operation` (as the SDK calls it:
    /// `GetItem`, `SendEmail`, `GetSecretValue`) in one of its steps.
    pub fn names(&self, operation: &str) -> bool {
        self.steps.iter().flat_map(Step::descriptions).any(|d| {
            d.split(|c: char| !c.is_ascii_alphanumeric())
                .any(|word| word == operation)
        })
    }

    /// The most AWS calls one invocation makes, when every loop is bounded by a count.
    pub fn max_calls(&self) -> Option<u32> {
        self.steps.iter().map(Step::max_calls).sum()
    }
}

/// The first request with a token checks its admin once per instance.
const ADMIN_AUTH: Step = Step::Calls("authenticate: GetItem admin (once per instance and admin)", 1);
/// What only a full admin may do: the admin's role is read every time.
const FULL_ADMIN_AUTH: Step = Step::Calls("authenticate a full admin: GetItem admin, with its role", 1);
/// The JWT key ring, read on a function's first token and again every
/// `KEYS_MAX_AGE` (5 minutes): in the request path, so in every JWT
/// function's budget (verifying and signing alike).
const JWT_KEYS: Step = Step::Calls("GetSecretValue JWT key ring (first use, then every 5 minutes)", 1);
/// A paged list's token check and cursor check each load the keys; on a
/// cold instance both reads run at once.
const JWT_AND_CURSOR_KEYS: Step = Step::Parallel(
    "GetSecretValue JWT key ring, for the token and the cursor at once (first use, then every 5 minutes)",
    2,
    1,
);
/// Respond's (and a reply's) one attempt at its mail right after the commit,
/// cut off at `INLINE_SEND_BUDGET`: the claim, the send, the record. The
/// attempt is never left running after the answer (on Lambda the instance
/// freezes then); a cut attempt's claim expires and the sweeper sends it.
const INLINE_SEND: Step = Step::Capped(
    "inline mail attempt: UpdateItem claim, SES SendEmail, TransactWriteItems record (cut at INLINE_SEND_BUDGET)",
    crate::service::INLINE_SEND_BUDGET,
    3,
);
/// Whether the assignee is told of a customer's reply: its read beside the
/// ticket's notice-interval slot, then the org's and the recipient's mail
/// slots at once.
const REPLY_NOTICE: Step = Step::Parallel(
    "GetItem assignee beside UpdateItem the notice slot, then UpdateItem the org's and recipient's mail slots at once",
    4,
    2,
);
/// Applying one inbound mail from S3 (inbound-email, and the sweeper's
/// redrive of what inbound-email failed on). The reply key is read at init.
const INBOUND_APPLY: &[Step] = &[
    Step::Calls("S3 GetObject", 1),
    Step::Calls("PutItem inbound record (conditional), GetItem if seen", 2),
    Step::Calls("GetItem ticket", 1),
    Step::Calls(
        "rate limits: UpdateItem the sender's and the ticket's inbound slots, the reopen or follow-up slot",
        3,
    ),
    // customer_reply, as add-reply does it.
    Step::Repeat("Query ticket and messages, by 1 MB page", 3, 1),
    Step::AssignRetries,
    REPLY_NOTICE,
    Step::Calls("TransactWriteItems ticket, reply, counters", 1),
    SCHEDULE,
    // The assignee's notice is sent by the sweeper (no inline send on Lambda).
    Step::Calls("UpdateItem inbound outcome", 1),
];
const ORG_AUTH: Step = Step::Calls("authenticate: GetItem org by secret hash", 1);
/// One Argon2id run (19 MiB, t=2): ~50 ms on a full core (bench part c);
/// 1024 MB is ~0.6 vCPU, so ~85 ms; doubled for a noisy neighbour.
const ARGON2: Duration = Duration::from_millis(170);
const SCHEDULE: Step = Step::Calls(
    "auto-close: CreateSchedule, then UpdateSchedule if one exists (DeleteSchedule when leaving RESPONDED)",
    2,
);
/// One webhook POST at its longest.
const WEBHOOK_POST: Duration = crate::domain::webhooks::DELIVERY_TIMEOUT;

/// Every function's worst path. A new function needs an entry: list the AWS
/// calls its worst invocation makes one after another (a batch handler: per
/// record times the batch size, as a `Repeat`).
pub const FUNCTIONS: &[FunctionBudget] = &[
    FunctionBudget {
        binary: "org-signup",
        steps: &[Step::Calls("TransactWriteItems org, domain marker, secret", 1)],
    },
    FunctionBudget {
        binary: "admin-signup",
        steps: &[
            ORG_AUTH,
            Step::Cpu("Argon2 hash", ARGON2),
            Step::Calls("TransactWriteItems credentials and admin", 1),
        ],
    },
    FunctionBudget {
        binary: "admin-signin",
        steps: &[
            Step::Calls(
                "JWT signing ring and verify keys: GetSecretValue both, PutSecretValue verify keys when missing (first use, then every 5 minutes)",
                3,
            ),
            Step::Parallel(
                "throttle: take a slot per key, both at once (UpdateItem, PutItem, UpdateItem, GetItem each), \
                 beside the account lookup (GetItem domain marker, GetItem or Query credentials)",
                10,
                4,
            ),
            // A function serves one request at a time: it never waits for a hashing turn.
            Step::Cpu(
                "Argon2 verify, one per account (MAX_ACCOUNTS_PER_SIGNIN = 5)",
                ARGON2.saturating_mul(5),
            ),
            Step::Parallel(
                "throttle: give back (UpdateItem) or clear (DeleteItem) the slots, both keys at once",
                2,
                1,
            ),
        ],
    },
    FunctionBudget {
        binary: "create-ticket",
        steps: &[ORG_AUTH, Step::AssignRetries],
    },
    FunctionBudget {
        binary: "get-ticket",
        steps: &[
            JWT_KEYS,
            ADMIN_AUTH,
            // The customer's view authenticates with the org secret instead
            // (one GetItem, no key read): never longer than ADMIN_AUTH.
            // A page is 1 MB: at least 25 messages of the longest text
            // (10,000 characters, 4 bytes each at worst), ~500 typical ones.
            Step::Repeat("Query ticket and responses, by 1 MB page", 3, 1),
        ],
    },
    FunctionBudget {
        binary: "list-tickets",
        steps: &[
            JWT_AND_CURSOR_KEYS,
            ADMIN_AUTH,
            Step::Calls("GetItem admin by email (admin filter)", 1),
            Step::Calls("Query one index page", 1),
        ],
    },
    FunctionBudget {
        binary: "update-ticket",
        steps: &[
            JWT_KEYS,
            ADMIN_AUTH,
            Step::Calls("GetItem new assignee", 1),
            Step::Calls("GetItem ticket", 1),
            Step::Calls("conditional PutItem or TransactWriteItems with counters", 1),
            SCHEDULE,
        ],
    },
    FunctionBudget {
        binary: "change-status",
        steps: &[
            JWT_KEYS,
            ADMIN_AUTH,
            Step::Calls("GetItem ticket", 1),
            Step::Calls("conditional PutItem or TransactWriteItems with counters", 1),
            SCHEDULE,
        ],
    },
    FunctionBudget {
        binary: "respond",
        steps: &[
            JWT_KEYS,
            ADMIN_AUTH,
            Step::Calls("GetItem ticket", 1),
            Step::Calls("rate limits: UpdateItem the recipient's, then the org's mail slot", 2),
            // The reply key (for the mail's reply address) is read at init.
            Step::Calls("TransactWriteItems ticket, response, counters", 1),
            INLINE_SEND,
            SCHEDULE,
        ],
    },
    // ---- issue 9: the conversation ----
    FunctionBudget {
        binary: "add-reply",
        steps: &[
            ORG_AUTH,
            Step::Repeat("Query ticket and messages, by 1 MB page", 3, 1),
            Step::Calls("rate limit: UpdateItem the reopen or follow-up slot", 1),
            // A reply to a long-closed ticket files a follow-up ticket first.
            Step::AssignRetries,
            REPLY_NOTICE,
            Step::Calls("TransactWriteItems ticket, reply, counters", 1),
            SCHEDULE,
            // The assignee's notice is sent by the sweeper (no inline send on Lambda).
        ],
    },
    FunctionBudget {
        binary: "add-note",
        steps: &[
            JWT_KEYS,
            ADMIN_AUTH,
            Step::Calls("GetItem ticket", 1),
            Step::Calls("TransactWriteItems ticket, note", 1),
        ],
    },
    // ---- end issue 9: the conversation ----
    // ---- issue 10: credentials ----
    FunctionBudget {
        binary: "create-api-key",
        steps: &[
            JWT_KEYS,
            FULL_ADMIN_AUTH,
            Step::Calls("Query the org's keys (at most 50: one page)", 1),
            Step::Calls("GetItem org", 1),
            Step::Calls("TransactWriteItems listing and secret item", 1),
        ],
    },
    FunctionBudget {
        binary: "list-api-keys",
        steps: &[
            JWT_KEYS,
            FULL_ADMIN_AUTH,
            Step::Calls("Query the org's keys (at most 50: one page)", 1),
        ],
    },
    FunctionBudget {
        binary: "revoke-api-key",
        steps: &[
            JWT_KEYS,
            FULL_ADMIN_AUTH,
            Step::Calls("GetItem listing", 1),
            Step::Calls("TransactWriteItems delete both", 1),
        ],
    },
    FunctionBudget {
        binary: "rotate-org-secret",
        steps: &[
            JWT_KEYS,
            FULL_ADMIN_AUTH,
            Step::Calls("GetItem org", 1),
            Step::Calls("TransactWriteItems swap the secret item", 1),
        ],
    },
    // ---- end issue 10: credentials ----
    // ---- issue 10: webhooks ----
    FunctionBudget {
        binary: "create-webhook",
        steps: &[
            JWT_KEYS,
            FULL_ADMIN_AUTH,
            Step::Cpu(
                "resolve the URL's host (RESOLVE_TIMEOUT)",
                crate::service::RESOLVE_TIMEOUT,
            ),
            Step::Calls("Query the org's webhooks (at most 10: one page)", 1),
            Step::Calls("PutItem webhook", 1),
        ],
    },
    FunctionBudget {
        binary: "list-webhooks",
        steps: &[
            JWT_KEYS,
            FULL_ADMIN_AUTH,
            Step::Calls("Query the org's webhooks (one page)", 1),
        ],
    },
    FunctionBudget {
        binary: "delete-webhook",
        steps: &[JWT_KEYS, FULL_ADMIN_AUTH, Step::Calls("conditional DeleteItem", 1)],
    },
    FunctionBudget {
        binary: "rotate-webhook-secret",
        steps: &[
            JWT_KEYS,
            FULL_ADMIN_AUTH,
            Step::Calls("conditional UpdateItem secret", 1),
        ],
    },
    FunctionBudget {
        binary: "webhook-deliveries",
        steps: &[
            JWT_KEYS,
            FULL_ADMIN_AUTH,
            Step::Calls("GetItem webhook (tenancy)", 1),
            // 100 deliveries with their bodies (a ticket each, up to ~12 KB).
            Step::Repeat("Query the webhook's deliveries, by 1 MB page", 2, 1),
        ],
    },
    FunctionBudget {
        binary: "redeliver-webhook",
        steps: &[
            JWT_KEYS,
            FULL_ADMIN_AUTH,
            Step::Calls("rate limit: UpdateItem the org's redelivery slot", 1),
            Step::Calls("GetItem webhook, GetItem delivery", 2),
            Step::Calls("conditional UpdateItem delivery", 1),
        ],
    },
    FunctionBudget {
        binary: "webhook-sender",
        // BatchSize 1 in template.yaml: one attempt per invocation.
        steps: &[
            Step::Calls("UpdateItem claim, GetItem webhook", 2),
            Step::Cpu("POST to the endpoint (DELIVERY_TIMEOUT)", WEBHOOK_POST),
            Step::Calls("UpdateItem record, UpdateItem health", 2),
            Step::Calls("SQS SendMessageBatch the retry", 1),
        ],
    },
    // ---- end issue 10: webhooks ----
    FunctionBudget {
        binary: "close-ticket",
        steps: &[Step::Repeat(
            "run_close_job: up to 3 rounds of GetItem ticket + conditional write",
            3,
            2,
        )],
    },
    FunctionBudget {
        binary: "reconcile",
        // BatchSize 10 in template.yaml; a record is a ticket (GetItem, then
        // CreateSchedule and UpdateSchedule or DeleteSchedule), a new
        // response's mail (read, claim, SendEmail, record), or a webhook
        // message (Query webhooks, the PutItems at once, SendMessageBatch,
        // UpdateItem clearing its outbox mark).
        steps: &[Step::Repeat("per stream record, 10 per batch", 10, 4)],
    },
    FunctionBudget {
        binary: "mail-events",
        // BatchSize 2 in template.yaml: per report, GetItem the delivery, then
        // TransactWriteItems it with its history event.
        steps: &[Step::Repeat("record a report on its response", 2, 2)],
    },
    // Issue 9, part I: inbound email.
    FunctionBudget {
        binary: "inbound-email",
        steps: &[Step::Unit("apply one inbound mail", INBOUND_APPLY)],
    },
    FunctionBudget {
        binary: "sweeper",
        steps: &[
            // The reply key (re-applying inbound mail) is read at init.
            Step::Calls(
                "Query by_due (closes, missed messages, webhooks, notices); Query mail_due; Query assignment backlog; GetQueueUrl x2 (first run); ReceiveMessage",
                8,
            ),
            Step::TimeBoxed(
                "closes, mail and webhook retries, notices, failure retries",
                SWEEP_WINDOW,
                0,
            ),
            Step::Longest(
                "what runs past the window",
                &[
                    // The unit under way in the sweeps: a chunk of webhook
                    // attempts made at once (claim, GetItem webhook, the
                    // POST, record, health) is the longest (a close job is 6
                    // calls, a stream record replayed 4 plus its read, a
                    // notice 3, a missed message 3); then deliver_due_webhooks
                    // always runs its first chunk, even when the closes and
                    // mail used the window up (so they cannot starve it).
                    &[
                        Step::Calls("the unit under way: claim, GetItem webhook, record, health", 6),
                        Step::Cpu("the webhook POST of the unit under way", WEBHOOK_POST),
                        Step::Calls(
                            "a first chunk of webhook attempts past the window: UpdateItem claim, GetItem, UpdateItem record, UpdateItem health",
                            4,
                        ),
                        Step::Cpu("its POSTs, made at once", WEBHOOK_POST),
                    ],
                    // The failure queue is drained last: a failure retried
                    // across the window's end is the last unit, and the
                    // longest is an inbound mail read again from S3 and
                    // applied (ReceiveMessage, then DeleteMessage once done).
                    &[
                        Step::Unit("an inbound mail re-applied from the failure queue", INBOUND_APPLY),
                        Step::Calls("DeleteMessage its failure record", 1),
                    ],
                ],
            ),
        ],
    },
    // Issue 9, history and people (H).
    FunctionBudget {
        binary: "ticket-events",
        steps: &[
            JWT_AND_CURSOR_KEYS,
            ADMIN_AUTH,
            Step::Calls("GetItem ticket (tenancy)", 1),
            Step::Calls("Query the ticket's events, one page", 1),
        ],
    },
    FunctionBudget {
        binary: "list-admins",
        steps: &[
            JWT_AND_CURSOR_KEYS,
            ADMIN_AUTH,
            Step::Calls("Query the org's admin items, one page", 1),
        ],
    },
    FunctionBudget {
        binary: "set-availability",
        steps: &[
            JWT_KEYS,
            ADMIN_AUTH,
            Step::Calls("rate limit: UpdateItem the admin's availability slot", 1),
            Step::Calls("GetItem admin, TransactWriteItems admin and credentials", 2),
            Step::Calls("PutItem backlog mark, Query unassigned", 2),
            // Per ticket: GetItem ticket, Query admins, TransactWriteItems.
            Step::TimeBoxed("assign waiting tickets", crate::service::ASSIGN_WINDOW, 3),
            Step::Calls("DeleteItem backlog mark", 1),
        ],
    },
    FunctionBudget {
        binary: "set-admin-role",
        steps: &[
            JWT_KEYS,
            FULL_ADMIN_AUTH,
            Step::Calls("GetItem admin, TransactWriteItems admin and credentials", 2),
        ],
    },
];

/// The budget of the function built from `binary`.
pub fn budget(binary: &str) -> Option<&'static FunctionBudget> {
    FUNCTIONS.iter().find(|f| f.binary == binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_is_capped_by_the_operation_timeout() {
        let l = CallLimits::for_operation(Duration::from_secs(2));
        assert_eq!(l.attempt, Duration::from_secs(1));
        // 3 attempts of 1 s and two 0.5 s pauses would be 4 s; the call stops at 2 s.
        assert_eq!(l.worst_call(), Duration::from_secs(2));
        let uncapped = CallLimits {
            operation: Duration::from_secs(60),
            ..l
        };
        assert_eq!(uncapped.worst_call(), Duration::from_secs(4));
    }

    #[test]
    fn the_assignment_loop_costs_its_window_and_one_last_attempt() {
        let l = CallLimits::for_operation(Duration::from_secs(2));
        assert_eq!(
            Step::AssignRetries.worst_case(&l),
            Duration::from_millis(2_000 + 128 + 4_000)
        );
    }

    #[test]
    fn each_binary_has_one_budget() {
        let mut names: Vec<&str> = FUNCTIONS.iter().map(|f| f.binary).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a binary is listed twice");
    }
}
