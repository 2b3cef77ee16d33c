-- The pending-authorizations limit counts an account's pending
-- authorizations at every new-order. A partial index holds only the
-- account's pending orders (an order leaves it when it becomes ready or
-- invalid), so the count reads those orders and their authorizations, never
-- the account's whole history; it costs one index entry per order while it
-- is pending.
CREATE INDEX orders_pending_by_account ON orders(account_id, expires) WHERE status = 'pending';
