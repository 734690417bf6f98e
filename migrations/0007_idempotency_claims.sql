-- Idempotency-Key claims carry the token of the request that holds them, so a failed request releases only
-- its own claim (never one a later request took over); expiry deletes by age in batches (created_at index).
ALTER TABLE idempotency_keys ADD COLUMN claim_token uuid;
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
