-- Migration 7: the conversation (issue 9). The `responses` table holds every
-- message of a ticket: an admin's response, the customer's reply, an internal
-- note (`kind`). A reply has no admin (its author is the customer's email), a
-- note has no mail, so those columns become nullable: the table is rebuilt
-- (as migration 5 did). A ticket may follow up on a closed one.
CREATE TABLE responses_new (
    id                  TEXT PRIMARY KEY,
    ticket_id           TEXT NOT NULL REFERENCES tickets(id),
    kind                TEXT NOT NULL DEFAULT 'response' CHECK (kind IN ('response', 'reply', 'note')),
    admin_id            TEXT REFERENCES admins(id),
    author_email        TEXT,
    message             TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    delivery_state      TEXT CHECK (delivery_state IN
                            ('pending', 'sent', 'delivered', 'bounced', 'complained', 'failed')),
    delivery_message_id TEXT,
    delivery_reason     TEXT,
    delivery_at         INTEGER,
    mail_to             TEXT,
    mail_from           TEXT,
    mail_subject        TEXT,
    mail_body           TEXT,
    mail_attempts       INTEGER NOT NULL DEFAULT 0,
    mail_next_at        INTEGER,
    mail_lease          TEXT,
    -- an admin wrote responses and notes, the customer replies
    CHECK ((kind = 'reply') = (admin_id IS NULL AND author_email IS NOT NULL)),
    -- responses always mail the customer, notes never mail anyone
    CHECK (kind <> 'response' OR delivery_state IS NOT NULL),
    CHECK (kind <> 'note' OR delivery_state IS NULL)
) STRICT;
INSERT INTO responses_new (id, ticket_id, kind, admin_id, message, created_at, delivery_state,
                           delivery_message_id, delivery_reason, delivery_at, mail_to, mail_from, mail_subject,
                           mail_body, mail_attempts, mail_next_at, mail_lease)
    SELECT id, ticket_id, 'response', admin_id, message, created_at, delivery_state, delivery_message_id,
           delivery_reason, delivery_at, mail_to, mail_from, mail_subject, mail_body, mail_attempts,
           mail_next_at, mail_lease
    FROM responses;
DROP TABLE responses;
ALTER TABLE responses_new RENAME TO responses;
CREATE INDEX responses_by_ticket ON responses(ticket_id, created_at);
CREATE INDEX responses_mail_due ON responses(mail_next_at) WHERE delivery_state = 'pending';

ALTER TABLE tickets ADD COLUMN follow_up_of TEXT;
