-- The pending-authorizations limit reads only an account's pending orders.
CREATE INDEX orders_pending_by_account ON orders(account_id, expires) WHERE status = 'pending';
