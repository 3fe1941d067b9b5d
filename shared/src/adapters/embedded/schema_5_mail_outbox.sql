-- Migration 5: a response's email is committed with it and sent at least once
-- (issue 8). The rendered mail lives on the response row until sent; a pending
-- mail carries its attempts, when the next is due and the lease of the sender
-- holding it. More delivery states than the CHECK allowed, so the table is
-- rebuilt (as migration 3 rebuilt admins). Rows left `pending` by the old code
-- were interrupted mid-send with no mail kept: they become `failed`, saying so.
CREATE TABLE responses_new (
    id                  TEXT PRIMARY KEY,
    ticket_id           TEXT NOT NULL REFERENCES tickets(id),
    admin_id            TEXT NOT NULL REFERENCES admins(id),
    message             TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    delivery_state      TEXT NOT NULL CHECK (delivery_state IN
                            ('pending', 'sent', 'delivered', 'bounced', 'complained', 'failed')),
    -- the provider's message id, once sent
    delivery_message_id TEXT,
    -- why it failed or bounced; while pending, the last attempt's error
    delivery_reason     TEXT,
    delivery_at         INTEGER,
    -- the email as rendered when the response was committed
    mail_to             TEXT,
    mail_from           TEXT,
    mail_subject        TEXT,
    mail_body           TEXT,
    mail_attempts       INTEGER NOT NULL DEFAULT 0,
    -- while pending: when the next attempt is due (a claim moves it to the lease's end)
    mail_next_at        INTEGER,
    mail_lease          TEXT
) STRICT;
INSERT INTO responses_new (id, ticket_id, admin_id, message, created_at, delivery_state, delivery_message_id,
                           delivery_reason, delivery_at)
    SELECT id, ticket_id, admin_id, message, created_at,
           CASE delivery_state WHEN 'pending' THEN 'failed' ELSE delivery_state END,
           CASE delivery_state WHEN 'sent' THEN delivery_detail END,
           CASE delivery_state
               WHEN 'failed' THEN delivery_detail
               WHEN 'pending' THEN 'interrupted before it was sent'
           END,
           coalesce(delivery_at, created_at)
    FROM responses;
DROP TABLE responses;
ALTER TABLE responses_new RENAME TO responses;
CREATE INDEX responses_by_ticket ON responses(ticket_id, created_at);
-- Only pending mail, by due time: the sender's "what is due" is one range read.
CREATE INDEX responses_mail_due ON responses(mail_next_at) WHERE delivery_state = 'pending';
