-- The saga lease: a worker runs an order's saga only after claiming it (a conditional update that
-- succeeds when the order is unclaimed or its lease expired), renews the lease while it works, and
-- only the owner may move the saga on. A crashed worker's lease expires and another takes over.
ALTER TABLE orders ADD COLUMN lease_owner TEXT;
ALTER TABLE orders ADD COLUMN lease_until TEXT;
-- The request the order was placed by, so that the saga's calls and events carry its request id
-- and trace even when the recovery worker resumes it.
ALTER TABLE orders ADD COLUMN request_id TEXT;
ALTER TABLE orders ADD COLUMN traceparent TEXT;
