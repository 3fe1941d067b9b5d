-- Migration 12: webhooks (issue 10).
-- An org's endpoints. The signing secret is kept as issued: every attempt signs with it.
CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs(id),
    url             TEXT NOT NULL,
    -- the subscribed types, comma-separated
    events          TEXT NOT NULL,
    secret          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    disabled_at     INTEGER,
    disabled_reason TEXT,
    failing_since   INTEGER,
    -- 1 while the org's admins have not been told it was disabled
    notice_pending  INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX webhooks_by_org ON webhooks(org_id, created_at, id);
CREATE INDEX webhooks_notice_pending ON webhooks(disabled_at) WHERE notice_pending = 1;
-- The outbox: each message a ticket write commits for the endpoints, in the
-- write's transaction, until the dispatcher fans it out into deliveries.
CREATE TABLE webhook_outbox (
    event_id TEXT PRIMARY KEY,
    -- the WebhookMessage (JSON)
    message  TEXT NOT NULL
) STRICT;
-- One endpoint's delivery of one message (id: the message id), with its attempts.
CREATE TABLE webhook_deliveries (
    webhook_id      TEXT NOT NULL,
    id              TEXT NOT NULL,
    org_id          TEXT NOT NULL,
    ticket_id       TEXT NOT NULL,
    type            TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    state           TEXT NOT NULL,
    next_attempt_at INTEGER,
    retries         INTEGER NOT NULL DEFAULT 0,
    -- JSON list of attempts, oldest first
    attempts        TEXT NOT NULL DEFAULT '[]',
    lease           TEXT,
    PRIMARY KEY (webhook_id, id)
) STRICT;
-- Newest first per endpoint.
CREATE INDEX webhook_deliveries_by_created ON webhook_deliveries(webhook_id, created_at);
-- Only pending deliveries, by due time: the sender's read.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE state = 'pending';
