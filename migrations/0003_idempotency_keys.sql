-- Idempotency-Key records (Stripe semantics): the first request claims the key (in_flight); its append
-- completes it in the same transaction with the response to replay.
CREATE TABLE idempotency_keys (
  key              text        PRIMARY KEY,
  fingerprint      text        NOT NULL,
  status           text        NOT NULL CHECK (status IN ('in_flight', 'completed')),
  response_status  smallint,
  response_body    jsonb,
  locked_at        timestamptz NOT NULL DEFAULT now(),
  created_at       timestamptz NOT NULL DEFAULT now()
);
