-- Migration 2: sign-in throttling. One row per email with recent failures.
CREATE TABLE signin_failures (
    email        TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    failures     INTEGER NOT NULL
) STRICT;
