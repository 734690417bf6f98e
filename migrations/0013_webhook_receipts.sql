-- The webhook receiver simulator's own record (it stands for merchants' endpoints, an external system): every
-- delivery it was sent, whether its signature verified, and what it answered (null: no answer was given).
CREATE TABLE webhook_receipts (
  id                 bigserial   PRIMARY KEY,
  name               text        NOT NULL,
  webhook_id         text,
  webhook_timestamp  bigint,
  event_type         text,
  order_id           text,
  version            integer,
  event_id           text,
  event_timestamp    timestamptz,
  valid              boolean,
  error              text,
  answered           integer,
  received_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_receipts_name ON webhook_receipts (name, id);
