-- Migration 3: admin emails are unique per org, not across orgs, so no org can
-- squat another org's address (issue 11, hole 2). SQLite cannot drop a column's
-- UNIQUE, so the table is rebuilt (foreign keys are off while migrations run;
-- db.rs checks them before committing). Sign-in looks accounts up by email alone.
CREATE TABLE admins_new (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES orgs(id),
    first_name       TEXT NOT NULL,
    last_name        TEXT NOT NULL,
    email            TEXT NOT NULL,
    password_hash    TEXT NOT NULL,
    available        INTEGER NOT NULL DEFAULT 1,
    -- assigned tickets that are not CLOSED; changed in the same transaction as those tickets
    open_tickets     INTEGER NOT NULL DEFAULT 0 CHECK (open_tickets >= 0),
    last_assigned_at INTEGER,
    created_at       INTEGER NOT NULL,
    -- also serves the per-org reads that admins_by_org served
    UNIQUE (org_id, email)
) STRICT;
INSERT INTO admins_new (id, org_id, first_name, last_name, email, password_hash, available, open_tickets,
                        last_assigned_at, created_at)
    SELECT id, org_id, first_name, last_name, email, password_hash, available, open_tickets,
           last_assigned_at, created_at
    FROM admins;
DROP TABLE admins;
ALTER TABLE admins_new RENAME TO admins;
CREATE INDEX admins_by_email ON admins(email);
