-- Migration 8: inbound email (issue 9). A response's mail keeps the Reply-To
-- and Message-ID it was rendered with (the outbox shows them too), and every
-- inbound message is stored before it is read: the raw message for audit,
-- keyed by its Message-ID (or a hash of it) so a redelivery is seen as such,
-- and what became of it.
ALTER TABLE responses ADD COLUMN mail_reply_to TEXT;
ALTER TABLE responses ADD COLUMN mail_message_id TEXT;
ALTER TABLE outbox ADD COLUMN reply_to TEXT;
ALTER TABLE outbox ADD COLUMN message_id TEXT;
CREATE TABLE inbound_mail (
    -- the Message-ID without angle brackets, or `sha256:<hex>` of the raw message
    key         TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL,
    raw         BLOB NOT NULL,
    -- NULL while being handled; then applied, duplicate, dropped:<why> or rejected:<why>
    outcome     TEXT,
    ticket_id   TEXT,
    finished_at INTEGER
) STRICT;
-- The dashboard's counts and latest messages read by time.
CREATE INDEX inbound_mail_recent ON inbound_mail(received_at);
