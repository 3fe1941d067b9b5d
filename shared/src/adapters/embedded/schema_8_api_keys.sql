-- Migration 8: API keys (issue 10). Each is a credential of its org with some
-- scopes, stored as the SHA-256 of the key (like the org secret), revocable
-- on its own: revoking deletes the row, so the key stops working at once.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    -- sorted, comma-separated: tickets:create, tickets:read, admins:create
    scopes       TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;
CREATE INDEX api_keys_by_org ON api_keys(org_id, created_at);
