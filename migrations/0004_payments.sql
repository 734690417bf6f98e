-- Inbox: the events a consumer has finished, written in the same transaction as what handling appended.
CREATE TABLE inbox (
  consumer      text        NOT NULL,
  message_id    uuid        NOT NULL,
  processed_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, message_id)
);

-- Dead letters: messages a consumer gave up on, kept for operators to list, replay or discard.
CREATE TABLE dead_letters (
  id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  consumer      text        NOT NULL,
  topic         text        NOT NULL,
  partition     integer     NOT NULL,
  "offset"      text        NOT NULL,
  message_key   text,
  value         text        NOT NULL,
  headers       jsonb       NOT NULL DEFAULT '{}'::jsonb,
  error         text        NOT NULL,
  attempts      integer     NOT NULL,
  status        text        NOT NULL DEFAULT 'parked' CHECK (status IN ('parked', 'replayed', 'discarded')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (consumer, topic, partition, "offset")
);
CREATE INDEX dead_letters_status ON dead_letters (status, id);

-- The payment provider simulator's own ledger (it stands for an external system): one charge per key.
CREATE TABLE provider_charges (
  idempotency_key  text        PRIMARY KEY,
  charge_id        uuid        NOT NULL,
  order_id         uuid        NOT NULL,
  amount_minor     bigint      NOT NULL,
  currency         char(3)     NOT NULL,
  outcome          text        NOT NULL CHECK (outcome IN ('succeeded', 'declined')),
  created_at       timestamptz NOT NULL DEFAULT now()
);
