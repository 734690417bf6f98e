-- A released Idempotency-Key claim leaves a record ('released') naming every token released on the key, instead
-- of being deleted: a claim that reaches the database after its own release (it sat unread in a backend that
-- hung while its request gave up at its deadline) then takes nothing, whatever the order of the two; any other
-- request takes a released key at once, as it took a deleted one.
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_status_check;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_status_check CHECK (status IN ('in_flight', 'completed', 'released'));
ALTER TABLE idempotency_keys ADD COLUMN released_tokens uuid[] NOT NULL DEFAULT '{}';
