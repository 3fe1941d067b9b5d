-- Migration 13: admin roles. Admins signed up with an `admins:create` API key
-- start `limited` (no credentials, webhooks or roles) until a full admin
-- grants `full`; every admin from before is full.
ALTER TABLE admins ADD COLUMN role TEXT NOT NULL DEFAULT 'full';
-- Sign-in reads an email's accounts oldest org first, from the index alone.
CREATE INDEX admins_by_email_org ON admins(email, org_id);
DROP INDEX admins_by_email;
