-- A request taken under submission by a CA (ADCS "pending").
ALTER TABLE orders ADD COLUMN ca_authority TEXT;
ALTER TABLE orders ADD COLUMN ca_request_id BIGINT;
ALTER TABLE orders ADD COLUMN ca_submitted_at BIGINT;
