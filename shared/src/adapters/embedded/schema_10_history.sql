-- Migration 7: ticket history, admin availability and the admin list (issue 9).
-- A ticket's events, written in the same transaction as the change they record.
-- Ids are v7 UUIDs, whose text sorts by time, so (ticket_id, id) pages oldest first.
CREATE TABLE ticket_events (
    id        TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets(id),
    -- the event as the API shows it (JSON); read back only whole
    body      TEXT NOT NULL
) STRICT;
CREATE INDEX ticket_events_by_ticket ON ticket_events(ticket_id, id);
-- OPEN tickets waiting for an available admin, oldest first. Partial, so it
-- holds only those and stays small.
CREATE INDEX tickets_unassigned ON tickets(org_id, created_at, id)
    WHERE status = 'OPEN' AND admin_id IS NULL;
-- The admin list pages in id (creation) order within an org.
CREATE INDEX admins_by_org_id ON admins(org_id, id);
-- Orgs whose unassigned tickets an availability change left for the sweep.
CREATE TABLE assignment_backlog (
    org_id TEXT PRIMARY KEY REFERENCES orgs(id)
) STRICT;
