-- Migration 4: sign-in failures are counted per (client, email) and per client
-- (issue 11, hole 3), not per email: one row per ThrottleKey::storage_key.
-- The old per-email counts are short-lived and dropped.
DROP TABLE signin_failures;
CREATE TABLE signin_throttle (
    key          TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    failures     INTEGER NOT NULL
) STRICT;
-- Lets each write forget ended windows without a full scan, however many a spray left.
CREATE INDEX signin_throttle_by_start ON signin_throttle(window_start);
