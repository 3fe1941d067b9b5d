-- The sweeper's read: RESPONDED tickets by due time. Partial, so it holds
-- only the tickets waiting to close and stays small however many are closed.
CREATE INDEX tickets_due ON tickets(auto_close_at, id)
    WHERE status = 'RESPONDED' AND auto_close_at IS NOT NULL;
