-- A request taken under submission by a CA (ADCS "pending"): which authority
-- holds it, its request id there, and when it was submitted. The issuance
-- job retrieves it by id until it is issued, denied, or times out.
ALTER TABLE orders ADD COLUMN ca_authority TEXT;
ALTER TABLE orders ADD COLUMN ca_request_id INTEGER;
ALTER TABLE orders ADD COLUMN ca_submitted_at INTEGER;
