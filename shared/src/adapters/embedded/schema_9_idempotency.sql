-- Migration 9: idempotent requests (issue 10). One row per (credential scope,
-- Idempotency-Key): the request's fingerprint while it runs (with a lease, so
-- a request that died holding the key lets go), then its answer. Rows are
-- forgotten 24 hours after they began; begins delete a bounded batch of
-- expired rows through the index on expires_at.
CREATE TABLE idempotency (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('running', 'done')),
    status      INTEGER,
    -- NULL when done: the answer carried a credential shown once
    body        TEXT,
    location    TEXT,
    lease_until INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT;
CREATE INDEX idempotency_expiry ON idempotency(expires_at);
