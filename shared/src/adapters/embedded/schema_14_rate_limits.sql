-- Migration 14: rate-limit counters, and raw inbound mail purged after its retention.
-- One row per key and fixed window; rows past their window are swept.
CREATE TABLE rate_limits (
    key          TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
) STRICT;
CREATE INDEX rate_limits_expiry ON rate_limits(expires_at);
-- 1 while the raw message is kept; the purge empties `raw` and clears it.
ALTER TABLE inbound_mail ADD COLUMN raw_kept INTEGER NOT NULL DEFAULT 1;
CREATE INDEX inbound_mail_raw_kept ON inbound_mail(received_at) WHERE raw_kept = 1;
