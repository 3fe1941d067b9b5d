-- Migration 1. Times are UTC milliseconds since the epoch; ids are UUID text.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    domain      TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE admins (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES orgs(id),
    first_name       TEXT NOT NULL,
    last_name        TEXT NOT NULL,
    email            TEXT NOT NULL UNIQUE,
    password_hash    TEXT NOT NULL,
    available        INTEGER NOT NULL DEFAULT 1,
    -- assigned tickets that are not CLOSED; changed in the same transaction as those tickets
    open_tickets     INTEGER NOT NULL DEFAULT 0 CHECK (open_tickets >= 0),
    last_assigned_at INTEGER,
    created_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX admins_by_org ON admins(org_id);

CREATE TABLE tickets (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    title         TEXT NOT NULL,
    description   TEXT NOT NULL,
    added_by      TEXT NOT NULL,
    admin_id      TEXT REFERENCES admins(id),
    status        TEXT NOT NULL CHECK (status IN ('OPEN', 'RESPONDED', 'CLOSED')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    responded_at  INTEGER,
    closed_at     INTEGER,
    auto_close_at INTEGER,
    version       INTEGER NOT NULL
) STRICT;
-- One index per list filter combination, each ending in the page order, so
-- every list is an index range read with no sort.
CREATE INDEX tickets_by_org                 ON tickets(org_id, created_at, id);
CREATE INDEX tickets_by_status              ON tickets(org_id, status, created_at, id);
CREATE INDEX tickets_by_admin               ON tickets(org_id, admin_id, created_at, id);
CREATE INDEX tickets_by_customer            ON tickets(org_id, added_by, created_at, id);
CREATE INDEX tickets_by_admin_status        ON tickets(org_id, admin_id, status, created_at, id);
CREATE INDEX tickets_by_customer_status     ON tickets(org_id, added_by, status, created_at, id);
CREATE INDEX tickets_by_admin_customer      ON tickets(org_id, admin_id, added_by, created_at, id);
CREATE INDEX tickets_by_admin_customer_status ON tickets(org_id, admin_id, added_by, status, created_at, id);

CREATE TABLE responses (
    id              TEXT PRIMARY KEY,
    ticket_id       TEXT NOT NULL REFERENCES tickets(id),
    admin_id        TEXT NOT NULL REFERENCES admins(id),
    message         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    delivery_state  TEXT NOT NULL CHECK (delivery_state IN ('pending', 'sent', 'failed')),
    -- the provider's message id when sent, the reason when failed
    delivery_detail TEXT,
    delivery_at     INTEGER
) STRICT;
CREATE INDEX responses_by_ticket ON responses(ticket_id, created_at);

-- The local stand-in for EventBridge Scheduler: one pending close job per ticket at most.
CREATE TABLE close_jobs (
    id           INTEGER PRIMARY KEY,
    ticket_id    TEXT NOT NULL,
    responded_at INTEGER NOT NULL,
    due_at       INTEGER NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'done', 'cancelled', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    outcome      TEXT,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER
) STRICT;
CREATE UNIQUE INDEX close_jobs_one_pending ON close_jobs(ticket_id) WHERE state = 'pending';
CREATE INDEX close_jobs_due ON close_jobs(due_at) WHERE state = 'pending';
CREATE INDEX close_jobs_recent ON close_jobs(created_at);

-- The local stand-in for SES: every mail the service sends.
CREATE TABLE outbox (
    id         TEXT PRIMARY KEY,
    to_addr    TEXT NOT NULL,
    from_addr  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    ticket_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX outbox_recent ON outbox(created_at);
