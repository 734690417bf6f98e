-- Webhooks (issue 20): the endpoints merchants register and one delivery row per (event, endpoint), written by
-- the notifier in the transaction of its inbox row; the HTTP call happens after commit (src/webhooks/).

CREATE TABLE webhook_endpoints (
  id                    uuid        PRIMARY KEY,
  url                   text        NOT NULL,
  -- null: every event type
  event_types           text[],
  description           text,
  status                text        NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
  disabled_reason       text,
  secret                text        NOT NULL,
  -- after a rotation the old secret signs beside the new one until previous_secret_until
  previous_secret       text,
  previous_secret_until timestamptz,
  -- the first failure of the current run of failures (null after a success): disabled after WEBHOOK_DISABLE_AFTER
  failing_since         timestamptz,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
  id                uuid        PRIMARY KEY,
  endpoint_id       uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  event_id          uuid        NOT NULL,
  order_id          uuid        NOT NULL,
  version           integer     NOT NULL,
  event_type        text        NOT NULL,
  -- the exact bytes sent (and signed) on every attempt
  body              text        NOT NULL,
  event_recorded_at timestamptz NOT NULL,
  traceparent       text,
  tracestate        text,
  status            text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts          integer     NOT NULL DEFAULT 0,
  next_attempt_at   timestamptz NOT NULL DEFAULT now(),
  -- a notifier is calling the endpoint until then (another takes the delivery over after it: at least once);
  -- an attempt's outcome is recorded only by the holder of the current lease (its token)
  leased_until      timestamptz,
  lease_token       uuid,
  last_attempt_at   timestamptz,
  last_status       integer,
  last_error        text,
  delivered_at      timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (endpoint_id, event_id)
);
-- what is due, per endpoint (each endpoint's share is taken separately: one endpoint's backlog never hides another's)
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
-- per (endpoint, order), a delivery waits for every pending one of a lower version
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, order_id, version) WHERE status = 'pending';
-- an endpoint's deliveries, newest first, and replays since a time
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at, id);
-- retention of delivered rows
CREATE INDEX webhook_deliveries_delivered ON webhook_deliveries (delivered_at) WHERE status = 'delivered';
