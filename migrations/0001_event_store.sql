-- The event log: the source of truth. One row per event; stream versions 1..n per order.
CREATE TABLE events (
  position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stream_id       uuid        NOT NULL,
  version         integer     NOT NULL CHECK (version > 0),
  event_id        uuid        NOT NULL,
  type            text        NOT NULL,
  schema_version  smallint    NOT NULL CHECK (schema_version > 0),
  data            jsonb       NOT NULL,
  metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
  recorded_at     timestamptz NOT NULL DEFAULT now(),
  -- the writing transaction: readers of the whole log stay below pg_snapshot_xmin(pg_current_snapshot())
  -- so an event committed late by a long transaction is never skipped.
  transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
  CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
  CONSTRAINT events_event_id_key UNIQUE (event_id)
);
CREATE INDEX events_transaction_position ON events (transaction_id, position);

-- Transactional outbox: one row per event to publish, written in the append's transaction.
CREATE TABLE outbox (
  position        bigint      PRIMARY KEY,
  stream_id       uuid        NOT NULL,
  transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
  created_at      timestamptz NOT NULL DEFAULT now(),
  published_at    timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (position) WHERE published_at IS NULL;
